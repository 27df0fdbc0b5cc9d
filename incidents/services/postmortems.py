"""Postmortems and their action items (with the overdue reminder the beat task sends)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.common import clean
from llmops.notify.services import notify
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import require
from llmops.tenancy.selectors import admins_of

from ..models import (
    POSTMORTEM_TEMPLATE,
    ActionItem,
    Incident,
    Postmortem,
    TimelineEntry,
)
from ._common import (
    MAX_POSTMORTEM,
    _member,
    _not_ended_rule,
    _open_incident,
    _record,
    _same_org,
    _text,
    _timeline,
)


@transaction.atomic
def postmortem_save(*, actor: Actor, incident: Incident, body: str) -> Postmortem:
    incident = _open_incident(actor, incident)
    body = _text(body, field="body", limit=MAX_POSTMORTEM)
    _not_ended_rule("its postmortem is final")(incident)
    postmortem, created = Postmortem.objects.get_or_create(
        incident=incident,
        defaults={
            "organization_id": incident.organization_id,
            "body": body,
            "updated_by_label": actor.label[:200],
        },
    )
    if not created:
        postmortem.body = body
        postmortem.updated_by_label = actor.label[:200]
        postmortem.save(update_fields=["body", "updated_by_label", "updated_at"])
    _record(
        actor,
        incident,
        TimelineEntry.Kind.POSTMORTEM,
        "Postmortem written." if created else "Postmortem updated.",
        audit="incident.postmortem",
        details={"sha256": hashlib.sha256(body.encode()).hexdigest(), "chars": len(body)},
    )
    return postmortem


def postmortem_template() -> str:
    return POSTMORTEM_TEMPLATE


@transaction.atomic
def action_item_create(
    *,
    actor: Actor,
    incident: Incident,
    title: str,
    owner: Any = None,
    due: Any = None,
    link: str = "",
) -> ActionItem:
    incident = _open_incident(actor, incident)
    item = ActionItem.objects.create(
        organization_id=incident.organization_id,
        incident=incident,
        title=_text(title, field="title", limit=300, required=True),
        owner=_member(incident.organization, owner),
        due=clean.day(due, field="due"),
        link=clean.url(link, field="link", paths=True),
    )
    _record(
        actor,
        incident,
        TimelineEntry.Kind.POSTMORTEM,
        f"Action item: {item.title}"
        + (f" (owner {item.owner.get_username()})" if item.owner else " (no owner yet)"),
        {"action_item": item.pk},
        audit="incident.action_item",
        details={"item": item.pk, "title": item.title, "owner": item.owner_id, "due": item.due},
    )
    return item


@transaction.atomic
def action_item_update(
    *, actor: Actor, item: ActionItem, owner: Any = ..., due: Any = ..., done: bool | None = None
) -> ActionItem:
    _same_org(actor, item)
    require(actor, "incident.manage", item.incident)
    item = ActionItem.objects.select_for_update().get(pk=item.pk)
    changes: dict[str, Any] = {}
    if owner is not ...:
        item.owner = _member(item.organization, owner)
        changes["owner"] = item.owner_id
    if due is not ...:
        item.due = clean.day(due, field="due")
        item.overdue_notified_at = None
        changes["due"] = item.due
    if done is not None and done != item.done:
        item.done = done
        item.done_at = timezone.now() if done else None
        changes["done"] = done
    if not changes:
        return item
    item.save()
    _timeline(
        actor,
        item.incident,
        TimelineEntry.Kind.POSTMORTEM,
        f"Action item {'done' if changes.get('done') else 'updated'}: {item.title}",
        {"action_item": item.pk, **{k: str(v) for k, v in changes.items()}},
    )
    audit_record(
        actor=actor,
        action="incident.action_item",
        target=item.incident,
        details={"item": item.pk, **changes},
    )
    return item


@transaction.atomic
def action_items_notify_overdue(*, org) -> int:
    """Tell each owner (or the admins, for an item with none) about overdue action items,
    once per item and due date. Called by the beat task."""
    today = timezone.localdate()
    items = list(
        ActionItem.objects.for_org(org)
        .select_for_update(skip_locked=connection.vendor == "postgresql", of=("self",))
        .filter(done=False, due__lt=today, overdue_notified_at__isnull=True)
        .select_related("incident", "owner")
    )
    for item in items:
        recipients = [item.owner] if item.owner else list(admins_of(org=org))
        notify(
            org=org,
            recipients=recipients,
            kind="incident.action_item_overdue",
            subject=f"{item.incident.ref}: action item overdue since {item.due:%Y-%m-%d}",
            body=item.title,
            link=f"/o/{org.slug}/incidents/{item.incident.number}/",
        )
    if items:
        ActionItem.objects.filter(pk__in=[i.pk for i in items]).update(
            overdue_notified_at=timezone.now()
        )
    return len(items)
