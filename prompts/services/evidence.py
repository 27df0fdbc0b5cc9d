"""Eval evidence of a version: record a run of exactly this version (a JSON body or
promptfoo's results file) or attach one already recorded, judged under the prompt's eval
policy. A run counts only for the content hash and the model it judged."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput
from llmops.evals.models import EvalPolicy, EvalRun
from llmops.evals.services import policy_default, policy_evaluate, promptfoo_parse, run_create
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import require

from ..models import Prompt, PromptVersion, PromptVersionEvalRun
from ._common import _lock_version

RUN_FIELDS = {"tool", "metrics", "results", "dataset", "model", "commit", "ci_url"}


def _policy_for(prompt: Prompt) -> EvalPolicy:
    return prompt.eval_policy or policy_default(org=prompt.organization)


def run_judged_version(run: EvalRun, version: PromptVersion) -> bool:
    """Whether the run recorded judging exactly this version: its content hash and its
    pinned model. A run recorded before these facts were kept has neither."""
    return bool(run.subject_content_hash) and (
        run.subject_content_hash == version.content_hash and run.model_id == version.model.model_id
    )


def _check_run_subject(run: EvalRun, version: PromptVersion) -> None:
    label = f"{version.prompt.name} v{version.number}"
    if not run.subject_content_hash:
        raise InvalidInput(
            f"Run {run.pk} was not recorded for a prompt version, so it is not evidence for "
            f"{label}; upload a run of this version instead.",
            field="run",
        )
    if run.subject_content_hash != version.content_hash:
        raise InvalidInput(
            f"Run {run.pk} judged other prompt content (content hash "
            f"{run.subject_content_hash[:12]}), not {label} ({version.content_hash[:12]}).",
            field="run",
        )
    if run.model_id != version.model.model_id:
        raise InvalidInput(
            f"Run {run.pk} judged model '{run.model_id}', but {label} pins "
            f"'{version.model.model_id}'.",
            field="run",
        )


def _open_for_evidence(actor: Actor, version: PromptVersion) -> PromptVersion:
    """The opening of both evidence writes: eval.write, the version locked in this org."""
    require(actor, "eval.write")
    return _lock_version(actor, version)


def _link_run(actor: Actor, version: PromptVersion, run: EvalRun) -> PromptVersionEvalRun:
    """The closing of both evidence writes: the run judged under the prompt's policy,
    linked to the version, and audited (last)."""
    _check_run_subject(run, version)
    policy = _policy_for(version.prompt)
    verdict = policy_evaluate(policy=policy, run=run)
    link, created = PromptVersionEvalRun.objects.get_or_create(
        version=version,
        eval_run=run,
        defaults={
            "organization": actor.org,
            "policy": policy,
            "passed": verdict.passed,
            "verdict": verdict.as_dict(),
            "attached_by_label": actor.label[:200],
        },
    )
    if not created:
        raise InvalidInput(f"Run {run.pk} is already linked to this version.", field="run")
    audit_record(
        actor=actor,
        action="prompt.eval_run_linked",
        target=version,
        details={"run": run.pk, "passed": link.passed, "policy": link.verdict.get("policy", {})},
    )
    return link


def _run_fields(version: PromptVersion, data: dict) -> dict:
    """run_create's arguments from a JSON body: only its known fields, and only a run of
    the model this version pins."""
    pinned = version.model.model_id
    unknown = set(data) - RUN_FIELDS
    if unknown:
        raise InvalidInput(
            f"Unknown field(s): {', '.join(sorted(unknown))}.", field=sorted(unknown)[0]
        )
    if "tool" not in data:
        raise InvalidInput("tool is required.", field="tool")
    reported = data.get("model")
    if reported not in (None, "") and reported != pinned:
        raise InvalidInput(
            f"model: v{version.number} pins '{pinned}'; a run of another model is not "
            "evidence for this version.",
            field="model",
        )
    return {
        "tool": data.get("tool"),
        "metrics": data.get("metrics"),
        "results": data.get("results"),
        "dataset": data.get("dataset"),
        "model_id": pinned,
        "commit": data.get("commit") or version.source_commit or "",
        "ci_url": data.get("ci_url") or "",
    }


@transaction.atomic
def version_record_eval_run(
    *, actor: Actor, version: PromptVersion, data: Any, promptfoo: bool = False
) -> tuple[EvalRun, PromptVersionEvalRun]:
    """Record an eval run of exactly this version (JSON body or promptfoo's results file)
    through the evals service and link it, judged under the prompt's policy, in one
    transaction."""
    version = _open_for_evidence(actor, version)
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object.", field="body")
    if promptfoo:
        kwargs = promptfoo_parse(data, model=version.model.model_id)
        kwargs["model_id"] = kwargs.get("model_id") or version.model.model_id
    else:
        kwargs = _run_fields(version, data)
    run = run_create(actor=actor, subject_content_hash=version.content_hash, **kwargs)
    return run, _link_run(actor, version, run)


@transaction.atomic
def version_attach_eval_run(
    *, actor: Actor, version: PromptVersion, run_id: Any
) -> PromptVersionEvalRun:
    """Link an eval run already recorded in this organization to a version: only a run
    recorded for exactly this content on this model (see `run_judged_version`)."""
    version = _open_for_evidence(actor, version)
    try:
        run = EvalRun.objects.for_org(actor.org).get(pk=int(run_id))
    except (EvalRun.DoesNotExist, TypeError, ValueError):
        raise InvalidInput("No such eval run in this organization.", field="run")
    return _link_run(actor, version, run)
