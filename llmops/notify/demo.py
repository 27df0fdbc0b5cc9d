"""Demo data: a few inbox notifications and a disabled webhook endpoint (no traffic)."""

from __future__ import annotations

from django.utils import timezone

from llmops.common.errors import InvalidInput
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Role

from . import services
from .models import Channel, Notification


def seed(*, org, users, stdout) -> None:
    admin = users["admin"]
    maint1 = users["maint1"]
    base = f"/o/{org.slug}"
    items = [
        (
            [admin, maint1],
            "prompt.review_requested",
            "Review requested: support-reply v3",
            "maint2 proposed version 3 of support-reply and asked for your review.",
            f"{base}/prompts/",
        ),
        (
            [admin],
            "model.proposed",
            "Model proposed: gpt-4o-2024-08-06",
            "A maintainer proposed a model version for approval.",
            f"{base}/models/",
        ),
        (
            [maint1],
            "incident.opened",
            "INC-1 opened: hallucinated refund policy",
            "A reviewer opened a SEV3 incident in the hallucination category.",
            f"{base}/incidents/",
        ),
    ]
    for recipients, kind, subject, body, link in items:
        services.notify(
            org=org,
            recipients=recipients,
            kind=kind,
            subject=subject,
            body=body,
            link=link,
            email=False,
            webhooks=False,
        )
    # Everything read but the review request, so the bell shows one unread for each of them.
    Notification.objects.for_org(org).filter(channel=Channel.INBOX).exclude(
        kind="prompt.review_requested"
    ).update(read_at=timezone.now())
    actor = Actor(org=org, user=admin, role=Role.ADMIN)
    try:
        services.webhook_create(
            actor=actor,
            name="Team Slack (demo, disabled)",
            url="http://127.0.0.1:9/",
            event_filter=["prompt.", "incident."],
            active=False,
        )
    except InvalidInput:  # private addresses refused (DEBUG off): no demo endpoint then
        pass
    stdout.write(f"{org.slug}: notifications for admin and maint1, one disabled webhook")
