"""What every reviews use case opens with: the queue or item loaded in the actor's
organization, the policy's permission check, and the human-only rule for review work."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from llmops.common.errors import NotFound, NotPermitted
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import can, require

from ..models import QueueItem, ReviewQueue

User = get_user_model()
GRANT = "review_queue"


def visible_queue(actor: Actor, queue: ReviewQueue | None) -> ReviewQueue:
    """Another organization's queue, or one a reviewer holds no grant on, does not exist."""
    if (
        queue is None
        or queue.organization_id != actor.org.pk
        or not can(actor, "queue.view", queue)
    ):
        raise NotFound("No such queue.")
    return queue


def human_reviewer(actor: Actor):
    if not actor.is_human:
        raise NotPermitted("Reviews are human work: use a person's session or personal key.")
    return actor.user


def queue_for(actor: Actor, queue: ReviewQueue | None, action: str) -> ReviewQueue:
    """The opening of a queue use case: visible to the actor, and `action` allowed on it."""
    visible_queue(actor, queue)
    require(actor, action, queue)
    return queue


def item_for(
    actor: Actor, item: QueueItem | None, action: str, *, human: bool = True
) -> tuple[QueueItem, ReviewQueue]:
    """The opening of an item use case: the item in the actor's organization, its queue
    visible, `action` allowed on the queue, and (for review work) a person acting."""
    if item is None or item.organization_id != actor.org.pk:
        raise NotFound("No such item.")
    queue = queue_for(actor, item.queue, action)
    if human:
        human_reviewer(actor)
    return item, queue
