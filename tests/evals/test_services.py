"""Evals services: run_create validation and pass_rate, the promptfoo importer on real
files, policy verdicts, cases and the default policy of a new organization."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import transaction

from llmops.audit.models import AuditEvent
from llmops.common.errors import InvalidInput, NotPermitted, TooLarge
from llmops.evals import selectors, services
from llmops.evals.models import EvalCase, EvalPolicy, EvalResult, EvalRun

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "promptfoo"


def load(name):
    return json.loads((FIXTURES / name).read_text())


def test_new_org_gets_the_default_policy(acme):
    policy = EvalPolicy.objects.get(organization=acme.org, is_default=True)
    assert policy.thresholds == [{"metric": "pass_rate", "op": ">=", "value": 0.9}]
    assert policy.min_cases == 1 and policy.required_dataset is None
    assert services.policy_default(org=acme.org) == policy


def test_pass_rate_is_computed_errors_count_as_failures(acme):
    run = services.run_create(
        actor=acme.actor("maint1"),
        tool="custom",
        metrics={"pass_rate": 1.0, "faithfulness": 0.8},  # the upload's pass_rate is ignored
        results=[
            {"passed": True, "score": 1},
            {"passed": True, "error": True},
            {"passed": False, "reason": "wrong"},
            {"passed": True, "output": {"text": "ok"}},
        ],
    )
    assert run.metrics["pass_rate"] == 0.5
    assert run.metrics["cases"] == 4 and run.metrics["errors"] == 1
    assert run.metrics["faithfulness"] == 0.8
    assert EvalResult.objects.filter(run=run, passed=True).count() == 2
    assert AuditEvent.objects.filter(action="eval.run_recorded", target_id=str(run.pk)).exists()


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"tool": "jest"}, "tool"),
        ({"tool": "custom", "metrics": {"acc": "high"}}, "metrics.acc"),
        ({"tool": "custom", "metrics": {"acc": True}}, "metrics.acc"),
        ({"tool": "custom", "metrics": [1]}, "metrics"),
        ({"tool": "custom", "results": [{"passed": "yes"}]}, "results[0].passed"),
        (
            {"tool": "custom", "results": [{"passed": True}, {"passed": True, "score": "x"}]},
            "results[1].score",
        ),
        ({"tool": "custom", "results": [{"passed": True, "case": 999999}]}, "results[0].case"),
        ({"tool": "custom", "dataset": 999999}, "dataset"),
        ({"tool": "custom", "ci_url": "javascript:alert(1)"}, "ci_url"),
    ],
)
def test_run_create_rejects_bad_input_and_stores_nothing(acme, kwargs, field):
    with pytest.raises(InvalidInput) as exc:
        services.run_create(actor=acme.actor("maint1"), **kwargs)
    assert exc.value.field == field
    assert not EvalRun.objects.exists() and not EvalResult.objects.exists()


def test_run_create_refuses_other_orgs_dataset_and_cases(acme, globex):
    ds = services.dataset_create(actor=globex.actor("admin"), name="theirs")
    case = services.case_create(actor=globex.actor("admin"), dataset=ds, input={"q": 1})
    with pytest.raises(InvalidInput):
        services.run_create(actor=acme.actor("maint1"), tool="custom", dataset=ds.pk)
    with pytest.raises(InvalidInput):
        services.run_create(
            actor=acme.actor("maint1"), tool="custom", results=[{"passed": True, "case": case.pk}]
        )


def test_run_create_nests_in_outer_transaction(acme):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.run_create(actor=acme.actor("maint1"), tool="custom", results=[{"passed": True}])
        raise RuntimeError("outer fails")
    assert not EvalRun.objects.exists()


def test_run_records_dataset_count_and_hash(acme):
    actor = acme.actor("maint1")
    ds = services.dataset_create(actor=actor, name="support")
    services.cases_bulk_create(
        actor=actor, dataset=ds, cases=[{"input": {"q": i}} for i in range(3)]
    )
    run1 = services.run_create(actor=actor, tool="custom", dataset=ds.pk)
    services.case_create(actor=actor, dataset=ds, input={"q": "new"})
    run2 = services.run_create(actor=actor, tool="custom", dataset=ds)
    assert (run1.dataset_case_count, run2.dataset_case_count) == (3, 4)
    assert run1.dataset_hash and run1.dataset_hash != run2.dataset_hash


def test_viewer_cannot_record_runs(acme):
    with pytest.raises(NotPermitted):
        services.run_create(actor=acme.actor("viewer"), tool="custom")


def test_promptfoo_simple(acme):
    kwargs = services.promptfoo_parse(load("simple-results.json"))
    assert kwargs["tool"] == "promptfoo" and kwargs["model_id"] == "echo-model"
    assert len(kwargs["results"]) == 4
    run = services.run_create(actor=acme.actor("maint1"), **kwargs)
    assert run.metrics["pass_rate"] == 0.5 and run.metrics["errors"] == 0
    failed = EvalResult.objects.filter(run=run, passed=False)
    assert failed.count() == 2 and all(r.reason for r in failed)
    verdict = services.policy_evaluate(policy=services.policy_default(org=acme.org), run=run)
    assert not verdict.passed and "pass_rate = 0.5 fails >= 0.9" in verdict.reasons[0]


def test_promptfoo_matrix_with_errors(acme):
    data = load("matrix-results.json")
    kwargs = services.promptfoo_parse(data)
    assert kwargs["model_id"] == ""  # two providers: no single model
    run = services.run_create(actor=acme.actor("maint1"), **kwargs)
    m = run.metrics
    assert (m["cases"], m["passed"], m["errors"]) == (20, 12, 4)
    assert m["pass_rate"] == 0.6
    assert m["tokens_total"] == 684
    assert m["cost_usd"] == pytest.approx(0.00534, abs=1e-5)
    assert {"accuracy", "policy", "language"} <= set(m)
    errors = EvalResult.objects.filter(run=run, error=True)
    assert errors.count() == 4 and all(not r.passed for r in errors)
    assert "529" in errors.first().reason


def test_promptfoo_matrix_filtered_to_one_model(acme):
    kwargs = services.promptfoo_parse(
        load("matrix-results.json"), model="claude-sonnet-4-5-20250929"
    )
    assert kwargs["model_id"] == "claude-sonnet-4-5-20250929"
    assert len(kwargs["results"]) == 10
    assert sum(r["passed"] for r in kwargs["results"]) == 8
    assert sum(r["error"] for r in kwargs["results"]) == 2


@pytest.mark.parametrize(
    "data,field",
    [
        ([], "results"),
        ({"results": []}, "results.results"),
        ({"results": {"results": "x"}}, "results.results"),
        ({"results": {"results": []}}, "results.results"),
        ({"results": {"results": [{"score": 1}]}}, "results.results[0].success"),
        ({"results": {"results": [{"success": True, "score": "x"}]}}, "results.results[0].score"),
    ],
)
def test_promptfoo_malformed(data, field):
    with pytest.raises(InvalidInput) as exc:
        services.promptfoo_parse(data)
    assert exc.value.field == field


def test_policy_missing_metric_min_cases_and_dataset(acme):
    actor = acme.actor("admin")
    ds = services.dataset_create(actor=actor, name="golden")
    policy = services.policy_save(
        actor=actor,
        name="strict",
        thresholds=[
            {"metric": "pass_rate", "op": ">=", "value": 0.5},
            {"metric": "faithfulness", "op": ">", "value": 0.7},
            {"metric": "latency_ms", "op": "<=", "value": 800},
        ],
        min_cases=3,
        required_dataset=ds.pk,
    )
    run = services.run_create(
        actor=actor, tool="custom", metrics={"latency_ms": 500}, results=[{"passed": True}] * 2
    )
    verdict = services.policy_evaluate(policy=policy, run=run)
    assert not verdict.passed
    by_metric = {c["metric"]: c for c in verdict.checks}
    assert by_metric["pass_rate"]["passed"] and by_metric["latency_ms"]["passed"]
    assert not by_metric["faithfulness"]["passed"]
    assert "faithfulness" in by_metric["faithfulness"]["message"]
    assert not by_metric["cases"]["passed"] and by_metric["cases"]["actual"] == 2
    assert not by_metric["dataset"]["passed"]
    d = verdict.as_dict()
    assert set(d) == {"passed", "policy", "checks"} and d["policy"]["name"] == "strict"
    good = services.run_create(
        actor=actor,
        tool="custom",
        dataset=ds,
        metrics={"latency_ms": 500, "faithfulness": 0.9},
        results=[{"passed": True}] * 3,
    )
    assert services.policy_evaluate(policy=policy, run=good).passed


def test_policy_save_validates_thresholds(acme):
    with pytest.raises(InvalidInput) as exc:
        services.policy_save(
            actor=acme.actor("admin"),
            name="bad",
            thresholds=[{"metric": "pass_rate", "op": "=>", "value": 1}],
        )
    assert exc.value.field == "thresholds[0].op"


def test_policy_save_moves_the_default(acme):
    new = services.policy_save(
        actor=acme.actor("admin"),
        name="stricter",
        thresholds=[{"metric": "pass_rate", "op": ">=", "value": 0.95}],
        is_default=True,
    )
    assert services.policy_default(org=acme.org) == new
    assert EvalPolicy.objects.filter(organization=acme.org, is_default=True).count() == 1


def test_cases_bulk_limits_and_validation(acme):
    actor = acme.actor("maint1")
    ds = services.dataset_create(actor=actor, name="bulk")
    with pytest.raises(TooLarge):
        services.cases_bulk_create(actor=actor, dataset=ds, cases=[{"input": 1}] * 5001)
    with pytest.raises(InvalidInput) as exc:
        services.cases_bulk_create(actor=actor, dataset=ds, cases=[{"input": 1}, {"expected": 2}])
    assert exc.value.field == "cases[1].input"
    assert not EvalCase.objects.exists()
    created = services.cases_bulk_create(
        actor=actor, dataset=ds, cases=[{"input": {"q": i}, "tags": ["a"]} for i in range(5000)]
    )
    assert len(created) == 5000 and EvalCase.objects.filter(source_kind="import").count() == 5000


def test_reviewer_may_add_review_cases_but_not_manual_ones(acme):
    ds = services.dataset_create(actor=acme.actor("maint1"), name="from reviews")
    with pytest.raises(NotPermitted):
        services.case_create(actor=acme.actor("reviewer1"), dataset=ds, input={"q": 1})
    case = services.case_create(
        actor=acme.actor("reviewer1"),
        dataset=ds,
        input={"q": 1},
        expected="corrected",
        source_kind="review",
        source_label="Review #12",
        source_link="/o/acme/reviews/items/12/",
    )
    assert case.source_kind == "review" and case.created_by == acme.users["reviewer1"]


def test_compare_runs_flips_and_deltas(acme):
    actor = acme.actor("maint1")
    ds = services.dataset_create(actor=actor, name="cmp")
    c1, c2, c3 = services.cases_bulk_create(
        actor=actor, dataset=ds, cases=[{"input": i} for i in range(3)]
    )
    a = services.run_create(
        actor=actor,
        tool="custom",
        dataset=ds,
        results=[
            {"case": c1.pk, "passed": True},
            {"case": c2.pk, "passed": False},
            {"case": c3.pk, "passed": True},
        ],
    )
    b = services.run_create(
        actor=actor,
        tool="custom",
        dataset=ds,
        results=[
            {"case": c1.pk, "passed": False},
            {"case": c2.pk, "passed": True},
            {"case": c3.pk, "passed": True},
        ],
    )
    cmp = selectors.run_compare(org=acme.org, a=a, b=b)
    assert [ra.case_id for ra, _ in cmp.flipped_to_fail] == [c1.pk]
    assert [ra.case_id for ra, _ in cmp.flipped_to_pass] == [c2.pk]
    assert cmp.matched == 3
    pass_rate = next(m for m in cmp.metrics if m.name == "pass_rate")
    assert pass_rate.delta == 0
