"""promptfoo's results file (`promptfoo eval -o results.json`) as `run_create` arguments."""

from __future__ import annotations

from typing import Any

from llmops.common.errors import InvalidInput

from ._common import _is_number
from .runs import COMPUTED_METRICS


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


def _pf_dict(item: dict, key: str) -> dict:
    value = item.get(key)
    return value if isinstance(value, dict) else {}


def _pf_item(item: Any, where: str) -> dict:
    """One promptfoo result: its provider, our per-case result, and what feeds the metrics
    (named scores, cost, tokens, latency). `where` names it in errors."""
    if not isinstance(item, dict):
        raise InvalidInput("Each result must be an object.", field=where)
    success = item.get("success")
    if not isinstance(success, bool):
        raise InvalidInput(
            "Each promptfoo result needs a boolean 'success'.", field=f"{where}.success"
        )
    provider = item.get("provider")
    if isinstance(provider, dict):
        provider_label = str(provider.get("label") or provider.get("id") or "")
        provider_id = str(provider.get("id") or "")
    else:
        provider_label = provider_id = str(provider or "")
    score = item.get("score")
    if score is not None and not _is_number(score):
        raise InvalidInput("'score' must be a number.", field=f"{where}.score")
    failure_reason = item.get("failureReason")
    error = failure_reason == 2 or (
        bool(item.get("error")) and not item.get("gradingResult") and failure_reason != 1
    )
    token_usage = _pf_dict(item, "tokenUsage")
    return {
        "provider_label": provider_label,
        "provider_id": provider_id,
        "result": {
            "input": {
                "vars": item.get("vars") if item.get("vars") is not None else {},
                "prompt": _pf_dict(item, "prompt").get("label") or "",
                "provider": provider_label,
                "test": _pf_dict(item, "testCase").get("description") or "",
            },
            "output": _pf_output(item.get("response")),
            "score": float(score) if score is not None else None,
            "passed": success and not error,
            "error": error,
            "reason": _pf_reason(item),
        },
        "named": {k: v for k, v in _pf_dict(item, "namedScores").items() if _is_number(v)},
        "cost": item.get("cost") if _is_number(item.get("cost")) else 0,
        "tokens": {
            k: token_usage.get(k)
            for k in ("prompt", "completion", "total")
            if _is_number(token_usage.get(k))
        },
        "latency": item.get("latencyMs") if _is_number(item.get("latencyMs")) else None,
    }


def _mean(values: list[float], digits: int) -> float:
    return round(sum(values) / len(values), digits)


def _pf_metrics(parsed: list[dict], prompts: list) -> dict[str, float]:
    """Named scores (their mean), the mean score, cost, tokens, mean latency and the
    number of prompts of the kept results."""
    metrics: dict[str, float] = {}
    named_sums: dict[str, list[float]] = {}
    for p in parsed:
        for name, value in p["named"].items():
            named_sums.setdefault(name, []).append(float(value))
    for name, values in sorted(named_sums.items()):
        if name not in COMPUTED_METRICS:
            metrics[name] = _mean(values, 6)
    scores = [p["result"]["score"] for p in parsed if p["result"]["score"] is not None]
    if scores:
        metrics["score_mean"] = _mean(scores, 6)
    metrics["cost_usd"] = round(sum(float(p["cost"]) for p in parsed), 8)
    for key in ("prompt", "completion", "total"):
        metrics[f"tokens_{key}"] = sum(int(p["tokens"].get(key) or 0) for p in parsed)
    latencies = [p["latency"] for p in parsed if p["latency"] is not None]
    if latencies:
        metrics["latency_ms_mean"] = _mean(latencies, 3)
    metrics["prompts"] = (
        len(prompts) if prompts else len({p["result"]["input"]["prompt"] for p in parsed})
    )
    return metrics


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
    prompts = body.get("prompts") if isinstance(body.get("prompts"), list) else []
    parsed = [_pf_item(item, f"results.results[{i}]") for i, item in enumerate(body["results"])]
    if not parsed:
        raise InvalidInput("The promptfoo file has no results.", field="results.results")
    providers = sorted({p["provider_label"] for p in parsed if p["provider_label"]})
    model = (model or "").strip()
    if model and len(providers) > 1:
        mine = [p for p in parsed if model in (p["provider_label"], p["provider_id"])]
        if mine:
            parsed = mine
            providers = [model]
    return {
        "tool": "promptfoo",
        "metrics": _pf_metrics(parsed, prompts),
        "results": [p["result"] for p in parsed],
        "model_id": model or (providers[0] if len(providers) == 1 else ""),
    }
