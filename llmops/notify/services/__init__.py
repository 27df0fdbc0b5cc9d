"""Writing notifications (the outbox), delivering them, and managing webhook endpoints.

A service that wants to tell someone calls `notify(...)` inside its own transaction: the
rows are written with it (a rollback leaves none) and e-mail/webhook rows are handed to
Celery only after commit. Delivery is at least once; receivers deduplicate on the
idempotency id (`id` in the JSON, `X-Llmops-Delivery` header).

One module per use case: `outbox` (notify, notify_admins), `inbox` (marking read),
`delivery` (one attempt, backoff), `maintenance` (re-queueing lost tasks, purging) and
`webhooks` (endpoints). Import from this package (`from llmops.notify import services`);
to replace a helper in a test, patch the module that uses it (e.g. `outbox._enqueue`)."""

from ._common import OUTBOUND, absolute_link, max_attempts, safe_link
from .delivery import (
    NOT_DUE_TOLERANCE,
    DeliveryError,
    DeliveryOutcome,
    backoff_ceiling,
    backoff_seconds,
    notification_deliver,
    slack_escape,
    webhook_payload,
)
from .inbox import notification_mark_all_read, notification_mark_read
from .maintenance import PURGE_BATCH, REQUEUE_BATCH, notification_purge, notification_requeue_stale
from .outbox import notify, notify_admins
from .webhooks import (
    MAX_ROTATION_HOURS,
    new_secret,
    rotation_hours,
    webhook_create,
    webhook_delete,
    webhook_retry_failed,
    webhook_rotate_secret,
    webhook_send_test,
    webhook_set_active,
)

__all__ = [
    "MAX_ROTATION_HOURS",
    "NOT_DUE_TOLERANCE",
    "OUTBOUND",
    "PURGE_BATCH",
    "REQUEUE_BATCH",
    "DeliveryError",
    "DeliveryOutcome",
    "absolute_link",
    "backoff_ceiling",
    "backoff_seconds",
    "max_attempts",
    "new_secret",
    "notification_deliver",
    "notification_mark_all_read",
    "notification_mark_read",
    "notification_purge",
    "notification_requeue_stale",
    "notify",
    "notify_admins",
    "rotation_hours",
    "safe_link",
    "slack_escape",
    "webhook_create",
    "webhook_delete",
    "webhook_payload",
    "webhook_retry_failed",
    "webhook_rotate_secret",
    "webhook_send_test",
    "webhook_set_active",
]
