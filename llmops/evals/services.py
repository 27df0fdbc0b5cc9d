"""Writes for evals: datasets and cases, eval runs (generic JSON and promptfoo), policies and
the verdict of a run under a policy. Each write checks permission, validates everything
before storing anything, and audits, in one transaction (which nests inside a caller's)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput, NotFound, NotPermitted, TooLarge
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import can

from .models import EvalCase, EvalDataset, EvalPolicy, EvalResult, EvalRun

MAX_BULK_CASES = 5000
MAX_RESULTS = 50000
OPS = (">=", ">", "<=", "<", "==")
TOOLS = tuple(EvalRun.Tool.values)
# Metrics the app computes from per-case results; an upload cannot override them.
COMPUTED_METRICS = ("pass_rate", "cases", "passed", "failed", "errors")


def _require(actor: Actor, action: str, obj=None) -> None:
    if not can(actor, action, obj):
        raise NotPermitted(f"You may not do '{action}' here.")


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _tags(value: Any, field_name: str) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [t.strip() for t in value.split(",")]
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
        raise InvalidInput("Tags must be a list of strings.", field=field_name)
    tags = [t.strip()[:50] for t in value if t and t.strip()]
    return list(dict.fromkeys(tags))


# ---------------------------------------------------------------- datasets and cases


@transaction.atomic
def dataset_create(*, actor: Actor, name: str, description: str = "", tags=()) -> EvalDataset:
    _require(actor, "eval.write")
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A dataset needs a name.", field="name")
    if len(name) > 200:
        raise InvalidInput("Names are at most 200 characters.", field="name")
    if EvalDataset.objects.for_org(actor.org).filter(name=name).exists():
        raise InvalidInput(f"A dataset named '{name}' already exists.", field="name")
    try:
        with transaction.atomic():  # a concurrent create of the same name loses cleanly
            dataset = EvalDataset.objects.create(
                organization=actor.org,
                name=name,
                description=description or "",
                tags=_tags(list(tags) if isinstance(tags, tuple) else tags, "tags"),
            )
    except IntegrityError:
        raise InvalidInput(f"A dataset named '{name}' already exists.", field="name")
    audit_record(actor=actor, action="eval.dataset_created", target=dataset, details={"name": name})
    return dataset


def _case_fields(item: Any, prefix: str) -> dict:
    if not isinstance(item, dict):
        raise InvalidInput("Each case must be a JSON object.", field=prefix.rstrip("."))
    unknown = set(item) - {
        "input",
        "expected",
        "criteria",
        "tags",
        "source_kind",
        "source_label",
        "source_link",
    }
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"Unknown case field '{name}'.", field=f"{prefix}{name}")
    if item.get("input") is None:
        raise InvalidInput("A case needs an input.", field=f"{prefix}input")
    criteria = item.get("criteria") or ""
    if not isinstance(criteria, str):
        raise InvalidInput("Criteria must be text.", field=f"{prefix}criteria")
    source_kind = item.get("source_kind") or EvalCase.SourceKind.MANUAL
    if source_kind not in EvalCase.SourceKind.values:
        raise InvalidInput(
            f"Unknown source kind '{source_kind}'; use one of "
            f"{', '.join(EvalCase.SourceKind.values)}.",
            field=f"{prefix}source_kind",
        )
    for key, limit in (("source_label", 200), ("source_link", 500)):
        value = item.get(key) or ""
        if not isinstance(value, str) or len(value) > limit:
            raise InvalidInput(
                f"{key} must be text of at most {limit} characters.", field=prefix + key
            )
    return {
        "input": item["input"],
        "expected": item.get("expected"),
        "criteria": criteria,
        "tags": _tags(item.get("tags"), f"{prefix}tags"),
        "source_kind": source_kind,
        "source_label": item.get("source_label") or "",
        "source_link": item.get("source_link") or "",
    }


def _require_case_write(actor: Actor, source_kinds: Iterable[str]) -> None:
    # Reviews and incidents add their failure cases through their own services, which have
    # already checked the actor's right to work that review or incident; a reviewer who may
    # not edit datasets by hand may still send a reviewed output to one.
    if can(actor, "eval.write"):
        return
    kinds = set(source_kinds)
    if kinds and kinds <= {"review", "incident"} and can(actor, "eval.view"):
        return
    raise NotPermitted("You may not do 'eval.write' here.")


def _check_dataset(actor: Actor, dataset: EvalDataset) -> EvalDataset:
    if dataset is None or dataset.organization_id != actor.org.pk:
        raise NotFound("No such dataset.")
    return dataset


@transaction.atomic
def case_create(
    *,
    actor: Actor,
    dataset: EvalDataset,
    input: Any,
    expected: Any = None,
    criteria: str = "",
    tags=(),
    source_kind: str = "manual",
    source_label: str = "",
    source_link: str = "",
) -> EvalCase:
    """Add one case; reviews and incidents call this with their source label and link."""
    _check_dataset(actor, dataset)
    fields = _case_fields(
        {
            "input": input,
            "expected": expected,
            "criteria": criteria,
            "tags": list(tags) if isinstance(tags, tuple) else tags,
            "source_kind": source_kind,
            "source_label": source_label,
            "source_link": source_link,
        },
        "",
    )
    _require_case_write(actor, [fields["source_kind"]])
    case = EvalCase.objects.create(
        organization=actor.org, dataset=dataset, created_by=_human(actor), **fields
    )
    audit_record(
        actor=actor,
        action="eval.case_added",
        target=dataset,
        details={"case": case.pk, "source_kind": case.source_kind, "source": source_label},
    )
    return case


def _human(actor: Actor):
    return actor.user if actor.is_human else None


@transaction.atomic
def cases_bulk_create(
    *, actor: Actor, dataset: EvalDataset, cases: list, source_kind: str = "import"
) -> list[EvalCase]:
    """Add up to 5,000 cases at once; any invalid case stores none (its index is named)."""
    _check_dataset(actor, dataset)
    if not isinstance(cases, list):
        raise InvalidInput("Send a list of cases.", field="cases")
    if not cases:
        raise InvalidInput("Send at least one case.", field="cases")
    if len(cases) > MAX_BULK_CASES:
        raise TooLarge(
            f"At most {MAX_BULK_CASES} cases per request; split the upload.",
            details={"limit": MAX_BULK_CASES, "received": len(cases)},
        )
    rows = []
    for i, item in enumerate(cases):
        if isinstance(item, dict) and "source_kind" not in item:
            item = {**item, "source_kind": source_kind}
        rows.append(_case_fields(item, f"cases[{i}]."))
    _require_case_write(actor, {row["source_kind"] for row in rows})
    user = _human(actor)
    created = EvalCase.objects.bulk_create(
        [EvalCase(organization=actor.org, dataset=dataset, created_by=user, **row) for row in rows],
        batch_size=1000,
    )
    audit_record(
        actor=actor,
        action="eval.cases_imported",
        target=dataset,
        details={"count": len(created)},
    )
    return created


# ---------------------------------------------------------------- runs


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


def _dataset_arg(actor: Actor, dataset: Any) -> EvalDataset | None:
    if dataset in (None, ""):
        return None
    if isinstance(dataset, EvalDataset):
        if dataset.organization_id != actor.org.pk:
            raise InvalidInput("Unknown dataset.", field="dataset")
        return dataset
    try:
        pk = int(dataset)
    except (TypeError, ValueError):
        raise InvalidInput("The dataset must be a dataset id.", field="dataset")
    found = EvalDataset.objects.for_org(actor.org).filter(pk=pk).first()
    if found is None:
        raise InvalidInput(f"Unknown dataset {pk}.", field="dataset")
    return found


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


def _results_arg(actor: Actor, results: Any, dataset: EvalDataset | None) -> list[dict] | None:
    if results is None:
        return None
    if not isinstance(results, list):
        raise InvalidInput("Results must be a list.", field="results")
    if len(results) > MAX_RESULTS:
        raise TooLarge(f"At most {MAX_RESULTS} results per run.", details={"limit": MAX_RESULTS})
    clean = []
    case_ids = set()
    for i, item in enumerate(results):
        prefix = f"results[{i}]"
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
        if case is not None:
            if isinstance(case, bool) or not isinstance(case, int):
                raise InvalidInput("'case' must be a case id.", field=f"{prefix}.case")
            case_ids.add(case)
        clean.append(
            {
                "case_id": case,
                "input": item.get("input"),
                "output": item.get("output"),
                "score": float(score) if score is not None else None,
                # An errored case never counts as passed.
                "passed": passed and not error,
                "error": error,
                "reason": reason[:10000],
            }
        )
    if case_ids:
        known = EvalCase.objects.for_org(actor.org).filter(pk__in=case_ids)
        if dataset is not None:
            known = known.filter(dataset=dataset)
        missing = case_ids - set(known.values_list("pk", flat=True))
        if missing:
            bad = min(missing)
            index = next(i for i, r in enumerate(clean) if r["case_id"] == bad)
            where = f" in dataset '{dataset.name}'" if dataset else ""
            raise InvalidInput(f"Unknown case {bad}{where}.", field=f"results[{index}].case")
    return clean


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
    _require(actor, "eval.write")
    if tool not in TOOLS:
        raise InvalidInput(f"Unknown tool '{tool}'; use one of {', '.join(TOOLS)}.", field="tool")
    dataset = _dataset_arg(actor, dataset)
    clean_metrics = _metrics_arg(metrics)
    clean_results = _results_arg(actor, results, dataset)
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
    if clean_results:
        total = len(clean_results)
        passed = sum(1 for r in clean_results if r["passed"])
        errors = sum(1 for r in clean_results if r["error"])
        clean_metrics.update(
            {
                "pass_rate": round(passed / total, 6),
                "cases": total,
                "passed": passed,
                "failed": total - passed,
                "errors": errors,
            }
        )
    case_count, dataset_hash = dataset_fingerprint(dataset) if dataset else (None, "")
    run = EvalRun.objects.create(
        organization=actor.org,
        dataset=dataset,
        dataset_case_count=case_count,
        dataset_hash=dataset_hash,
        tool=tool,
        model_id=model_id.strip(),
        subject_content_hash=subject_content_hash.strip(),
        metrics=clean_metrics,
        commit=commit.strip(),
        ci_url=ci_url.strip(),
        uploaded_by_label=actor.label[:200],
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


# ---------------------------------------------------------------- promptfoo


def _pf_output(response: Any) -> Any:
    if not isinstance(response, dict):
        return None
    return response.get("output")


def _pf_reason(item: dict) -> str:
    if item.get("error"):
        return str(item["error"])
    grading = item.get("gradingResult")
    if isinstance(grading, dict) and grading.get("reason"):
        return str(grading["reason"])
    return ""


def promptfoo_parse(data: Any, *, model: str = "") -> dict:
    """Map promptfoo's `promptfoo eval -o results.json` to run_create keyword arguments.

    Takes promptfoo's own per-result `success` (it already applies weights and test-level
    thresholds); a provider error (`failureReason` 2, or an error without a grading
    result) is an error and a failure. Named scores become metrics (their mean per
    result), plus token usage, cost and latency. With `model` naming one provider of a
    multi-provider file, only that provider's results are kept: a run about a model is
    evidence of that model alone."""
    if not isinstance(data, dict):
        raise InvalidInput("A promptfoo results file is a JSON object.", field="results")
    body = data.get("results")
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise InvalidInput(
            "Not a promptfoo results file: expected results.results to be a list "
            "(the output of `promptfoo eval -o results.json`).",
            field="results.results",
        )
    items = body["results"]
    prompts = body.get("prompts") if isinstance(body.get("prompts"), list) else []
    parsed = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput("Each result must be an object.", field=f"results.results[{i}]")
        success = item.get("success")
        if not isinstance(success, bool):
            raise InvalidInput(
                "Each promptfoo result needs a boolean 'success'.",
                field=f"results.results[{i}].success",
            )
        provider = item.get("provider")
        if isinstance(provider, dict):
            provider_label = str(provider.get("label") or provider.get("id") or "")
            provider_id = str(provider.get("id") or "")
        else:
            provider_label = provider_id = str(provider or "")
        score = item.get("score")
        if score is not None and not _is_number(score):
            raise InvalidInput("'score' must be a number.", field=f"results.results[{i}].score")
        failure_reason = item.get("failureReason")
        error = failure_reason == 2 or (
            bool(item.get("error")) and not item.get("gradingResult") and failure_reason != 1
        )
        prompt = item.get("prompt") if isinstance(item.get("prompt"), dict) else {}
        test = item.get("testCase") if isinstance(item.get("testCase"), dict) else {}
        token_usage = item.get("tokenUsage") if isinstance(item.get("tokenUsage"), dict) else {}
        named = item.get("namedScores") if isinstance(item.get("namedScores"), dict) else {}
        parsed.append(
            {
                "provider_label": provider_label,
                "provider_id": provider_id,
                "result": {
                    "input": {
                        "vars": item.get("vars") if item.get("vars") is not None else {},
                        "prompt": prompt.get("label") or "",
                        "provider": provider_label,
                        "test": test.get("description") or "",
                    },
                    "output": _pf_output(item.get("response")),
                    "score": float(score) if score is not None else None,
                    "passed": success and not error,
                    "error": error,
                    "reason": _pf_reason(item),
                },
                "named": {k: v for k, v in named.items() if _is_number(v)},
                "cost": item.get("cost") if _is_number(item.get("cost")) else 0,
                "tokens": {
                    k: token_usage.get(k)
                    for k in ("prompt", "completion", "total")
                    if _is_number(token_usage.get(k))
                },
                "latency": item.get("latencyMs") if _is_number(item.get("latencyMs")) else None,
            }
        )
    if not parsed:
        raise InvalidInput("The promptfoo file has no results.", field="results.results")
    providers = sorted({p["provider_label"] for p in parsed if p["provider_label"]})
    model = (model or "").strip()
    if model and len(providers) > 1:
        mine = [p for p in parsed if model in (p["provider_label"], p["provider_id"])]
        if mine:
            parsed = mine
            providers = [model]
    metrics: dict[str, float] = {}
    named_sums: dict[str, list[float]] = {}
    for p in parsed:
        for name, value in p["named"].items():
            named_sums.setdefault(name, []).append(float(value))
    for name, values in sorted(named_sums.items()):
        if name not in COMPUTED_METRICS:
            metrics[name] = round(sum(values) / len(values), 6)
    scores = [p["result"]["score"] for p in parsed if p["result"]["score"] is not None]
    if scores:
        metrics["score_mean"] = round(sum(scores) / len(scores), 6)
    metrics["cost_usd"] = round(sum(float(p["cost"]) for p in parsed), 8)
    for key in ("prompt", "completion", "total"):
        metrics[f"tokens_{key}"] = sum(int(p["tokens"].get(key) or 0) for p in parsed)
    latencies = [p["latency"] for p in parsed if p["latency"] is not None]
    if latencies:
        metrics["latency_ms_mean"] = round(sum(latencies) / len(latencies), 3)
    metrics["prompts"] = (
        len(prompts) if prompts else len({p["result"]["input"]["prompt"] for p in parsed})
    )
    model_id = model or (providers[0] if len(providers) == 1 else "")
    return {
        "tool": "promptfoo",
        "metrics": metrics,
        "results": [p["result"] for p in parsed],
        "model_id": model_id,
    }


# ---------------------------------------------------------------- policies and verdicts


@dataclass
class Verdict:
    passed: bool
    policy: dict
    checks: list[dict] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [c["message"] for c in self.checks if not c["passed"]]

    def as_dict(self) -> dict:
        return {"passed": self.passed, "policy": self.policy, "checks": self.checks}


def _compare(actual: float, op: str, value: float) -> bool:
    return {
        ">=": actual >= value,
        ">": actual > value,
        "<=": actual <= value,
        "<": actual < value,
        "==": actual == value,
    }[op]


def policy_as_dict(policy: EvalPolicy) -> dict:
    return {
        "id": policy.pk,
        "name": policy.name,
        "thresholds": policy.thresholds,
        "min_cases": policy.min_cases,
        "required_dataset": policy.required_dataset_id,
    }


def run_case_count(run: EvalRun) -> int:
    value = (run.metrics or {}).get("cases")
    return int(value) if _is_number(value) else 0


def policy_evaluate(*, policy: EvalPolicy, run: EvalRun) -> Verdict:
    """Check a run against a policy: every threshold, the minimum number of cases and the
    required dataset. A threshold on a metric the run lacks fails, naming the metric."""
    metrics = run.metrics or {}
    checks = []
    for t in policy.thresholds or []:
        metric, op, value = t.get("metric"), t.get("op"), t.get("value")
        actual = metrics.get(metric)
        if not _is_number(actual):
            checks.append(
                {
                    "metric": metric,
                    "op": op,
                    "value": value,
                    "actual": None,
                    "passed": False,
                    "message": f"The run has no metric '{metric}' (needed: {metric} {op} {value}).",
                }
            )
            continue
        ok = op in OPS and _is_number(value) and _compare(float(actual), op, float(value))
        checks.append(
            {
                "metric": metric,
                "op": op,
                "value": value,
                "actual": actual,
                "passed": ok,
                "message": f"{metric} = {actual:g} {'meets' if ok else 'fails'} {op} {value}",
            }
        )
    cases = run_case_count(run)
    ok = cases >= policy.min_cases
    checks.append(
        {
            "metric": "cases",
            "op": ">=",
            "value": policy.min_cases,
            "actual": cases,
            "passed": ok,
            "message": f"{cases} case(s) {'meets' if ok else 'fails'} the minimum of {policy.min_cases}",
        }
    )
    if policy.required_dataset_id:
        ok = run.dataset_id == policy.required_dataset_id
        name = (
            policy.required_dataset.name if policy.required_dataset else policy.required_dataset_id
        )
        checks.append(
            {
                "metric": "dataset",
                "op": "==",
                "value": policy.required_dataset_id,
                "actual": run.dataset_id,
                "passed": ok,
                "message": (
                    f"Run on the required dataset '{name}'"
                    if ok
                    else f"The run must use the required dataset '{name}'"
                ),
            }
        )
    return Verdict(
        passed=all(c["passed"] for c in checks), policy=policy_as_dict(policy), checks=checks
    )


DEFAULT_POLICY_NAME = "Default"
DEFAULT_THRESHOLDS = [{"metric": "pass_rate", "op": ">=", "value": 0.9}]


def policy_default(*, org) -> EvalPolicy:
    """The organization's default policy, created (`pass_rate >= 0.9`, at least 1 case, no
    dataset) when missing."""
    policy = EvalPolicy.objects.for_org(org).filter(is_default=True).first()
    if policy is not None:
        return policy
    try:
        with transaction.atomic():
            return EvalPolicy.objects.create(
                organization=org,
                name=DEFAULT_POLICY_NAME,
                thresholds=DEFAULT_THRESHOLDS,
                min_cases=1,
                is_default=True,
            )
    except IntegrityError:
        return EvalPolicy.objects.for_org(org).get(is_default=True)


def thresholds_clean(thresholds: Any) -> list[dict]:
    if not isinstance(thresholds, list):
        raise InvalidInput("Thresholds are a list of {metric, op, value}.", field="thresholds")
    clean = []
    for i, t in enumerate(thresholds):
        if not isinstance(t, dict):
            raise InvalidInput("Each threshold is an object.", field=f"thresholds[{i}]")
        metric = t.get("metric")
        if not isinstance(metric, str) or not metric.strip():
            raise InvalidInput("A threshold names a metric.", field=f"thresholds[{i}].metric")
        if t.get("op") not in OPS:
            raise InvalidInput(f"op must be one of {' '.join(OPS)}.", field=f"thresholds[{i}].op")
        if not _is_number(t.get("value")):
            raise InvalidInput("value must be a number.", field=f"thresholds[{i}].value")
        clean.append({"metric": metric.strip(), "op": t["op"], "value": t["value"]})
    return clean


@transaction.atomic
def policy_save(
    *,
    actor: Actor,
    name: str,
    thresholds: Any,
    min_cases: int = 1,
    required_dataset: Any = None,
    is_default: bool = False,
    policy: EvalPolicy | None = None,
) -> EvalPolicy:
    """Create or change a policy; making one the default un-defaults the previous one."""
    _require(actor, "model.decide")  # changing a gate is an admin's decision
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A policy needs a name.", field="name")
    clean = thresholds_clean(thresholds)
    if not isinstance(min_cases, int) or isinstance(min_cases, bool) or min_cases < 0:
        raise InvalidInput("min_cases must be a whole number >= 0.", field="min_cases")
    dataset = _dataset_arg(actor, required_dataset)
    if policy is not None and policy.organization_id != actor.org.pk:
        raise NotFound("No such policy.")
    clash = EvalPolicy.objects.for_org(actor.org).filter(name=name)
    if policy is not None:
        clash = clash.exclude(pk=policy.pk)
    if clash.exists():
        raise InvalidInput(f"A policy named '{name}' already exists.", field="name")
    before = policy_as_dict(policy) if policy else None
    if is_default:
        EvalPolicy.objects.for_org(actor.org).filter(is_default=True).exclude(
            pk=policy.pk if policy else None
        ).update(is_default=False)
    if policy is None:
        policy = EvalPolicy(organization=actor.org)
    policy.name = name
    policy.thresholds = clean
    policy.min_cases = min_cases
    policy.required_dataset = dataset
    policy.is_default = bool(is_default) or policy.is_default
    policy.save()
    audit_record(
        actor=actor,
        action="eval.policy_saved",
        target=policy,
        details={"before": before, "after": policy_as_dict(policy)},
    )
    return policy
