"""Claiming: a reviewer takes the next item of a queue under a lease; lapsed leases are
swept back into the queue. The hot statements live in reviews/backends.py."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from llmops.common.errors import PolicyViolation
from llmops.tenancy.actor import Actor

from .. import backends
from ..models import Assignment, QueueItem, ReviewQueue
from .base import human_reviewer, queue_for


def _lease(queue: ReviewQueue, now: datetime) -> datetime:
    return now + timedelta(minutes=queue.lease_minutes)


def _claim_opening(actor: Actor, queue: ReviewQueue):
    """The opening of a claim: the queue visible and reviewable, a person, not paused."""
    queue_for(actor, queue, "queue.review")
    user = human_reviewer(actor)
    if not queue.active:
        raise PolicyViolation("This queue is paused; an owner can reactivate it.")
    return user


def item_claim(*, actor: Actor, queue: ReviewQueue) -> Assignment | None:
    """The reviewer's next item in the queue, or None when nothing is left for them.
    A lease they still hold in the queue comes back first (renewed when it lapsed and was
    not swept: its slot was never given away)."""
    user = _claim_opening(actor, queue)
    backend = backends.current()
    now = timezone.now()
    with transaction.atomic():
        for _attempt in range(3):
            held = backend.held(queue, user)
            if held is not None:
                if held.lease_expires_at <= now:
                    held.lease_expires_at = _lease(queue, now)
                    Assignment.objects.filter(pk=held.pk).update(
                        lease_expires_at=held.lease_expires_at
                    )
                return held
            try:
                # A savepoint: the partial unique index `assignment_one_active_per_queue`
                # refuses a second active lease of this reviewer in this queue, so when a
                # parallel claim of theirs commits first, this one is undone (with its
                # slot count) and their lease is read and returned instead.
                with transaction.atomic():
                    return _claim_new(backend, queue, user, now)
            except IntegrityError:
                continue
        raise PolicyViolation(
            "Your claims in this queue are changing too fast; try again.", code="busy"
        )


def _claim_new(backend, queue: ReviewQueue, user, now: datetime) -> Assignment | None:
    """Take the next item; when none is left, sweep the queue's lapsed leases and try once
    more."""
    lease = _lease(queue, now)
    assignment = backend.claim(queue, user, now, lease)
    if assignment is None and leases_sweep(now=now, queue=queue):
        assignment = backend.claim(queue, user, now, lease)
    return assignment


def leases_sweep(
    *, now: datetime | None = None, queue: ReviewQueue | None = None, limit: int = 1000
) -> int:
    """Expire leases that ran out, returning their slots to the items (beat task, and claims
    when a queue looks empty). Runs in the caller's transaction or its own."""
    now = now or timezone.now()
    with transaction.atomic():
        qs = Assignment.objects.filter(state=Assignment.State.ACTIVE, lease_expires_at__lte=now)
        if queue is not None:
            qs = qs.filter(queue_id=queue.pk)
        rows = list(
            qs.order_by("id")
            .select_for_update(skip_locked=True)
            .values_list("id", "item_id")[:limit]
        )
        if not rows:
            return 0
        Assignment.objects.filter(pk__in=[r[0] for r in rows]).update(
            state=Assignment.State.EXPIRED, finished_at=now
        )
        for item_id, count in sorted(Counter(r[1] for r in rows).items()):
            QueueItem.objects.filter(pk=item_id).update(active_claims=F("active_claims") - count)
        return len(rows)
