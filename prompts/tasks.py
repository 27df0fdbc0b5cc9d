"""Celery tasks of the prompt registry: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from llmops.tenancy.models import Organization

from . import services


@shared_task(name="prompts.tasks.warn_model_risks")
def warn_model_risks() -> int:
    """Daily: warn owners about deprecated/suspended/retired/retiring models behind labels."""
    sent = 0
    for org_id in Organization.objects.values_list("pk", flat=True):
        org = Organization.objects.get(pk=org_id)
        sent += services.labels_warn_model_risks(org=org)
    return sent
