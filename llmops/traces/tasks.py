"""Beat tasks for traces: retention and per-user rollup compaction (thin wrappers around
services)."""

from __future__ import annotations

from datetime import UTC, timedelta

from celery import shared_task
from django.utils import timezone

from llmops.tenancy.models import Organization

from . import services


@shared_task(name="llmops.traces.tasks.purge_expired")
def purge_expired(org_id: int | None = None) -> int:
    """Delete generations older than each organization's retention (evidence stays)."""
    orgs = Organization.objects.all() if org_id is None else Organization.objects.filter(pk=org_id)
    deleted = 0
    for org in orgs.order_by("pk"):
        deleted += services.generations_purge_expired(org=org)
    return deleted


@shared_task(name="llmops.traces.tasks.compact_user_rollups")
def compact_user_rollups(org_id: int | None = None, recent_days: int | None = 2) -> int:
    """Fold the per-user rollup rows ingest appended into one row per end user and day: every
    minute over the last `recent_days` days, nightly over all days (recent_days=None) for late
    events."""
    since = None
    if recent_days is not None:
        since = (timezone.now() - timedelta(days=recent_days)).astimezone(UTC).date()
    orgs = Organization.objects.all() if org_id is None else Organization.objects.filter(pk=org_id)
    folded = 0
    for org in orgs.order_by("pk"):
        folded += services.user_rollups_compact(org=org, since=since)
    return folded
