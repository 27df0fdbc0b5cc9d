"""Quick actions from an incident that call the owning apps' services: add the failure to an
eval dataset (or link an existing case), suspend a model version, roll a prompt label back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from llmops.common.errors import (
    InvalidInput,
    NotFound,
    NotPermitted,
)
from llmops.tenancy.actor import Actor

from ..models import (
    Evidence,
    Incident,
    IncidentEvalCase,
    TimelineEntry,
)
from ._common import (
    MAX_NOTE,
    MAX_REASON,
    _not_ended,
    _open_incident,
    _record,
    _rule,
    _text,
    incident_link,
)
from .evidence import _link_evidence


@transaction.atomic
def incident_add_eval_case(
    *,
    actor: Actor,
    incident: Incident,
    dataset: Any,
    input: Any,
    expected: Any = None,
    criteria: str = "",
    tags: Iterable[str] = (),
) -> IncidentEvalCase:
    """Add the failure to an eval dataset (through evals' service) and link the case."""
    from llmops.evals.services import case_create

    incident = _open_incident(actor, incident)
    if dataset is None or dataset.organization_id != incident.organization_id:
        raise NotFound("No such dataset.")
    case = case_create(
        actor=actor,
        dataset=dataset,
        input=input,
        expected=expected,
        criteria=criteria,
        tags=tuple(tags) or ("incident", incident.category),
        source_kind="incident",
        source_label=incident.ref,
        source_link=incident_link(incident),
    )
    link = IncidentEvalCase.objects.create(
        organization_id=incident.organization_id,
        incident=incident,
        eval_case_id=case.pk,
        dataset_name=dataset.name,
        created_by_label=actor.label[:200],
    )
    _record(
        actor,
        incident,
        TimelineEntry.Kind.ACTION,
        f"Failure added to eval dataset {dataset.name} as case {case.pk}.",
        {"eval_case": case.pk, "dataset": dataset.pk},
        audit="incident.eval_case",
        details={"case": case.pk, "dataset": dataset.name},
    )
    return link


@transaction.atomic
def incident_link_eval_case(
    *, actor: Actor, incident: Incident, case: Any, note: Any = ""
) -> IncidentEvalCase:
    """A maintainer states that an existing eval case captures this incident's failure (e.g.
    one made from the review that escalated it). A person's decision, on the timeline and in
    the audit log; only such links and cases created from the incident count for the
    eval-case rule."""
    incident = _open_incident(actor, incident)
    if not actor.is_human:
        raise NotPermitted(
            "Linking an existing eval case is a maintainer's decision; machine keys may not."
        )
    _not_ended(incident)
    if case is None or case.organization_id != incident.organization_id:
        raise NotFound("No such eval case.")
    note = _text(note, field="note", limit=MAX_REASON)
    if IncidentEvalCase.objects.filter(incident=incident, eval_case_id=case.pk).exists():
        raise InvalidInput(
            f"Eval case {case.pk} is already linked to {incident.ref}.", field="case"
        )
    dataset_name = case.dataset.name
    link = IncidentEvalCase.objects.create(
        organization_id=incident.organization_id,
        incident=incident,
        eval_case_id=case.pk,
        dataset_name=dataset_name,
        how=IncidentEvalCase.How.LINKED,
        note=note,
        created_by_label=actor.label[:200],
    )
    _record(
        actor,
        incident,
        TimelineEntry.Kind.ACTION,
        f"Existing eval case {case.pk} in dataset {dataset_name} linked as this failure's case."
        + (f"\n\n{note}" if note else ""),
        {"eval_case": case.pk, "dataset": case.dataset_id, "how": "linked"},
        audit="incident.eval_case_link",
        details={
            "case": case.pk,
            "dataset": dataset_name,
            "case_source_kind": case.source_kind,
            "case_source_label": case.source_label,
            "note": note,
        },
    )
    return link


@transaction.atomic
def incident_suspend_model(*, actor: Actor, incident: Incident, model: Any, reason: str) -> Any:
    """Suspend a model version in the catalog (the catalog checks who may), on the record."""
    from llmops.catalog.services import model_transition

    incident = _open_incident(actor, incident, check=_not_ended)
    if model is None or model.organization_id != incident.organization_id:
        raise NotFound("No such model version.")
    reason = _text(reason, field="reason", limit=MAX_NOTE, required=True)
    model = model_transition(
        actor=actor, model=model, to="suspended", reason=f"{incident.ref}: {reason}"
    )
    _link_evidence(actor, incident, Evidence.Kind.MODEL_VERSION, model)
    _record(
        actor,
        incident,
        TimelineEntry.Kind.ACTION,
        f"Quick action: suspended model {model.model_id}. {reason}",
        {"model": model.pk, "action": "suspend_model"},
        audit="incident.quick_action",
        details={"action": "suspend_model", "model": model.model_id, "reason": reason},
    )
    return model


def rollback_target(*, prompt: Any, label_name: str) -> tuple[Any, Any]:
    """(current version, previous approved version) of a prompt label, or raise."""
    from prompts.models import Label, PromptVersion

    label = Label.objects.filter(prompt=prompt, name=label_name).select_related("version").first()
    if label is None or label.version is None:
        raise InvalidInput(f"Prompt {prompt.name} has no label {label_name!r}.", field="label")
    previous = (
        PromptVersion.objects.filter(
            prompt=prompt, number__lt=label.version.number, status="approved"
        )
        .select_related("model")
        .order_by("-number")
        .first()
    )
    if previous is None:
        raise _rule(
            "no_previous_version",
            f"{prompt.name}@{label_name} has no earlier approved version to roll back to",
        )
    return label.version, previous


@transaction.atomic
def incident_rollback_prompt(
    *,
    actor: Actor,
    incident: Incident,
    prompt: Any,
    label: str,
    reason: str,
    break_glass_reason: str | None = None,
) -> Any:
    """Roll a prompt label back to its previous approved version through prompts' deploy
    service (which enforces protected labels; break-glass where that version's model is now
    suspended). Both versions become evidence."""
    from prompts.services import label_deploy

    incident = _open_incident(actor, incident, check=_not_ended)
    if prompt is None or prompt.organization_id != incident.organization_id:
        raise NotFound("No such prompt.")
    reason = _text(reason, field="reason", limit=MAX_NOTE, required=True)
    current, previous = rollback_target(prompt=prompt, label_name=label)
    result = label_deploy(
        actor=actor,
        prompt=prompt,
        label=label,
        version=previous,
        reason=f"{incident.ref} rollback: {reason}",
        break_glass_reason=break_glass_reason or "",
    )
    _link_evidence(actor, incident, Evidence.Kind.PROMPT_VERSION, current)
    _link_evidence(actor, incident, Evidence.Kind.PROMPT_VERSION, previous)
    _record(
        actor,
        incident,
        TimelineEntry.Kind.ACTION,
        f"Quick action: rolled {prompt.name}@{label} back from v{current.number} to "
        f"v{previous.number}. {reason}"
        + (f"\n\nBreak-glass: {break_glass_reason}" if break_glass_reason else ""),
        {
            "action": "rollback_prompt",
            "prompt": prompt.name,
            "label": label,
            "from": current.number,
            "to": previous.number,
            "break_glass": bool(break_glass_reason),
        },
        sync=True,
        audit="incident.quick_action",
        details={
            "action": "rollback_prompt",
            "prompt": prompt.name,
            "label": label,
            "from": current.number,
            "to": previous.number,
            "break_glass_reason": break_glass_reason or "",
        },
    )
    return result
