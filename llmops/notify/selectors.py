"""Tenant-scoped reads of notifications and webhook endpoints."""

from __future__ import annotations

from django.db.models import Case, Count, OuterRef, Q, QuerySet, Subquery, Value, When

from .models import Channel, DeliveryAttempt, Notification, Status, WebhookEndpoint


def inbox_list(*, org, user, unread_only: bool = False) -> QuerySet[Notification]:
    """The user's own inbox in this organization: unread first, then newest first."""
    qs = Notification.objects.for_org(org).filter(recipient=user, channel=Channel.INBOX)
    if unread_only:
        qs = qs.filter(read_at__isnull=True)
    unread_first = Case(When(read_at__isnull=True, then=Value(0)), default=Value(1))
    return qs.order_by(unread_first, "-created_at", "-pk")


def unread_count(*, org, user) -> int:
    if user is None or not getattr(user, "is_authenticated", False) or org is None:
        return 0
    return (
        Notification.objects.for_org(org)
        .filter(recipient=user, channel=Channel.INBOX, read_at__isnull=True)
        .count()
    )


def webhook_list(*, org) -> QuerySet[WebhookEndpoint]:
    """Endpoints with their delivery counts and their latest attempt."""
    latest = DeliveryAttempt.objects.filter(notification__endpoint=OuterRef("pk")).order_by(
        "-at", "-pk"
    )
    return (
        WebhookEndpoint.objects.for_org(org)
        .annotate(
            pending_count=Count("notifications", filter=Q(notifications__status=Status.PENDING)),
            failed_count=Count("notifications", filter=Q(notifications__status=Status.FAILED)),
            delivered_count=Count(
                "notifications", filter=Q(notifications__status=Status.DELIVERED)
            ),
            last_attempt_at=Subquery(latest.values("at")[:1]),
            last_attempt_ok=Subquery(latest.values("ok")[:1]),
            last_status_code=Subquery(latest.values("status_code")[:1]),
        )
        .select_related("created_by")
        .order_by("name", "pk")
    )


def webhook_get(*, org, endpoint_id: int) -> WebhookEndpoint:
    return WebhookEndpoint.objects.for_org(org).select_related("created_by").get(pk=endpoint_id)


def endpoint_attempts(*, org, endpoint) -> QuerySet[DeliveryAttempt]:
    """Delivery attempts to one endpoint, newest first."""
    return (
        DeliveryAttempt.objects.filter(
            notification__organization=org, notification__endpoint=endpoint
        )
        .select_related("notification")
        .order_by("-at", "-pk")
    )


def endpoint_outbox(*, org, endpoint, status: str = "") -> QuerySet[Notification]:
    qs = Notification.objects.for_org(org).filter(endpoint=endpoint, channel=Channel.WEBHOOK)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-pk")
