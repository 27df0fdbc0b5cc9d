"""Reviews and approvals: a reviewer's decision on a version in review (through the gates
of gates.py, or past the overridable ones with an admin's break-glass), and retracting it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.common import clean
from llmops.common.errors import (
    GovernanceError,
    InvalidInput,
    InvalidTransition,
    NotFound,
    NotPermitted,
    PolicyViolation,
)
from llmops.notify.services import notify
from llmops.tenancy.actor import Actor

from ..gates import GateContext, run_gates
from ..models import Approval, PromptVersion
from ._common import (
    Status,
    _announce_break_glass,
    _break_glass,
    _link_version,
    _lock_version,
    _set_status,
)
from .versions import _open_version

Decision = Approval.Decision


def _open_approvals(version: PromptVersion):
    return Approval.objects.filter(
        version=version, decision=Decision.APPROVE, retracted_at__isnull=True
    )


def _clean_comment(decision: str, comment: str) -> str:
    comment = clean.text(comment, field="comment", max_length=10_000)
    if decision != Decision.APPROVE and not comment:
        raise InvalidInput("Say what should change: a comment is required.", field="comment")
    return comment


def _pass_gates(
    actor: Actor, version: PromptVersion, decision: str, glass: str, author_ids: set[int]
) -> list[str]:
    """The rules a decision may not pass (PolicyViolation); returns the overridable ones
    an admin's break-glass reason overrode (empty when none)."""
    if decision != Decision.APPROVE:
        if actor.user_id in author_ids:
            raise PolicyViolation(
                "Four eyes: an author does not review their own version; withdraw it instead.",
                code="four_eyes",
            )
        return []
    blocks = run_gates(GateContext(actor=actor, version=version, author_ids=author_ids))
    hard = [b for b in blocks if not b.overridable]
    soft = [b for b in blocks if b.overridable]
    if hard:
        raise PolicyViolation(hard[0].message, code=hard[0].rule)
    if soft and not glass:
        hint = " An admin may proceed with a written break-glass reason."
        raise PolicyViolation(
            soft[0].message + hint,
            code=soft[0].rule,
            details={"rules": [b.rule for b in soft]},
        )
    return [b.rule for b in soft]


def _record_decision(
    actor: Actor, version: PromptVersion, decision: str, comment: str, used_glass: str
) -> Approval:
    """A new decision replaces the decider's previous open one."""
    Approval.objects.filter(
        version=version, user_id=actor.user_id, retracted_at__isnull=True
    ).update(retracted_at=timezone.now())
    return Approval.objects.create(
        organization=actor.org,
        version=version,
        user=actor.user,
        decision=decision,
        comment=comment,
        break_glass_reason=used_glass,
    )


def _apply_decision(
    version: PromptVersion, decision: str, author_ids: set[int], used_glass: str
) -> None:
    """A reject rejects; approvals approve once `required_approvals` distinct non-authors
    approved (or at once past a gate with break-glass)."""
    if decision == Decision.REJECT:
        _set_status(version, Status.REJECTED)
        return
    if decision != Decision.APPROVE:
        return
    approvers = set(
        _open_approvals(version).exclude(user_id__in=author_ids).values_list("user_id", flat=True)
    )
    if used_glass or len(approvers) >= version.prompt.required_approvals:
        if used_glass:
            version.break_glass_reason = used_glass
            version.save(update_fields=["break_glass_reason"])
        _set_status(version, Status.APPROVED)


def _close_review(
    actor: Actor,
    version: PromptVersion,
    *,
    decision: str,
    comment: str,
    before: str,
    author_ids: set[int],
    used_glass: str,
    overridden: list[str],
) -> None:
    """Tell the authors, the admins of a break-glass, and audit the decision (last)."""
    link = _link_version(version)
    label = f"{version.prompt.name} v{version.number}"
    notify(
        org=actor.org,
        recipients=author_ids - {actor.user_id},
        kind=f"prompts.{decision}",
        subject=f"{label}: {Decision(decision).label.lower()} by {actor.label}"
        + (f" — now {version.status}" if version.status != before else ""),
        body=comment or f"{actor.label} approved {label}.",
        link=link,
        payload={
            "prompt": version.prompt.name,
            "version": version.number,
            "status": version.status,
        },
    )
    if used_glass:
        _announce_break_glass(
            actor,
            what=f"approved {label} past {', '.join(overridden)}",
            reason=used_glass,
            link=link,
        )
    audit_record(
        actor=actor,
        action="prompt.version_reviewed",
        target=version,
        details={
            "decision": decision,
            "comment": comment[:500],
            "status_before": before,
            "status": version.status,
            "break_glass_reason": used_glass,
            "overridden": overridden,
        },
    )


@transaction.atomic
def version_review(
    *,
    actor: Actor,
    version: PromptVersion,
    decision: str,
    comment: str = "",
    break_glass_reason: str = "",
) -> Approval:
    """Record a decision (approve / request_changes / reject). An approve passes every gate
    of gates.APPROVAL_GATES, or an admin overrides the overridable ones with break-glass.
    The version is approved once `required_approvals` distinct non-authors approved."""
    if decision not in Decision.values:
        raise InvalidInput("decision must be approve, request_changes or reject.", field="decision")
    version = _open_version(actor, version, "review")
    comment = _clean_comment(decision, comment)
    glass = _break_glass(actor, break_glass_reason, through="prompt.approve", obj=version.prompt)
    author_ids = set(version.authors.values_list("pk", flat=True))
    overridden = _pass_gates(actor, version, decision, glass, author_ids)
    used_glass = glass if overridden else ""
    approval = _record_decision(actor, version, decision, comment, used_glass)
    before = version.status
    _apply_decision(version, decision, author_ids, used_glass)
    _close_review(
        actor,
        version,
        decision=decision,
        comment=comment,
        before=before,
        author_ids=author_ids,
        used_glass=used_glass,
        overridden=overridden,
    )
    return approval


def retract_blocker(
    actor: Actor, approval: Approval, version: PromptVersion
) -> GovernanceError | None:
    """Why `actor` may not retract `approval` (a decision on `version`) now: the error the
    service raises, or None when allowed. Only the decider, only an open decision, and an
    approval only while its version is in review."""
    if actor.user_id is None or approval.user_id != actor.user_id:
        return NotPermitted("Only the person who decided may retract a decision.")
    if approval.retracted_at is not None:
        return InvalidTransition("This decision was already retracted.")
    if approval.decision == Decision.APPROVE and version.status != Status.IN_REVIEW:
        return InvalidTransition(
            f"v{version.number} is {version.status}; an approval can be retracted only while "
            "the version is in review."
        )
    return None


def _open_retract(actor: Actor, approval: Approval) -> tuple[Approval, PromptVersion]:
    """The decision and its version locked in this organization, and retracting it
    allowed now (else its 403 or 409)."""
    approval = (
        Approval.objects.for_org(actor.org)
        .select_for_update()
        .select_related("version", "version__prompt")
        .filter(pk=approval.pk)
        .first()
    )
    if approval is None:
        raise NotFound("No such decision.")
    version = _lock_version(actor, approval.version)
    error = retract_blocker(actor, approval, version)
    if error is not None:
        raise error
    return approval, version


@transaction.atomic
def approval_retract(*, actor: Actor, approval: Approval) -> Approval:
    """The decider takes back a decision. A retracted reject returns the version to review
    (when no other reject stands); approvals of an approved version stay."""
    approval, version = _open_retract(actor, approval)
    approval.retracted_at = timezone.now()
    approval.save(update_fields=["retracted_at"])
    before = version.status
    if (
        approval.decision == Decision.REJECT
        and version.status == Status.REJECTED
        and not Approval.objects.filter(
            version=version, decision=Decision.REJECT, retracted_at__isnull=True
        ).exists()
    ):
        newer = PromptVersion.objects.filter(
            prompt=version.prompt, number__gt=version.number, status=Status.IN_REVIEW
        ).exists()
        _set_status(version, Status.SUPERSEDED if newer else Status.IN_REVIEW)
    audit_record(
        actor=actor,
        action="prompt.review_retracted",
        target=version,
        details={"decision": approval.decision, "status_before": before, "status": version.status},
    )
    return approval
