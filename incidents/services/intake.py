"""Incident intake: by hand, escalated from a review, and from alerts (deduplicated per key
within 48 hours)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.common import clean
from llmops.common.errors import (
    InvalidInput,
    TooLarge,
)
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import require

from ..models import (
    OPEN_STATUSES,
    Category,
    Evidence,
    Incident,
    IncidentCounter,
    Source,
    TimelineEntry,
)
from ._common import (
    DEDUPE_WINDOW,
    MAX_ALERT_DETAILS_BYTES,
    MAX_DEDUPE_KEY,
    MAX_SUMMARY,
    MAX_TITLE,
    _notify,
    _text,
    _timeline,
    clean_category,
    clean_severity,
)
from .checklists import _sync_checklists
from .evidence import _link_evidence


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
    require(actor, "incident.open")
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
        detected_at=clean.timestamp(detected_at, field="detected_at"),
        users_affected=clean.count(users_affected, field="users_affected"),
        cost_impact_usd=clean.money(cost_impact_usd, field="cost_impact_usd"),
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
    require(actor, "incident.open")
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
