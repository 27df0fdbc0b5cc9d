"""An admin's decisions on a model version: approve or reject a proposal (four eyes, the
eval gate, floating ids), move it through its lifecycle (suspend, reinstate, deprecate,
retire), and correct its floating flag. Every move records a ModelDecision row; a
break-glass override is marked on the model forever, announced to every admin and audited."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput, InvalidTransition, PolicyViolation
from llmops.tenancy.actor import Actor

from ..models import ModelDecision, ModelEvidence, ModelVersion
from ..selectors import is_floating_model_id
from ._common import (
    LIFECYCLE_RULE,
    PERSON_DECIDES,
    TRANSITION_VERBS,
    TRANSITIONS,
    Status,
    _break_glass,
    _close,
    _log_decision,
    _notify_admins,
    _open_model,
    _own,
    _reason,
    _set_status,
    model_link,
)

DECISIONS = ("approve", "reject")


def _evidence_summary(model: ModelVersion) -> list[dict]:
    return [
        {"run": e.eval_run_id, "passed": e.passed}
        for e in ModelEvidence.objects.filter(model_version=model).order_by("-id")[:20]
    ]


def _decision_blockers(
    actor: Actor, model: ModelVersion, decision: str, evidence
) -> list[tuple[str, str]]:
    """The rules break-glass may override for this decision, as (code, message) pairs (a
    floating id where the organization does not allow them is refused outright)."""
    blocked_by = []
    if model.requested_by_id is not None and model.requested_by_id == actor.user_id:
        blocked_by.append(
            ("four_eyes", "Four eyes: nobody decides on a model version they proposed")
        )
    if decision != "approve":
        return blocked_by
    if model.is_floating and not actor.org.allow_floating_models:
        raise PolicyViolation(
            f"Floating model ids: '{model.model_id}' is not pinned to a dated version, and "
            "this organization does not allow approving floating ids (an admin can correct "
            "a wrong flag, or allow floating ids in the settings).",
            code="floating_model_id",
            details={"rules": ["floating_model_id"]},
        )
    if not any(e["passed"] for e in evidence):
        blocked_by.append(
            (
                "no_evidence",
                "Eval gate: approval needs at least one passing eval run linked as evidence",
            )
        )
    return blocked_by


@transaction.atomic
def model_decide(
    *,
    actor: Actor,
    model: ModelVersion,
    decision: str,
    comment: str = "",
    break_glass_reason: str | None = None,
) -> ModelVersion:
    """An admin approves or rejects a proposed model version. Never the proposer (four
    eyes) and, to approve, only with passing eval evidence — unless break-glass. Floating
    ids are approved only where the organization allows them."""
    _own(actor, model)
    if decision not in DECISIONS:
        raise InvalidInput("decision must be 'approve' or 'reject'.", field="decision")
    model = _open_model(actor, model, person=PERSON_DECIDES)
    if model.status != Status.PROPOSED:
        raise InvalidTransition(
            f"Only a proposed model version can be decided; this one is {model.status} "
            f"({LIFECYCLE_RULE}).",
            details={"status": model.status},
        )
    if not isinstance(comment, str):
        raise InvalidInput("comment must be text.", field="comment")
    evidence = _evidence_summary(model)
    blocked_by = _decision_blockers(actor, model, decision, evidence)
    used = _break_glass(actor, break_glass_reason, blocked_by)
    before = model.status
    _set_status(
        model, Status.APPROVED if decision == "approve" else Status.REJECTED, break_glass=used
    )
    _log_decision(
        actor,
        model,
        ModelDecision.Kind.DECISION,
        decision=decision,
        from_status=before,
        to_status=model.status,
        comment=comment or "",
        break_glass_reason=used,
        evidence=evidence,
    )
    _close(
        actor,
        model,
        action="model.approved" if decision == "approve" else "model.rejected",
        glass=used,
        what=decision,
        details={
            "from": before,
            "to": model.status,
            "comment": comment or "",
            "evidence": evidence,
            "break_glass": bool(used),
            "break_glass_reason": used,
            "rules_overridden": [message for _, message in blocked_by] if used else [],
        },
    )
    return model


def _transition_dates(model: ModelVersion, to: str) -> dict:
    """Deprecating or retiring without a vendor date records today as that date."""
    dates = {}
    if to == Status.DEPRECATED and model.deprecation_date is None:
        dates["deprecation_date"] = timezone.localdate()
    if to == Status.RETIRED and model.retirement_date is None:
        dates["retirement_date"] = timezone.localdate()
    return dates


@transaction.atomic
def model_transition(
    *,
    actor: Actor,
    model: ModelVersion,
    to: str,
    reason: str,
    break_glass_reason: str | None = None,
) -> ModelVersion:
    """Suspend, reinstate, deprecate or retire (with a reason). Incidents call this to
    suspend a model; the system actor may too."""
    _own(actor, model)
    if not isinstance(to, str) or to not in TRANSITIONS:
        raise InvalidInput(
            "to must be one of suspended, approved, deprecated, retired.", field="to"
        )
    model = _open_model(actor, model, person=PERSON_DECIDES, system_too=True)
    reason = _reason(reason, "Give a reason for the change.")
    before = model.status
    if before not in TRANSITIONS[to]:
        raise InvalidTransition(
            f"Cannot move a model version from {before} to {to} ({LIFECYCLE_RULE}).",
            details={"from": before, "to": to},
        )
    blocked_by = []
    if to == Status.APPROVED and model.is_floating and not actor.org.allow_floating_models:
        blocked_by.append(
            (
                "floating_model_id",
                f"Floating model ids: '{model.model_id}' is floating and this organization "
                "does not allow floating ids",
            )
        )
    used = _break_glass(actor, break_glass_reason, blocked_by)
    _set_status(model, to, break_glass=used, **_transition_dates(model, to))
    _log_decision(
        actor,
        model,
        ModelDecision.Kind.TRANSITION,
        from_status=before,
        to_status=to,
        comment=reason,
        break_glass_reason=used,
    )
    if to == Status.SUSPENDED:
        _notify_admins(
            org=actor.org,
            kind="model.suspended",
            subject=f"Model {model.model_id} suspended",
            body=f"{actor.label} suspended {model.model_id}: {reason}",
            link=model_link(model),
        )
    _close(
        actor,
        model,
        action=f"model.{TRANSITION_VERBS[to]}",
        glass=used,
        what=f"move to {to}",
        details={
            "from": before,
            "to": to,
            "reason": reason,
            "break_glass": bool(used),
            "break_glass_reason": used,
        },
    )
    return model


@transaction.atomic
def model_set_floating(
    *, actor: Actor, model: ModelVersion, is_floating: bool, reason: str
) -> ModelVersion:
    """An admin corrects a wrong floating flag (the id rule is a heuristic)."""
    model = _open_model(
        actor, model, person="A person corrects the floating flag, not a machine key."
    )
    reason = _reason(reason, "Say why the flag is wrong.")
    before = model.is_floating
    if before == bool(is_floating):
        return model
    model.is_floating = bool(is_floating)
    model.floating_flag_overridden = model.is_floating != is_floating_model_id(model.model_id)
    model.save(update_fields=["is_floating", "floating_flag_overridden"])
    _log_decision(
        actor,
        model,
        ModelDecision.Kind.FLAG,
        from_status=model.status,
        to_status=model.status,
        comment=f"floating: {before} -> {model.is_floating}. {reason}",
    )
    audit_record(
        actor=actor,
        action="model.floating_flag_changed",
        target=model,
        details={"from": before, "to": model.is_floating, "reason": reason},
    )
    return model
