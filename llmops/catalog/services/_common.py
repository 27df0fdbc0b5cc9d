"""What every family of catalog writes shares: the lifecycle rules, opening a write to a
model version (this organization's, permitted, locked), the decision-history row, links,
notifications to admins, and break-glass with its closing (announce, audit last)."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput, NotFound, NotPermitted, PolicyViolation
from llmops.notify.services import notify_admins
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import can, require, role_allows

from ..models import ModelDecision, ModelVersion

Status = ModelVersion.Status

# to -> the statuses it may be reached from (docs/architecture.md, "Governance rules").
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.SUSPENDED: frozenset({Status.APPROVED}),
    Status.APPROVED: frozenset({Status.SUSPENDED}),  # reinstate
    Status.DEPRECATED: frozenset({Status.APPROVED}),
    Status.RETIRED: frozenset({Status.DEPRECATED}),
}
TRANSITION_VERBS = {
    Status.SUSPENDED: "suspended",
    Status.APPROVED: "reinstated",
    Status.DEPRECATED: "deprecated",
    Status.RETIRED: "retired",
}
LIFECYCLE_RULE = (
    "model lifecycle: proposed -> approved | rejected (a decision); approved <-> suspended; "
    "approved -> deprecated -> retired"
)
PERSON_DECIDES = "A person decides on model versions, not a machine key."


def _own(actor: Actor, model: ModelVersion) -> None:
    if model is None or model.organization_id != actor.org.pk:
        raise NotFound("No such model version.")


def _open_model(
    actor: Actor, model: ModelVersion, *, person: str = "", system_too: bool = False
) -> ModelVersion:
    """The opening of an admin's write to a model version: this organization's (else 404),
    `model.decide` allowed, and with `person` (the refusal message) only a person may do it
    (`system_too`: or the system actor, e.g. an incident's automation; never a machine
    key); the row comes back locked."""
    _own(actor, model)
    require(actor, "model.decide", model)
    if person and (actor.is_machine if system_too else not actor.is_human):
        raise NotPermitted(person)
    return ModelVersion.objects.select_for_update().get(pk=model.pk)


def _reason(reason, message: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(message, field="reason")
    return reason.strip()


def _log_decision(actor: Actor, model: ModelVersion, kind: str, **fields) -> ModelDecision:
    """A row of the model's decision history, by this actor."""
    return ModelDecision.objects.create(
        organization=actor.org,
        model_version=model,
        kind=kind,
        actor=actor.user if actor.is_human else None,
        actor_label=actor.label[:200],
        **fields,
    )


def model_link(model: ModelVersion) -> str:
    try:
        return reverse(
            "catalog:detail", kwargs={"org_slug": model.organization.slug, "pk": model.pk}
        )
    except NoReverseMatch:  # pragma: no cover - only before the URLs exist
        return ""


def _notify_admins(*, org, kind: str, subject: str, body: str, link: str) -> None:
    notify_admins(org=org, kind=kind, subject=subject, body=body, link=link)


# ---------------------------------------------------------------- break-glass


def _may_break_glass(actor: Actor) -> bool:
    # The API's decision endpoint (README.md) takes `break_glass_reason`, so an admin's
    # personal key with `models:approve` (a human-only scope) may use it on a model
    # decision: the key may decide, and the person behind it holds break_glass by role.
    if can(actor, "break_glass"):
        return True
    return (
        actor.key is not None
        and not actor.is_machine
        and can(actor, "model.decide")
        and role_allows(actor.role, "break_glass")
    )


def _break_glass(actor: Actor, reason: str | None, blocked_by: list[tuple[str, str]]) -> str:
    """Return the reason when break-glass overrides `blocked_by` ((rule code, message)
    pairs); raise when it may not. A refusal carries the first rule's code (`four_eyes`,
    `no_evidence`, `floating_model_id`), as prompts' rules do, and every code in
    `details.rules`."""
    if not blocked_by:
        return ""
    if not reason or not str(reason).strip():
        raise PolicyViolation(
            "; ".join(message for _, message in blocked_by)
            + ". An admin may proceed with break-glass and a written reason.",
            code=blocked_by[0][0],
            details={"rules": [code for code, _ in blocked_by]},
        )
    if actor.is_machine or not actor.is_human or not _may_break_glass(actor):
        raise NotPermitted("Only an admin, in person, may use break-glass.")
    reason = str(reason).strip()
    if len(reason) < 10:
        raise InvalidInput(
            "Write a reason for break-glass (at least 10 characters).", field="break_glass_reason"
        )
    return reason[:5000]


def _set_status(model: ModelVersion, status: str, *, break_glass: str, **fields) -> None:
    """Move the locked model to `status` (marking break-glass forever when used), with any
    other changed `fields`, and save."""
    model.status = status
    model.status_changed_at = timezone.now()
    if break_glass:
        model.break_glass_used = True
    for name, value in fields.items():
        setattr(model, name, value)
    model.save(update_fields=["status", "status_changed_at", "break_glass_used", *fields])


def _close(
    actor: Actor, model: ModelVersion, *, action: str, details: dict, glass: str = "", what=""
) -> None:
    """The closing of a lifecycle write: a break-glass override (`glass`, the reason) is
    announced to every admin, then the audit event, last."""
    if glass:
        _notify_admins(
            org=actor.org,
            kind="model.break_glass",
            subject=f"Break-glass on model {model.model_id}: {what}",
            body=f"{actor.label} used break-glass to {what} {model.model_id}.\n\nReason: {glass}",
            link=model_link(model),
        )
    audit_record(actor=actor, action=action, target=model, details=details)
