"""Adjudication: a maintainer who did not review the item records its final answers when
its reviewers disagreed."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.common.errors import PolicyViolation
from llmops.tenancy.actor import Actor

from .. import rubric as rubric_mod
from ..models import Assignment, QueueItem
from .base import item_for


@transaction.atomic
def item_adjudicate(*, actor: Actor, item: QueueItem, answers: Any, comment: str = "") -> QueueItem:
    item, queue = item_for(actor, item, "queue.adjudicate", human=False)
    clean = rubric_mod.validate_answers(queue.rubric, answers)
    locked = QueueItem.objects.select_for_update().get(pk=item.pk)
    if locked.state != QueueItem.State.DONE:
        raise PolicyViolation("Only an item whose reviews are all in can be adjudicated.")
    if (
        actor.user is not None
        and Assignment.objects.filter(item_id=item.pk, reviewer_id=actor.user.pk).exists()
    ):
        raise PolicyViolation(
            "You reviewed this item yourself; another maintainer records the final answer."
        )
    locked.final_answers = clean
    locked.adjudicated_by = actor.user
    locked.adjudicated_at = timezone.now()
    locked.save(update_fields=["final_answers", "adjudicated_by", "adjudicated_at"])
    audit_record(
        actor=actor,
        action="queue.item_adjudicated",
        target=queue,
        details={"item": item.pk, "answers": clean, "comment": (comment or "")[:500]},
    )
    return locked
