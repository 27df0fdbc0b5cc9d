"""Sampling: route newly ingested generations into queues by their rules (an ingest
receiver), and backfills that apply a queue's rules to generations already stored."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput, PolicyViolation
from llmops.tenancy.actor import Actor
from llmops.traces.models import Generation

from .. import sampling as rules_mod
from ..models import BackfillJob, QueueItem, ReviewQueue, SamplingRule
from .queues import _managed

BACKFILL_CHUNK = 2000
MAX_BACKFILL_DAYS = 90
# The generation fields sampling rules may filter on (reviews/sampling.py).
BACKFILL_FIELDS = (
    "id external_id prompt_name prompt_version model_id status latency_ms cost_usd tags metadata"
).split()


def _due(queue: ReviewQueue, now: datetime) -> datetime | None:
    return now + timedelta(hours=queue.sla_hours) if queue.sla_hours else None


def _item(queue: ReviewQueue, generation_id: int, rule: SamplingRule, now: datetime) -> QueueItem:
    return QueueItem(
        organization_id=queue.organization_id,
        queue=queue,
        generation_id=generation_id,
        priority=rule.priority,
        created_at=now,
        due_at=_due(queue, now),
        reviews_needed=queue.reviewers_per_item,
        sampled_by=rule,
    )


def _active_rules(org) -> list[SamplingRule]:
    """The active rules of the organization's active queues, their queue attached."""
    # Every ingest batch reads these, so the SQL is written out (compiling the ORM query cost
    # more than running it), and queues are read only when there are rules.
    rules = list(
        SamplingRule.objects.raw(
            f"SELECT r.* FROM {SamplingRule._meta.db_table} r "
            f"JOIN {ReviewQueue._meta.db_table} q ON q.id = r.queue_id "
            "WHERE r.organization_id = %s AND q.organization_id = %s AND r.active AND q.active "
            "ORDER BY r.queue_id, r.id",
            [org.pk, org.pk],
        )
    )
    if not rules:
        return []
    queues = {
        q.pk: q for q in ReviewQueue.objects.for_org(org).filter(pk__in={r.queue_id for r in rules})
    }
    rules = [rule for rule in rules if rule.queue_id in queues]  # a queue deleted meanwhile
    for rule in rules:
        rule.queue = queues[rule.queue_id]
    return rules


def sample_generations(*, org, generations) -> int:
    """Ingest receiver (traces): route newly stored generations into the organization's active
    queues by their rules, inside the ingest transaction. Deterministic, so a retried batch
    samples the same way; an item already in a queue is not added twice."""
    rules = _active_rules(org)
    if not rules or not generations:
        return 0
    by_queue: dict[int, list[SamplingRule]] = {}
    for rule in rules:
        by_queue.setdefault(rule.queue_id, []).append(rule)
    now = timezone.now()
    items = []
    for queue_rules in by_queue.values():
        queue = queue_rules[0].queue
        for gen in generations:
            rule = rules_mod.decide(queue_rules, gen, queue.pk)
            if rule is not None:
                items.append(_item(queue, gen.pk, rule, now))
    if not items:
        return 0
    QueueItem.objects.bulk_create(items, ignore_conflicts=True, batch_size=1000)
    return len({item.generation_id for item in items})


@transaction.atomic
def backfill_start(
    *, actor: Actor, queue: ReviewQueue, since: datetime, until: datetime
) -> BackfillJob:
    """Queue a backfill of the queue's rules over generations stored in [since, until)."""
    _managed(actor, queue)
    if since is None or until is None or since >= until:
        raise InvalidInput("Choose a window whose start is before its end.", field="since")
    if until - since > timedelta(days=MAX_BACKFILL_DAYS):
        raise InvalidInput(f"A backfill window is at most {MAX_BACKFILL_DAYS} days.", field="since")
    if not queue.rules.filter(active=True).exists():
        raise InvalidInput("Add a sampling rule first: a backfill applies the queue's rules.")
    running = (BackfillJob.State.PENDING, BackfillJob.State.RUNNING)
    if queue.backfills.filter(state__in=running).exists():
        raise PolicyViolation("A backfill of this queue is already running; wait for it to finish.")
    job = BackfillJob.objects.create(
        organization=actor.org,
        queue=queue,
        since=since,
        until=until,
        started_by=actor.user if actor.is_human else None,
    )
    audit_record(
        actor=actor,
        action="queue.backfill_started",
        target=queue,
        details={"job": job.pk, "since": since.isoformat(), "until": until.isoformat()},
    )
    from ..tasks import backfill_run_task

    transaction.on_commit(lambda: backfill_run_task.delay(job.pk))
    return job


def _backfill_chunk(queue: ReviewQueue, rules, chunk: list[dict]) -> int:
    """Add the chunk's sampled generations not yet in the queue; how many were added."""
    now = timezone.now()
    items = []
    for gen in chunk:
        rule = rules_mod.decide(rules, gen, queue.pk)
        if rule is not None:
            items.append(_item(queue, gen["id"], rule, now))
    if not items:
        return 0
    existing = set(
        QueueItem.objects.filter(
            queue=queue, generation_id__in=[i.generation_id for i in items]
        ).values_list("generation_id", flat=True)
    )
    new = [i for i in items if i.generation_id not in existing]
    QueueItem.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def backfill_run(*, job_id: int) -> BackfillJob:
    """Apply the rules chunk by chunk (short transactions), recording progress on the job."""
    job = BackfillJob.objects.select_related("queue").get(pk=job_id)
    if job.state not in (BackfillJob.State.PENDING, BackfillJob.State.RUNNING):
        return job
    queue = job.queue
    rules = list(queue.rules.filter(active=True))
    base = Generation.objects.for_org(job.organization_id).filter(
        created_at__gte=job.since, created_at__lt=job.until
    )
    progress = BackfillJob.objects.filter(pk=job.pk)
    try:
        progress.update(state=BackfillJob.State.RUNNING, total=base.count())
        last_id, processed, sampled = 0, 0, 0
        while True:
            chunk = list(
                base.filter(id__gt=last_id).order_by("id").values(*BACKFILL_FIELDS)[:BACKFILL_CHUNK]
            )
            if not chunk:
                break
            last_id = chunk[-1]["id"]
            with transaction.atomic():
                sampled += _backfill_chunk(queue, rules, chunk)
                processed += len(chunk)
                progress.update(processed=processed, sampled=sampled)
        progress.update(
            state=BackfillJob.State.DONE, processed=processed, finished_at=timezone.now()
        )
    except Exception as exc:  # noqa: BLE001 - recorded on the job, shown in the page
        progress.update(
            state=BackfillJob.State.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    job.refresh_from_db()
    return job
