"""Eval runs: recording a run (metrics, per-case results, the dataset it ran on with its
fingerprint); `pass_rate` and the case counts come from the results when there are any."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput, TooLarge
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import require

from ..models import EvalCase, EvalDataset, EvalResult, EvalRun
from ._common import _dataset_arg, _is_number

MAX_RESULTS = 50000
TOOLS = tuple(EvalRun.Tool.values)
# Metrics the app computes from per-case results; an upload cannot override them.
COMPUTED_METRICS = ("pass_rate", "cases", "passed", "failed", "errors")


def dataset_fingerprint(dataset: EvalDataset) -> tuple[int, str]:
    """(case count, SHA-256 of the cases' content) of a dataset now."""
    digest = hashlib.sha256()
    count = 0
    for pk, inp, expected, criteria in (
        EvalCase.objects.filter(dataset=dataset)
        .order_by("id")
        .values_list("id", "input", "expected", "criteria")
        .iterator(chunk_size=2000)
    ):
        count += 1
        digest.update(
            json.dumps([pk, inp, expected, criteria], sort_keys=True, default=str).encode()
        )
        digest.update(b"\n")
    return count, digest.hexdigest()


def _metrics_arg(metrics: Any) -> dict[str, float]:
    if metrics in (None, ""):
        return {}
    if not isinstance(metrics, dict):
        raise InvalidInput("Metrics must be an object of name: number.", field="metrics")
    clean = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise InvalidInput("Metric names are non-empty text.", field="metrics")
        if not _is_number(value):
            raise InvalidInput(
                f"Metric '{name}' must be a number, not {json.dumps(value)[:40]}.",
                field=f"metrics.{name}",
            )
        clean[name.strip()] = value
    return clean


def _result(item: Any, prefix: str) -> dict:
    """One per-case result, cleaned (`prefix` names it in errors: `results[3]`)."""
    if not isinstance(item, dict):
        raise InvalidInput("Each result must be an object.", field=prefix)
    passed = item.get("passed")
    if not isinstance(passed, bool):
        raise InvalidInput("'passed' must be true or false.", field=f"{prefix}.passed")
    error = item.get("error", False)
    if isinstance(error, str):
        reason_from_error, error = error, bool(error)
    else:
        reason_from_error = ""
    if not isinstance(error, bool):
        raise InvalidInput("'error' must be true, false or a message.", field=f"{prefix}.error")
    score = item.get("score")
    if score is not None and not _is_number(score):
        raise InvalidInput("'score' must be a number.", field=f"{prefix}.score")
    reason = item.get("reason") or reason_from_error
    if not isinstance(reason, str):
        raise InvalidInput("'reason' must be text.", field=f"{prefix}.reason")
    case = item.get("case")
    if case is not None and (isinstance(case, bool) or not isinstance(case, int)):
        raise InvalidInput("'case' must be a case id.", field=f"{prefix}.case")
    return {
        "case_id": case,
        "input": item.get("input"),
        "output": item.get("output"),
        "score": float(score) if score is not None else None,
        # An errored case never counts as passed.
        "passed": passed and not error,
        "error": error,
        "reason": reason[:10000],
    }


def _check_cases(actor: Actor, clean: list[dict], dataset: EvalDataset | None) -> None:
    """Every case a result names is this organization's (and the run's dataset's)."""
    case_ids = {r["case_id"] for r in clean if r["case_id"] is not None}
    if not case_ids:
        return
    known = EvalCase.objects.for_org(actor.org).filter(pk__in=case_ids)
    if dataset is not None:
        known = known.filter(dataset=dataset)
    missing = case_ids - set(known.values_list("pk", flat=True))
    if missing:
        bad = min(missing)
        index = next(i for i, r in enumerate(clean) if r["case_id"] == bad)
        where = f" in dataset '{dataset.name}'" if dataset else ""
        raise InvalidInput(f"Unknown case {bad}{where}.", field=f"results[{index}].case")


def _results_arg(actor: Actor, results: Any, dataset: EvalDataset | None) -> list[dict] | None:
    if results is None:
        return None
    if not isinstance(results, list):
        raise InvalidInput("Results must be a list.", field="results")
    if len(results) > MAX_RESULTS:
        raise TooLarge(f"At most {MAX_RESULTS} results per run.", details={"limit": MAX_RESULTS})
    clean = [_result(item, f"results[{i}]") for i, item in enumerate(results)]
    _check_cases(actor, clean, dataset)
    return clean


def _run_labels(*, model_id: Any, commit: Any, ci_url: Any, subject_content_hash: Any) -> dict:
    """The run's short text fields, checked and stripped."""
    if not isinstance(model_id, str) or len(model_id) > 200:
        raise InvalidInput("model must be text of at most 200 characters.", field="model")
    if not isinstance(commit, str) or len(commit) > 64:
        raise InvalidInput("commit must be a SHA of at most 64 characters.", field="commit")
    if not isinstance(subject_content_hash, str) or len(subject_content_hash) > 64:
        raise InvalidInput(
            "subject_content_hash must be a content hash of at most 64 characters.",
            field="subject_content_hash",
        )
    if not isinstance(ci_url, str) or (ci_url and not ci_url.startswith(("https://", "http://"))):
        raise InvalidInput("ci_url must be an http(s) URL.", field="ci_url")
    if len(ci_url) > 500:
        raise InvalidInput("ci_url is at most 500 characters.", field="ci_url")
    return {
        "model_id": model_id.strip(),
        "commit": commit.strip(),
        "ci_url": ci_url.strip(),
        "subject_content_hash": subject_content_hash.strip(),
    }


def _computed_metrics(results: list[dict]) -> dict:
    total = len(results)
    passed = sum(1 for r in results if r["passed"])
    return {
        "pass_rate": round(passed / total, 6),
        "cases": total,
        "passed": passed,
        "failed": total - passed,
        "errors": sum(1 for r in results if r["error"]),
    }


@transaction.atomic
def run_create(
    *,
    actor: Actor,
    tool: str,
    metrics: dict | None = None,
    results: list | None = None,
    dataset: Any = None,
    model_id: str = "",
    commit: str = "",
    ci_url: str = "",
    subject_content_hash: str = "",
) -> EvalRun:
    """Record an eval run. `pass_rate` (and cases/passed/failed/errors) come from the
    per-case results when there are any; errors count as failures. `subject_content_hash`
    is the content hash of the prompt version the run judged, when it is recorded for one
    (the caller that owns the link passes it; a run stores it as a plain fact)."""
    require(actor, "eval.write")
    if tool not in TOOLS:
        raise InvalidInput(f"Unknown tool '{tool}'; use one of {', '.join(TOOLS)}.", field="tool")
    dataset = _dataset_arg(actor, dataset)
    clean_metrics = _metrics_arg(metrics)
    clean_results = _results_arg(actor, results, dataset)
    labels = _run_labels(
        model_id=model_id, commit=commit, ci_url=ci_url, subject_content_hash=subject_content_hash
    )
    if clean_results:
        clean_metrics.update(_computed_metrics(clean_results))
    case_count, dataset_hash = dataset_fingerprint(dataset) if dataset else (None, "")
    run = EvalRun.objects.create(
        organization=actor.org,
        dataset=dataset,
        dataset_case_count=case_count,
        dataset_hash=dataset_hash,
        tool=tool,
        metrics=clean_metrics,
        uploaded_by_label=actor.label[:200],
        **labels,
    )
    if clean_results:
        EvalResult.objects.bulk_create(
            [EvalResult(organization=actor.org, run=run, **r) for r in clean_results],
            batch_size=1000,
        )
    audit_record(
        actor=actor,
        action="eval.run_recorded",
        target=run,
        details={
            "tool": tool,
            "model_id": run.model_id,
            "subject_content_hash": run.subject_content_hash,
            "dataset": dataset.pk if dataset else None,
            "pass_rate": clean_metrics.get("pass_rate"),
            "results": len(clean_results or ()),
        },
    )
    return run
