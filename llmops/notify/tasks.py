"""Celery tasks of the outbox: thin wrappers around services.

`acks_late` + `reject_on_worker_lost`: a delivery whose worker dies is not acknowledged,
so the broker hands it out again; `requeue_stale` (beat, every minute) covers what the
broker would only redeliver after its visibility timeout."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(
    name="llmops.notify.tasks.deliver",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # bounded by NOTIFY_MAX_ATTEMPTS, counted on the row
    ignore_result=True,
)
def deliver(self, notification_id: int) -> str:
    outcome = services.notification_deliver(notification_id=notification_id)
    if outcome.retry_in is not None and not self.request.is_eager:
        # Eager mode (tests, `make run` without a broker) does not sleep through backoff:
        # the row keeps its next_attempt_at and the stale sweep picks it up.
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="llmops.notify.tasks.requeue_stale", acks_late=True, ignore_result=True)
def requeue_stale(older_than: int | None = None) -> int:
    return len(services.notification_requeue_stale(older_than=older_than))


@shared_task(name="llmops.notify.tasks.purge", acks_late=True, ignore_result=True)
def purge() -> int:
    return services.notification_purge()
