"""Writes for reviews: queues and their rubric, rules and reviewers; sampling at ingest and
backfill; claiming, reviewing, skipping and releasing items; adjudication; lease sweeps and
SLA notices. One transaction per use case; governance changes are audited."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput, NotFound, NotPermitted, PolicyViolation
from llmops.evals.models import EvalDataset
from llmops.tenancy import guardian
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Membership, Role, Team
from llmops.tenancy.policy import can
from llmops.traces.models import Generation

from . import agreement, sampling
from . import rubric as rubric_mod
from .models import Assignment, BackfillJob, QueueItem, Review, ReviewQueue, SamplingRule

User = get_user_model()
GRANT = "review_queue"
BACKFILL_CHUNK = 2000
MAX_BACKFILL_DAYS = 90


def _require(actor: Actor, action: str, obj=None) -> None:
    if not can(actor, action, obj):
        raise NotPermitted(f"You may not do '{action}' here.")


def _visible(actor: Actor, queue: ReviewQueue) -> None:
    """Another organization's queue, or one a reviewer holds no grant on, does not exist."""
    if (
        queue is None
        or queue.organization_id != actor.org.pk
        or not can(actor, "queue.view", queue)
    ):
        raise NotFound("No such queue.")


def _reviewer(actor: Actor):
    if not actor.is_human:
        raise NotPermitted("Reviews are human work: use a person's session or personal key.")
    return actor.user


# --- queues -------------------------------------------------------------------------------

QUEUE_FIELDS = (
    "name",
    "instructions",
    "reviewers_per_item",
    "lease_minutes",
    "sla_hours",
    "eval_dataset",
    "active",
)


def _clean_queue_fields(actor: Actor, fields: dict, *, queue: ReviewQueue | None) -> dict:
    clean: dict[str, Any] = {}
    if "name" in fields:
        name = (fields["name"] or "").strip()
        if not name or len(name) > 200:
            raise InvalidInput("A queue needs a name of at most 200 characters.", field="name")
        clash = ReviewQueue.objects.for_org(actor.org).filter(name=name)
        if queue is not None:
            clash = clash.exclude(pk=queue.pk)
        if clash.exists():
            raise InvalidInput(f"A queue named '{name}' already exists.", field="name")
        clean["name"] = name
    if "instructions" in fields:
        clean["instructions"] = str(fields["instructions"] or "")[:20_000]
    for key, lo, hi in (("reviewers_per_item", 1, 10), ("lease_minutes", 1, 240)):
        if key in fields and fields[key] is not None:
            try:
                value = int(fields[key])
            except (TypeError, ValueError):
                value = None
            if value is None or not lo <= value <= hi:
                raise InvalidInput(f"{key} is a whole number from {lo} to {hi}.", field=key)
            clean[key] = value
    if "sla_hours" in fields:
        value = fields["sla_hours"]
        if value in (None, ""):
            clean["sla_hours"] = None
        else:
            try:
                value = int(value)
            except (TypeError, ValueError):
                value = -1
            if not 1 <= value <= 24 * 90:
                raise InvalidInput(
                    "sla_hours is a whole number of hours (1..2160).", field="sla_hours"
                )
            clean["sla_hours"] = value
    if "eval_dataset" in fields:
        dataset = fields["eval_dataset"]
        if dataset in (None, ""):
            clean["eval_dataset"] = None
        else:
            dataset_id = getattr(dataset, "pk", dataset)
            found = EvalDataset.objects.for_org(actor.org).filter(pk=dataset_id).first()
            if found is None:
                raise InvalidInput("No such eval dataset.", field="eval_dataset")
            clean["eval_dataset"] = found
    if "active" in fields:
        clean["active"] = bool(fields["active"])
    return clean


@transaction.atomic
def queue_create(
    *,
    actor: Actor,
    name: str,
    rubric: dict | None = None,
    instructions: str = "",
    reviewers_per_item: int = 1,
    lease_minutes: int = 10,
    sla_hours: int | None = None,
    eval_dataset=None,
    active: bool = True,
) -> ReviewQueue:
    _require(actor, "queue.manage")
    clean_rubric = rubric_mod.validate_rubric(
        rubric if rubric is not None else rubric_mod.DEFAULT_RUBRIC
    )
    fields = _clean_queue_fields(
        actor,
        {
            "name": name,
            "instructions": instructions,
            "reviewers_per_item": reviewers_per_item,
            "lease_minutes": lease_minutes,
            "sla_hours": sla_hours,
            "eval_dataset": eval_dataset,
            "active": active,
        },
        queue=None,
    )
    queue = ReviewQueue.objects.create(
        organization=actor.org,
        rubric=clean_rubric,
        created_by=actor.user if actor.is_human else None,
        **fields,
    )
    if actor.is_human:
        # The creator is the queue's first owner (docs/architecture.md, "Tenancy and access").
        guardian.grant(GRANT, actor.user, queue)
    audit_record(
        actor=actor,
        action="queue.created",
        target=queue,
        details={
            "reviewers_per_item": queue.reviewers_per_item,
            "questions": len(clean_rubric["questions"]),
        },
    )
    return queue


@transaction.atomic
def queue_update(*, actor: Actor, queue: ReviewQueue, **fields) -> ReviewQueue:
    _visible(actor, queue)
    _require(actor, "queue.manage", queue)
    unknown = set(fields) - set(QUEUE_FIELDS) - {"rubric"}
    if unknown:
        raise InvalidInput(f"Unknown field '{sorted(unknown)[0]}'.")
    clean = _clean_queue_fields(actor, fields, queue=queue)
    if "rubric" in fields:
        clean["rubric"] = rubric_mod.validate_rubric(fields["rubric"])
    changed = {}
    for key, value in clean.items():
        old = getattr(queue, key)
        if old != value:
            changed[key] = str(getattr(value, "pk", value))[:200]
            setattr(queue, key, value)
    if not changed:
        return queue
    queue.save(update_fields=list(clean))
    audit_record(
        actor=actor, action="queue.updated", target=queue, details={"changed": sorted(changed)}
    )
    return queue


# --- rules and reviewers --------------------------------------------------------------------


@transaction.atomic
def rule_create(
    *, actor: Actor, queue: ReviewQueue, rate, filters=None, name: str = "", priority: int = 0
) -> SamplingRule:
    _visible(actor, queue)
    _require(actor, "queue.manage", queue)
    rate, filters = sampling.validate_rule(rate=rate, filters=filters)
    try:
        priority = int(priority or 0)
    except (TypeError, ValueError):
        raise InvalidInput("Priority is a whole number.", field="priority")
    rule = SamplingRule.objects.create(
        organization=actor.org,
        queue=queue,
        name=(name or "").strip()[:200],
        rate=rate,
        filters=filters,
        priority=max(-100, min(100, priority)),
    )
    audit_record(
        actor=actor,
        action="queue.rule_added",
        target=queue,
        details={"rule": rule.pk, "rate": rate, "filters": filters, "priority": rule.priority},
    )
    return rule


@transaction.atomic
def rule_delete(*, actor: Actor, rule: SamplingRule) -> None:
    queue = rule.queue
    _visible(actor, queue)
    _require(actor, "queue.manage", queue)
    details = {"rule": rule.pk, "rate": rule.rate, "filters": rule.filters}
    rule.delete()
    audit_record(actor=actor, action="queue.rule_removed", target=queue, details=details)


def _grantee(actor: Actor, *, username: str | None = None, team_id=None):
    if team_id:
        team = Team.objects.for_org(actor.org).filter(pk=team_id).select_related("group").first()
        if team is None:
            raise InvalidInput("No such team.", field="team")
        return team.group, f"team {team.name}"
    user = User.objects.filter(
        username=(username or "").strip(), memberships__organization=actor.org
    ).first()
    if user is None:
        raise InvalidInput(f"'{username}' is not a member of this organization.", field="username")
    return user, user.get_username()


@transaction.atomic
def reviewer_grant(
    *, actor: Actor, queue: ReviewQueue, username: str | None = None, team_id=None
) -> str:
    _visible(actor, queue)
    _require(actor, "queue.manage", queue)
    target, label = _grantee(actor, username=username, team_id=team_id)
    guardian.grant(GRANT, target, queue)
    audit_record(actor=actor, action="queue.reviewer_granted", target=queue, details={"to": label})
    return label


@transaction.atomic
def reviewer_revoke(
    *, actor: Actor, queue: ReviewQueue, username: str | None = None, team_id=None
) -> str:
    _visible(actor, queue)
    _require(actor, "queue.manage", queue)
    target, label = _grantee(actor, username=username, team_id=team_id)
    guardian.revoke(GRANT, target, queue)
    audit_record(actor=actor, action="queue.reviewer_revoked", target=queue, details={"to": label})
    return label


# --- sampling -------------------------------------------------------------------------------


def _due(queue: ReviewQueue, now: datetime) -> datetime | None:
    return now + timedelta(hours=queue.sla_hours) if queue.sla_hours else None


def sample_generations(*, org, generations) -> int:
    """Ingest receiver (traces): route newly stored generations into the organization's active
    queues by their rules, inside the ingest transaction. Deterministic, so a retried batch
    samples the same way; an item already in a queue is not added twice."""
    # Every ingest batch runs this, so the SQL is written out (compiling the ORM query cost more
    # than running it), and queues are read only when there are rules.
    rules = list(
        SamplingRule.objects.raw(
            f"SELECT r.* FROM {SamplingRule._meta.db_table} r "
            f"JOIN {ReviewQueue._meta.db_table} q ON q.id = r.queue_id "
            "WHERE r.organization_id = %s AND q.organization_id = %s AND r.active AND q.active "
            "ORDER BY r.queue_id, r.id",
            [org.pk, org.pk],
        )
    )
    if not rules or not generations:
        return 0
    queues = {
        q.pk: q for q in ReviewQueue.objects.for_org(org).filter(pk__in={r.queue_id for r in rules})
    }
    rules = [rule for rule in rules if rule.queue_id in queues]  # a queue deleted meanwhile
    for rule in rules:
        rule.queue = queues[rule.queue_id]
    by_queue: dict[int, list[SamplingRule]] = {}
    for rule in rules:
        by_queue.setdefault(rule.queue_id, []).append(rule)
    now = timezone.now()
    items = []
    for queue_rules in by_queue.values():
        queue = queue_rules[0].queue
        for gen in generations:
            rule = sampling.decide(queue_rules, gen, queue.pk)
            if rule is not None:
                items.append(_item(queue, gen.pk, rule, now))
    if not items:
        return 0
    QueueItem.objects.bulk_create(items, ignore_conflicts=True, batch_size=1000)
    return len({item.generation_id for item in items})


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


@transaction.atomic
def backfill_start(
    *, actor: Actor, queue: ReviewQueue, since: datetime, until: datetime
) -> BackfillJob:
    """Queue a backfill of the queue's rules over generations stored in [since, until)."""
    _visible(actor, queue)
    _require(actor, "queue.manage", queue)
    if since is None or until is None or since >= until:
        raise InvalidInput("Choose a window whose start is before its end.", field="since")
    if until - since > timedelta(days=MAX_BACKFILL_DAYS):
        raise InvalidInput(f"A backfill window is at most {MAX_BACKFILL_DAYS} days.", field="since")
    if not queue.rules.filter(active=True).exists():
        raise InvalidInput("Add a sampling rule first: a backfill applies the queue's rules.")
    if queue.backfills.filter(state__in=["pending", "running"]).exists():
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
    from .tasks import backfill_run_task

    transaction.on_commit(lambda: backfill_run_task.delay(job.pk))
    return job


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
    try:
        total = base.count()
        BackfillJob.objects.filter(pk=job.pk).update(state="running", total=total)
        fields = (
            "id external_id prompt_name prompt_version model_id status latency_ms cost_usd "
            "tags metadata"
        ).split()
        last_id, processed, sampled = 0, 0, 0
        while True:
            chunk = list(
                base.filter(id__gt=last_id).order_by("id").values(*fields)[:BACKFILL_CHUNK]
            )
            if not chunk:
                break
            last_id = chunk[-1]["id"]
            now = timezone.now()
            items = []
            for gen in chunk:
                rule = sampling.decide(rules, gen, queue.pk)
                if rule is not None:
                    items.append(_item(queue, gen["id"], rule, now))
            with transaction.atomic():
                if items:
                    existing = set(
                        QueueItem.objects.filter(
                            queue=queue, generation_id__in=[i.generation_id for i in items]
                        ).values_list("generation_id", flat=True)
                    )
                    new = [i for i in items if i.generation_id not in existing]
                    QueueItem.objects.bulk_create(new, ignore_conflicts=True)
                    sampled += len(new)
                processed += len(chunk)
                BackfillJob.objects.filter(pk=job.pk).update(processed=processed, sampled=sampled)
        BackfillJob.objects.filter(pk=job.pk).update(
            state="done", processed=processed, finished_at=timezone.now()
        )
    except Exception as exc:  # noqa: BLE001 - recorded on the job, shown in the page
        BackfillJob.objects.filter(pk=job.pk).update(
            state="failed", error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    job.refresh_from_db()
    return job


# --- claiming -------------------------------------------------------------------------------


def _lease(queue: ReviewQueue, now: datetime) -> datetime:
    return now + timedelta(minutes=queue.lease_minutes)


def _claim_candidate(queue: ReviewQueue, user, now: datetime) -> QueueItem | None:
    """The next item this reviewer may take, locked: on PostgreSQL FOR UPDATE SKIP LOCKED over
    the partial index of open items (priority, then age). SQLite serialises writers anyway
    (IMMEDIATE transactions), where the lock clause is simply not emitted."""
    mine = Assignment.objects.filter(item_id=OuterRef("pk"), reviewer_id=user.pk)
    return (
        QueueItem.objects.filter(
            queue_id=queue.pk,
            state=QueueItem.State.OPEN,
            reviews_done__lt=F("reviews_needed") - F("active_claims"),
        )
        .exclude(Exists(mine))
        .order_by("-priority", "created_at", "id")
        .select_for_update(skip_locked=True, of=("self",))
        .only("id", "queue_id", "generation_id", "organization_id")
        .first()
    )


# The hot path on PostgreSQL, one statement: pick the next item with SKIP LOCKED (the same
# query `_claim_candidate` builds), count the claim on it and record the assignment.
CLAIM_PG = """
WITH picked AS (
    SELECT i.id FROM reviews_queueitem i
    WHERE i.queue_id = %(queue)s AND i.state = 'open'
      AND i.reviews_done < i.reviews_needed - i.active_claims
      AND NOT EXISTS (
          SELECT 1 FROM reviews_assignment a WHERE a.item_id = i.id AND a.reviewer_id = %(user)s
      )
    ORDER BY i.priority DESC, i.created_at, i.id
    LIMIT 1
    FOR UPDATE OF i SKIP LOCKED
), bumped AS (
    UPDATE reviews_queueitem q SET active_claims = q.active_claims + 1
    FROM picked WHERE q.id = picked.id
    RETURNING q.id, q.generation_id
)
INSERT INTO reviews_assignment
    (organization_id, queue_id, item_id, reviewer_id, state, claimed_at, lease_expires_at,
     skip_reason)
SELECT %(org)s, %(queue)s, bumped.id, %(user)s, 'active', %(now)s, %(lease)s, ''
FROM bumped
RETURNING id, item_id, (SELECT generation_id FROM bumped)
"""


def _claim_pg(queue: ReviewQueue, user, now: datetime) -> Assignment | None:
    lease = _lease(queue, now)
    with connection.cursor() as cursor:
        cursor.execute(
            CLAIM_PG,
            {
                "queue": queue.pk,
                "user": user.pk,
                "org": queue.organization_id,
                "now": now,
                "lease": lease,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    assignment_id, item_id, generation_id = row
    # Only what the statement returned; other fields load on access (deferred).
    item = QueueItem.from_db(
        "default",
        ["id", "organization_id", "queue_id", "generation_id"],
        [item_id, queue.organization_id, queue.pk, generation_id],
    )
    item.queue = queue
    assignment = Assignment(
        pk=assignment_id,
        organization_id=queue.organization_id,
        queue=queue,
        item=item,
        reviewer_id=user.pk,
        state=Assignment.State.ACTIVE,
        claimed_at=now,
        lease_expires_at=lease,
    )
    assignment._state.adding = False
    return assignment


def item_claim(*, actor: Actor, queue: ReviewQueue) -> Assignment | None:
    """The reviewer's next item in the queue, or None when nothing is left for them.
    A lease they still hold in the queue comes back first (renewed when it lapsed and was
    not swept: its slot was never given away)."""
    _visible(actor, queue)
    _require(actor, "queue.review", queue)
    user = _reviewer(actor)
    if not queue.active:
        raise PolicyViolation("This queue is paused; an owner can reactivate it.")
    now = timezone.now()
    with transaction.atomic():
        for _attempt in range(3):
            held = _held(queue, user)
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
                    return _claim_new(queue, user, now)
            except IntegrityError:
                continue
        raise PolicyViolation(
            "Your claims in this queue are changing too fast; try again.", code="busy"
        )


def _claim_new(queue: ReviewQueue, user, now: datetime) -> Assignment | None:
    if connection.vendor == "postgresql":
        assignment = _claim_pg(queue, user, now)
        if assignment is None and leases_sweep(now=now, queue=queue):
            assignment = _claim_pg(queue, user, now)
        return assignment
    item = _claim_candidate(queue, user, now)
    if item is None and leases_sweep(now=now, queue=queue):
        item = _claim_candidate(queue, user, now)
    if item is None:
        return None
    assignment = Assignment.objects.create(
        organization_id=queue.organization_id,
        queue_id=queue.pk,
        item_id=item.pk,
        reviewer_id=user.pk,
        claimed_at=now,
        lease_expires_at=_lease(queue, now),
    )
    QueueItem.objects.filter(pk=item.pk).update(active_claims=F("active_claims") + 1)
    item.queue = queue  # callers go on to review it: no second fetch of the queue
    assignment.item = item
    return assignment


def leases_sweep(
    *, now: datetime | None = None, queue: ReviewQueue | None = None, limit: int = 1000
) -> int:
    """Expire leases that ran out, returning their slots to the items (beat task, and claims
    when a queue looks empty). Runs in the caller's transaction or its own."""
    now = now or timezone.now()
    with transaction.atomic():
        qs = Assignment.objects.filter(state="active", lease_expires_at__lte=now)
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
            state="expired", finished_at=now
        )
        for item_id, count in sorted(Counter(r[1] for r in rows).items()):
            QueueItem.objects.filter(pk=item_id).update(active_claims=F("active_claims") - count)
        return len(rows)


# The claim and review paths run for every item, so their lookups are plain SQL: the ORM
# compiling these small queries cost more CPU than the database answering them.
ASSIGNMENT_FIELDS = [
    "id",
    "organization_id",
    "queue_id",
    "item_id",
    "reviewer_id",
    "state",
    "claimed_at",
    "lease_expires_at",
]
_ASSIGNMENT_COLUMNS = ", ".join(ASSIGNMENT_FIELDS)


def _assignment_row(sql: str, params: list) -> Assignment | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index in (6, 7):  # SQLite hands back naive UTC text for datetimes in raw queries
        value = values[index]
        if isinstance(value, str):
            value = parse_datetime(value)
        if value is not None and timezone.is_naive(value):
            value = timezone.make_aware(value, UTC)
        values[index] = value
    return Assignment.from_db("default", ASSIGNMENT_FIELDS, values)


def _held(queue: ReviewQueue, user) -> Assignment | None:
    """The reviewer's live (or lapsed, unswept) lease in the queue, oldest first."""
    return _assignment_row(
        f"SELECT {_ASSIGNMENT_COLUMNS} FROM reviews_assignment "
        "WHERE queue_id = %s AND reviewer_id = %s AND state = 'active' "
        "ORDER BY claimed_at, id LIMIT 1",
        [queue.pk, user.pk],
    )


def _own_assignment(actor: Actor, item: QueueItem) -> Assignment:
    lock = " FOR UPDATE" if connection.vendor == "postgresql" else ""
    assignment = _assignment_row(
        f"SELECT {_ASSIGNMENT_COLUMNS} FROM reviews_assignment "
        f"WHERE item_id = %s AND reviewer_id = %s{lock}",
        [item.pk, actor.user.pk],
    )
    if assignment is None:
        raise PolicyViolation(
            "You hold no claim on this item: claim the next item of the queue first.",
            code="no_claim",
        )
    return assignment


def _item_for(actor: Actor, item: QueueItem) -> tuple[QueueItem, ReviewQueue]:
    if item is None or item.organization_id != actor.org.pk:
        raise NotFound("No such item.")
    queue = item.queue
    _visible(actor, queue)
    _require(actor, "queue.review", queue)
    _reviewer(actor)
    return item, queue


def review_submit(
    *,
    actor: Actor,
    item: QueueItem,
    answers: Any,
    corrected_output: str = "",
    comment: str = "",
) -> Review:
    item, queue = _item_for(actor, item)
    clean = rubric_mod.validate_answers(queue.rubric, answers)
    corrected_output = "" if corrected_output is None else str(corrected_output)
    comment = "" if comment is None else str(comment)
    if len(corrected_output) > 200_000 or len(comment) > 20_000:
        raise InvalidInput("The corrected output or the comment is too long.", field="comment")
    now = timezone.now()
    with transaction.atomic():
        assignment = _own_assignment(actor, item)
        if assignment.state == "submitted":
            raise PolicyViolation("You have already reviewed this item.", code="already_reviewed")
        if assignment.state in ("skipped", "released"):
            raise PolicyViolation(
                "You gave this item back; it goes to another reviewer.", code="claim_released"
            )
        if assignment.state == "expired":
            locked = QueueItem.objects.select_for_update().get(pk=item.pk)
            if (
                locked.state == "done"
                or locked.reviews_done + locked.active_claims >= locked.reviews_needed
            ):
                raise PolicyViolation(
                    "Your claim expired and the item was taken by someone else.",
                    code="claim_expired",
                )
            # The slot is still free: take it back.
            QueueItem.objects.filter(pk=item.pk).update(active_claims=F("active_claims") + 1)
        review = Review.objects.create(
            organization_id=item.organization_id,
            queue_id=queue.pk,
            item_id=item.pk,
            assignment_id=assignment.pk,
            reviewer_id=actor.user.pk,
            answers=clean,
            corrected_output=corrected_output,
            comment=comment,
            time_spent_ms=max(0, int((now - assignment.claimed_at).total_seconds() * 1000)),
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE reviews_assignment SET state = 'submitted', finished_at = %s WHERE id = %s",
                [now, assignment.pk],
            )
        assignment.state, assignment.finished_at = "submitted", now
        state, needed, done = _count_review(item.pk, now)
        if state == "done" and needed > 1:
            answer_sets = list(
                Review.objects.filter(item_id=item.pk).values_list("answers", flat=True)
            )
            if agreement.disagreement(queue.rubric, answer_sets):
                QueueItem.objects.filter(pk=item.pk).update(needs_adjudication=True)
        if done == 1:  # the first review makes the generation evidence
            _pin(actor, item, queue)
    return review


def _count_review(item_id: int, now: datetime) -> tuple[str, int, int]:
    """Count one submitted review on the item and close it when it has all it needs, in one
    statement (the claim path is hot): returns the item's state, reviews needed and done."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE reviews_queueitem
            SET reviews_done = reviews_done + 1,
                active_claims = active_claims - 1,
                state = CASE WHEN reviews_done + 1 >= reviews_needed THEN 'done' ELSE state END,
                completed_at = CASE WHEN reviews_done + 1 >= reviews_needed THEN %s
                               ELSE completed_at END
            WHERE id = %s
            RETURNING state, reviews_needed, reviews_done
            """,
            [now, item_id],
        )
        return cursor.fetchone()


def _pin(actor: Actor, item: QueueItem, queue: ReviewQueue) -> None:
    from llmops.traces.services import generation_pin

    generation_pin(
        org=actor.org,
        generation_ids=[item.generation_id],
        reason=f"reviewed: {queue.name}",
    )


def _give_back(actor: Actor, item: QueueItem, *, state: str, reason: str = "") -> Assignment:
    item, queue = _item_for(actor, item)
    now = timezone.now()
    with transaction.atomic():
        assignment = _own_assignment(actor, item)
        if assignment.state != "active":
            raise PolicyViolation(
                "Your claim on this item is no longer active.", code="claim_not_active"
            )
        assignment.state = state
        assignment.finished_at = now
        assignment.skip_reason = reason
        assignment.save(update_fields=["state", "finished_at", "skip_reason"])
        changes = {"active_claims": F("active_claims") - 1}
        if state == "skipped":
            changes["skips"] = F("skips") + 1
        QueueItem.objects.filter(pk=item.pk).update(**changes)
    return assignment


def item_release(*, actor: Actor, item: QueueItem) -> Assignment:
    """Give the item back unreviewed; it goes to another reviewer."""
    return _give_back(actor, item, state="released")


def item_skip(*, actor: Actor, item: QueueItem, reason: str) -> Assignment:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why you skip this item.", field="reason")
    return _give_back(actor, item, state="skipped", reason=reason[:500])


def item_add_to_evals(*, actor: Actor, item: QueueItem, link: str = "", dataset=None):
    """Send the item to the queue's eval dataset: its input, and the reviewer's corrected
    output (else the original) as the expected answer."""
    from llmops.evals.services import case_create

    item, queue = _item_for(actor, item)
    dataset = dataset or queue.eval_dataset
    if dataset is None:
        raise PolicyViolation(
            "This queue has no eval dataset; an owner can choose one in its settings."
        )
    if not Assignment.objects.filter(
        item_id=item.pk, reviewer_id=actor.user.pk
    ).exists() and not can(actor, "queue.manage", queue):
        raise PolicyViolation("Claim or review the item before sending it to evals.")
    generation = Generation.objects.for_org(actor.org).get(pk=item.generation_id)
    review = (
        Review.objects.filter(item_id=item.pk, reviewer_id=actor.user.pk)
        .exclude(corrected_output="")
        .first()
    )
    expected = review.corrected_output if review else generation.output
    with transaction.atomic():
        case = case_create(
            actor=actor,
            dataset=dataset,
            input=generation.input,
            expected=expected,
            tags=["review"],
            source_kind="review",
            source_label=f"{queue.name} · item {item.pk}"[:200],
            source_link=link[:500],
        )
        from llmops.traces.services import generation_pin

        generation_pin(org=actor.org, generation_ids=[generation.pk], reason="eval case")
    return case


# --- adjudication ---------------------------------------------------------------------------


@transaction.atomic
def item_adjudicate(*, actor: Actor, item: QueueItem, answers: Any, comment: str = "") -> QueueItem:
    if item is None or item.organization_id != actor.org.pk:
        raise NotFound("No such item.")
    queue = item.queue
    _visible(actor, queue)
    _require(actor, "queue.adjudicate", queue)
    clean = rubric_mod.validate_answers(queue.rubric, answers)
    locked = QueueItem.objects.select_for_update().get(pk=item.pk)
    if locked.state != "done":
        raise PolicyViolation("Only an item whose reviews are all in can be adjudicated.")
    if (
        actor.user is not None
        and Assignment.objects.filter(item_id=item.pk, reviewer_id=actor.user.pk).exists()
    ):
        raise PolicyViolation(
            "You reviewed this item yourself; another maintainer records the final answer."
        )
    locked.final_answers = clean
    locked.adjudicated_by = actor.user
    locked.adjudicated_at = timezone.now()
    locked.save(update_fields=["final_answers", "adjudicated_by", "adjudicated_at"])
    audit_record(
        actor=actor,
        action="queue.item_adjudicated",
        target=queue,
        details={"item": item.pk, "answers": clean, "comment": (comment or "")[:500]},
    )
    return locked


# --- SLA ------------------------------------------------------------------------------------


def _queue_maintainers(queue: ReviewQueue) -> list:
    holders = {u.pk for u in guardian.users_with_grant(queue, GRANT)}
    if queue.created_by_id:
        holders.add(queue.created_by_id)
    staff = set(
        Membership.objects.for_org(queue.organization_id)
        .filter(user_id__in=holders, role__in=[Role.ADMIN, Role.MAINTAINER])
        .values_list("user_id", flat=True)
    )
    if staff:
        return sorted(staff)
    return list(
        Membership.objects.for_org(queue.organization_id)
        .filter(role=Role.ADMIN)
        .values_list("user_id", flat=True)
    )


def overdue_notify(*, now: datetime | None = None, link_for=None) -> int:
    """Tell each queue's maintainers about items that passed their due time: once per item."""
    from llmops.notify.services import notify

    now = now or timezone.now()
    sent = 0
    queue_ids = (
        QueueItem.objects.filter(state="open", due_at__lt=now, overdue_notified_at__isnull=True)
        .values_list("queue_id", flat=True)
        .distinct()
    )
    for queue in ReviewQueue.objects.filter(pk__in=list(queue_ids)).select_related("organization"):
        with transaction.atomic():
            ids = list(
                QueueItem.objects.filter(
                    queue=queue, state="open", due_at__lt=now, overdue_notified_at__isnull=True
                )
                .select_for_update(skip_locked=True)
                .values_list("id", flat=True)[:1000]
            )
            if not ids:
                continue
            QueueItem.objects.filter(pk__in=ids).update(overdue_notified_at=now)
            notify(
                org=queue.organization,
                recipients=_queue_maintainers(queue),
                kind="review.overdue",
                subject=f"{len(ids)} item(s) overdue in review queue {queue.name}",
                body=(
                    f"{len(ids)} item(s) in '{queue.name}' passed their due time "
                    f"({queue.sla_hours} h) without all their reviews."
                ),
                link=link_for(queue) if link_for else "",
                payload={"queue": queue.pk, "items": ids[:100]},
            )
            sent += len(ids)
    return sent
