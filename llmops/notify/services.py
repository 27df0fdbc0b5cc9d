"""Writing notifications (the outbox), delivering them, and managing webhook endpoints.

A service that wants to tell someone calls `notify(...)` inside its own transaction: the
rows are written with it (a rollback leaves none) and e-mail/webhook rows are handed to
Celery only after commit. Delivery is at least once; receivers deduplicate on the
idempotency id (`id` in the JSON, `X-Llmops-Delivery` header)."""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput, NotFound, NotPermitted
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import can
from llmops.tenancy.selectors import admins_of

from . import egress, signing
from .models import Channel, DeliveryAttempt, Notification, Status, WebhookEndpoint

User = get_user_model()

OUTBOUND = (Channel.EMAIL, Channel.WEBHOOK)
NOT_DUE_TOLERANCE = 5  # seconds of clock skew allowed between workers and retries
REQUEUE_BATCH = 500


def _conf(name: str, default):
    return settings.LLMOPS.get(name, default)


def max_attempts() -> int:
    return int(_conf("NOTIFY_MAX_ATTEMPTS", 8))


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


def _base_url() -> str:
    return (_conf("BASE_URL", "") or "http://127.0.0.1:8000").rstrip("/")


def safe_link(link) -> str:
    """A notification links only to a path on this site: an absolute link to this site
    (BASE_URL's host) becomes its path; another host, a scheme other than http(s) such as
    `javascript:`, or anything Django's `url_has_allowed_host_and_scheme` refuses is
    dropped ("")."""
    link = link.strip() if isinstance(link, str) else ""
    if not link or len(link) > 500 or any(ord(c) < 32 or ord(c) == 127 for c in link):
        return ""
    base = urllib.parse.urlsplit(_base_url())
    if not url_has_allowed_host_and_scheme(
        link, allowed_hosts={base.netloc}, require_https=base.scheme == "https"
    ):
        return ""
    parts = urllib.parse.urlsplit(link)
    if parts.scheme or parts.netloc:
        link = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
    if not link.startswith("/") or link.startswith("//") or "\\" in link:
        return ""
    return link


def absolute_link(link: str) -> str:
    link = safe_link(link)
    return f"{_base_url()}{link}" if link else ""


def _json(value) -> dict:
    return json.loads(json.dumps(value or {}, cls=DjangoJSONEncoder))


def _require(actor: Actor, action: str, obj=None) -> None:
    if not can(actor, action, obj):
        raise NotPermitted(f"You may not do '{action}' here.")


# --- the outbox --------------------------------------------------------------------------


def _enqueue(notification_ids: list[int]) -> None:
    from . import tasks

    for notification_id in notification_ids:
        tasks.deliver.delay(notification_id)


def _enqueue_on_commit(notification_ids: list[int]) -> None:
    if notification_ids:
        # robust: a broker outage must not fail the caller's committed request; the stale
        # sweep picks the rows up later.
        transaction.on_commit(partial(_enqueue, list(notification_ids)), robust=True)


def notify(
    *,
    org,
    recipients: Iterable,
    kind: str,
    subject: str,
    body: str,
    link: str = "",
    payload: dict | None = None,
    email: bool = True,
    webhooks: bool = True,
) -> list[Notification]:
    """Write the outbox rows for one event. Must be called inside the caller's transaction.

    One inbox row per recipient (delivered at once: the inbox is the database), one e-mail
    row per recipient with an address (when `email`), one webhook row per active endpoint
    whose filter matches `kind` (when `webhooks`). Recipients who are not active members
    of `org` are ignored. E-mail and webhook rows are queued for delivery after commit."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("notify must be called inside the caller's transaction")
    kind = (kind or "").strip()
    if not kind or len(kind) > 80:
        raise InvalidInput("A notification needs a kind of at most 80 characters.", field="kind")
    link = safe_link(link)
    payload = _json(payload)
    subject = (subject or "").strip()[:200]
    ids = {getattr(r, "pk", r) for r in recipients if r is not None}
    users = (
        list(
            User.objects.filter(pk__in=ids, is_active=True, memberships__organization=org)
            .distinct()
            .order_by("pk")
        )
        if ids
        else []
    )
    now = timezone.now()
    common = {
        "organization": org,
        "kind": kind,
        "subject": subject,
        "body": body or "",
        "link": link,
        "payload": payload,
        "created_at": now,
    }
    rows = []
    for user in users:
        rows.append(
            Notification(
                recipient=user,
                channel=Channel.INBOX,
                status=Status.DELIVERED,
                delivered_at=now,
                **common,
            )
        )
        if email and user.email:
            rows.append(
                Notification(recipient=user, channel=Channel.EMAIL, next_attempt_at=now, **common)
            )
    if webhooks:
        for endpoint in WebhookEndpoint.objects.for_org(org).filter(active=True):
            if endpoint.matches(kind):
                rows.append(
                    Notification(
                        endpoint=endpoint, channel=Channel.WEBHOOK, next_attempt_at=now, **common
                    )
                )
    created = Notification.objects.bulk_create(rows)
    _enqueue_on_commit([n.pk for n in created if n.channel in OUTBOUND])
    return created


def notify_admins(
    *, org, kind: str, subject: str, body: str, link: str = "", payload: dict | None = None
) -> list[Notification]:
    """`notify` every admin of the organization (e.g. a break-glass override)."""
    return notify(
        org=org,
        recipients=admins_of(org=org),
        kind=kind,
        subject=subject,
        body=body,
        link=link,
        payload=payload,
    )


# --- the inbox ---------------------------------------------------------------------------


def _own_inbox(actor: Actor):
    if actor.user is None or actor.is_machine:
        raise NotPermitted("Only a person has an inbox.")
    return Notification.objects.for_org(actor.org).filter(
        recipient=actor.user, channel=Channel.INBOX
    )


@transaction.atomic
def notification_mark_read(*, actor: Actor, notification_id: int) -> Notification:
    """Mark one of the actor's own inbox notifications read (another's is NotFound)."""
    notification = _own_inbox(actor).filter(pk=notification_id).first()
    if notification is None:
        raise NotFound("No such notification.")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
def notification_mark_all_read(*, actor: Actor) -> int:
    return _own_inbox(actor).filter(read_at__isnull=True).update(read_at=timezone.now())


# --- delivery ----------------------------------------------------------------------------


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


def _private_allowed() -> bool:
    return bool(_conf("NOTIFY_ALLOW_PRIVATE_WEBHOOKS", False))


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


def notification_deliver(*, notification_id: int) -> DeliveryOutcome:
    """One delivery attempt of one outbound row, recorded as a DeliveryAttempt.

    The row stays locked (FOR UPDATE SKIP LOCKED) during the attempt, so two workers never
    send it at the same moment; a row another worker holds, or one already delivered or
    failed, is skipped. A worker killed mid-attempt rolls back: the row stays pending and
    is sent again (at least once)."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("organization", "recipient", "endpoint")
            .filter(pk=notification_id, channel__in=OUTBOUND)
            .first()
        )
        if notification is None:
            return DeliveryOutcome("skipped", detail="absent or being delivered")
        if notification.status != Status.PENDING:
            return DeliveryOutcome("skipped", detail=f"already {notification.status}")
        now = timezone.now()
        due = notification.next_attempt_at
        if due is not None and due > now + timedelta(seconds=NOT_DUE_TOLERANCE):
            # A duplicate task (a redelivery, a sweep) must not cut a backoff short; the
            # scheduled retry arrives on time.
            return DeliveryOutcome("skipped", detail="not due yet")
        if notification.attempts >= max_attempts():
            return _give_up(notification, notification.last_error or "too many attempts")
        if notification.channel == Channel.WEBHOOK and (
            notification.endpoint is None or not notification.endpoint.active
        ):
            return _give_up(notification, "the webhook endpoint is disabled")
        started = time.perf_counter()
        status_code = None
        error = ""
        permanent = False
        try:
            if notification.channel == Channel.WEBHOOK:
                status_code = _post_webhook(notification)
            else:
                _send_email(notification)
        except DeliveryError as exc:
            status_code, error, permanent = exc.status_code, str(exc), exc.permanent
        except Exception as exc:  # noqa: BLE001 - any transport failure is a failed attempt
            error = f"{type(exc).__name__}: {exc}"
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


def _give_up(notification: Notification, error: str) -> DeliveryOutcome:
    notification.status = Status.FAILED
    notification.next_attempt_at = None
    notification.last_error = error
    notification.save(update_fields=["status", "next_attempt_at", "last_error"])
    return DeliveryOutcome("failed", detail=error)


def notification_requeue_stale(*, older_than: int | None = None) -> list[int]:
    """Re-queue outbound rows still pending whose due time (creation, or the retry time
    after a failure) passed more than `older_than` seconds ago (default
    NOTIFY_STALE_SECONDS): their task was lost, e.g. with a worker killed mid-delivery.
    Rows being delivered right now are locked and skipped; a re-queued row's due time
    moves to now, so it is re-queued at most once per period."""
    stale = int(_conf("NOTIFY_STALE_SECONDS", 180) if older_than is None else older_than)
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale)
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, channel__in=OUTBOUND, attempts__lt=max_attempts())
            .filter(
                Q(next_attempt_at__lte=cutoff)
                | Q(next_attempt_at__isnull=True, created_at__lte=cutoff)
            )
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:REQUEUE_BATCH]
        )
        if ids:
            Notification.objects.filter(pk__in=ids).update(next_attempt_at=now)
            _enqueue_on_commit(ids)
    return ids


PURGE_BATCH = 2000


def notification_purge(*, older_than_days: int | None = None) -> int:
    """Delete what nobody needs any more, older than NOTIFY_RETENTION_DAYS: read inbox rows
    and delivered or failed outbound rows (their attempts go with them). Unread and pending
    rows stay. In batches, one transaction each, so the tables are never locked for long."""
    days = int(_conf("NOTIFY_RETENTION_DAYS", 90) if older_than_days is None else older_than_days)
    cutoff = timezone.now() - timedelta(days=days)
    done = Q(channel=Channel.INBOX, read_at__isnull=False) | Q(
        channel__in=OUTBOUND, status__in=(Status.DELIVERED, Status.FAILED)
    )
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                Notification.objects.filter(done, created_at__lt=cutoff)
                .order_by("pk")
                .values_list("pk", flat=True)[:PURGE_BATCH]
            )
            if not ids:
                return deleted
            _, by_model = Notification.objects.filter(pk__in=ids).delete()
            deleted += by_model.get(Notification._meta.label, 0)


# --- webhook endpoints -------------------------------------------------------------------

_url_validator = URLValidator(schemes=["http", "https"])


def _validate_url(url: str) -> str:
    url = (url or "").strip()
    try:
        _url_validator(url)
        port = urllib.parse.urlsplit(url).port
    except (ValidationError, ValueError):
        raise InvalidInput("Enter an http:// or https:// URL.", field="url")
    if port == 0:
        raise InvalidInput("Enter an http:// or https:// URL with a valid port.", field="url")
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if not _private_allowed() and (
        (literal is not None and egress.non_public(literal)) or egress.is_local_name(host)
    ):
        raise InvalidInput("Webhooks may not point at a private or local address.", field="url")
    return url


def _parse_filter(event_filter) -> list[str]:
    if isinstance(event_filter, str):
        event_filter = event_filter.replace("\n", ",").split(",")
    prefixes = sorted({p.strip() for p in (event_filter or []) if p and p.strip()})
    for prefix in prefixes:
        if len(prefix) > 80 or not all(c.isalnum() or c in "._-" for c in prefix):
            raise InvalidInput(
                f"'{prefix}' is not a kind prefix (letters, digits, '.', '_', '-').",
                field="event_filter",
            )
    return prefixes


def new_secret() -> str:
    return signing.new_secret()


def _label(endpoint: WebhookEndpoint) -> tuple[str, int, str]:
    return ("notify.webhookendpoint", endpoint.pk, endpoint.name)


def _locked_endpoint(actor: Actor, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    found = (
        WebhookEndpoint.objects.for_org(actor.org)
        .select_for_update()
        .filter(pk=endpoint.pk)
        .first()
    )
    if found is None:
        raise NotFound("No such webhook endpoint.")
    return found


@transaction.atomic
def webhook_create(
    *, actor: Actor, name: str, url: str, event_filter=None, active: bool = True
) -> tuple[WebhookEndpoint, str]:
    """Returns the endpoint and its signing secret (show it once)."""
    _require(actor, "webhook.manage")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("An endpoint needs a name of at most 100 characters.", field="name")
    url = _validate_url(url)
    prefixes = _parse_filter(event_filter)
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(
        organization=actor.org,
        name=name,
        url=url,
        secret=secret,
        active=active,
        event_filter=prefixes,
        created_by=actor.user,
    )
    audit_record(
        actor=actor,
        action="webhook.created",
        target=_label(endpoint),
        details={"url": url, "event_filter": prefixes, "active": active},
    )
    return endpoint, secret


@transaction.atomic
def webhook_set_active(*, actor: Actor, endpoint: WebhookEndpoint, active: bool) -> WebhookEndpoint:
    _require(actor, "webhook.manage", endpoint)
    endpoint = _locked_endpoint(actor, endpoint)
    if endpoint.active == active:
        return endpoint
    endpoint.active = active
    endpoint.save(update_fields=["active"])
    audit_record(
        actor=actor,
        action="webhook.enabled" if active else "webhook.disabled",
        target=_label(endpoint),
    )
    return endpoint


MAX_ROTATION_HOURS = 24 * 7


def rotation_hours(value=None) -> int:
    """Hours a rotated secret keeps signing: NOTIFY_SECRET_ROTATION_HOURS when not given,
    0 (stop at once) to MAX_ROTATION_HOURS."""
    if value is None or value == "":
        value = _conf("NOTIFY_SECRET_ROTATION_HOURS", 24)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput("Give the grace period in whole hours.", field="keep_old_hours")
    try:
        hours = int(value)
    except ValueError:
        raise InvalidInput("Give the grace period in whole hours.", field="keep_old_hours")
    if not 0 <= hours <= MAX_ROTATION_HOURS:
        raise InvalidInput(
            f"The grace period is 0 to {MAX_ROTATION_HOURS} hours.", field="keep_old_hours"
        )
    return hours


@transaction.atomic
def webhook_rotate_secret(
    *, actor: Actor, endpoint: WebhookEndpoint, keep_old_hours=None
) -> tuple[WebhookEndpoint, str]:
    """A new secret signs from now on; the old one signs beside it (a second signature in
    `webhook-signature`) for `keep_old_hours`, so receivers switch without a gap. 0 ends
    the old secret at once (e.g. it leaked). Returns the new secret (show it once)."""
    _require(actor, "webhook.manage", endpoint)
    hours = rotation_hours(keep_old_hours)
    endpoint = _locked_endpoint(actor, endpoint)
    now = timezone.now()
    until = now + timedelta(hours=hours) if hours else None
    endpoint.previous_secret = endpoint.secret if hours else ""
    endpoint.previous_secret_until = until
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    audit_record(
        actor=actor,
        action="webhook.secret_rotated",
        target=_label(endpoint),
        details={"old_secret_signs_until": until.isoformat() if until else None},
    )
    return endpoint, endpoint.secret


@transaction.atomic
def webhook_delete(*, actor: Actor, endpoint: WebhookEndpoint) -> None:
    """Deletes the endpoint with its delivery history (its outbox rows and attempts)."""
    _require(actor, "webhook.manage", endpoint)
    endpoint = _locked_endpoint(actor, endpoint)
    target = _label(endpoint)
    details = {"url": endpoint.url}
    endpoint.delete()
    audit_record(actor=actor, action="webhook.deleted", target=target, details=details)


@transaction.atomic
def webhook_retry_failed(*, actor: Actor, endpoint: WebhookEndpoint) -> int:
    """Give this endpoint's failed deliveries a fresh set of attempts (e.g. after it was
    down for a day); same idempotency ids, so receivers still deduplicate."""
    _require(actor, "webhook.manage", endpoint)
    endpoint = _locked_endpoint(actor, endpoint)
    if not endpoint.active:
        raise InvalidInput("Enable the endpoint before retrying its deliveries.", field="endpoint")
    now = timezone.now()
    ids = list(
        Notification.objects.for_org(actor.org)
        .select_for_update(skip_locked=True)
        .filter(endpoint=endpoint, channel=Channel.WEBHOOK, status=Status.FAILED)
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0
    Notification.objects.filter(pk__in=ids).update(
        status=Status.PENDING, attempts=0, next_attempt_at=now
    )
    _enqueue_on_commit(ids)
    audit_record(
        actor=actor,
        action="webhook.deliveries_retried",
        target=_label(endpoint),
        details={"count": len(ids)},
    )
    return len(ids)


@transaction.atomic
def webhook_send_test(*, actor: Actor, endpoint: WebhookEndpoint) -> Notification:
    """Queue a `webhook.test` delivery to this endpoint alone. A disabled endpoint's rows
    are never sent, so it must be active."""
    _require(actor, "webhook.manage", endpoint)
    endpoint = _locked_endpoint(actor, endpoint)
    if not endpoint.active:
        raise InvalidInput("Enable the endpoint before sending a test.", field="endpoint")
    now = timezone.now()
    notification = Notification.objects.create(
        organization=actor.org,
        channel=Channel.WEBHOOK,
        endpoint=endpoint,
        kind="webhook.test",
        subject=f"Test delivery to {endpoint.name}",
        body=f"Sent by {actor.label}. If you can read this, the endpoint works.",
        payload={"test": True},
        created_at=now,
        next_attempt_at=now,
    )
    _enqueue_on_commit([notification.pk])
    return notification
