"""Catalog API: list/filter, check, get, propose, decision, transition, evidence uploads
(generic and promptfoo) and the answers' verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.catalog import services
from llmops.catalog.models import ModelEvidence, ModelVersion
from llmops.evals.models import EvalResult, EvalRun

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "promptfoo"


@pytest.fixture
def ci(acme, api_key, api):
    return api(api_key(acme, ["models:write", "evals:write"], name="ci"))


@pytest.fixture
def admin_api(acme, api_key, api):
    key = api_key(acme, ["models:approve", "models:write", "evals:write"], user=acme.users["admin"])
    return api(key)


def body_of(response):
    return response.json()


def propose(client, model_id="claude-sonnet-4-5-20250929", **extra):
    return client.post(
        "/api/v1/models",
        {"provider": "anthropic", "model_id": model_id, **extra},
        format="json",
    )


def test_propose_and_get(ci):
    r = propose(
        ci,
        display_name="Claude Sonnet 4.5",
        input_price_per_mtok=3,
        output_price_per_mtok=15,
        data_classes=["internal", "pii"],
        deprecation_date="2027-09-29",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "proposed" and body["input_price_per_mtok"] == 3.0
    assert body["allowed"] is False and body["is_floating"] is False
    assert ci.get("/api/v1/models/claude-sonnet-4-5-20250929").json()["id"] == body["id"]
    assert ci.get("/api/v1/models/gpt-unknown").status_code == 404
    got = ci.get(f"/api/v1/models/{body['id']}").json()
    assert got["model_id"] == "claude-sonnet-4-5-20250929"
    assert got["decisions"][0]["kind"] == "proposal" and got["evidence"] == []


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"provider": "nope", "model_id": "x-20250101"}, "provider"),
        (
            {"provider": "openai", "model_id": "x-20250101", "retirement_date": "soon"},
            "retirement_date",
        ),
        ({"provider": "openai", "model_id": "x-20250101", "colour": "red"}, "colour"),
        ({"provider": "openai"}, "model_id"),
    ],
)
def test_propose_bad_input_is_400_naming_the_field(ci, payload, field):
    r = ci.post("/api/v1/models", payload, format="json")
    assert r.status_code == 400
    assert field in r.json()["error"]["details"]["fields"]
    assert not ModelVersion.objects.exists()


def test_duplicate_is_400(ci):
    assert propose(ci).status_code == 201
    r = propose(ci)
    assert r.status_code == 400 and "model_id" in r.json()["error"]["details"]["fields"]


def test_machine_key_cannot_decide_and_scope_is_checked(ci, acme, api_key, api):
    model_pk = propose(ci).json()["id"]
    r = ci.post(f"/api/v1/models/{model_pk}/decision", {"decision": "approve"}, format="json")
    assert r.status_code == 403
    reader = api(api_key(acme, ["models:read"]))
    assert propose(reader, model_id="other-20250101").status_code == 403
    assert reader.get("/api/v1/models").status_code == 200


def test_upload_makes_evidence_then_admin_approves(ci, admin_api, acme):
    model = propose(ci).json()
    r = admin_api.post(
        f"/api/v1/models/{model['id']}/decision", {"decision": "approve"}, format="json"
    )
    assert r.status_code == 409 and "Eval gate" in r.json()["error"]["message"]
    r = ci.post(
        "/api/v1/eval-runs",
        {
            "tool": "custom",
            "model": "claude-sonnet-4-5-20250929",
            "metrics": {"faithfulness": 0.93},
            "results": [{"passed": True, "input": {"q": i}, "output": "ok"} for i in range(10)],
            "commit": "abc123",
            "ci_url": "https://ci.example.com/runs/1",
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    answer = r.json()
    assert answer["passed"] is True and answer["policy"]["name"] == "Default"
    assert answer["evidence"]["model"] == "claude-sonnet-4-5-20250929"
    assert answer["metrics"]["pass_rate"] == 1.0
    r = admin_api.post(
        f"/api/v1/models/{model['id']}/decision",
        {"decision": "approve", "comment": "evals pass"},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "approved" and r.json()["evidence"][0]["passed"] is True
    check = ci.get("/api/v1/models/check", {"model": "claude-sonnet-4-5-20250929"}).json()
    assert check == {
        "allowed": True,
        "status": "approved",
        "reason": "Model 'claude-sonnet-4-5-20250929' is approved.",
    }
    approved = ci.get("/api/v1/models", {"status": "approved"}).json()["results"]
    assert [m["model_id"] for m in approved] == ["claude-sonnet-4-5-20250929"]


def test_check_unknown_and_missing_param(ci):
    assert ci.get("/api/v1/models/check", {"model": "gpt-9"}).json()["allowed"] is False
    r = ci.get("/api/v1/models/check")
    assert r.status_code == 400 and "model" in r.json()["error"]["details"]["fields"]


def test_list_filters(ci):
    propose(ci)
    propose(ci, model_id="gpt-4o", provider="openai")
    r = ci.get("/api/v1/models", {"provider": "openai"}).json()["results"]
    assert [m["model_id"] for m in r] == ["gpt-4o"] and r[0]["is_floating"] is True
    assert ci.get("/api/v1/models", {"q": "sonnet"}).json()["results"][0]["provider"] == "anthropic"
    assert ci.get("/api/v1/models", {"allowed": "true"}).json()["results"] == []
    assert ci.get("/api/v1/models", {"status": "bogus"}).status_code == 400


def test_transition_api(acme, admin_api, ci):
    model = ModelVersion.objects.get(pk=propose(ci).json()["id"])
    run = EvalRun.objects.create(
        organization=acme.org, tool="custom", metrics={"pass_rate": 1, "cases": 5}
    )
    services.model_attach_evidence(actor=acme.actor("maint1"), model=model, run=run)
    services.model_decide(actor=acme.actor("admin"), model=model, decision="approve")
    url = f"/api/v1/models/{model.pk}/transition"
    r = admin_api.post(url, {"to": "retired", "reason": "x"}, format="json")
    assert r.status_code == 409 and "lifecycle" in r.json()["error"]["message"]
    r = admin_api.post(url, {"to": "suspended"}, format="json")
    assert r.status_code == 400 and "reason" in r.json()["error"]["details"]["fields"]
    r = admin_api.post(url, {"to": "suspended", "reason": "INC-3 drift"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "suspended"
    assert r.json()["decisions"][0]["comment"] == "INC-3 drift"
    assert ci.get("/api/v1/models/check", {"model": model.model_id}).json()["allowed"] is False


def test_promptfoo_upload_simple_fails_default_policy(ci):
    model = propose(ci, model_id="echo-model-v1", provider="other").json()
    data = json.loads((FIXTURES / "simple-results.json").read_text())
    r = ci.post(f"/api/v1/eval-runs/promptfoo?model={model['model_id']}", data, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["metrics"]["pass_rate"] == 0.5 and body["passed"] is False
    assert any("pass_rate" in c["message"] for c in body["checks"] if not c["passed"])
    ev = ModelEvidence.objects.get(model_version_id=model["id"])
    assert ev.passed is False and ev.verdict["passed"] is False
    assert EvalResult.objects.filter(run_id=body["id"]).count() == 4


def test_promptfoo_matrix_with_errors_for_one_model(ci):
    model = propose(ci).json()
    data = json.loads((FIXTURES / "matrix-results.json").read_text())
    r = ci.post(f"/api/v1/eval-runs/promptfoo?model={model['id']}", data, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["model"] == "claude-sonnet-4-5-20250929"
    assert (body["metrics"]["cases"], body["metrics"]["errors"]) == (10, 2)
    assert body["metrics"]["pass_rate"] == 0.8 and body["passed"] is False
    r = ci.post("/api/v1/eval-runs/promptfoo", data, format="json")
    assert r.status_code == 201 and r.json()["metrics"]["pass_rate"] == 0.6
    assert r.json()["evidence"] is None


def test_promptfoo_malformed_is_400_and_stores_nothing(ci):
    r = ci.post("/api/v1/eval-runs/promptfoo", {"results": {"stats": {}}}, format="json")
    assert r.status_code == 400 and "results.results" in r.json()["error"]["details"]["fields"]
    r = ci.post("/api/v1/eval-runs/promptfoo", b"{not json", content_type="application/json")
    assert r.status_code == 400
    assert not EvalRun.objects.exists()


def test_run_for_another_orgs_model_is_404(ci, globex):
    theirs = services.model_propose(
        actor=globex.actor("maint1"), provider="openai", model_id="gpt-4o-2024-08-06"
    )
    r = ci.post(
        "/api/v1/eval-runs",
        {"tool": "custom", "model": theirs.pk, "results": [{"passed": True}]},
        format="json",
    )
    assert r.status_code == 404
    r = ci.post(
        f"/api/v1/eval-runs/promptfoo?model={theirs.pk}",
        {"results": {"results": []}},
        format="json",
    )
    assert r.status_code == 404
    assert ci.get(f"/api/v1/models/{theirs.pk}").status_code == 404
    assert not EvalRun.objects.exists()


def test_run_bad_input_is_400(ci):
    r = ci.post("/api/v1/eval-runs", {"tool": "custom", "metrics": {"acc": "high"}}, format="json")
    assert r.status_code == 400 and "metrics.acc" in r.json()["error"]["details"]["fields"]
    r = ci.post("/api/v1/eval-runs", {"tool": "custom", "dataset": 99999}, format="json")
    assert r.status_code == 400 and "dataset" in r.json()["error"]["details"]["fields"]
    assert not EvalRun.objects.exists()


def test_attach_evidence_endpoint(ci, acme):
    model = propose(ci).json()
    run = ci.post(
        "/api/v1/eval-runs", {"tool": "custom", "results": [{"passed": True}]}, format="json"
    ).json()
    assert run["evidence"] is None
    r = ci.post(f"/api/v1/models/{model['id']}/evidence", {"run": run["id"]}, format="json")
    assert r.status_code == 201 and r.json()["passed"] is True


def test_decision_validation_and_break_glass_by_personal_key(ci, admin_api, acme):
    from llmops.audit.models import AuditEvent

    model = propose(ci).json()
    url = f"/api/v1/models/{model['id']}/decision"
    r = admin_api.post(url, {"decision": "maybe"}, format="json")
    assert r.status_code == 400 and "decision" in r.json()["error"]["details"]["fields"]
    r = admin_api.post(
        url,
        {"decision": "approve", "break_glass_reason": "Launch blocked; evals run tonight."},
        format="json",
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "approved" and body["break_glass_used"] is True
    assert body["decisions"][0]["break_glass_reason"] == "Launch blocked; evals run tonight."
    event = AuditEvent.objects.get(action="model.approved")
    assert event.details["break_glass"] is True and "via key" in event.actor_label
    r = admin_api.post(url, {"decision": "reject"}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"
