"""The guarded lifecycle (triage -> investigating -> mitigated -> resolved -> closed, or
cancelled/duplicate) and what an incident is about: severity, category, commander, notes,
the regulatory clock of a serious incident."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.common import clean
from llmops.common.errors import (
    InvalidInput,
    InvalidTransition,
    PolicyViolation,
)
from llmops.notify.services import notify
from llmops.tenancy.actor import Actor

from ..models import (
    SERIOUS_REPORT_DAYS,
    SEVERITY_RANK,
    TRANSITIONS,
    Category,
    Incident,
    Postmortem,
    SeriousKind,
    Severity,
    Status,
    TimelineEntry,
)
from ._common import (
    EVAL_CASE_CATEGORIES,
    MAX_NOTE,
    MAX_REASON,
    MAX_SUMMARY,
    MAX_TITLE,
    MILESTONES,
    POSTMORTEM_SEVERITIES,
    STATUS_TIMESTAMP,
    _check_chronology,
    _member,
    _not_ended,
    _not_ended_rule,
    _open_incident,
    _record,
    _text,
    _timeline,
    clean_category,
    clean_severity,
    incident_link,
)


def eval_case_count(incident: Incident) -> int:
    """Eval cases made from this incident: created by its quick action or linked by a
    maintainer (both audited). A case's source label is free text anyone with `evals:write`
    can type, so it never counts."""
    return incident.eval_cases.count()


def transition_blockers(incident: Incident, to: str, note: str = "") -> list[tuple[str, str]]:
    """The governance rules that forbid `to` right now, as (rule, message)."""
    blockers: list[tuple[str, str]] = []
    if to == Status.INVESTIGATING and incident.severity == Severity.PENDING:
        blockers.append(("severity_required", "set a severity (SEV1-SEV4) before leaving triage"))
    if to == Status.MITIGATED and not (note or incident.mitigation_note).strip():
        blockers.append(
            ("mitigation_note_required", "mitigated needs a note saying what was mitigated")
        )
    if to == Status.RESOLVED and incident.category in EVAL_CASE_CATEGORIES:
        if eval_case_count(incident) == 0:
            blockers.append(
                (
                    "eval_case_required",
                    f"a {incident.get_category_display().lower()} incident resolves only "
                    "after the failure is added to an eval dataset as a case",
                )
            )
    if to == Status.CLOSED and incident.peak_severity in POSTMORTEM_SEVERITIES:
        # The highest severity it ever had: lowering it does not skip the postmortem.
        postmortem = Postmortem.objects.filter(incident=incident).first()
        if postmortem is None or not postmortem.is_written:
            was = (
                f" (it was {incident.peak_severity})"
                if incident.severity != incident.peak_severity
                else ""
            )
            blockers.append(
                (
                    "postmortem_required",
                    f"a {incident.peak_severity} incident closes with a postmortem{was}",
                )
            )
        if incident.action_items.filter(owner__isnull=True).exists():
            blockers.append(
                ("action_item_owner_required", "every action item needs an owner before closing")
            )
    return blockers


def _check_status(to: str) -> None:
    if to not in Status.values:
        raise InvalidInput(
            f"Unknown status {to!r}; use one of {', '.join(Status.values)}.", field="to"
        )


def _check_move(incident: Incident, to: str) -> None:
    """A move the lifecycle allows from the incident's status (else 409)."""
    if to not in TRANSITIONS[incident.status]:
        allowed = ", ".join(TRANSITIONS[incident.status]) or "none (it has ended)"
        raise InvalidTransition(
            f"{incident.ref} is {incident.status}; it cannot move to {to}. Allowed: {allowed}.",
            details={
                "from": incident.status,
                "to": to,
                "allowed": list(TRANSITIONS[incident.status]),
            },
        )


def _check_rules(incident: Incident, to: str, note: str) -> None:
    """The governance rules (`transition_blockers`): the first one that blocks names itself."""
    blockers = transition_blockers(incident, to, note)
    if blockers:
        rule, message = blockers[0]
        raise PolicyViolation(
            f"{rule}: {message}.",
            details={"rule": rule, "rules": [r for r, _ in blockers]},
        )


def _stamp_milestones(incident: Incident, previous: str, to: str, when: datetime) -> list[str]:
    """Set the milestone of `to` (chronologically), clear later ones on a re-open. Returns the
    fields changed."""
    update = []
    stamp = STATUS_TIMESTAMP.get(to)
    if stamp:
        _check_chronology(incident, stamp, when)
        # Back to investigating from mitigated/resolved keeps the first acknowledgement.
        if not (to == Status.INVESTIGATING and incident.acknowledged_at is not None):
            setattr(incident, stamp, when)
            update.append(stamp)
    if previous in (Status.MITIGATED, Status.RESOLVED) and to == Status.INVESTIGATING:
        # Re-opened: later milestones no longer hold.
        for field in ("mitigated_at", "resolved_at"):
            if getattr(incident, field) is not None:
                setattr(incident, field, None)
                update.append(field)
    if to in (Status.CANCELLED, Status.DUPLICATE):
        _check_chronology(incident, "closed_at", when)
        incident.closed_at = when
        update.append("closed_at")
    return update


def _duplicate_original(incident: Incident, duplicate_of: Any) -> Incident:
    """The other incident of this organization that `incident` duplicates (not a duplicate)."""
    if duplicate_of in (None, ""):
        raise InvalidInput("Name the incident this one duplicates.", field="duplicate_of")
    try:
        number = int(str(duplicate_of).removeprefix("INC-"))
    except ValueError:
        raise InvalidInput("duplicate_of must be an incident number.", field="duplicate_of")
    original = Incident.objects.for_org(incident.organization).filter(number=number).first()
    if original is None or original.pk == incident.pk:
        raise InvalidInput(
            f"No other incident INC-{number} in this organization.", field="duplicate_of"
        )
    if original.status == Status.DUPLICATE:
        raise InvalidInput(
            f"{original.ref} is itself a duplicate; name the original.", field="duplicate_of"
        )
    return original


@transaction.atomic
def incident_transition(
    *,
    actor: Actor,
    incident: Incident,
    to: str,
    note: str = "",
    at: Any = None,
    duplicate_of: int | None = None,
    severity: str | None = None,
    severity_reason: str = "",
) -> Incident:
    """Move along the lifecycle. Out-of-order moves are 409 (invalid_transition); a rule that
    blocks names itself in the 409. `at` back-dates the milestone (never before the previous
    one, never in the future). A severity change after mitigation needs `severity_reason`."""
    incident = _open_incident(actor, incident)
    _check_status(to)
    note = _text(note, field="note", limit=MAX_NOTE)
    _check_move(incident, to)
    severity_change = None
    if severity not in (None, "") and severity != incident.severity:
        severity_change = _change_severity(
            actor, incident, clean_severity(severity, allow_pending=False), severity_reason
        )
    _check_rules(incident, to, note)
    when = clean.timestamp(at, field="at") or timezone.now()
    previous = incident.status
    update = ["status", "updated_at"]
    if to == Status.DUPLICATE:
        incident.duplicate_of = _duplicate_original(incident, duplicate_of)
        update.append("duplicate_of")
    update += _stamp_milestones(incident, previous, to, when)
    if to == Status.MITIGATED and note:
        incident.mitigation_note = note
        update.append("mitigation_note")
    incident.status = to
    incident.save(update_fields=sorted(set(update)))
    body = f"Status {previous} → {to}."
    if to == Status.DUPLICATE:
        body = f"Status {previous} → duplicate of {incident.duplicate_of.ref}."
    _record(
        actor,
        incident,
        TimelineEntry.Kind.STATUS,
        body + (f"\n\n{note}" if note else ""),
        {"from": previous, "to": to, "at": when},
        notice=("incident.status", f"{previous} → {to}"),
        audit="incident.transition",
        details={
            "from": previous,
            "to": to,
            "at": when,
            "note": note[:500],
            **({"severity": severity_change} if severity_change else {}),
        },
    )
    return incident


# Statuses after mitigation: a severity change there needs a reason (and is audited).
AFTER_MITIGATION = frozenset({Status.MITIGATED, Status.RESOLVED})


def _change_severity(actor: Actor, incident: Incident, severity: str, reason: Any = "") -> dict:
    """Set the severity (and raise `peak_severity` when it is worse); after mitigation only
    with a reason. Returns the change for the caller's audit event."""
    previous = incident.severity
    if previous == severity:
        return {}
    if severity == Severity.PENDING and incident.status != Status.TRIAGE:
        raise InvalidInput("Severity can be pending only while in triage.", field="severity")
    reason = _text(reason, field="severity_reason", limit=MAX_REASON)
    if incident.status in AFTER_MITIGATION and not reason:
        raise InvalidInput(
            f"{incident.ref} is {incident.status}: a severity change after mitigation needs a "
            "reason (severity_reason).",
            field="severity_reason",
        )
    incident.severity = severity
    update = ["severity", "updated_at"]
    if SEVERITY_RANK[severity] < SEVERITY_RANK.get(incident.peak_severity, 9):
        incident.peak_severity = severity
        update.append("peak_severity")
    incident.save(update_fields=update)
    _record(
        actor,
        incident,
        TimelineEntry.Kind.SEVERITY,
        f"Severity {previous} → {severity}." + (f"\n\nReason: {reason}" if reason else ""),
        {"from": previous, "to": severity, **({"reason": reason} if reason else {})},
        sync=True,
        notice=("incident.severity", f"severity {previous} → {severity}"),
    )
    change = {"from": previous, "to": severity, "peak": incident.peak_severity}
    if reason:
        change["reason"] = reason
    return change


def _edit_fields(
    incident: Incident, *, title, summary, users_affected, cost_impact_usd, detected_at
) -> list[str]:
    """Set the plain fields given (`...`/None: unchanged), cleaned; returns their names."""
    fields = []
    if title is not None:
        incident.title = _text(title, field="title", limit=MAX_TITLE, required=True)
        fields.append("title")
    if summary is not None:
        incident.summary = _text(summary, field="summary", limit=MAX_SUMMARY)
        fields.append("summary")
    if users_affected is not ...:
        incident.users_affected = clean.count(users_affected, field="users_affected")
        fields.append("users_affected")
    if cost_impact_usd is not ...:
        incident.cost_impact_usd = clean.money(cost_impact_usd, field="cost_impact_usd")
        fields.append("cost_impact_usd")
    if detected_at not in (None, ""):
        when = clean.timestamp(detected_at, field="detected_at")
        for later in MILESTONES[1:]:
            at = getattr(incident, later)
            if at is not None and at < when:
                raise InvalidInput(
                    f"detected time is after {later.replace('_at', '')} time: timestamps must "
                    "be chronological.",
                    field="detected_at",
                )
        incident.detected_at = when
        fields.append("detected_at")
    return fields


@transaction.atomic
def incident_update(
    *,
    actor: Actor,
    incident: Incident,
    severity: str | None = None,
    category: str | None = None,
    title: str | None = None,
    summary: str | None = None,
    users_affected: Any = ...,
    cost_impact_usd: Any = ...,
    detected_at: Any = None,
    severity_reason: str = "",
) -> Incident:
    """Change what the incident is about; category and severity changes re-evaluate the
    attached runbooks and are written to the timeline. A severity change after mitigation
    needs `severity_reason`; it is audited with the change."""
    incident = _open_incident(actor, incident, check=_not_ended_rule("it can no longer change"))
    changes: dict[str, Any] = {}
    if severity not in (None, "") and severity != incident.severity:
        changes["severity"] = [incident.severity, severity]
        change = _change_severity(actor, incident, clean_severity(severity), severity_reason)
        if change.get("reason"):
            changes["severity_reason"] = change["reason"]
        changes["peak_severity"] = incident.peak_severity
    if category not in (None, "") and category != incident.category:
        previous = incident.category
        incident.category = clean_category(category)
        incident.save(update_fields=["category", "updated_at"])
        changes["category"] = [previous, incident.category]
        _record(
            actor,
            incident,
            TimelineEntry.Kind.CATEGORY,
            f"Category {Category(previous).label} → {incident.get_category_display()}.",
            {"from": previous, "to": incident.category},
            sync=True,
        )
    fields = _edit_fields(
        incident,
        title=title,
        summary=summary,
        users_affected=users_affected,
        cost_impact_usd=cost_impact_usd,
        detected_at=detected_at,
    )
    if fields:
        incident.save(update_fields=[*fields, "updated_at"])
        changes.update({f: str(getattr(incident, f)) for f in fields if f != "summary"})
    if changes:
        audit_record(actor=actor, action="incident.update", target=incident, details=changes)
    return incident


@transaction.atomic
def incident_set_commander(*, actor: Actor, incident: Incident, user: Any) -> Incident:
    """Hand command to a member (a maintainer or admin); `user=actor.user` takes command."""
    incident = _open_incident(actor, incident, check=_not_ended)
    member = _member(incident.organization, user)
    if member is None:
        raise InvalidInput("Name the commander.", field="user")
    role = member.memberships.get(organization=incident.organization).role
    if role not in ("admin", "maintainer"):
        raise InvalidInput("A commander must be a maintainer or an admin.", field="user")
    if incident.commander_id == member.pk:
        return incident
    previous = incident.commander.get_username() if incident.commander else "nobody"
    incident.commander = member
    update = ["commander", "updated_at"]
    incident.save(update_fields=update)
    taken = actor.user is not None and actor.user.pk == member.pk
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.COMMAND,
        f"{member.get_username()} took command."
        if taken
        else f"Command: {previous} → {member.get_username()}.",
        {"commander": member.pk},
    )
    notify(
        org=incident.organization,
        recipients=[member],
        kind="incident.command",
        subject=f"{incident.ref}: you are the incident commander",
        body=incident.title,
        link=incident_link(incident),
    )
    audit_record(
        actor=actor,
        action="incident.command",
        target=incident,
        details={"commander": member.get_username(), "previous": previous},
    )
    return incident


@transaction.atomic
def incident_note(*, actor: Actor, incident: Incident, note: str) -> TimelineEntry:
    _open_incident(actor, incident, action="incident.open", lock=False)
    note = _text(note, field="note", limit=MAX_NOTE, required=True)
    return _timeline(actor, incident, TimelineEntry.Kind.NOTE, note)


@transaction.atomic
def incident_mark_serious(
    *,
    actor: Actor,
    incident: Incident,
    serious: bool = True,
    kind: str = SeriousKind.OTHER,
    aware_at: Any = None,
    initial_report_at: Any = None,
    final_report_at: Any = None,
) -> Incident:
    """The EU AI Act clock: report due 2, 10 or 15 days after the organization became aware."""
    incident = _open_incident(actor, incident)
    if not serious:
        incident.serious = False
        incident.save(update_fields=["serious", "updated_at"])
        _timeline(actor, incident, TimelineEntry.Kind.AUTOMATED, "No longer marked serious.")
        audit_record(
            actor=actor, action="incident.serious", target=incident, details={"serious": False}
        )
        return incident
    if kind not in SeriousKind.values:
        raise InvalidInput(f"Unknown serious-incident kind {kind!r}.", field="kind")
    aware = clean.timestamp(aware_at, field="aware_at") or incident.aware_at or timezone.now()
    initial = clean.timestamp(initial_report_at, field="initial_report_at")
    final = clean.timestamp(final_report_at, field="final_report_at")
    if initial and initial < aware:
        raise InvalidInput(
            "The initial report cannot precede awareness.", field="initial_report_at"
        )
    if final and final < (initial or aware):
        raise InvalidInput(
            "The final report cannot precede the initial report or awareness.",
            field="final_report_at",
        )
    incident.serious = True
    incident.serious_kind = kind
    incident.aware_at = aware
    incident.initial_report_at = initial or incident.initial_report_at
    incident.final_report_at = final or incident.final_report_at
    incident.save(
        update_fields=[
            "serious",
            "serious_kind",
            "aware_at",
            "initial_report_at",
            "final_report_at",
            "updated_at",
        ]
    )
    days = SERIOUS_REPORT_DAYS[kind]
    _record(
        actor,
        incident,
        TimelineEntry.Kind.AUTOMATED,
        f"Marked a serious incident ({SeriousKind(kind).label}); report due "
        f"{incident.report_due_at:%Y-%m-%d %H:%M} UTC ({days} days after awareness).",
        {"kind": kind, "aware_at": aware, "due": incident.report_due_at},
        audit="incident.serious",
        details={"kind": kind, "aware_at": aware, "due": incident.report_due_at},
    )
    return incident
