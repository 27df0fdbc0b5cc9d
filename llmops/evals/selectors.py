"""Reads for evals, always scoped to one organization."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet

from llmops.common.errors import NotFound

from .models import EvalCase, EvalDataset, EvalPolicy, EvalResult, EvalRun


def dataset_list(*, org, q: str = "") -> QuerySet[EvalDataset]:
    qs = EvalDataset.objects.for_org(org).annotate(case_total=Count("cases"))
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(description__icontains=q))
    return qs.order_by("name")


def dataset_get(*, org, pk) -> EvalDataset:
    try:
        return EvalDataset.objects.for_org(org).get(pk=int(pk))
    except (EvalDataset.DoesNotExist, TypeError, ValueError):
        raise NotFound("No such dataset.")


def dataset_cases(
    *, org, dataset: EvalDataset, source_kind: str = "", tag: str = "", q: str = ""
) -> QuerySet[EvalCase]:
    qs = EvalCase.objects.for_org(org).filter(dataset=dataset).select_related("created_by")
    if source_kind:
        qs = qs.filter(source_kind=source_kind)
    if tag:
        qs = (
            qs.filter(tags__contains=[tag])
            if _json_contains_ok()
            else qs.filter(tags__icontains=tag)
        )
    if q:
        qs = qs.filter(
            Q(criteria__icontains=q) | Q(input__icontains=q) | Q(source_label__icontains=q)
        )
    return qs.order_by("id")


def _json_contains_ok() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def run_list(
    *, org, dataset=None, tool: str = "", model_id: str = "", q: str = ""
) -> QuerySet[EvalRun]:
    qs = EvalRun.objects.for_org(org).select_related("dataset")
    if dataset:
        qs = qs.filter(dataset_id=getattr(dataset, "pk", dataset))
    if tool:
        qs = qs.filter(tool=tool)
    if model_id:
        qs = qs.filter(model_id=model_id)
    if q:
        qs = qs.filter(Q(model_id__icontains=q) | Q(commit__icontains=q))
    return qs.order_by("-created_at", "-id")


def run_get(*, org, pk) -> EvalRun:
    try:
        return EvalRun.objects.for_org(org).select_related("dataset").get(pk=int(pk))
    except (EvalRun.DoesNotExist, TypeError, ValueError):
        raise NotFound("No such eval run.")


def runs_by_ids(*, org, ids) -> dict[int, EvalRun]:
    return {r.pk: r for r in EvalRun.objects.for_org(org).filter(pk__in=list(ids))}


def run_results(
    *, org, run: EvalRun, outcome: str = "", q: str = "", case=None
) -> QuerySet[EvalResult]:
    """A run's per-case results; outcome is passed | failed | error."""
    qs = EvalResult.objects.for_org(org).filter(run=run).select_related("case")
    if outcome == "passed":
        qs = qs.filter(passed=True)
    elif outcome == "failed":
        qs = qs.filter(passed=False, error=False)
    elif outcome == "error":
        qs = qs.filter(error=True)
    if case:
        qs = qs.filter(case_id=case)
    if q:
        qs = qs.filter(Q(reason__icontains=q) | Q(input__icontains=q) | Q(output__icontains=q))
    return qs.order_by("id")


def policy_list(*, org) -> QuerySet[EvalPolicy]:
    return (
        EvalPolicy.objects.for_org(org)
        .select_related("required_dataset")
        .order_by("-is_default", "name")
    )


def policy_get(*, org, pk) -> EvalPolicy:
    try:
        return EvalPolicy.objects.for_org(org).get(pk=int(pk))
    except (EvalPolicy.DoesNotExist, TypeError, ValueError):
        raise NotFound("No such policy.")


@dataclass
class MetricDelta:
    name: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        if self.a is None or self.b is None:
            return None
        return self.b - self.a


@dataclass
class RunComparison:
    a: EvalRun
    b: EvalRun
    metrics: list[MetricDelta] = field(default_factory=list)
    # Cases matched between the runs (by case id, else by input) whose outcome changed.
    flipped_to_fail: list[tuple[EvalResult, EvalResult]] = field(default_factory=list)
    flipped_to_pass: list[tuple[EvalResult, EvalResult]] = field(default_factory=list)
    matched: int = 0
    only_a: int = 0
    only_b: int = 0


def _result_key(r: EvalResult):
    if r.case_id:
        return ("case", r.case_id)
    import json

    return ("input", json.dumps(r.input, sort_keys=True, default=str))


def run_compare(*, org, a: EvalRun, b: EvalRun) -> RunComparison:
    """Side by side: metric deltas (b - a) and cases that flipped between pass and fail."""
    if a.organization_id != org.pk or b.organization_id != org.pk:
        raise NotFound("No such eval run.")
    names = sorted(set(a.metrics or {}) | set(b.metrics or {}))
    comparison = RunComparison(
        a=a,
        b=b,
        metrics=[MetricDelta(n, (a.metrics or {}).get(n), (b.metrics or {}).get(n)) for n in names],
    )
    results_a = {
        _result_key(r): r
        for r in EvalResult.objects.filter(run=a).select_related("case").order_by("id")
    }
    results_b = {
        _result_key(r): r
        for r in EvalResult.objects.filter(run=b).select_related("case").order_by("id")
    }
    for key, rb in results_b.items():
        ra = results_a.get(key)
        if ra is None:
            comparison.only_b += 1
            continue
        comparison.matched += 1
        if ra.passed and not rb.passed:
            comparison.flipped_to_fail.append((ra, rb))
        elif rb.passed and not ra.passed:
            comparison.flipped_to_pass.append((ra, rb))
    comparison.only_a = len(set(results_a) - set(results_b))
    return comparison
