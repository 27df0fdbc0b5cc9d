"""The outbox: `notify` writes one event's rows inside the caller's transaction; e-mail
and webhook rows are handed to Celery only after commit."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from llmops.common.errors import InvalidInput
from llmops.tenancy.selectors import admins_of

from ..models import Channel, Notification, Status, WebhookEndpoint
from ._common import OUTBOUND, _json, safe_link

User = get_user_model()


def _enqueue(notification_ids: list[int]) -> None:
    from .. import tasks

    for notification_id in notification_ids:
        tasks.deliver.delay(notification_id)


def _enqueue_on_commit(notification_ids: list[int]) -> None:
    if notification_ids:
        # robust: a broker outage must not fail the caller's committed request; the stale
        # sweep picks the rows up later.
        transaction.on_commit(partial(_enqueue, list(notification_ids)), robust=True)


def _members(org, recipients: Iterable) -> list:
    """The recipients (users or ids) who are active members of `org`, by id."""
    ids = {getattr(r, "pk", r) for r in recipients if r is not None}
    if not ids:
        return []
    return list(
        User.objects.filter(pk__in=ids, is_active=True, memberships__organization=org)
        .distinct()
        .order_by("pk")
    )


def _rows(org, users: list, common: dict, *, kind: str, email: bool, webhooks: bool) -> list:
    now = common["created_at"]
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
    return rows


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
    common = {
        "organization": org,
        "kind": kind,
        "subject": (subject or "").strip()[:200],
        "body": body or "",
        "link": safe_link(link),
        "payload": _json(payload),
        "created_at": timezone.now(),
    }
    users = _members(org, recipients)
    rows = _rows(org, users, common, kind=kind, email=email, webhooks=webhooks)
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
