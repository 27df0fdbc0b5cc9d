"""Webhook endpoints: create, enable or disable, rotate the signing secret (with a grace
period), delete, retry failed deliveries, send a test."""

from __future__ import annotations

import ipaddress
import urllib.parse
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput, NotFound
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import require

from .. import egress, signing
from ..models import Channel, Notification, Status, WebhookEndpoint
from ._common import _conf, _private_allowed
from .outbox import _enqueue_on_commit

MAX_ROTATION_HOURS = 24 * 7

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


def _open_endpoint(actor: Actor, endpoint: WebhookEndpoint, *, active: str = "") -> WebhookEndpoint:
    """The opening of a write to an endpoint: `webhook.manage` allowed, the row of this
    organization locked (else 404); with `active` (the refusal message), it must be
    enabled."""
    require(actor, "webhook.manage", endpoint)
    found = (
        WebhookEndpoint.objects.for_org(actor.org)
        .select_for_update()
        .filter(pk=endpoint.pk)
        .first()
    )
    if found is None:
        raise NotFound("No such webhook endpoint.")
    if active and not found.active:
        raise InvalidInput(active, field="endpoint")
    return found


def _audit(actor: Actor, action: str, endpoint: WebhookEndpoint, details=None) -> None:
    audit_record(actor=actor, action=action, target=_label(endpoint), details=details)


@transaction.atomic
def webhook_create(
    *, actor: Actor, name: str, url: str, event_filter=None, active: bool = True
) -> tuple[WebhookEndpoint, str]:
    """Returns the endpoint and its signing secret (show it once)."""
    require(actor, "webhook.manage")
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
    _audit(
        actor,
        "webhook.created",
        endpoint,
        {"url": url, "event_filter": prefixes, "active": active},
    )
    return endpoint, secret


@transaction.atomic
def webhook_set_active(*, actor: Actor, endpoint: WebhookEndpoint, active: bool) -> WebhookEndpoint:
    endpoint = _open_endpoint(actor, endpoint)
    if endpoint.active == active:
        return endpoint
    endpoint.active = active
    endpoint.save(update_fields=["active"])
    _audit(actor, "webhook.enabled" if active else "webhook.disabled", endpoint)
    return endpoint


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
    require(actor, "webhook.manage", endpoint)
    hours = rotation_hours(keep_old_hours)
    endpoint = _open_endpoint(actor, endpoint)
    until = timezone.now() + timedelta(hours=hours) if hours else None
    endpoint.previous_secret = endpoint.secret if hours else ""
    endpoint.previous_secret_until = until
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    _audit(
        actor,
        "webhook.secret_rotated",
        endpoint,
        {"old_secret_signs_until": until.isoformat() if until else None},
    )
    return endpoint, endpoint.secret


@transaction.atomic
def webhook_delete(*, actor: Actor, endpoint: WebhookEndpoint) -> None:
    """Deletes the endpoint with its delivery history (its outbox rows and attempts)."""
    endpoint = _open_endpoint(actor, endpoint)
    target = _label(endpoint)
    details = {"url": endpoint.url}
    endpoint.delete()
    audit_record(actor=actor, action="webhook.deleted", target=target, details=details)


@transaction.atomic
def webhook_retry_failed(*, actor: Actor, endpoint: WebhookEndpoint) -> int:
    """Give this endpoint's failed deliveries a fresh set of attempts (e.g. after it was
    down for a day); same idempotency ids, so receivers still deduplicate."""
    endpoint = _open_endpoint(
        actor, endpoint, active="Enable the endpoint before retrying its deliveries."
    )
    ids = list(
        Notification.objects.for_org(actor.org)
        .select_for_update(skip_locked=True)
        .filter(endpoint=endpoint, channel=Channel.WEBHOOK, status=Status.FAILED)
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0
    Notification.objects.filter(pk__in=ids).update(
        status=Status.PENDING, attempts=0, next_attempt_at=timezone.now()
    )
    _enqueue_on_commit(ids)
    _audit(actor, "webhook.deliveries_retried", endpoint, {"count": len(ids)})
    return len(ids)


@transaction.atomic
def webhook_send_test(*, actor: Actor, endpoint: WebhookEndpoint) -> Notification:
    """Queue a `webhook.test` delivery to this endpoint alone. A disabled endpoint's rows
    are never sent, so it must be active."""
    endpoint = _open_endpoint(actor, endpoint, active="Enable the endpoint before sending a test.")
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
