"""Reviewing a claimed item: submit the answers, skip or release it, send it to evals. The
first review pins the generation as evidence; a disagreement marks it for adjudication."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from llmops.common.errors import InvalidInput, PolicyViolation
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import can
from llmops.traces.models import Generation

from .. import agreement, backends
from .. import rubric as rubric_mod
from ..models import Assignment, QueueItem, Review, ReviewQueue
from .base import item_for

State = Assignment.State


def _own_assignment(actor: Actor, item: QueueItem) -> Assignment:
    assignment = backends.current().own_assignment(item, actor.user)
    if assignment is None:
        raise PolicyViolation(
            "You hold no claim on this item: claim the next item of the queue first.",
            code="no_claim",
        )
    return assignment


def _open_claim(actor: Actor, item: QueueItem) -> Assignment:
    """The reviewer's claim on the item, still able to take a review: an expired lease whose
    slot nobody took is taken back."""
    assignment = _own_assignment(actor, item)
    if assignment.state == State.SUBMITTED:
        raise PolicyViolation("You have already reviewed this item.", code="already_reviewed")
    if assignment.state in (State.SKIPPED, State.RELEASED):
        raise PolicyViolation(
            "You gave this item back; it goes to another reviewer.", code="claim_released"
        )
    if assignment.state == State.EXPIRED:
        locked = QueueItem.objects.select_for_update().get(pk=item.pk)
        if (
            locked.state == QueueItem.State.DONE
            or locked.reviews_done + locked.active_claims >= locked.reviews_needed
        ):
            raise PolicyViolation(
                "Your claim expired and the item was taken by someone else.",
                code="claim_expired",
            )
        # The slot is still free: take it back.
        QueueItem.objects.filter(pk=item.pk).update(active_claims=F("active_claims") + 1)
    return assignment


def _review_counted(actor: Actor, item: QueueItem, queue: ReviewQueue, now: datetime) -> None:
    """The closing of a review: the item counts it (and closes when complete), a complete
    item whose reviewers disagree goes to adjudication, the first review pins the generation."""
    state, needed, done = backends.current().count_review(item.pk, now)
    if state == QueueItem.State.DONE and needed > 1:
        answer_sets = list(Review.objects.filter(item_id=item.pk).values_list("answers", flat=True))
        if agreement.disagreement(queue.rubric, answer_sets):
            QueueItem.objects.filter(pk=item.pk).update(needs_adjudication=True)
    if done == 1:  # the first review makes the generation evidence
        _pin(actor, item, queue)


def review_submit(
    *,
    actor: Actor,
    item: QueueItem,
    answers: Any,
    corrected_output: str = "",
    comment: str = "",
) -> Review:
    item, queue = item_for(actor, item, "queue.review")
    clean = rubric_mod.validate_answers(queue.rubric, answers)
    corrected_output = "" if corrected_output is None else str(corrected_output)
    comment = "" if comment is None else str(comment)
    if len(corrected_output) > 200_000 or len(comment) > 20_000:
        raise InvalidInput("The corrected output or the comment is too long.", field="comment")
    now = timezone.now()
    with transaction.atomic():
        assignment = _open_claim(actor, item)
        review = Review.objects.create(
            organization_id=item.organization_id,
            queue_id=queue.pk,
            item_id=item.pk,
            assignment_id=assignment.pk,
            reviewer_id=actor.user.pk,
            answers=clean,
            corrected_output=corrected_output,
            comment=comment,
            time_spent_ms=max(0, int((now - assignment.claimed_at).total_seconds() * 1000)),
        )
        backends.current().mark_submitted(assignment, now)
        _review_counted(actor, item, queue, now)
    return review


def _pin(actor: Actor, item: QueueItem, queue: ReviewQueue) -> None:
    from llmops.traces.services import generation_pin

    generation_pin(
        org=actor.org,
        generation_ids=[item.generation_id],
        reason=f"reviewed: {queue.name}",
    )


def _give_back(actor: Actor, item: QueueItem, *, state: str, reason: str = "") -> Assignment:
    item, queue = item_for(actor, item, "queue.review")
    now = timezone.now()
    with transaction.atomic():
        assignment = _own_assignment(actor, item)
        if assignment.state != State.ACTIVE:
            raise PolicyViolation(
                "Your claim on this item is no longer active.", code="claim_not_active"
            )
        assignment.state = state
        assignment.finished_at = now
        assignment.skip_reason = reason
        assignment.save(update_fields=["state", "finished_at", "skip_reason"])
        changes = {"active_claims": F("active_claims") - 1}
        if state == State.SKIPPED:
            changes["skips"] = F("skips") + 1
        QueueItem.objects.filter(pk=item.pk).update(**changes)
    return assignment


def item_release(*, actor: Actor, item: QueueItem) -> Assignment:
    """Give the item back unreviewed; it goes to another reviewer."""
    return _give_back(actor, item, state=State.RELEASED)


def item_skip(*, actor: Actor, item: QueueItem, reason: str) -> Assignment:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why you skip this item.", field="reason")
    return _give_back(actor, item, state=State.SKIPPED, reason=reason[:500])


def item_add_to_evals(*, actor: Actor, item: QueueItem, link: str = "", dataset=None):
    """Send the item to the queue's eval dataset: its input, and the reviewer's corrected
    output (else the original) as the expected answer."""
    from llmops.evals.services import case_create
    from llmops.traces.services import generation_pin

    item, queue = item_for(actor, item, "queue.review")
    dataset = dataset or queue.eval_dataset
    if dataset is None:
        raise PolicyViolation(
            "This queue has no eval dataset; an owner can choose one in its settings."
        )
    if not Assignment.objects.filter(
        item_id=item.pk, reviewer_id=actor.user.pk
    ).exists() and not can(actor, "queue.manage", queue):
        raise PolicyViolation("Claim or review the item before sending it to evals.")
    generation = Generation.objects.for_org(actor.org).get(pk=item.generation_id)
    review = (
        Review.objects.filter(item_id=item.pk, reviewer_id=actor.user.pk)
        .exclude(corrected_output="")
        .first()
    )
    expected = review.corrected_output if review else generation.output
    with transaction.atomic():
        case = case_create(
            actor=actor,
            dataset=dataset,
            input=generation.input,
            expected=expected,
            tags=["review"],
            source_kind="review",
            source_label=f"{queue.name} · item {item.pk}"[:200],
            source_link=link[:500],
        )
        generation_pin(org=actor.org, generation_ids=[generation.pk], reason="eval case")
    return case
