"""A person's inbox: marking their own notifications read."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from llmops.common.errors import NotFound, NotPermitted
from llmops.tenancy.actor import Actor

from ..models import Channel, Notification


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
