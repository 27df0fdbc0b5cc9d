"""Delivering outbound rows (e-mail, signed webhooks): one attempt at a time, recorded,
with jittered exponential backoff and a ceiling of attempts."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta

from celery.utils.time import get_exponential_backoff_interval
from django.core.mail import EmailMessage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from .. import egress, signing
from ..models import Channel, DeliveryAttempt, Notification, Status
from ._common import OUTBOUND, _conf, _private_allowed, absolute_link, max_attempts

NOT_DUE_TOLERANCE = 5  # seconds of clock skew allowed between workers and retries


def backoff_ceiling(attempts: int) -> int:
    """The longest wait before attempt `attempts + 1`: base * 2^(attempts-1), capped below
    Redis' visibility timeout so a waiting retry is never redelivered as if lost."""
    base = int(_conf("NOTIFY_BACKOFF_SECONDS", 30))
    cap = int(_conf("NOTIFY_BACKOFF_MAX_SECONDS", 1800))
    return int(min(cap, base * (2 ** max(0, attempts - 1))))


def backoff_seconds(attempts: int) -> int:
    """Seconds before attempt `attempts + 1`: uniformly random up to `backoff_ceiling`
    ("full jitter", Celery's helper), so deliveries that failed together (a receiver's
    outage) do not all come back at the same moment. At least one second."""
    base = int(_conf("NOTIFY_BACKOFF_SECONDS", 30))
    cap = int(_conf("NOTIFY_BACKOFF_MAX_SECONDS", 1800))
    delay = get_exponential_backoff_interval(
        factor=base, retries=max(0, attempts - 1), maximum=cap, full_jitter=True
    )
    return max(1, int(delay))


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str  # delivered | retry | failed | skipped
    retry_in: int | None = None
    detail: str = ""


class DeliveryError(Exception):
    """A failed attempt; `permanent` when retrying cannot help (the row fails at once)."""

    def __init__(self, message: str, status_code: int | None = None, permanent: bool = False):
        super().__init__(message)
        self.status_code = status_code
        self.permanent = permanent


def slack_escape(text: str) -> str:
    """Slack reads `<...>` as links and mentions (`<!channel>`): user text must not."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_payload(notification: Notification) -> dict:
    link = absolute_link(notification.link)
    subject = slack_escape(notification.subject)
    parts = (f"*{subject}*" if subject else "", slack_escape(notification.body), link)
    text = "\n".join(part for part in parts if part)
    return {
        "id": str(notification.idempotency_key),
        "kind": notification.kind,
        "organization": notification.organization.slug,
        "subject": notification.subject,
        "text": text,
        "link": link,
        "created_at": notification.created_at.isoformat(),
        "payload": notification.payload,
    }


def _post_webhook(notification: Notification) -> int:
    """POST the signed payload to the endpoint, connected to the address that was checked
    (llmops.notify.egress: one DNS look-up; a non-public address is refused for good
    unless NOTIFY_ALLOW_PRIVATE_WEBHOOKS)."""
    endpoint = notification.endpoint
    body = json.dumps(
        webhook_payload(notification), cls=DjangoJSONEncoder, separators=(",", ":")
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "llmops-webhooks/1",
        **signing.headers(endpoint.signing_secrets(), str(notification.idempotency_key), body),
    }
    try:
        response = egress.post(
            endpoint.url,
            body=body,
            headers=headers,
            timeout=float(_conf("NOTIFY_HTTP_TIMEOUT", 10)),
            allow_private=_private_allowed(),
        )
    except egress.EgressRefused as exc:
        raise DeliveryError(str(exc), permanent=True)
    except egress.EgressFailed as exc:
        raise DeliveryError(str(exc))
    code = response.status
    if not 200 <= code < 300:
        raise DeliveryError(f"HTTP {code} {response.reason}".strip(), status_code=code)
    return code


def _send_email(notification: Notification) -> None:
    recipient = notification.recipient
    if recipient is None or not recipient.email or not recipient.is_active:
        raise DeliveryError("the recipient has no e-mail address")
    link = absolute_link(notification.link)
    text = notification.body + (f"\n\n{link}" if link else "")
    message = EmailMessage(
        subject=f"[llmops] {notification.subject}",
        body=text,
        to=[recipient.email],
        headers={signing.DELIVERY_HEADER: str(notification.idempotency_key)},
    )
    message.send(fail_silently=False)


def _give_up(notification: Notification, error: str) -> DeliveryOutcome:
    notification.status = Status.FAILED
    notification.next_attempt_at = None
    notification.last_error = error
    notification.save(update_fields=["status", "next_attempt_at", "last_error"])
    return DeliveryOutcome("failed", detail=error)


def _due(notification_id: int) -> tuple[Notification | None, DeliveryOutcome | None]:
    """The row locked for an attempt, or the outcome without one: skipped (absent, held by
    another worker, no longer pending, not due yet) or failed (out of attempts, or its
    webhook endpoint disabled)."""
    notification = (
        Notification.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("organization", "recipient", "endpoint")
        .filter(pk=notification_id, channel__in=OUTBOUND)
        .first()
    )
    if notification is None:
        return None, DeliveryOutcome("skipped", detail="absent or being delivered")
    if notification.status != Status.PENDING:
        return None, DeliveryOutcome("skipped", detail=f"already {notification.status}")
    due = notification.next_attempt_at
    if due is not None and due > timezone.now() + timedelta(seconds=NOT_DUE_TOLERANCE):
        # A duplicate task (a redelivery, a sweep) must not cut a backoff short; the
        # scheduled retry arrives on time.
        return None, DeliveryOutcome("skipped", detail="not due yet")
    if notification.attempts >= max_attempts():
        return None, _give_up(notification, notification.last_error or "too many attempts")
    if notification.channel == Channel.WEBHOOK and (
        notification.endpoint is None or not notification.endpoint.active
    ):
        return None, _give_up(notification, "the webhook endpoint is disabled")
    return notification, None


def _attempt(notification: Notification) -> tuple[int | None, str, bool]:
    """Send once: (HTTP status or None, the error or "", whether the error is permanent)."""
    try:
        if notification.channel == Channel.WEBHOOK:
            return _post_webhook(notification), "", False
        _send_email(notification)
        return None, "", False
    except DeliveryError as exc:
        return exc.status_code, str(exc), exc.permanent
    except Exception as exc:  # noqa: BLE001 - any transport failure is a failed attempt
        return None, f"{type(exc).__name__}: {exc}", False


def _settle(notification: Notification, error: str, permanent: bool, now) -> DeliveryOutcome:
    """Count the attempt on the row: delivered, failed for good, or due again later."""
    notification.attempts += 1
    notification.last_error = error[:2000]
    fields = ["attempts", "last_error", "status", "next_attempt_at", "delivered_at"]
    if not error:
        notification.status = Status.DELIVERED
        notification.delivered_at = now
        notification.next_attempt_at = None
        notification.save(update_fields=fields)
        return DeliveryOutcome("delivered")
    if permanent or notification.attempts >= max_attempts():
        notification.status = Status.FAILED
        notification.next_attempt_at = None
        notification.save(update_fields=fields)
        return DeliveryOutcome("failed", detail=error)
    retry_in = backoff_seconds(notification.attempts)
    notification.next_attempt_at = now + timedelta(seconds=retry_in)
    notification.save(update_fields=fields)
    return DeliveryOutcome("retry", retry_in=retry_in, detail=error)


def notification_deliver(*, notification_id: int) -> DeliveryOutcome:
    """One delivery attempt of one outbound row, recorded as a DeliveryAttempt.

    The row stays locked (FOR UPDATE SKIP LOCKED) during the attempt, so two workers never
    send it at the same moment; a row another worker holds, or one already delivered or
    failed, is skipped. A worker killed mid-attempt rolls back: the row stays pending and
    is sent again (at least once)."""
    with transaction.atomic():
        notification, outcome = _due(notification_id)
        if outcome is not None:
            return outcome
        started = time.perf_counter()
        status_code, error, permanent = _attempt(notification)
        duration_ms = int((time.perf_counter() - started) * 1000)
        now = timezone.now()
        DeliveryAttempt.objects.create(
            notification=notification,
            at=now,
            ok=not error,
            status_code=status_code,
            error=error[:2000],
            duration_ms=duration_ms,
        )
        return _settle(notification, error, permanent, now)
