"""The prompt registry HTTP API (README.md, "HTTP API" and "Prompts"), resolve caching and its query count."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from prompts import services
from prompts.models import Deployment, Label, PromptVersion

from .conftest import MODEL_ID, TEMPLATE, approved_version, pass_eval, propose

BASE = "/api/v1/prompts"


@pytest.fixture
def ci(acme, api_key, api):
    """A machine key (CI) that may write prompts, upload evals and move labels."""
    return api(api_key(acme, ["prompts:write", "evals:write", "prompts:deploy"]))


@pytest.fixture
def maint2_api(acme, api_key, api):
    return api(
        api_key(
            acme,
            ["prompts:read", "prompts:approve", "prompts:deploy"],
            user=acme.users["maint2"],
            name="maint2",
        )
    )


def test_create_list_and_get_prompt(acme, globex, model, ci):
    r = ci.post(BASE, {"name": "faq", "description": "FAQ", "required_approvals": 2}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["name"] == "faq" and r.json()["required_approvals"] == 2
    assert ci.post(BASE, {"name": "faq"}, format="json").status_code == 400
    body = ci.get(BASE).json()
    assert [p["name"] for p in body["results"]] == ["faq"] and "next" in body
    assert ci.get(f"{BASE}/faq").json()["labels"] == {}
    assert ci.get(f"{BASE}/nope").status_code == 404


def test_bad_name_is_400_naming_the_field(ci, model):
    r = ci.post(BASE, {"name": "Not OK"}, format="json")
    assert r.status_code == 400
    assert "name" in r.json()["error"]["details"]["fields"]


def test_propose_version_201_then_identical_200(acme, prompt, ci):
    body = {"template": TEMPLATE, "model": MODEL_ID, "params": {"temperature": 0.1}, "message": "m"}
    r = ci.post(f"{BASE}/{prompt.name}/versions", body, format="json")
    assert r.status_code == 201, r.content
    data = r.json()
    assert data["number"] == 1 and data["status"] == "in_review" and len(data["content_hash"]) == 64
    r2 = ci.post(f"{BASE}/{prompt.name}/versions", {**body, "message": "again"}, format="json")
    assert r2.status_code == 200 and r2.json()["number"] == 1 and r2.json()["created"] is False
    v = PromptVersion.objects.get(prompt=prompt, number=1)
    assert v.source == "api"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"template": "Hi {{ a b }}", "model": MODEL_ID}, "template"),
        ({"messages": [{"role": "user", "content": 3}], "model": MODEL_ID}, "messages[0].content"),
        ({"template": "x", "model": "missing-2020-01-01"}, "model"),
        (
            {
                "template": "x",
                "model": MODEL_ID,
                "tools": [{"name": "t", "parameters": {"type": 5}}],
            },
            "tools[0].parameters",
        ),
        ({"template": "x"}, "model"),
    ],
)
def test_propose_bad_input_is_400_naming_the_field(prompt, ci, body, field):
    r = ci.post(f"{BASE}/{prompt.name}/versions", body, format="json")
    assert r.status_code == 400, r.content
    err = r.json()["error"]
    assert err["code"] == "invalid" and field in err["details"]["fields"]
    assert not PromptVersion.objects.exists()


def test_get_version(acme, prompt, ci):
    v = propose(acme, prompt)
    pass_eval(acme, v)
    data = ci.get(f"{BASE}/{prompt.name}/versions/1").json()
    assert data["number"] == 1 and data["template"] == TEMPLATE and "messages" not in data
    assert data["variables"] == ["customer_name", "topic"]
    assert data["authors"] == ["acme-maint1"]
    assert data["eval_runs"][0]["passed"] is True
    assert ci.get(f"{BASE}/{prompt.name}/versions/9").status_code == 404
    listing = ci.get(f"{BASE}/{prompt.name}/versions").json()
    assert [v["number"] for v in listing["results"]] == [1]


def test_review_api_rules(acme, prompt, ci, api_key, api, maint2_api):
    v = propose(acme, prompt)
    url = f"{BASE}/{prompt.name}/versions/{v.number}/reviews"
    # machine keys never approve
    assert ci.post(url, {"decision": "approve"}, format="json").status_code == 403
    # without a passing eval: 409 naming the rule, nothing changed
    r = maint2_api.post(url, {"decision": "approve", "comment": "ok"}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "eval_gate"
    assert "Eval gate" in r.json()["error"]["message"]
    # the author (personal key) may not approve
    maint1_api = api(api_key(acme, ["prompts:approve"], user=acme.users["maint1"], name="m1"))
    pass_eval(acme, v)
    r = maint1_api.post(url, {"decision": "approve"}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "four_eyes"
    r = maint2_api.post(url, {"decision": "bogus"}, format="json")
    assert r.status_code == 400 and "decision" in r.json()["error"]["details"]["fields"]
    r = maint2_api.post(url, {"decision": "approve", "comment": "ok"}, format="json")
    assert r.status_code == 201 and r.json()["version"]["status"] == "approved"


def test_eval_run_upload_and_promptfoo(acme, prompt, ci):
    v = propose(acme, prompt)
    url = f"{BASE}/{prompt.name}/versions/{v.number}/eval-runs"
    r = ci.post(url, {"tool": "custom", "metrics": {"pass_rate": 0.95, "cases": 20}}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["passed"] is True and r.json()["policy"]["name"]
    promptfoo = {
        "results": {
            "results": [
                {"success": True, "score": 1, "provider": {"id": MODEL_ID}},
                {"success": False, "score": 0, "provider": {"id": MODEL_ID}},
            ]
        }
    }
    r = ci.post(url + "/promptfoo", promptfoo, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["passed"] is False and r.json()["tool"] == "promptfoo"
    assert r.json()["metrics"]["pass_rate"] == 0.5
    assert (
        ci.post(
            f"{BASE}/{prompt.name}/versions/7/eval-runs", {"tool": "custom"}, format="json"
        ).status_code
        == 404
    )
    assert (
        ci.post(f"{BASE}/nope/versions/1/eval-runs", {"tool": "custom"}, format="json").status_code
        == 404
    )
    r = ci.post(url, {"tool": "custom", "metrics": {"pass_rate": "high"}}, format="json")
    assert r.status_code == 400
    assert v.eval_links.count() == 2


def test_machine_key_on_protected_label_is_409_and_nothing_changes(acme, prompt, ci):
    v = approved_version(acme, prompt)
    r = ci.post(f"{BASE}/{prompt.name}/labels/production", {"version": v.number}, format="json")
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "protected_label_machine" and "Protected label" in err["message"]
    assert not Label.objects.exists() and not Deployment.objects.exists()
    r = ci.post(f"{BASE}/{prompt.name}/labels/staging", {"version": v.number}, format="json")
    assert r.status_code == 201 and r.json()["changed"] is True
    r = ci.post(f"{BASE}/{prompt.name}/labels/staging", {"version": v.number}, format="json")
    assert r.status_code == 200 and r.json()["changed"] is False


def test_deploy_unapproved_or_unknown_version(acme, prompt, maint2_api):
    propose(acme, prompt)
    url = f"{BASE}/{prompt.name}/labels/production"
    r = maint2_api.post(url, {"version": 1, "reason": "go"}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "protected_label_unapproved"
    r = maint2_api.post(url, {"version": 5}, format="json")
    assert r.status_code == 400 and "version" in r.json()["error"]["details"]["fields"]


def test_deploy_model_not_approved_is_409(acme, prompt, maint2_api):
    v = approved_version(acme, prompt)
    v.model.status = "retired"
    v.model.save()
    r = maint2_api.post(f"{BASE}/{prompt.name}/labels/production", {"version": 1}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "protected_label_model"


# -- resolve -------------------------------------------------------------------------------


@pytest.fixture
def deployed(acme, prompt):
    v1 = approved_version(acme, prompt)
    services.label_deploy(actor=acme.actor("maint2"), prompt=prompt, label="production", version=v1)
    return prompt, v1


@pytest.fixture
def reader(acme, api_key, api):
    return api(api_key(acme, ["prompts:read"]))


def test_resolve_label_and_version_with_etag(
    acme, deployed, reader, django_capture_on_commit_callbacks
):
    prompt, v1 = deployed
    r = reader.get(f"{BASE}/{prompt.name}/resolve?label=production")
    assert r.status_code == 200
    body = json.loads(r.content)
    assert body == {
        "name": prompt.name,
        "version": 1,
        "label": "production",
        "template": TEMPLATE,
        "model": MODEL_ID,
        "params": {},
        "tools": [],
        "content_hash": v1.content_hash,
    }
    etag = r["ETag"]
    r304 = reader.get(f"{BASE}/{prompt.name}/resolve?label=production", HTTP_IF_NONE_MATCH=etag)
    assert r304.status_code == 304 and r304["ETag"] == etag and not r304.content
    assert reader.get(f"{BASE}/{prompt.name}/resolve?version=1").json()["label"] is None
    assert reader.get(f"{BASE}/{prompt.name}/resolve?label=staging").status_code == 404
    assert reader.get(f"{BASE}/{prompt.name}/resolve?version=3").status_code == 404
    assert reader.get(f"{BASE}/other/resolve").status_code == 404


def test_a_deploy_is_visible_at_once(acme, deployed, reader, django_capture_on_commit_callbacks):
    prompt, v1 = deployed
    first = reader.get(f"{BASE}/{prompt.name}/resolve?label=production")
    v2 = approved_version(acme, prompt, template="New {{ x }}")
    with django_capture_on_commit_callbacks(execute=True):
        services.label_deploy(
            actor=acme.actor("maint2"), prompt=prompt, label="production", version=v2
        )
    second = reader.get(
        f"{BASE}/{prompt.name}/resolve?label=production", HTTP_IF_NONE_MATCH=first["ETag"]
    )
    assert second.status_code == 200
    assert second.json()["version"] == 2 and second["ETag"] != first["ETag"]


def test_no_invalidation_before_commit(acme, deployed, reader, django_capture_on_commit_callbacks):
    """The cache generation moves only on commit (a rolled-back deploy leaves it alone)."""
    prompt, v1 = deployed
    reader.get(f"{BASE}/{prompt.name}/resolve?label=production")
    v2 = approved_version(acme, prompt, template="New {{ x }}")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.label_deploy(
            actor=acme.actor("maint2"), prompt=prompt, label="production", version=v2
        )
    assert len(callbacks) >= 1


def test_warm_resolve_costs_zero_queries_including_key_auth(acme, deployed, reader):
    prompt, _ = deployed
    url = f"{BASE}/{prompt.name}/resolve?label=production"
    assert reader.get(url).status_code == 200  # warms the key and the payload
    with CaptureQueriesContext(connection) as ctx:
        r = reader.get(url)
        r304 = reader.get(url, HTTP_IF_NONE_MATCH=r["ETag"])
    assert r.status_code == 200 and r304.status_code == 304
    assert len(ctx.captured_queries) == 0, [q["sql"] for q in ctx.captured_queries]


def test_warm_resolve_zero_queries_with_django_assert(
    acme, deployed, reader, django_assert_num_queries
):
    prompt, _ = deployed
    url = f"{BASE}/{prompt.name}/resolve?label=production"
    reader.get(url)
    with django_assert_num_queries(0):
        assert reader.get(url).status_code == 200


def test_resolve_of_another_org_is_404(globex, deployed, api_key, api):
    prompt, _ = deployed
    theirs = api(api_key(globex, ["prompts:read"]))
    assert theirs.get(f"{BASE}/{prompt.name}/resolve?label=production").status_code == 404


def test_resolve_needs_a_key(deployed, api):
    prompt, _ = deployed
    assert api().get(f"{BASE}/{prompt.name}/resolve").status_code == 401


# -- sync --------------------------------------------------------------------------------


def test_sync_api(acme, model, ci):
    content = f"name: nightly\nmodel: {MODEL_ID}\ntemplate: Hello {{{{ who }}}}\n"
    body = {"files": [{"path": "prompts/nightly.yaml", "content": content}], "commit": "deadbeef"}
    r = ci.post(f"{BASE}/sync", body, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["created"] == 1 and r.json()["results"][0]["status"] == "in_review"
    r = ci.post(f"{BASE}/sync", body, format="json")
    assert r.json()["created"] == 0 and r.json()["unchanged"] == 1
    bad = {"files": [{"path": "x.yaml", "content": "- a list"}]}
    r = ci.post(f"{BASE}/sync", bad, format="json")
    assert r.status_code == 400 and "x.yaml" in r.json()["error"]["message"]


def test_review_then_approve_flow_over_api(acme, prompt, ci, maint2_api):
    r = ci.post(
        f"{BASE}/{prompt.name}/versions", {"template": TEMPLATE, "model": MODEL_ID}, format="json"
    )
    n = r.json()["number"]
    ci.post(
        f"{BASE}/{prompt.name}/versions/{n}/eval-runs",
        {"tool": "custom", "results": [{"passed": True}]},
        format="json",
    )
    r = maint2_api.post(
        f"{BASE}/{prompt.name}/versions/{n}/reviews", {"decision": "approve"}, format="json"
    )
    assert r.status_code == 201
    r = maint2_api.post(
        f"{BASE}/{prompt.name}/labels/production", {"version": n, "reason": "ship"}, format="json"
    )
    assert r.status_code == 201 and r.json()["rollback"] is False


def test_resolve_fast_path_keeps_the_api_rules(acme, deployed, api_key, api, client):
    from llmops.tenancy.models import ApiKey
    from llmops.tenancy.services import api_key_revoke

    prompt, _ = deployed
    url = f"{BASE}/{prompt.name}/resolve?label=production"
    wrong_scope = api(api_key(acme, ["ingest"]))
    r = wrong_scope.get(url)
    assert r.status_code == 403 and r.json()["error"]["code"]
    raw = api_key(acme, ["prompts:read"], name="to-revoke")
    reader = api(raw)
    assert reader.get(url).status_code == 200
    key = ApiKey.objects.get(name="to-revoke")
    api_key_revoke(actor=acme.actor("admin"), key=key)
    assert reader.get(url).status_code == 401
    client.force_login(acme.users["viewer"], backend="django.contrib.auth.backends.ModelBackend")
    r = client.get(url)  # a session (one organization) takes the DRF path
    assert r.status_code == 200 and r.json()["version"] == 1
    r = api(api_key(acme, ["prompts:read"])).get(f"{BASE}/{prompt.name}/resolve?version=x")
    assert r.status_code == 400


def test_generation_memo_with_a_remote_cache(
    acme, deployed, reader, monkeypatch, django_capture_on_commit_callbacks
):
    """With Redis each process remembers a generation briefly: another process's deploy is
    seen within GENERATION_MEMO_SECONDS, the deploying process's at once."""
    from prompts import cache as resolve_cache

    prompt, v1 = deployed
    capture = django_capture_on_commit_callbacks
    monkeypatch.setattr(resolve_cache, "_memo_seconds", 60.0)
    monkeypatch.setattr(resolve_cache, "_generations", {})
    url = f"{BASE}/{prompt.name}/resolve?label=production"
    assert reader.get(url).json()["version"] == 1
    v2 = approved_version(acme, prompt, template="two {{ x }}")
    # Another process deployed: the shared generation moved, this process has not heard.
    from prompts.models import Label

    Label.objects.filter(prompt=prompt, name="production").update(version=v2)
    key = resolve_cache._gen_key(acme.org.pk, prompt.name)
    from django.core.cache import cache

    cache.incr(key)
    assert reader.get(url).json()["version"] == 1  # remembered generation
    import time

    memo_key = (acme.org.pk, prompt.name)
    _, gen = resolve_cache._generations[memo_key]
    resolve_cache._generations[memo_key] = (time.monotonic() - 61, gen)  # the memo ages out
    assert reader.get(url).json()["version"] == 2
    # A deploy (here a rollback) in this process is visible at once.
    with capture(execute=True):
        services.label_deploy(
            actor=acme.actor("maint2"), prompt=prompt, label="production", version=v1
        )
    assert reader.get(url).json()["version"] == 1


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_changing_a_version_is_405_with_the_json_error_body(acme, prompt, ci, api, method):
    v = propose(acme, prompt)
    url = f"{BASE}/{prompt.name}/versions/{v.number}"
    r = getattr(ci, method)(url, {"template": "changed"}, format="json")
    assert r.status_code == 405, r.content
    err = r.json()["error"]
    assert err["code"] == "method_not_allowed" and "immutable" in err["message"]
    assert "GET" in r["Allow"] and method.upper() not in r["Allow"]
    v.refresh_from_db()
    assert v.template == TEMPLATE
    assert getattr(api(), method)(url, {}, format="json").status_code == 401
