"""Evals API: datasets, bulk cases (limit 5,000, all or nothing), runs list and detail."""

from __future__ import annotations

import pytest

from llmops.evals.models import EvalCase, EvalDataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def ci(acme, api_key, api):
    return api(api_key(acme, ["evals:write"], name="ci"))


def test_datasets_and_bulk_cases(ci, acme):
    r = ci.post("/api/v1/eval-datasets", {"name": "support", "tags": ["en"]}, format="json")
    assert r.status_code == 201 and r.json()["cases"] == 0
    ds = r.json()["id"]
    assert ci.post("/api/v1/eval-datasets", {"name": "support"}, format="json").status_code == 400
    cases = [{"input": {"q": i}, "expected": str(i), "tags": ["bulk"]} for i in range(5000)]
    r = ci.post(f"/api/v1/eval-datasets/{ds}/cases", {"cases": cases}, format="json")
    assert r.status_code == 201 and r.json()["created"] == 5000
    listed = ci.get(f"/api/v1/eval-datasets/{ds}/cases").json()
    assert len(listed["results"]) == 50 and listed["next"]
    assert ci.get("/api/v1/eval-datasets").json()["results"][0]["cases"] == 5000


def test_bulk_over_limit_is_413_and_bad_case_400(ci, acme):
    ds = ci.post("/api/v1/eval-datasets", {"name": "d"}, format="json").json()["id"]
    r = ci.post(
        f"/api/v1/eval-datasets/{ds}/cases", {"cases": [{"input": 1}] * 5001}, format="json"
    )
    assert r.status_code == 413
    r = ci.post(
        f"/api/v1/eval-datasets/{ds}/cases",
        {"cases": [{"input": 1}, {"input": 2, "source_kind": "rumour"}]},
        format="json",
    )
    assert r.status_code == 400 and "cases[1].source_kind" in r.json()["error"]["details"]["fields"]
    assert not EvalCase.objects.exists()


def test_run_on_dataset_with_case_results_and_detail(ci, acme):
    ds = ci.post("/api/v1/eval-datasets", {"name": "d"}, format="json").json()["id"]
    ids = ci.post(
        f"/api/v1/eval-datasets/{ds}/cases",
        {"cases": [{"input": "a"}, {"input": "b"}]},
        format="json",
    ).json()["ids"]
    r = ci.post(
        "/api/v1/eval-runs",
        {
            "tool": "deepeval",
            "dataset": ds,
            "results": [
                {"case": ids[0], "passed": True, "score": 0.9},
                {"case": ids[1], "passed": True},
            ],
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    run = r.json()
    assert run["dataset_case_count"] == 2 and run["passed"] is True and run["evidence"] is None
    detail = ci.get(f"/api/v1/eval-runs/{run['id']}").json()
    assert [x["case"] for x in detail["results"]] == ids
    assert ci.get("/api/v1/eval-runs").json()["results"][0]["id"] == run["id"]


def test_unknown_dataset_is_404_for_cases(ci, globex):
    theirs = EvalDataset.objects.create(organization=globex.org, name="theirs")
    assert ci.get(f"/api/v1/eval-datasets/{theirs.pk}/cases").status_code == 404
    r = ci.post(
        f"/api/v1/eval-datasets/{theirs.pk}/cases", {"cases": [{"input": 1}]}, format="json"
    )
    assert r.status_code == 404 and not EvalCase.objects.exists()
