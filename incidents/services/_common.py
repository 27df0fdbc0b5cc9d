"""What every incidents service shares: limits, the input cleaners (each names its field in
the 400), the timeline and stakeholder notices, and the opening and closing every write of an
incident goes through (`_open_incident`, `_record`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder

from llmops.audit.services import audit_record
from llmops.common import clean
from llmops.common.errors import InvalidInput, NotFound, PolicyViolation
from llmops.notify.services import notify
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import require
from llmops.tenancy.selectors import admins_of

from ..models import (
    ENDED_STATUSES,
    OPEN_STATUSES,
    Category,
    Incident,
    Severity,
    Status,
    TimelineEntry,
)

User = get_user_model()

DEDUPE_WINDOW = timedelta(hours=48)
# Limits (documented in the API): clear 400/413 answers instead of truncation.
MAX_TITLE = 200
MAX_SUMMARY = 20_000
MAX_NOTE = 10_000
MAX_POSTMORTEM = 100_000
MAX_DEDUPE_KEY = 200
MAX_ALERT_DETAILS_BYTES = 64 * 1024
MAX_STEPS = 100
MAX_STEP_TEXT = 500
MAX_REASON = 1000
# Categories whose resolution needs an eval case made from the failure.
EVAL_CASE_CATEGORIES = frozenset({"hallucination", "harmful_output"})
POSTMORTEM_SEVERITIES = frozenset({"SEV1", "SEV2"})

STATUS_TIMESTAMP = {
    "investigating": "acknowledged_at",
    "mitigated": "mitigated_at",
    "resolved": "resolved_at",
    "closed": "closed_at",
}
# Milestones in order: a milestone may not precede the ones before it.
MILESTONES = ("detected_at", "acknowledged_at", "mitigated_at", "resolved_at", "closed_at")


# ---------------------------------------------------------------------------- helpers


def _same_org(actor: Actor, obj) -> None:
    if obj is None or obj.organization_id != actor.org.pk:
        raise NotFound("Not found.")


def _text(value: Any, *, field: str, limit: int, required: bool = False) -> str:
    """`clean.text`: past `limit` a 400, or a 413 for body-sized fields (notes and larger)."""
    return clean.text(
        value, field=field, max_length=limit, required=required, too_large=limit >= MAX_NOTE
    )


def clean_category(value: Any) -> str:
    if value not in Category.values:
        raise InvalidInput(
            f"Unknown category {value!r}; use one of {', '.join(Category.values)}.",
            field="category",
        )
    return value


def clean_severity(value: Any, *, allow_pending: bool = True) -> str:
    if value in (None, "") and allow_pending:
        return Severity.PENDING
    allowed = Severity.values if allow_pending else [s for s in Severity.values if s != "pending"]
    if value not in allowed:
        raise InvalidInput(
            f"Unknown severity {value!r}; use one of {', '.join(allowed)}.", field="severity"
        )
    return value


def _check_chronology(incident: Incident, field: str, value: datetime) -> None:
    """A milestone may not precede an earlier milestone (detected <= acknowledged <= ...)."""
    index = MILESTONES.index(field)
    for earlier in MILESTONES[:index]:
        at = getattr(incident, earlier)
        if at is not None and value < at:
            raise InvalidInput(
                f"{field.replace('_at', '')} time {value:%Y-%m-%d %H:%M} is before "
                f"{earlier.replace('_at', '')} time {at:%Y-%m-%d %H:%M}: timestamps must be "
                "chronological.",
                field="at",
            )


def _member(org, user) -> Any:
    if user is None:
        return None
    user_id = getattr(user, "pk", user)
    member = User.objects.filter(pk=user_id, memberships__organization=org, is_active=True).first()
    if member is None:
        raise InvalidInput("That person is not a member of this organization.", field="user")
    return member


def incident_link(incident: Incident) -> str:
    return f"/o/{incident.organization.slug}/incidents/{incident.number}/"


def _timeline(
    actor: Actor, incident: Incident, kind: str, body: str = "", data: dict | None = None
) -> TimelineEntry:
    return TimelineEntry.objects.create(
        organization_id=incident.organization_id,
        incident=incident,
        kind=kind,
        body=body,
        data=json.loads(json.dumps(data or {}, cls=DjangoJSONEncoder)),
        actor=actor.user if actor.is_human else None,
        actor_label=actor.label[:200],
    )


def _stakeholders(incident: Incident) -> set:
    people = {u.pk for u in admins_of(org=incident.organization)}
    for user_id in (incident.commander_id, incident.reporter_id):
        if user_id:
            people.add(user_id)
    return people


def _notify(incident: Incident, kind: str, subject: str, body: str = "") -> None:
    notify(
        org=incident.organization,
        recipients=_stakeholders(incident),
        kind=kind,
        subject=f"{incident.ref}: {subject}",
        body=body or incident.title,
        link=incident_link(incident),
        payload={
            "number": incident.number,
            "status": incident.status,
            "severity": incident.severity,
            "category": incident.category,
            "title": incident.title,
        },
    )


def snapshot_of(obj: Any) -> dict:
    """The concrete fields of a record as JSON-native values (foreign keys as ids)."""
    data = {}
    for field in obj._meta.concrete_fields:
        data[field.attname] = getattr(obj, field.attname)
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder, sort_keys=True, default=str))


def snapshot_hash(snapshot: dict) -> str:
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _not_ended(incident: Incident) -> None:
    if incident.status in ENDED_STATUSES:
        raise PolicyViolation(
            f"incident_ended: {incident.ref} is {incident.status}; it can no longer change.",
            details={"rule": "incident_ended"},
        )


def _locked(incident: Incident) -> Incident:
    return Incident.objects.select_for_update().get(
        pk=incident.pk, organization_id=incident.organization_id
    )


def _rule(rule: str, message: str) -> PolicyViolation:
    return PolicyViolation(f"{rule}: {message}", code="policy_violation", details={"rule": rule})


def _not_ended_rule(what: str) -> Callable[[Incident], None]:
    """A state check for `_open_incident`: the `incident_ended` rule in `_rule`'s words."""

    def check(incident: Incident) -> None:
        if incident.status in ENDED_STATUSES:
            raise _rule("incident_ended", f"{incident.ref} is {incident.status}; {what}")

    return check


def _still_open(incident: Incident, suffix: str = ".") -> None:
    """Open, or resolved (a resolved incident still takes evidence and checklist ticks)."""
    if incident.status not in OPEN_STATUSES and incident.status != Status.RESOLVED:
        raise PolicyViolation(
            f"incident_ended: {incident.ref} is {incident.status}{suffix}",
            details={"rule": "incident_ended"},
        )


def _open_incident(
    actor: Actor,
    incident: Incident,
    *,
    action: str = "incident.manage",
    check: Callable[[Incident], None] | None = None,
    lock: bool = True,
) -> Incident:
    """The opening of a write to an incident: in the actor's organization (else 404), locked
    for the transaction, the action allowed (else 403), then the state `check` (409)."""
    _same_org(actor, incident)
    if lock:
        incident = _locked(incident)
    require(actor, action, incident)
    if check is not None:
        check(incident)
    return incident


def _record(
    actor: Actor,
    incident: Incident,
    kind: str,
    body: str = "",
    data: dict | None = None,
    *,
    sync: bool = False,
    notice: tuple[str, str] | None = None,
    audit: str | None = None,
    details: dict | None = None,
) -> TimelineEntry:
    """The closing of a write to an incident, in this order: the timeline entry, the
    runbooks re-matched (`sync`), the stakeholders told (`notice` = (kind, subject)), and the
    audit event (`audit` = action) last."""
    entry = _timeline(actor, incident, kind, body, data)
    if sync:
        from .checklists import _sync_checklists

        _sync_checklists(actor, incident)
    if notice is not None:
        _notify(incident, notice[0], notice[1], incident.title)
    if audit is not None:
        audit_record(actor=actor, action=audit, target=incident, details=details)
    return entry
