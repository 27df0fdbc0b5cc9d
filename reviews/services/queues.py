"""Queues and their rubric, sampling rules and reviewers; overdue notices to a queue's
maintainers. Every governance change is audited as the last step of its transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput
from llmops.evals.models import EvalDataset
from llmops.tenancy import guardian
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Membership, Role, Team
from llmops.tenancy.policy import require

from .. import rubric as rubric_mod
from .. import sampling
from ..models import QueueItem, ReviewQueue, SamplingRule
from .base import GRANT, User, queue_for

QUEUE_FIELDS = (
    "name",
    "instructions",
    "reviewers_per_item",
    "lease_minutes",
    "sla_hours",
    "eval_dataset",
    "active",
)


def _managed(actor: Actor, queue: ReviewQueue) -> ReviewQueue:
    """The opening of every queue-governance use case."""
    return queue_for(actor, queue, "queue.manage")


def _clean_name(actor: Actor, name, queue: ReviewQueue | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("A queue needs a name of at most 200 characters.", field="name")
    clash = ReviewQueue.objects.for_org(actor.org).filter(name=name)
    if queue is not None:
        clash = clash.exclude(pk=queue.pk)
    if clash.exists():
        raise InvalidInput(f"A queue named '{name}' already exists.", field="name")
    return name


def _clean_sla_hours(value) -> int | None:
    if value in (None, ""):
        return None
    try:
        value = int(value)
    except (TypeError, ValueError):
        value = -1
    if not 1 <= value <= 24 * 90:
        raise InvalidInput("sla_hours is a whole number of hours (1..2160).", field="sla_hours")
    return value


def _clean_dataset(actor: Actor, dataset) -> EvalDataset | None:
    if dataset in (None, ""):
        return None
    dataset_id = getattr(dataset, "pk", dataset)
    found = EvalDataset.objects.for_org(actor.org).filter(pk=dataset_id).first()
    if found is None:
        raise InvalidInput("No such eval dataset.", field="eval_dataset")
    return found


def _clean_queue_fields(actor: Actor, fields: dict, *, queue: ReviewQueue | None) -> dict:
    clean: dict[str, Any] = {}
    if "name" in fields:
        clean["name"] = _clean_name(actor, fields["name"], queue)
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
        clean["sla_hours"] = _clean_sla_hours(fields["sla_hours"])
    if "eval_dataset" in fields:
        clean["eval_dataset"] = _clean_dataset(actor, fields["eval_dataset"])
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
    require(actor, "queue.manage")
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
    _managed(actor, queue)
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
    _managed(actor, queue)
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
    queue = _managed(actor, rule.queue)
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


def _reviewer_change(actor: Actor, queue: ReviewQueue, change, action: str, **who) -> str:
    """Grant or revoke the queue's review grant to a member or a team, audited."""
    _managed(actor, queue)
    target, label = _grantee(actor, **who)
    change(GRANT, target, queue)
    audit_record(actor=actor, action=action, target=queue, details={"to": label})
    return label


@transaction.atomic
def reviewer_grant(
    *, actor: Actor, queue: ReviewQueue, username: str | None = None, team_id=None
) -> str:
    return _reviewer_change(
        actor, queue, guardian.grant, "queue.reviewer_granted", username=username, team_id=team_id
    )


@transaction.atomic
def reviewer_revoke(
    *, actor: Actor, queue: ReviewQueue, username: str | None = None, team_id=None
) -> str:
    return _reviewer_change(
        actor, queue, guardian.revoke, "queue.reviewer_revoked", username=username, team_id=team_id
    )


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


def _overdue(**filters):
    return QueueItem.objects.filter(
        state=QueueItem.State.OPEN, overdue_notified_at__isnull=True, **filters
    )


def overdue_notify(*, now: datetime | None = None, link_for=None) -> int:
    """Tell each queue's maintainers about items that passed their due time: once per item."""
    from llmops.notify.services import notify

    now = now or timezone.now()
    sent = 0
    queue_ids = _overdue(due_at__lt=now).values_list("queue_id", flat=True).distinct()
    for queue in ReviewQueue.objects.filter(pk__in=list(queue_ids)).select_related("organization"):
        with transaction.atomic():
            ids = list(
                _overdue(queue=queue, due_at__lt=now)
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
