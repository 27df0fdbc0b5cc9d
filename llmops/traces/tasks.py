"""Beat tasks for traces: retention (thin wrappers around services)."""

from __future__ import annotations

from celery import shared_task

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
