"""Reads of the audit trail, always for one organization."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from .models import AuditEvent


def event_list(
    *,
    org,
    actor: str = "",
    action: str = "",
    target: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.for_org(org)
    if actor:
        qs = qs.filter(actor_label__icontains=actor)
    if action:
        qs = (
            qs.filter(action__startswith=action)
            if action.endswith(".")
            else qs.filter(action=action)
        )
    if target:
        qs = qs.filter(target_label__icontains=target) | qs.filter(target_type=target)
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lt=until)
    return qs.order_by("-seq")


def action_names(*, org) -> list[str]:
    return list(
        AuditEvent.objects.for_org(org)
        .order_by("action")
        .values_list("action", flat=True)
        .distinct()
    )


def events_for_target(*, org, target_type: str, target_id) -> QuerySet[AuditEvent]:
    return (
        AuditEvent.objects.for_org(org)
        .filter(target_type=target_type, target_id=str(target_id))
        .order_by("-seq")
    )
