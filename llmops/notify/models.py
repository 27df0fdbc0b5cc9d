"""The notifications outbox: one row per message and channel, written in the caller's
transaction and delivered after commit; webhook endpoints; one row per delivery attempt."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from llmops.common.crypto import EncryptedTextField
from llmops.tenancy.models import Organization, OrgQuerySet


class Channel(models.TextChoices):
    INBOX = "inbox", "In-app inbox"
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookEndpoint(models.Model):
    """Where an organization wants its events POSTed. The secret signs every delivery; it is
    stored encrypted (HMAC needs it back) and shown to the admin once, when created or
    rotated. After a rotation the previous secret also signs until `previous_secret_until`,
    so receivers can switch without missing a delivery."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = EncryptedTextField()
    previous_secret = EncryptedTextField(blank=True, default="")
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    event_filter = models.JSONField(
        default=list,
        blank=True,
        help_text="Kind prefixes to send, e.g. ['prompt.', 'incident.']; empty sends every kind.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    def signing_secrets(self, now=None) -> list[str]:
        """The current secret first, then the previous one while its grace period runs."""
        now = now or timezone.now()
        found = [self.secret]
        if self.previous_secret and self.previous_secret_until and self.previous_secret_until > now:
            found.append(self.previous_secret)
        return found

    def matches(self, kind: str) -> bool:
        return not self.event_filter or any(kind.startswith(p) for p in self.event_filter)


class Notification(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="notifications"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    kind = models.CharField(max_length=80)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When the next delivery is due: creation time, then now + backoff after a failure.
    # The stale sweep re-queues rows whose due time passed long ago (a lost task).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The inbox page: one user's inbox rows in one organization, newest first.
            models.Index(
                fields=["recipient", "organization", "-created_at"],
                condition=Q(channel="inbox"),
                name="notify_inbox",
            ),
            # The bell: COUNT of unread inbox rows.
            models.Index(
                fields=["recipient", "organization"],
                condition=Q(channel="inbox", read_at__isnull=True),
                name="notify_unread",
            ),
            # The stale sweep: pending outbound rows by due time.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="notify_pending_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} via {self.channel} ({self.status})"

    @property
    def is_unread(self) -> bool:
        return self.read_at is None


class DeliveryAttempt(models.Model):
    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="delivery_attempts"
    )
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["notification", "-at"], name="notify_attempt_by_row")]

    def __str__(self) -> str:
        return f"attempt on {self.notification_id}: {'ok' if self.ok else 'failed'}"
