"""Tenant-scoped reads for reviews: the queues an actor may see, their progress, an item
with what its viewer may see of other reviews (blind until one's own is in), stats,
adjudication, export rows and a sampling preview."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from llmops.common.errors import NotFound
from llmops.tenancy import guardian
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Team
from llmops.tenancy.policy import can, role_rule
from llmops.traces.models import Generation

from . import agreement, sampling
from .models import Assignment, BackfillJob, QueueItem, Review, ReviewQueue, SamplingRule

GRANT = "review_queue"
AGREEMENT_REVIEW_LIMIT = 20_000


def queue_list(*, actor: Actor) -> QuerySet[ReviewQueue]:
    """Every queue of the organization, or for a role that needs a grant, the granted ones."""
    qs = ReviewQueue.objects.for_org(actor.org)
    if actor.system:
        return qs
    rule = role_rule(actor.role, "queue.view")
    if rule is True:
        return qs
    if rule is False or actor.user is None:
        return qs.none()
    return guardian.objects_with_grant(actor.user, rule, qs)


def queue_get(*, actor: Actor, queue_id) -> ReviewQueue:
    queue = ReviewQueue.objects.for_org(actor.org).filter(pk=queue_id).first()
    if queue is None or not can(actor, "queue.view", queue):
        raise NotFound("No such queue.")
    return queue


def item_get(*, actor: Actor, item_id, queue: ReviewQueue | None = None) -> QueueItem:
    qs = QueueItem.objects.for_org(actor.org).select_related("queue", "generation")
    if queue is not None:
        qs = qs.filter(queue=queue)
    item = qs.filter(pk=item_id).first()
    if item is None or not can(actor, "queue.view", item.queue):
        raise NotFound("No such item.")
    return item


def queue_progress(*, actor: Actor, queues, now: datetime | None = None) -> dict[int, dict]:
    """Per queue: items, open (backlog), done, overdue, reviews done/needed, awaiting
    adjudication, my active leases, and how many I could still claim (capped)."""
    now = now or timezone.now()
    ids = [q.pk for q in queues]
    rows = (
        QueueItem.objects.filter(queue_id__in=ids)
        .values("queue_id")
        .annotate(
            items=Count("id"),
            open=Count("id", filter=Q(state="open")),
            done=Count("id", filter=Q(state="done")),
            overdue=Count("id", filter=Q(state="open", due_at__lt=now)),
            adjudicate=Count("id", filter=Q(needs_adjudication=True, final_answers__isnull=True)),
            reviews_done=Sum("reviews_done"),
            reviews_needed=Sum("reviews_needed"),
        )
    )
    out = {
        pk: {
            "items": 0,
            "open": 0,
            "done": 0,
            "overdue": 0,
            "adjudicate": 0,
            "reviews_done": 0,
            "reviews_needed": 0,
            "percent": 0,
            "mine_active": 0,
            "mine_available": 0,
        }
        for pk in ids
    }
    for row in rows:
        entry = out[row.pop("queue_id")]
        entry.update({k: v or 0 for k, v in row.items()})
        needed = entry["reviews_needed"]
        entry["percent"] = int(100 * entry["reviews_done"] / needed) if needed else 0
    if actor.user is not None and ids:
        for queue_id, n in (
            Assignment.objects.filter(queue_id__in=ids, reviewer=actor.user, state="active")
            .values_list("queue_id")
            .annotate(n=Count("id"))
        ):
            out[queue_id]["mine_active"] = n
        mine = Assignment.objects.filter(item_id=OuterRef("pk"), reviewer_id=actor.user.pk)
        for queue_id, n in (
            QueueItem.objects.filter(
                queue_id__in=ids,
                state="open",
                reviews_done__lt=F("reviews_needed") - F("active_claims"),
            )
            .exclude(Exists(mine))
            .values_list("queue_id")
            .annotate(n=Count("id"))
        ):
            out[queue_id]["mine_available"] = n
    return out


def active_assignment(*, actor: Actor, item: QueueItem) -> Assignment | None:
    if actor.user is None:
        return None
    return Assignment.objects.filter(item=item, reviewer=actor.user).first()


def visible_reviews(*, actor: Actor, item: QueueItem) -> list[Review]:
    """Blind review: nobody sees other reviewers' answers before submitting their own. An
    adjudicator who did not review the item sees them once all its reviews are in."""
    if actor.user is None:
        return []
    reviews = list(item.reviews.select_related("reviewer").order_by("id"))
    if any(r.reviewer_id == actor.user.pk for r in reviews):
        return reviews
    if (
        item.state == "done"
        and can(actor, "queue.adjudicate", item.queue)
        and not Assignment.objects.filter(item=item, reviewer=actor.user).exists()
    ):
        return reviews
    return []


def queue_reviewers(*, queue: ReviewQueue) -> tuple[list, list]:
    users, groups = guardian.direct_holders(queue, GRANT)
    teams = list(Team.objects.for_org(queue.organization_id).filter(group__in=groups))
    return sorted(users, key=lambda u: u.get_username()), teams


def item_for_assignment(*, assignment: Assignment) -> QueueItem:
    """The item an assignment is for, with its generation and queue (same organization)."""
    return (
        QueueItem.objects.for_org(assignment.organization_id)
        .select_related("generation", "queue")
        .get(pk=assignment.item_id)
    )


def rule_get(*, queue: ReviewQueue, rule_id) -> SamplingRule | None:
    """One of the queue's rules (the queue's organization only), or None."""
    try:
        rule_id = int(rule_id)
    except (TypeError, ValueError):
        return None
    return (
        SamplingRule.objects.for_org(queue.organization_id).filter(queue=queue, pk=rule_id).first()
    )


def queue_rules(*, queue: ReviewQueue) -> list[SamplingRule]:
    rules = list(queue.rules.order_by("id"))
    for rule in rules:
        rule.description = sampling.describe(rule.filters or {})
    return rules


def latest_backfill(*, queue: ReviewQueue, job_id=None) -> BackfillJob | None:
    qs = queue.backfills.all()
    if job_id:
        return qs.filter(pk=job_id).first()
    return qs.first()


def sampling_preview(
    *,
    queue: ReviewQueue,
    rules=None,
    hours: int = 24,
    now: datetime | None = None,
    cap: int = 200_000,
) -> dict:
    """What the rules would have sampled from the last `hours` of generations."""
    now = now or timezone.now()
    rules = list(rules if rules is not None else queue.rules.filter(active=True))
    base = Generation.objects.for_org(queue.organization_id).filter(
        created_at__gte=now - timedelta(hours=hours), created_at__lt=now
    )
    fields = (
        "id external_id prompt_name prompt_version model_id status latency_ms cost_usd tags "
        "metadata"
    ).split()
    per_rule: Counter = Counter()
    scanned = sampled = 0
    for gen in base.values(*fields).iterator(chunk_size=2000):
        scanned += 1
        if scanned > cap:
            break
        rule = sampling.decide(rules, gen, queue.pk)
        if rule is not None:
            sampled += 1
            per_rule[rule.pk] += 1
    return {
        "hours": hours,
        "scanned": min(scanned, cap),
        "sampled": sampled,
        "per_rule": dict(per_rule),
    }


def queue_stats(*, queue: ReviewQueue, days: int = 14, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    since = now - timedelta(days=days)
    reviews = Review.objects.filter(queue=queue)
    per_day = {
        row["day"]: row["n"]
        for row in reviews.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("day")
    }
    today = now.date()
    throughput = [
        {"day": d, "count": per_day.get(d, 0)}
        for d in (today - timedelta(days=i) for i in range(days - 1, -1, -1))
    ]
    peak = max([t["count"] for t in throughput] + [1])
    for t in throughput:
        t["percent"] = int(100 * t["count"] / peak)
    reviewers = list(
        reviews.values(username=F("reviewer__username"))
        .annotate(count=Count("id"), avg_ms=Avg("time_spent_ms"), total_ms=Sum("time_spent_ms"))
        .order_by("-count", "username")
    )
    for r in reviewers:
        r["avg_s"] = round((r["avg_ms"] or 0) / 1000, 1)
        r["total_min"] = round((r["total_ms"] or 0) / 60000, 1)
    recent = list(
        reviews.order_by("-id").values_list("item_id", "reviewer_id", "answers")[
            :AGREEMENT_REVIEW_LIMIT
        ]
    )
    distributions = _distributions(queue.rubric, [a for _, _, a in recent])
    agree = (
        agreement.question_agreement(queue.rubric, recent) if queue.reviewers_per_item > 1 else []
    )
    skips = list(
        Assignment.objects.filter(queue=queue, state="skipped")
        .values("skip_reason")
        .annotate(n=Count("id"))
        .order_by("-n")[:10]
    )
    return {
        "throughput": throughput,
        "reviewers": reviewers,
        "distributions": distributions,
        "agreement": agree,
        "skips": skips,
        "review_count": reviews.count(),
    }


def _distributions(rubric: dict, answer_sets: list[dict]) -> list[dict]:
    out = []
    for q in rubric.get("questions", []):
        if q["type"] == "text":
            continue
        counts: Counter = Counter()
        for answers in answer_sets:
            value = (answers or {}).get(q["key"])
            if value is None:
                continue
            for v in value if isinstance(value, list) else [value]:
                counts[v] += 1
        if q["type"] == "boolean":
            options = [(True, "Yes"), (False, "No")]
        elif q["type"] == "scale":
            options = [(v, str(v)) for v in range(q["min"], q["max"] + 1)]
        else:
            options = [(o, o) for o in q["options"]]
        total = sum(counts.values()) or 1
        out.append(
            {
                "key": q["key"],
                "label": q["label"],
                "rows": [
                    {
                        "label": label,
                        "count": counts.get(v, 0),
                        "percent": int(100 * counts.get(v, 0) / total),
                    }
                    for v, label in options
                ],
            }
        )
    return out


def adjudication_list(*, queue: ReviewQueue) -> QuerySet[QueueItem]:
    return (
        QueueItem.objects.filter(queue=queue, needs_adjudication=True, final_answers__isnull=True)
        .select_related("generation")
        .prefetch_related("reviews__reviewer")
        .order_by("completed_at", "id")
    )


def overdue_items(*, queue: ReviewQueue, now: datetime | None = None) -> QuerySet[QueueItem]:
    now = now or timezone.now()
    return (
        QueueItem.objects.filter(queue=queue, state="open", due_at__lt=now)
        .select_related("generation")
        .order_by("due_at", "id")
    )


def export_items(*, queue: ReviewQueue) -> Iterator[dict[str, Any]]:
    """One dict per reviewed item (chunks; no N+1): generation, reviews, final answers."""
    items = (
        QueueItem.objects.filter(queue=queue)
        .filter(Q(reviews_done__gt=0) | Q(final_answers__isnull=False))
        .select_related("generation")
        .order_by("id")
    )
    last = 0
    while True:
        chunk = list(items.filter(id__gt=last)[:500])
        if not chunk:
            return
        last = chunk[-1].pk
        by_item = defaultdict(list)
        for review in (
            Review.objects.filter(item_id__in=[i.pk for i in chunk])
            .select_related("reviewer")
            .order_by("id")
        ):
            by_item[review.item_id].append(review)
        for item in chunk:
            gen = item.generation
            yield {
                "item": item.pk,
                "state": item.state,
                "generation": {
                    "external_id": gen.external_id,
                    "created_at": gen.created_at.isoformat(),
                    "prompt": {"name": gen.prompt_name, "version": gen.prompt_version},
                    "model": gen.model_id,
                    "input": gen.input,
                    "output": gen.output,
                },
                "reviews": [
                    {
                        "reviewer": r.reviewer.get_username(),
                        "answers": r.answers,
                        "corrected_output": r.corrected_output,
                        "comment": r.comment,
                        "time_spent_ms": r.time_spent_ms,
                        "created_at": r.created_at.isoformat(),
                    }
                    for r in by_item.get(item.pk, [])
                ],
                "final_answers": item.final_answers,
            }


def latest_review(*, item: QueueItem, user) -> Review | None:
    """The user's latest review of the item, else anyone's latest (same organization)."""
    reviews = (
        Review.objects.for_org(item.organization_id).filter(item=item).select_related("reviewer")
    )
    return reviews.filter(reviewer=user).order_by("-id").first() or reviews.order_by("-id").first()
