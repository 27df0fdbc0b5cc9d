"""Catalog API: refusals by a rule carry its named code (like prompts' rules), and bad
input is a 400 naming the field, never a 500."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def ci(acme, api_key, api):
    return api(api_key(acme, ["models:write", "evals:write"], name="ci"))


@pytest.fixture
def admin_api(acme, api_key, api):
    key = api_key(acme, ["models:approve", "models:write", "evals:write"], user=acme.users["admin"])
    return api(key)


def propose(client, model_id="claude-sonnet-4-5-20250929"):
    r = client.post(
        "/api/v1/models", {"provider": "anthropic", "model_id": model_id}, format="json"
    )
    assert r.status_code == 201, r.content
    return r.json()


def test_decision_without_evidence_is_refused_with_code_no_evidence(ci, admin_api):
    model = propose(ci)
    r = admin_api.post(
        f"/api/v1/models/{model['id']}/decision", {"decision": "approve"}, format="json"
    )
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "no_evidence"
    assert error["details"]["rules"] == ["no_evidence"]


def test_proposer_deciding_is_refused_with_code_four_eyes(admin_api):
    model = propose(admin_api)
    r = admin_api.post(
        f"/api/v1/models/{model['id']}/decision", {"decision": "reject"}, format="json"
    )
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "four_eyes"
    assert error["details"]["rules"] == ["four_eyes"]
    r = admin_api.post(
        f"/api/v1/models/{model['id']}/decision", {"decision": "approve"}, format="json"
    )
    assert r.json()["error"]["code"] == "four_eyes"
    assert r.json()["error"]["details"]["rules"] == ["four_eyes", "no_evidence"]


@pytest.mark.parametrize("to", [["approved"], {"to": "approved"}, 5, None, True])
def test_transition_to_that_is_not_text_is_400_naming_to(ci, admin_api, to):
    model = propose(ci)
    r = admin_api.post(
        f"/api/v1/models/{model['id']}/transition", {"to": to, "reason": "because"}, format="json"
    )
    assert r.status_code == 400, r.content
    assert r.json()["error"]["details"]["fields"] == {
        "to": ["to must be one of suspended, approved, deprecated, retired."]
    }


def _promptfoo(ci, model):
    return ci.post(
        "/api/v1/eval-runs/promptfoo?" + urlencode({"model": model}),
        {"results": {"results": [{"success": True}]}},
        format="json",
    )


@pytest.mark.parametrize("model", ["gpt\x01x", "a\x1b[31m", "\x7f", "x\x00"])
def test_promptfoo_model_with_control_characters_is_400_naming_model(ci, model):
    r = _promptfoo(ci, model)
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["code"] == "invalid"
    assert error["message"].startswith("model ")
    assert error["details"].get("field") == "model" or "model" in error["details"]["fields"]


def test_promptfoo_model_of_non_ascii_digits_is_a_model_id_not_a_500(ci):
    r = _promptfoo(ci, "\u00b2")
    assert r.status_code == 201, r.content
    assert r.json()["model"] == "\u00b2"


def test_run_with_model_containing_control_characters_is_400(ci):
    r = ci.post(
        "/api/v1/eval-runs",
        {"tool": "custom", "model": "gpt\x01x", "results": [{"passed": True}]},
        format="json",
    )
    assert r.status_code == 400
    assert "model" in r.json()["error"]["details"]["fields"]
