"""Evals pages: runs list and detail (thresholds, filters), compare, datasets with add case,
JSONL import (all or nothing) and export, policies; model output stays inert."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from llmops.evals import services
from llmops.evals.models import EvalCase, EvalPolicy

pytestmark = pytest.mark.django_db


def url(name, world, **kw):
    return reverse(f"evals:{name}", kwargs={"org_slug": world.org.slug, **kw})


def test_empty_states(acme, login):
    client = login(acme.users["viewer"])
    assert "No eval runs yet" in client.get(url("runs", acme)).content.decode()
    assert "No datasets yet" in client.get(url("datasets", acme)).content.decode()
    assert "nothing to compare" in client.get(url("compare", acme)).content.decode()


def test_runs_list_and_detail_with_thresholds_and_filters(acme, globex, login):
    actor = acme.actor("maint1")
    run = services.run_create(
        actor=actor,
        tool="custom",
        model_id="gpt-4o-2024-08-06",
        metrics={"faithfulness": 0.7},
        results=[
            {"passed": True, "output": "<script>alert('x')</script>"},
            {"passed": False, "reason": "wrong refund window"},
            {"passed": True, "error": "timeout"},
        ],
    )
    services.run_create(actor=globex.actor("maint1"), tool="custom", model_id="globex-model-x")
    client = login(acme.users["viewer"])
    html = client.get(url("runs", acme)).content.decode()
    assert f"Run {run.pk}" in html and "globex-model-x" not in html and "fails" in html
    html = client.get(url("run_detail", acme, pk=run.pk)).content.decode()
    assert "pass_rate = 0.333333 fails &gt;= 0.9" in html
    assert "faithfulness" in html
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    html = client.get(url("run_detail", acme, pk=run.pk), {"outcome": "failed"}).content.decode()
    assert "wrong refund window" in html and "timeout" not in html
    html = client.get(url("run_detail", acme, pk=run.pk), {"outcome": "error"}).content.decode()
    assert "timeout" in html and "wrong refund window" not in html


def test_compare_page(acme, login):
    actor = acme.actor("maint1")
    a = services.run_create(
        actor=actor,
        tool="custom",
        results=[{"input": "q1", "passed": True}, {"input": "q2", "passed": False}],
    )
    b = services.run_create(
        actor=actor,
        tool="custom",
        results=[
            {"input": "q1", "passed": False, "reason": "regressed"},
            {"input": "q2", "passed": True},
        ],
    )
    html = (
        login(acme.users["viewer"])
        .get(url("compare", acme), {"a": a.pk, "b": b.pk})
        .content.decode()
    )
    assert "Passed in A, fail in B (1)" in html and "regressed" in html
    assert "Failed in A, pass in B (1)" in html


def test_dataset_create_add_case_import_export(acme, login):
    client = login(acme.users["maint1"])
    r = client.post(url("datasets", acme), {"name": "support golden", "tags": "support, en"})
    dataset = acme.org.eval_datasets.get()
    assert r.status_code == 302 and dataset.tags == ["support", "en"]
    detail = url("dataset_detail", acme, pk=dataset.pk)
    client.post(
        detail,
        {
            "op": "case",
            "input": '{"question": "refund?"}',
            "expected": "30 days",
            "criteria": "mentions 30 days",
        },
    )
    case = EvalCase.objects.get()
    assert case.input == {"question": "refund?"} and case.expected == "30 days"
    bad = '{"input": "ok"}\n{"expected": "no input"}\n'
    r = client.post(detail, {"op": "import", "text": bad})
    assert "Nothing was imported. Case 2" in r.content.decode()
    assert EvalCase.objects.count() == 1
    r = client.post(detail, {"op": "import", "text": "not json\n"})
    assert "Line 1 is not valid JSON" in r.content.decode()
    upload = SimpleUploadedFile(
        "cases.jsonl",
        b'{"input": {"question": "a"}, "tags": ["x"]}\n\n{"input": "b", "criteria": "c"}\n',
    )
    r = client.post(detail, {"op": "import", "file": upload})
    assert r.status_code == 302 and EvalCase.objects.count() == 3
    assert EvalCase.objects.filter(source_kind="import").count() == 2
    response = client.get(url("dataset_export", acme, pk=dataset.pk))
    lines = [
        json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()
    ]
    assert [line["input"] for line in lines] == [{"question": "refund?"}, {"question": "a"}, "b"]
    # exported JSONL imports back
    client.post(detail, {"op": "import", "text": "\n".join(json.dumps(line) for line in lines)})
    assert EvalCase.objects.count() == 6


def test_viewer_cannot_write_datasets(acme, login):
    ds = services.dataset_create(actor=acme.actor("maint1"), name="d")
    client = login(acme.users["viewer"])
    assert client.post(url("datasets", acme), {"name": "x"}).status_code == 403
    assert (
        client.post(url("dataset_detail", acme, pk=ds.pk), {"op": "case", "input": "x"}).status_code
        == 403
    )
    assert "Add a case" not in client.get(url("dataset_detail", acme, pk=ds.pk)).content.decode()


def test_policies_page_admin_edits_default(acme, login):
    policy = EvalPolicy.objects.get(organization=acme.org, is_default=True)
    client = login(acme.users["admin"])
    assert "pass_rate &gt;= 0.9" in client.get(url("policies", acme)).content.decode()
    r = client.post(
        url("policies", acme),
        {
            "policy": policy.pk,
            "name": "Default",
            "thresholds": "pass_rate >= 0.95\nfaithfulness > 0.8",
            "min_cases": 20,
            "is_default": "on",
        },
    )
    assert r.status_code == 302
    policy.refresh_from_db()
    assert policy.thresholds[1] == {"metric": "faithfulness", "op": ">", "value": 0.8}
    assert policy.min_cases == 20
    r = login(acme.users["maint1"]).post(
        url("policies", acme), {"name": "x", "thresholds": "a >= 1", "min_cases": 1}
    )
    assert r.status_code == 403


def test_list_pages_query_counts_are_flat(acme, login, django_assert_max_num_queries):
    actor = acme.actor("maint1")
    ds = services.dataset_create(actor=actor, name="d")
    for i in range(25):
        services.run_create(actor=actor, tool="custom", dataset=ds, results=[{"passed": True}])
        services.dataset_create(actor=actor, name=f"d{i}")
    client = login(acme.users["viewer"])
    with django_assert_max_num_queries(14):
        assert client.get(url("runs", acme)).status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get(url("datasets", acme)).status_code == 200


def test_home_cards(acme, login):
    services.run_create(actor=acme.actor("maint1"), tool="custom", results=[{"passed": True}])
    html = login(acme.users["viewer"]).get(f"/o/{acme.org.slug}/").content.decode()
    assert "eval runs uploaded in the last 7 days" in html and "usable model versions" in html
