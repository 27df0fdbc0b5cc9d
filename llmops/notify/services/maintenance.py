"""Beat-task upkeep of the outbox: re-queueing rows whose task was lost, and purging what
nobody needs any more."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import Channel, Notification, Status
from ._common import OUTBOUND, _conf, max_attempts
from .outbox import _enqueue_on_commit

REQUEUE_BATCH = 500
PURGE_BATCH = 2000


def notification_requeue_stale(*, older_than: int | None = None) -> list[int]:
    """Re-queue outbound rows still pending whose due time (creation, or the retry time
    after a failure) passed more than `older_than` seconds ago (default
    NOTIFY_STALE_SECONDS): their task was lost, e.g. with a worker killed mid-delivery.
    Rows being delivered right now are locked and skipped; a re-queued row's due time
    moves to now, so it is re-queued at most once per period."""
    stale = int(_conf("NOTIFY_STALE_SECONDS", 180) if older_than is None else older_than)
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale)
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, channel__in=OUTBOUND, attempts__lt=max_attempts())
            .filter(
                Q(next_attempt_at__lte=cutoff)
                | Q(next_attempt_at__isnull=True, created_at__lte=cutoff)
            )
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:REQUEUE_BATCH]
        )
        if ids:
            Notification.objects.filter(pk__in=ids).update(next_attempt_at=now)
            _enqueue_on_commit(ids)
    return ids


def notification_purge(*, older_than_days: int | None = None) -> int:
    """Delete what nobody needs any more, older than NOTIFY_RETENTION_DAYS: read inbox rows
    and delivered or failed outbound rows (their attempts go with them). Unread and pending
    rows stay. In batches, one transaction each, so the tables are never locked for long."""
    days = int(_conf("NOTIFY_RETENTION_DAYS", 90) if older_than_days is None else older_than_days)
    cutoff = timezone.now() - timedelta(days=days)
    done = Q(channel=Channel.INBOX, read_at__isnull=False) | Q(
        channel__in=OUTBOUND, status__in=(Status.DELIVERED, Status.FAILED)
    )
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                Notification.objects.filter(done, created_at__lt=cutoff)
                .order_by("pk")
                .values_list("pk", flat=True)[:PURGE_BATCH]
            )
            if not ids:
                return deleted
            _, by_model = Notification.objects.filter(pk__in=ids).delete()
            deleted += by_model.get(Notification._meta.label, 0)
