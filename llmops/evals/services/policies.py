"""Eval policies (thresholds, a minimum number of cases, a required dataset) and the
verdict of a run under one; the organization's default policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput, NotFound
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import require

from ..models import EvalPolicy, EvalRun
from ._common import _dataset_arg, _is_number

OPS = (">=", ">", "<=", "<", "==")
DEFAULT_POLICY_NAME = "Default"
DEFAULT_THRESHOLDS = [{"metric": "pass_rate", "op": ">=", "value": 0.9}]


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


def _check(metric, op, value, actual, passed: bool, message: str) -> dict:
    return {
        "metric": metric,
        "op": op,
        "value": value,
        "actual": actual,
        "passed": passed,
        "message": message,
    }


def _threshold_check(threshold: dict, metrics: dict) -> dict:
    metric, op, value = threshold.get("metric"), threshold.get("op"), threshold.get("value")
    actual = metrics.get(metric)
    if not _is_number(actual):
        message = f"The run has no metric '{metric}' (needed: {metric} {op} {value})."
        return _check(metric, op, value, None, False, message)
    ok = op in OPS and _is_number(value) and _compare(float(actual), op, float(value))
    message = f"{metric} = {actual:g} {'meets' if ok else 'fails'} {op} {value}"
    return _check(metric, op, value, actual, ok, message)


def _cases_check(policy: EvalPolicy, run: EvalRun) -> dict:
    cases = run_case_count(run)
    ok = cases >= policy.min_cases
    message = f"{cases} case(s) {'meets' if ok else 'fails'} the minimum of {policy.min_cases}"
    return _check("cases", ">=", policy.min_cases, cases, ok, message)


def _dataset_check(policy: EvalPolicy, run: EvalRun) -> dict:
    ok = run.dataset_id == policy.required_dataset_id
    name = policy.required_dataset.name if policy.required_dataset else policy.required_dataset_id
    message = (
        f"Run on the required dataset '{name}'"
        if ok
        else f"The run must use the required dataset '{name}'"
    )
    return _check("dataset", "==", policy.required_dataset_id, run.dataset_id, ok, message)


def policy_evaluate(*, policy: EvalPolicy, run: EvalRun) -> Verdict:
    """Check a run against a policy: every threshold, the minimum number of cases and the
    required dataset. A threshold on a metric the run lacks fails, naming the metric."""
    metrics = run.metrics or {}
    checks = [_threshold_check(t, metrics) for t in policy.thresholds or []]
    checks.append(_cases_check(policy, run))
    if policy.required_dataset_id:
        checks.append(_dataset_check(policy, run))
    return Verdict(
        passed=all(c["passed"] for c in checks), policy=policy_as_dict(policy), checks=checks
    )


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
    require(actor, "model.decide")  # changing a gate is an admin's decision
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
