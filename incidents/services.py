"""Every write of the incidents app: runbooks, incident intake (by hand, from a review, from
alerts with dedupe), the guarded lifecycle, timeline, checklists, evidence, postmortems,
action items, the regulatory clock and the quick actions that call the owning apps.

Each service is one transaction: permission via `can`, validation, rows, timeline entry,
notifications, and the audit event last."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from llmops.audit.services import audit_record
from llmops.common.errors import (
    InvalidInput,
    InvalidTransition,
    NotFound,
    NotPermitted,
    PolicyViolation,
    TooLarge,
)
from llmops.notify.services import notify
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import can
from llmops.tenancy.selectors import admins_of

from .models import (
    ENDED_STATUSES,
    OPEN_STATUSES,
    POSTMORTEM_TEMPLATE,
    SERIOUS_REPORT_DAYS,
    SEVERITY_RANK,
    TRANSITIONS,
    ActionItem,
    Category,
    ChecklistRun,
    ChecklistStep,
    Evidence,
    Incident,
    IncidentCounter,
    IncidentEvalCase,
    Postmortem,
    Runbook,
    RunbookVersion,
    SeriousKind,
    Severity,
    Source,
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
CLOCK_SKEW = timedelta(minutes=5)
MAX_UTC_OFFSET = timedelta(hours=14)
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
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


def _require(actor: Actor, action: str, obj=None) -> None:
    if not can(actor, action, obj):
        raise NotPermitted(f"You may not do '{action}' here.")


def _same_org(actor: Actor, obj) -> None:
    if obj is None or obj.organization_id != actor.org.pk:
        raise NotFound("Not found.")


def _text(value: Any, *, field: str, limit: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text.", field=field)
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain NUL characters.", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{field} must be valid Unicode text.", field=field)
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{field} is required.", field=field)
    if len(value) > limit and limit < MAX_NOTE:
        raise InvalidInput(f"{field} is {len(value)} characters; at most {limit}.", field=field)
    if len(value) > limit:
        raise TooLarge(
            f"{field} is {len(value)} characters; the limit is {limit}.",
            details={"field": field, "limit": limit},
        )
    return value


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


def _clean_time(value: Any, *, field: str) -> datetime | None:
    """An aware date-time in UTC, within what an incident can mean: not before 1970, not in
    the future, a UTC offset within +-14:00 (the widest real one; the databases refuse more).
    Anything else, including an impossible date, is a 400 naming the field."""
    if value in (None, ""):
        return None
    example = "an ISO 8601 date-time, e.g. 2026-01-31T10:00:00Z"
    if isinstance(value, str):
        from django.utils.dateparse import parse_datetime

        try:
            parsed = parse_datetime(value.strip()) if "\x00" not in value else None
        except (ValueError, OverflowError):  # e.g. month 13, or an offset of a day or more
            parsed = None
        if parsed is None:
            raise InvalidInput(f"{field} must be {example}.", field=field)
        value = parsed
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a date-time.", field=field)
    try:
        if timezone.is_naive(value):
            value = timezone.make_aware(value, timezone.get_current_timezone())
        offset = value.utcoffset()
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            raise InvalidInput(
                f"{field} has a UTC offset beyond +-14:00; use {example}.", field=field
            )
        value = value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{field} is out of range; use {example}.", field=field)
    if value < EARLIEST_TIME:
        raise InvalidInput(f"{field} is before 1970; use {example}.", field=field)
    if value > timezone.now() + CLOCK_SKEW:
        raise InvalidInput(f"{field} is in the future.", field=field)
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


def _decimal(value: Any, *, field: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{field} must be a number.", field=field)
    if not result.is_finite() or result < 0 or result >= Decimal("1e12"):
        raise InvalidInput(f"{field} must be a non-negative amount.", field=field)
    return result.quantize(Decimal("0.01"))


def _count(value: Any, *, field: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be a whole number.", field=field)
    try:
        result = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{field} must be a whole number.", field=field)
    if result < 0 or result > 2_000_000_000:
        raise InvalidInput(f"{field} must be between 0 and 2,000,000,000.", field=field)
    return result


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


# ---------------------------------------------------------------------------- runbooks


def _clean_steps(steps: Any) -> list[dict]:
    if isinstance(steps, str):
        steps = [line for line in steps.splitlines() if line.strip()]
    if not isinstance(steps, list | tuple):
        raise InvalidInput("steps must be a list.", field="steps")
    if len(steps) > MAX_STEPS:
        raise TooLarge(f"A runbook has at most {MAX_STEPS} steps.", details={"field": "steps"})
    cleaned = []
    for index, step in enumerate(steps):
        if isinstance(step, str):
            # "Text | role | action" in the editor's textarea.
            parts = [p.strip() for p in step.split("|")]
            step = {
                "text": parts[0],
                "role": parts[1] if len(parts) > 1 else "",
                "action": parts[2] if len(parts) > 2 else "",
            }
        if not isinstance(step, dict):
            raise InvalidInput(f"steps[{index}] must be text or an object.", field="steps")
        text = _text(step.get("text"), field=f"steps[{index}].text", limit=MAX_STEP_TEXT)
        if not text:
            raise InvalidInput(f"steps[{index}] needs text.", field="steps")
        role = _text(step.get("role"), field=f"steps[{index}].role", limit=50)
        action = _text(step.get("action"), field=f"steps[{index}].action", limit=50)
        cleaned.append({"text": text, "role": role, "action": action})
    return cleaned


def _clean_conditions(category: str, min_severity: str, model_id: str, prompt_name: str) -> dict:
    if category:
        clean_category(category)
    if min_severity:
        clean_severity(min_severity, allow_pending=False)
    return {
        "category": category or "",
        "min_severity": min_severity or "",
        "model_id": _text(model_id, field="model_id", limit=200),
        "prompt_name": _text(prompt_name, field="prompt_name", limit=200),
    }


def _new_version(actor: Actor, runbook: Runbook, number: int, **fields) -> RunbookVersion:
    return RunbookVersion.objects.create(
        organization_id=runbook.organization_id,
        runbook=runbook,
        number=number,
        created_by=actor.user if actor.is_human else None,
        created_by_label=actor.label[:200],
        **fields,
    )


def _version_fields(
    *, title, body, steps, category, min_severity, model_id, prompt_name, change_note=""
) -> dict:
    return {
        "title": _text(title, field="title", limit=MAX_TITLE, required=True),
        "body": _text(body, field="body", limit=MAX_POSTMORTEM),
        "steps": _clean_steps(steps),
        "change_note": _text(change_note, field="change_note", limit=500),
        **_clean_conditions(category, min_severity, model_id, prompt_name),
    }


@transaction.atomic
def runbook_create(
    *,
    actor: Actor,
    title: str,
    body: str = "",
    steps: Any = (),
    category: str = "",
    min_severity: str = "",
    model_id: str = "",
    prompt_name: str = "",
    slug: str = "",
) -> RunbookVersion:
    _require(actor, "runbook.manage")
    fields = _version_fields(
        title=title,
        body=body,
        steps=list(steps) if isinstance(steps, tuple) else steps,
        category=category,
        min_severity=min_severity,
        model_id=model_id,
        prompt_name=prompt_name,
    )
    slug = slugify(slug or fields["title"])[:80] or "runbook"
    base, n = slug, 2
    while Runbook.objects.for_org(actor.org).filter(slug=slug).exists():
        slug = f"{base[:74]}-{n}"
        n += 1
    runbook = Runbook.objects.create(
        organization=actor.org,
        slug=slug,
        reviewed_at=timezone.now(),
        reviewed_by_label=actor.label[:200],
    )
    version = _new_version(actor, runbook, 1, **fields)
    audit_record(
        actor=actor,
        action="runbook.create",
        target=runbook,
        details={"title": version.title, "conditions": version.conditions_label},
    )
    return version


@transaction.atomic
def runbook_version_create(
    *,
    actor: Actor,
    runbook: Runbook,
    title: str,
    body: str = "",
    steps: Any = (),
    category: str = "",
    min_severity: str = "",
    model_id: str = "",
    prompt_name: str = "",
    change_note: str = "",
) -> RunbookVersion:
    """An edit: a new immutable version. Incidents keep the version they attached."""
    _same_org(actor, runbook)
    _require(actor, "runbook.manage", runbook)
    runbook = Runbook.objects.select_for_update().get(pk=runbook.pk)
    fields = _version_fields(
        title=title,
        body=body,
        steps=list(steps) if isinstance(steps, tuple) else steps,
        category=category,
        min_severity=min_severity,
        model_id=model_id,
        prompt_name=prompt_name,
        change_note=change_note,
    )
    latest = runbook.versions.order_by("-number").first()
    number = (latest.number if latest else 0) + 1
    version = _new_version(actor, runbook, number, **fields)
    # Writing a new version is a review of the runbook.
    runbook.reviewed_at = timezone.now()
    runbook.reviewed_by_label = actor.label[:200]
    runbook.save(update_fields=["reviewed_at", "reviewed_by_label"])
    audit_record(
        actor=actor,
        action="runbook.version",
        target=runbook,
        details={"version": number, "change_note": version.change_note},
    )
    return version


@transaction.atomic
def runbook_mark_reviewed(*, actor: Actor, runbook: Runbook) -> Runbook:
    _same_org(actor, runbook)
    _require(actor, "runbook.manage", runbook)
    runbook.reviewed_at = timezone.now()
    runbook.reviewed_by_label = actor.label[:200]
    runbook.save(update_fields=["reviewed_at", "reviewed_by_label"])
    audit_record(actor=actor, action="runbook.reviewed", target=runbook)
    return runbook


@transaction.atomic
def runbook_set_archived(*, actor: Actor, runbook: Runbook, archived: bool) -> Runbook:
    _same_org(actor, runbook)
    _require(actor, "runbook.manage", runbook)
    runbook.archived = archived
    runbook.save(update_fields=["archived"])
    audit_record(
        actor=actor, action="runbook.archive" if archived else "runbook.unarchive", target=runbook
    )
    return runbook


# ---------------------------------------------------------------------------- checklists


def version_matches(
    version: RunbookVersion, incident: Incident, models_: set, prompts: set
) -> bool:
    if version.category and version.category != incident.category:
        return False
    if version.min_severity:
        if incident.severity == Severity.PENDING:
            return False
        if SEVERITY_RANK[incident.severity] > SEVERITY_RANK[version.min_severity]:
            return False
    if version.model_id and version.model_id not in models_:
        return False
    if version.prompt_name and version.prompt_name not in prompts:
        return False
    return True


def _latest_versions(org) -> list[RunbookVersion]:
    latest = (
        RunbookVersion.objects.for_org(org)
        .filter(runbook__archived=False)
        .values("runbook_id")
        .annotate(n=Max("number"))
    )
    wanted = models.Q(pk__in=[])
    for row in latest:
        wanted |= models.Q(runbook_id=row["runbook_id"], number=row["n"])
    return list(RunbookVersion.objects.for_org(org).filter(wanted).order_by("runbook_id"))


def _sync_checklists(actor: Actor, incident: Incident) -> None:
    """Attach the runbooks whose conditions now match; drop untouched ones that no longer
    match (ticked ones stay, marked as no longer matching, so the record is kept)."""
    evidence = list(incident.evidence.values_list("model_id", "prompt_name"))
    models_ = {m for m, _ in evidence if m}
    prompts = {p for _, p in evidence if p}
    matching = {
        v.runbook_id: v
        for v in _latest_versions(incident.organization)
        if version_matches(v, incident, models_, prompts)
    }
    runs = {run.runbook_id: run for run in incident.checklists.select_related("runbook_version")}
    for runbook_id, version in matching.items():
        run = runs.get(runbook_id)
        if run is None:
            run = ChecklistRun.objects.create(
                organization_id=incident.organization_id,
                incident=incident,
                runbook_id=runbook_id,
                runbook_version=version,
            )
            ChecklistStep.objects.bulk_create(
                ChecklistStep(
                    organization_id=incident.organization_id,
                    run=run,
                    position=i,
                    text=step["text"],
                    role=step.get("role", ""),
                    action=step.get("action", ""),
                )
                for i, step in enumerate(version.steps)
            )
            _timeline(
                actor,
                incident,
                TimelineEntry.Kind.CHECKLIST,
                f"Runbook attached: {version.title} (v{version.number}; matches "
                f"{version.conditions_label}).",
                {"runbook": runbook_id, "version": version.number, "event": "attached"},
            )
        elif run.unmatched_at is not None:
            run.unmatched_at = None
            run.save(update_fields=["unmatched_at"])
    for runbook_id, run in runs.items():
        if runbook_id in matching:
            continue
        title = run.runbook_version.title
        if run.steps.filter(done=True).exists():
            if run.unmatched_at is None:
                run.unmatched_at = timezone.now()
                run.save(update_fields=["unmatched_at"])
                _timeline(
                    actor,
                    incident,
                    TimelineEntry.Kind.CHECKLIST,
                    f"Runbook no longer matches but has ticked steps, kept: {title}.",
                    {"runbook": runbook_id, "event": "unmatched"},
                )
        else:
            run.delete()
            _timeline(
                actor,
                incident,
                TimelineEntry.Kind.CHECKLIST,
                f"Runbook detached (no longer matches): {title}.",
                {"runbook": runbook_id, "event": "detached"},
            )


@transaction.atomic
def checklist_step_set(*, actor: Actor, step: ChecklistStep, done: bool) -> ChecklistStep:
    _same_org(actor, step)
    incident = _locked(step.run.incident)
    _require(actor, "incident.manage", incident)
    if incident.status not in OPEN_STATUSES and incident.status != Status.RESOLVED:
        raise PolicyViolation(
            f"incident_ended: {incident.ref} is {incident.status}; its checklist is closed.",
            details={"rule": "incident_ended"},
        )
    step = ChecklistStep.objects.select_for_update().get(pk=step.pk)
    if step.done == done:
        return step
    step.done = done
    step.done_by = actor.user if actor.is_human and done else None
    step.done_by_label = actor.label[:200] if done else ""
    step.done_at = timezone.now() if done else None
    step.save(update_fields=["done", "done_by", "done_by_label", "done_at"])
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.CHECKLIST,
        f"{'Ticked' if done else 'Unticked'}: {step.text}",
        {"step": step.pk, "done": done},
    )
    return step


# ---------------------------------------------------------------------------- intake


def _next_number(org) -> int:
    current = Incident.objects.for_org(org).aggregate(n=Max("number"))["n"] or 0
    IncidentCounter.objects.bulk_create(
        [IncidentCounter(organization=org, last_number=current)], ignore_conflicts=True
    )
    counter = IncidentCounter.objects.select_for_update().get(organization=org)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return counter.last_number


def _create(
    actor: Actor,
    *,
    title: str,
    category: str,
    severity: str,
    summary: str,
    source: str,
    dedupe_key: str = "",
    detected_at: datetime | None = None,
    users_affected=None,
    cost_impact_usd=None,
) -> Incident:
    now = timezone.now()
    incident = Incident.objects.create(
        organization=actor.org,
        number=_next_number(actor.org),
        title=title,
        summary=summary,
        category=category,
        severity=severity,
        peak_severity=severity,
        source=source,
        dedupe_key=dedupe_key,
        last_alert_at=now if source == Source.ALERT else None,
        alert_count=1 if source == Source.ALERT else 0,
        reporter=actor.user if actor.is_human else None,
        reporter_label=actor.label[:200],
        detected_at=detected_at or now,
        users_affected=users_affected,
        cost_impact_usd=cost_impact_usd,
    )
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.OPENED,
        f"Opened from {Source(source).label.lower()} as {incident.severity}, "
        f"{Category(category).label}.",
        {"source": source, "severity": severity, "category": category},
    )
    return incident


def _opened(actor: Actor, incident: Incident) -> None:
    _sync_checklists(actor, incident)
    _notify(
        incident,
        "incident.opened",
        f"opened ({incident.severity}, {incident.get_category_display()})",
        incident.title,
    )
    audit_record(
        actor=actor,
        action="incident.open",
        target=incident,
        details={
            "number": incident.number,
            "source": incident.source,
            "severity": incident.severity,
            "category": incident.category,
        },
    )


@transaction.atomic
def incident_open(
    *,
    actor: Actor,
    title: str,
    category: str,
    severity: str | None = None,
    summary: str = "",
    source: str = Source.MANUAL,
    detected_at: Any = None,
    users_affected: Any = None,
    cost_impact_usd: Any = None,
    dedupe_key: str = "",
) -> Incident:
    """Open an incident by hand (page or API). Evidence is linked afterwards, in the same
    request, through `evidence_link` (see `incident_open_from_review`)."""
    incident = _open(
        actor,
        title=title,
        category=category,
        severity=severity,
        summary=summary,
        source=source,
        detected_at=detected_at,
        users_affected=users_affected,
        cost_impact_usd=cost_impact_usd,
        dedupe_key=dedupe_key,
    )
    _opened(actor, incident)
    return incident


def _open(
    actor: Actor,
    *,
    title,
    category,
    severity,
    summary,
    source,
    detected_at=None,
    users_affected=None,
    cost_impact_usd=None,
    dedupe_key="",
) -> Incident:
    _require(actor, "incident.open")
    if source not in Source.values:
        raise InvalidInput(f"Unknown source {source!r}.", field="source")
    return _create(
        actor,
        title=_text(title, field="title", limit=MAX_TITLE, required=True),
        category=clean_category(category),
        severity=clean_severity(severity),
        summary=_text(summary, field="summary", limit=MAX_SUMMARY),
        source=source,
        dedupe_key=_text(dedupe_key, field="dedupe_key", limit=MAX_DEDUPE_KEY),
        detected_at=_clean_time(detected_at, field="detected_at"),
        users_affected=_count(users_affected, field="users_affected"),
        cost_impact_usd=_decimal(cost_impact_usd, field="cost_impact_usd"),
    )


def _lock_dedupe_key(org, key: str) -> None:
    """Serialise alerts per (organization, key). PostgreSQL: a transaction-scoped advisory
    lock; SQLite runs write transactions one at a time (BEGIN IMMEDIATE) already."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{org.pk}|{key}"])


def _details_text(details: Any) -> str:
    if details in (None, "", {}):
        return ""
    if isinstance(details, str):
        text = _text(details, field="details", limit=MAX_ALERT_DETAILS_BYTES)
    else:
        try:
            text = json.dumps(details, sort_keys=True, indent=1, cls=DjangoJSONEncoder)
        except (TypeError, ValueError, RecursionError):
            raise InvalidInput(
                "details must be text or JSON nested at most a few hundred deep.", field="details"
            )
    if len(text.encode()) > MAX_ALERT_DETAILS_BYTES:
        raise TooLarge(
            f"details is {len(text.encode())} bytes; the limit is {MAX_ALERT_DETAILS_BYTES}.",
            details={"field": "details", "limit_bytes": MAX_ALERT_DETAILS_BYTES},
        )
    return text


@transaction.atomic
def alert_receive(
    *,
    actor: Actor,
    dedupe_key: str,
    title: str,
    category: str,
    severity: str | None = None,
    details: Any = None,
) -> tuple[Incident, bool]:
    """An alert: a new incident in triage, or — when an open incident with the same key saw
    an alert within 48 hours — a timeline entry on it. Returns (incident, created)."""
    _require(actor, "incident.open")
    key = _text(dedupe_key, field="dedupe_key", limit=MAX_DEDUPE_KEY, required=True)
    title = _text(title, field="title", limit=MAX_TITLE, required=True)
    category = clean_category(category)
    severity = clean_severity(severity)
    body = _details_text(details)
    _lock_dedupe_key(actor.org, key)
    now = timezone.now()
    existing = (
        Incident.objects.for_org(actor.org)
        .select_for_update()
        .filter(dedupe_key=key, status__in=OPEN_STATUSES, last_alert_at__gte=now - DEDUPE_WINDOW)
        .order_by("-number")
        .first()
    )
    if existing is not None:
        existing.alert_count += 1
        existing.last_alert_at = now
        existing.save(update_fields=["alert_count", "last_alert_at", "updated_at"])
        _timeline(
            actor,
            existing,
            TimelineEntry.Kind.ALERT,
            f"Alert again ({existing.alert_count}): {title}" + (f"\n\n{body}" if body else ""),
            {"dedupe_key": key, "severity": severity, "category": category},
        )
        return existing, False
    summary = body
    if body and not isinstance(details, str):
        summary = f"Alert details:\n\n```json\n{body}\n```"
    incident = _create(
        actor,
        title=title,
        category=category,
        severity=severity,
        summary=summary[:MAX_SUMMARY],
        source=Source.ALERT,
        dedupe_key=key,
    )
    _opened(actor, incident)
    return incident, True


# ---------------------------------------------------------------------------- evidence


def _url(url_name: str, /, **kwargs) -> str:
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse(url_name, kwargs=kwargs)
    except NoReverseMatch:
        return ""


def _evidence_fields(kind: str, obj: Any) -> dict:
    """What to keep of a cited object: label, link, the keys conditions match on."""
    slug = obj.organization.slug
    if kind == Evidence.Kind.GENERATION:
        return {
            "ref": str(obj.external_id),
            "label": f"Generation {obj.external_id}",
            "url": _url("traces:generation", org_slug=slug, pk=obj.pk),
            "model_id": (obj.model_id or "")[:200],
            "prompt_name": (obj.prompt_name or "")[:200],
        }
    if kind == Evidence.Kind.MODEL_VERSION:
        return {
            "ref": str(obj.pk),
            "label": f"Model {obj.model_id}",
            "url": _url("catalog:detail", org_slug=slug, pk=obj.pk),
            "model_id": obj.model_id,
            "prompt_name": "",
        }
    if kind == Evidence.Kind.PROMPT_VERSION:
        prompt = obj.prompt
        return {
            "ref": str(obj.pk),
            "label": f"Prompt {prompt.name} v{obj.number}",
            "url": _url("prompts:version", org_slug=slug, name=prompt.name, number=obj.number),
            "model_id": getattr(obj.model, "model_id", "")[:200],
            "prompt_name": prompt.name,
        }
    if kind == Evidence.Kind.REVIEW:
        reviewer = getattr(obj, "reviewer", None)
        return {
            "ref": str(obj.pk),
            "label": f"Review {obj.pk}" + (f" by {reviewer.get_username()}" if reviewer else ""),
            "url": _url("reviews:item", org_slug=slug, queue_id=obj.queue_id, item_id=obj.item_id),
            "model_id": "",
            "prompt_name": "",
        }
    raise InvalidInput(f"Unknown evidence kind {kind!r}.", field="kind")


def _link_evidence(actor: Actor, incident: Incident, kind: str, obj: Any, extra=None) -> Evidence:
    if getattr(obj, "organization_id", None) != incident.organization_id:
        raise NotFound("No such object to link.")
    fields = _evidence_fields(kind, obj)
    existing = Evidence.objects.filter(incident=incident, kind=kind, ref=fields["ref"]).first()
    if existing is not None:
        return existing
    snapshot = snapshot_of(obj)
    if extra:
        snapshot["_extra"] = json.loads(json.dumps(extra, cls=DjangoJSONEncoder, default=str))
    evidence = Evidence.objects.create(
        organization_id=incident.organization_id,
        incident=incident,
        kind=kind,
        snapshot=snapshot,
        snapshot_hash=snapshot_hash(snapshot),
        added_by_label=actor.label[:200],
        **fields,
    )
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.LINK,
        f"Evidence linked: {evidence.label} (snapshot sha256 {evidence.snapshot_hash[:12]}…).",
        {"evidence": evidence.pk, "kind": kind, "ref": evidence.ref},
    )
    if kind == Evidence.Kind.GENERATION:
        _pin_generation(actor, obj, incident)
    return evidence


def _pin_generation(actor: Actor, generation: Any, incident: Incident) -> None:
    """Ask traces to keep the generation past retention (the snapshot keeps it regardless)."""
    from llmops.traces.services import generation_pin

    generation_pin(
        org=incident.organization,
        generation_ids=[generation.pk],
        reason=f"Evidence in {incident.ref}",
    )


@transaction.atomic
def evidence_link(*, actor: Actor, incident: Incident, kind: str, obj: Any) -> Evidence:
    """Cite a generation, prompt version, model version or review; snapshotted with a hash."""
    _same_org(actor, incident)
    incident = _locked(incident)
    _require(actor, "incident.open", incident)
    if incident.status not in OPEN_STATUSES and incident.status != Status.RESOLVED:
        raise PolicyViolation(
            f"incident_ended: {incident.ref} is {incident.status}.",
            details={"rule": "incident_ended"},
        )
    evidence = _link_evidence(actor, incident, kind, obj)
    _sync_checklists(actor, incident)
    audit_record(
        actor=actor,
        action="incident.evidence",
        target=incident,
        details={"kind": kind, "ref": evidence.ref, "sha256": evidence.snapshot_hash},
    )
    return evidence


@transaction.atomic
def incident_open_from_review(
    *,
    actor: Actor,
    title: str,
    category: str,
    severity: str | None = None,
    summary: str = "",
    generation: Any = None,
    review: Any = None,
    review_extra: dict | None = None,
) -> Incident:
    """Escalation from the reviewer screen: the generation and the review become evidence."""
    incident = _open(
        actor,
        title=title,
        category=category,
        severity=severity,
        summary=summary,
        source=Source.REVIEW,
    )
    if generation is not None:
        _link_evidence(actor, incident, Evidence.Kind.GENERATION, generation)
    if review is not None:
        _link_evidence(actor, incident, Evidence.Kind.REVIEW, review, extra=review_extra)
    _opened(actor, incident)
    return incident


# ---------------------------------------------------------------------------- lifecycle


def _rule(rule: str, message: str) -> PolicyViolation:
    return PolicyViolation(f"{rule}: {message}", code="policy_violation", details={"rule": rule})


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
    _same_org(actor, incident)
    incident = _locked(incident)
    _require(actor, "incident.manage", incident)
    if to not in Status.values:
        raise InvalidInput(
            f"Unknown status {to!r}; use one of {', '.join(Status.values)}.", field="to"
        )
    note = _text(note, field="note", limit=MAX_NOTE)
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
    severity_change = None
    if severity not in (None, "") and severity != incident.severity:
        severity_change = _change_severity(
            actor, incident, clean_severity(severity, allow_pending=False), severity_reason
        )
    blockers = transition_blockers(incident, to, note)
    if blockers:
        rule, message = blockers[0]
        raise PolicyViolation(
            f"{rule}: {message}.",
            details={"rule": rule, "rules": [r for r, _ in blockers]},
        )
    when = _clean_time(at, field="at") or timezone.now()
    previous = incident.status
    stamp = STATUS_TIMESTAMP.get(to)
    update = ["status", "updated_at"]
    if stamp:
        _check_chronology(incident, stamp, when)
        if to == Status.INVESTIGATING and incident.acknowledged_at is not None:
            stamp = None  # back to investigating from mitigated/resolved: keep the first ack
        else:
            setattr(incident, stamp, when)
            update.append(stamp)
    if previous in (Status.MITIGATED, Status.RESOLVED) and to == Status.INVESTIGATING:
        # Re-opened: later milestones no longer hold.
        for field in ("mitigated_at", "resolved_at"):
            if getattr(incident, field) is not None:
                setattr(incident, field, None)
                update.append(field)
    if to == Status.MITIGATED and note:
        incident.mitigation_note = note
        update.append("mitigation_note")
    if to == Status.DUPLICATE:
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
        incident.duplicate_of = original
        update.append("duplicate_of")
    if to in (Status.CANCELLED, Status.DUPLICATE):
        _check_chronology(incident, "closed_at", when)
        incident.closed_at = when
        update.append("closed_at")
    incident.status = to
    incident.save(update_fields=sorted(set(update)))
    body = f"Status {previous} → {to}."
    if to == Status.DUPLICATE:
        body = f"Status {previous} → duplicate of {incident.duplicate_of.ref}."
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.STATUS,
        body + (f"\n\n{note}" if note else ""),
        {"from": previous, "to": to, "at": when},
    )
    _notify(incident, "incident.status", f"{previous} → {to}", incident.title)
    audit_record(
        actor=actor,
        action="incident.transition",
        target=incident,
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
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.SEVERITY,
        f"Severity {previous} → {severity}." + (f"\n\nReason: {reason}" if reason else ""),
        {"from": previous, "to": severity, **({"reason": reason} if reason else {})},
    )
    _sync_checklists(actor, incident)
    _notify(incident, "incident.severity", f"severity {previous} → {severity}", incident.title)
    change = {"from": previous, "to": severity, "peak": incident.peak_severity}
    if reason:
        change["reason"] = reason
    return change


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
    _same_org(actor, incident)
    incident = _locked(incident)
    _require(actor, "incident.manage", incident)
    if incident.status in (Status.CLOSED, Status.CANCELLED, Status.DUPLICATE):
        raise _rule(
            "incident_ended", f"{incident.ref} is {incident.status}; it can no longer change"
        )
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
        _timeline(
            actor,
            incident,
            TimelineEntry.Kind.CATEGORY,
            f"Category {Category(previous).label} → {incident.get_category_display()}.",
            {"from": previous, "to": incident.category},
        )
        _sync_checklists(actor, incident)
    fields = []
    if title is not None:
        incident.title = _text(title, field="title", limit=MAX_TITLE, required=True)
        fields.append("title")
    if summary is not None:
        incident.summary = _text(summary, field="summary", limit=MAX_SUMMARY)
        fields.append("summary")
    if users_affected is not ...:
        incident.users_affected = _count(users_affected, field="users_affected")
        fields.append("users_affected")
    if cost_impact_usd is not ...:
        incident.cost_impact_usd = _decimal(cost_impact_usd, field="cost_impact_usd")
        fields.append("cost_impact_usd")
    if detected_at not in (None, ""):
        when = _clean_time(detected_at, field="detected_at")
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
    if fields:
        incident.save(update_fields=[*fields, "updated_at"])
        changes.update({f: str(getattr(incident, f)) for f in fields if f != "summary"})
    if changes:
        audit_record(actor=actor, action="incident.update", target=incident, details=changes)
    return incident


@transaction.atomic
def incident_set_commander(*, actor: Actor, incident: Incident, user: Any) -> Incident:
    """Hand command to a member (a maintainer or admin); `user=actor.user` takes command."""
    _same_org(actor, incident)
    incident = _locked(incident)
    _require(actor, "incident.manage", incident)
    _not_ended(incident)
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
    _same_org(actor, incident)
    _require(actor, "incident.open", incident)
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
    _same_org(actor, incident)
    incident = _locked(incident)
    _require(actor, "incident.manage", incident)
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
    aware = _clean_time(aware_at, field="aware_at") or incident.aware_at or timezone.now()
    initial = _clean_time(initial_report_at, field="initial_report_at")
    final = _clean_time(final_report_at, field="final_report_at")
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
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.AUTOMATED,
        f"Marked a serious incident ({SeriousKind(kind).label}); report due "
        f"{incident.report_due_at:%Y-%m-%d %H:%M} UTC ({days} days after awareness).",
        {"kind": kind, "aware_at": aware, "due": incident.report_due_at},
    )
    audit_record(
        actor=actor,
        action="incident.serious",
        target=incident,
        details={"kind": kind, "aware_at": aware, "due": incident.report_due_at},
    )
    return incident


# ---------------------------------------------------------------------------- postmortem


@transaction.atomic
def postmortem_save(*, actor: Actor, incident: Incident, body: str) -> Postmortem:
    _same_org(actor, incident)
    incident = _locked(incident)
    _require(actor, "incident.manage", incident)
    body = _text(body, field="body", limit=MAX_POSTMORTEM)
    if incident.status in (Status.CLOSED, Status.CANCELLED, Status.DUPLICATE):
        raise _rule(
            "incident_ended", f"{incident.ref} is {incident.status}; its postmortem is final"
        )
    postmortem, created = Postmortem.objects.get_or_create(
        incident=incident,
        defaults={
            "organization_id": incident.organization_id,
            "body": body,
            "updated_by_label": actor.label[:200],
        },
    )
    if not created:
        postmortem.body = body
        postmortem.updated_by_label = actor.label[:200]
        postmortem.save(update_fields=["body", "updated_by_label", "updated_at"])
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.POSTMORTEM,
        "Postmortem written." if created else "Postmortem updated.",
    )
    audit_record(
        actor=actor,
        action="incident.postmortem",
        target=incident,
        details={"sha256": hashlib.sha256(body.encode()).hexdigest(), "chars": len(body)},
    )
    return postmortem


def postmortem_template() -> str:
    return POSTMORTEM_TEMPLATE


def _clean_due(due: Any):
    if due in (None, ""):
        return None
    if isinstance(due, str):
        from django.utils.dateparse import parse_date

        try:
            parsed = parse_date(due.strip())
        except ValueError:  # e.g. 2026-02-30
            parsed = None
        if parsed is None:
            raise InvalidInput("due must be a date (YYYY-MM-DD).", field="due")
        return parsed
    if not isinstance(due, date):
        raise InvalidInput("due must be a date (YYYY-MM-DD).", field="due")
    return due


def _clean_link(link: Any) -> str:
    link = _text(link, field="link", limit=500)
    if link and not link.startswith(("https://", "http://", "/")):
        raise InvalidInput("link must be an http(s) URL or a path on this site.", field="link")
    return link


@transaction.atomic
def action_item_create(
    *,
    actor: Actor,
    incident: Incident,
    title: str,
    owner: Any = None,
    due: Any = None,
    link: str = "",
) -> ActionItem:
    _same_org(actor, incident)
    incident = _locked(incident)
    _require(actor, "incident.manage", incident)
    item = ActionItem.objects.create(
        organization_id=incident.organization_id,
        incident=incident,
        title=_text(title, field="title", limit=300, required=True),
        owner=_member(incident.organization, owner),
        due=_clean_due(due),
        link=_clean_link(link),
    )
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.POSTMORTEM,
        f"Action item: {item.title}"
        + (f" (owner {item.owner.get_username()})" if item.owner else " (no owner yet)"),
        {"action_item": item.pk},
    )
    audit_record(
        actor=actor,
        action="incident.action_item",
        target=incident,
        details={"item": item.pk, "title": item.title, "owner": item.owner_id, "due": item.due},
    )
    return item


@transaction.atomic
def action_item_update(
    *, actor: Actor, item: ActionItem, owner: Any = ..., due: Any = ..., done: bool | None = None
) -> ActionItem:
    _same_org(actor, item)
    _require(actor, "incident.manage", item.incident)
    item = ActionItem.objects.select_for_update().get(pk=item.pk)
    changes: dict[str, Any] = {}
    if owner is not ...:
        item.owner = _member(item.organization, owner)
        changes["owner"] = item.owner_id
    if due is not ...:
        item.due = _clean_due(due)
        item.overdue_notified_at = None
        changes["due"] = item.due
    if done is not None and done != item.done:
        item.done = done
        item.done_at = timezone.now() if done else None
        changes["done"] = done
    if not changes:
        return item
    item.save()
    _timeline(
        actor,
        item.incident,
        TimelineEntry.Kind.POSTMORTEM,
        f"Action item {'done' if changes.get('done') else 'updated'}: {item.title}",
        {"action_item": item.pk, **{k: str(v) for k, v in changes.items()}},
    )
    audit_record(
        actor=actor,
        action="incident.action_item",
        target=item.incident,
        details={"item": item.pk, **changes},
    )
    return item


@transaction.atomic
def action_items_notify_overdue(*, org) -> int:
    """Tell each owner (or the admins, for an item with none) about overdue action items,
    once per item and due date. Called by the beat task."""
    today = timezone.localdate()
    items = list(
        ActionItem.objects.for_org(org)
        .select_for_update(skip_locked=connection.vendor == "postgresql", of=("self",))
        .filter(done=False, due__lt=today, overdue_notified_at__isnull=True)
        .select_related("incident", "owner")
    )
    for item in items:
        recipients = [item.owner] if item.owner else list(admins_of(org=org))
        notify(
            org=org,
            recipients=recipients,
            kind="incident.action_item_overdue",
            subject=f"{item.incident.ref}: action item overdue since {item.due:%Y-%m-%d}",
            body=item.title,
            link=f"/o/{org.slug}/incidents/{item.incident.number}/",
        )
    if items:
        ActionItem.objects.filter(pk__in=[i.pk for i in items]).update(
            overdue_notified_at=timezone.now()
        )
    return len(items)


# ---------------------------------------------------------------------------- evals loop


@transaction.atomic
def incident_add_eval_case(
    *,
    actor: Actor,
    incident: Incident,
    dataset: Any,
    input: Any,
    expected: Any = None,
    criteria: str = "",
    tags: Iterable[str] = (),
) -> IncidentEvalCase:
    """Add the failure to an eval dataset (through evals' service) and link the case."""
    from llmops.evals.services import case_create

    _same_org(actor, incident)
    incident = _locked(incident)
    _require(actor, "incident.manage", incident)
    if dataset is None or dataset.organization_id != incident.organization_id:
        raise NotFound("No such dataset.")
    case = case_create(
        actor=actor,
        dataset=dataset,
        input=input,
        expected=expected,
        criteria=criteria,
        tags=tuple(tags) or ("incident", incident.category),
        source_kind="incident",
        source_label=incident.ref,
        source_link=incident_link(incident),
    )
    link = IncidentEvalCase.objects.create(
        organization_id=incident.organization_id,
        incident=incident,
        eval_case_id=case.pk,
        dataset_name=dataset.name,
        created_by_label=actor.label[:200],
    )
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.ACTION,
        f"Failure added to eval dataset {dataset.name} as case {case.pk}.",
        {"eval_case": case.pk, "dataset": dataset.pk},
    )
    audit_record(
        actor=actor,
        action="incident.eval_case",
        target=incident,
        details={"case": case.pk, "dataset": dataset.name},
    )
    return link


@transaction.atomic
def incident_link_eval_case(
    *, actor: Actor, incident: Incident, case: Any, note: Any = ""
) -> IncidentEvalCase:
    """A maintainer states that an existing eval case captures this incident's failure (e.g.
    one made from the review that escalated it). A person's decision, on the timeline and in
    the audit log; only such links and cases created from the incident count for the
    eval-case rule."""
    _same_org(actor, incident)
    incident = _locked(incident)
    _require(actor, "incident.manage", incident)
    if not actor.is_human:
        raise NotPermitted(
            "Linking an existing eval case is a maintainer's decision; machine keys may not."
        )
    _not_ended(incident)
    if case is None or case.organization_id != incident.organization_id:
        raise NotFound("No such eval case.")
    note = _text(note, field="note", limit=MAX_REASON)
    if IncidentEvalCase.objects.filter(incident=incident, eval_case_id=case.pk).exists():
        raise InvalidInput(
            f"Eval case {case.pk} is already linked to {incident.ref}.", field="case"
        )
    dataset_name = case.dataset.name
    link = IncidentEvalCase.objects.create(
        organization_id=incident.organization_id,
        incident=incident,
        eval_case_id=case.pk,
        dataset_name=dataset_name,
        how=IncidentEvalCase.How.LINKED,
        note=note,
        created_by_label=actor.label[:200],
    )
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.ACTION,
        f"Existing eval case {case.pk} in dataset {dataset_name} linked as this failure's case."
        + (f"\n\n{note}" if note else ""),
        {"eval_case": case.pk, "dataset": case.dataset_id, "how": "linked"},
    )
    audit_record(
        actor=actor,
        action="incident.eval_case_link",
        target=incident,
        details={
            "case": case.pk,
            "dataset": dataset_name,
            "case_source_kind": case.source_kind,
            "case_source_label": case.source_label,
            "note": note,
        },
    )
    return link


# ---------------------------------------------------------------------------- quick actions


@transaction.atomic
def incident_suspend_model(*, actor: Actor, incident: Incident, model: Any, reason: str) -> Any:
    """Suspend a model version in the catalog (the catalog checks who may), on the record."""
    from llmops.catalog.services import model_transition

    _same_org(actor, incident)
    incident = _locked(incident)
    _require(actor, "incident.manage", incident)
    _not_ended(incident)
    if model is None or model.organization_id != incident.organization_id:
        raise NotFound("No such model version.")
    reason = _text(reason, field="reason", limit=MAX_NOTE, required=True)
    model = model_transition(
        actor=actor, model=model, to="suspended", reason=f"{incident.ref}: {reason}"
    )
    _link_evidence(actor, incident, Evidence.Kind.MODEL_VERSION, model)
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.ACTION,
        f"Quick action: suspended model {model.model_id}. {reason}",
        {"model": model.pk, "action": "suspend_model"},
    )
    audit_record(
        actor=actor,
        action="incident.quick_action",
        target=incident,
        details={"action": "suspend_model", "model": model.model_id, "reason": reason},
    )
    return model


def rollback_target(*, prompt: Any, label_name: str) -> tuple[Any, Any]:
    """(current version, previous approved version) of a prompt label, or raise."""
    from prompts.models import Label, PromptVersion

    label = Label.objects.filter(prompt=prompt, name=label_name).select_related("version").first()
    if label is None or label.version is None:
        raise InvalidInput(f"Prompt {prompt.name} has no label {label_name!r}.", field="label")
    previous = (
        PromptVersion.objects.filter(
            prompt=prompt, number__lt=label.version.number, status="approved"
        )
        .select_related("model")
        .order_by("-number")
        .first()
    )
    if previous is None:
        raise _rule(
            "no_previous_version",
            f"{prompt.name}@{label_name} has no earlier approved version to roll back to",
        )
    return label.version, previous


@transaction.atomic
def incident_rollback_prompt(
    *,
    actor: Actor,
    incident: Incident,
    prompt: Any,
    label: str,
    reason: str,
    break_glass_reason: str | None = None,
) -> Any:
    """Roll a prompt label back to its previous approved version through prompts' deploy
    service (which enforces protected labels; break-glass where that version's model is now
    suspended). Both versions become evidence."""
    from prompts.services import label_deploy

    _same_org(actor, incident)
    incident = _locked(incident)
    _require(actor, "incident.manage", incident)
    _not_ended(incident)
    if prompt is None or prompt.organization_id != incident.organization_id:
        raise NotFound("No such prompt.")
    reason = _text(reason, field="reason", limit=MAX_NOTE, required=True)
    current, previous = rollback_target(prompt=prompt, label_name=label)
    result = label_deploy(
        actor=actor,
        prompt=prompt,
        label=label,
        version=previous,
        reason=f"{incident.ref} rollback: {reason}",
        break_glass_reason=break_glass_reason or "",
    )
    _link_evidence(actor, incident, Evidence.Kind.PROMPT_VERSION, current)
    _link_evidence(actor, incident, Evidence.Kind.PROMPT_VERSION, previous)
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.ACTION,
        f"Quick action: rolled {prompt.name}@{label} back from v{current.number} to "
        f"v{previous.number}. {reason}"
        + (f"\n\nBreak-glass: {break_glass_reason}" if break_glass_reason else ""),
        {
            "action": "rollback_prompt",
            "prompt": prompt.name,
            "label": label,
            "from": current.number,
            "to": previous.number,
            "break_glass": bool(break_glass_reason),
        },
    )
    _sync_checklists(actor, incident)
    audit_record(
        actor=actor,
        action="incident.quick_action",
        target=incident,
        details={
            "action": "rollback_prompt",
            "prompt": prompt.name,
            "label": label,
            "from": current.number,
            "to": previous.number,
            "break_glass_reason": break_glass_reason or "",
        },
    )
    return result
