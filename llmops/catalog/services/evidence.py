"""Eval runs as evidence on a model version: linking a run (judged under the
organization's default policy), and recording a run about a model in one step."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput, InvalidTransition, NotFound, NotPermitted
from llmops.common.hygiene import has_control_characters, text_problem
from llmops.evals.models import EvalRun
from llmops.evals.services import policy_default, policy_evaluate, run_create
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import can

from ..models import ModelEvidence, ModelVersion
from ._common import Status, _own


@transaction.atomic
def model_attach_evidence(*, actor: Actor, model: ModelVersion, run: EvalRun) -> ModelEvidence:
    """Link an eval run as evidence on a model version, with its verdict under the
    organization's default policy (stored on the link). Attaching again re-evaluates."""
    _own(actor, model)
    if run is None or run.organization_id != actor.org.pk:
        raise NotFound("No such eval run.")
    if not (can(actor, "eval.write") or can(actor, "model.propose", model)):
        raise NotPermitted("You may not attach evidence to model versions.")
    if model.status in (Status.REJECTED, Status.RETIRED):
        raise InvalidTransition(
            f"Model '{model.model_id}' is {model.status}; evidence can no longer be attached."
        )
    verdict = policy_evaluate(policy=policy_default(org=actor.org), run=run)
    evidence, created = ModelEvidence.objects.update_or_create(
        organization=actor.org,
        model_version=model,
        eval_run=run,
        defaults={
            "passed": verdict.passed,
            "verdict": verdict.as_dict(),
            "attached_by_label": actor.label[:200],
        },
    )
    audit_record(
        actor=actor,
        action="model.evidence_attached",
        target=model,
        details={"run": run.pk, "passed": verdict.passed, "new": created},
    )
    return evidence


def model_ref_resolve(*, actor: Actor, ref: Any) -> tuple[ModelVersion | None, str]:
    """A run's `model`: a catalog id (a number: must be this organization's, else 404) or
    a model id string (evidence when the catalog has it, else just recorded)."""
    if ref in (None, ""):
        return None, ""
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        raise InvalidInput("model must be a model id or a catalog id.", field="model")
    if isinstance(ref, str) and (text_problem(ref) or has_control_characters(ref)):
        raise InvalidInput(
            "model must be a model id or a catalog id, without control characters.",
            field="model",
        )
    if isinstance(ref, int) or (ref.strip().isascii() and ref.strip().isdigit()):
        model = ModelVersion.objects.for_org(actor.org).filter(pk=int(ref)).first()
        if model is None:
            raise NotFound("No such model version.")
        return model, model.model_id
    model_id = ref.strip()
    model = ModelVersion.objects.for_org(actor.org).filter(model_id=model_id).first()
    return model, model_id


@transaction.atomic
def model_run_record(
    *, actor: Actor, model: ModelVersion | None, run_kwargs: dict
) -> tuple[EvalRun, ModelEvidence | None]:
    """Record an eval run and, when it is about a catalog model, link it as evidence —
    one transaction, so nothing is half-written."""
    if model is not None:
        _own(actor, model)
        run_kwargs = {**run_kwargs, "model_id": model.model_id}
    run = run_create(actor=actor, **run_kwargs)
    evidence = (
        model_attach_evidence(actor=actor, model=model, run=run) if model is not None else None
    )
    return run, evidence
