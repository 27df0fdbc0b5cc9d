"""Celery tasks of incidents: thin wrappers around services."""

from celery import shared_task


@shared_task(name="incidents.tasks.notify_overdue_action_items")
def notify_overdue_action_items() -> int:
    """Hourly: tell owners (or the admins, for an unowned item) about overdue action items,
    once per item and due date."""
    from llmops.tenancy.models import Organization

    from .services import action_items_notify_overdue

    total = 0
    for org_id in Organization.objects.values_list("pk", flat=True).order_by("pk"):
        org = Organization.objects.get(pk=org_id)
        total += action_items_notify_overdue(org=org)
    return total
