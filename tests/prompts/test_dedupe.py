"""Content identical to ANY existing version proposes nothing and names that version:
the service, POST /versions, the sync API and prompts_pull -> prompts_push."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from prompts import services
from prompts.models import PromptVersion

from .conftest import MODEL_ID, TEMPLATE, approved_version, propose

BASE = "/api/v1/prompts"
NEWER = "Answer {{ customer_name }} about {{ topic }}. Be very brief."


@pytest.fixture
def production_behind_latest(acme, prompt):
    """v1 approved and in production; v2 (different content) in review, the latest."""
    v1 = approved_version(acme, prompt)
    services.label_deploy(actor=acme.actor("maint2"), prompt=prompt, label="production", version=v1)
    v2 = propose(acme, prompt, template=NEWER)
    assert (v1.number, v2.number) == (1, 2)
    return v1, v2


def test_service_returns_the_matching_older_version(acme, prompt, production_behind_latest):
    v1, _ = production_behind_latest
    again, created = services.version_create(
        actor=acme.actor("maint1"), prompt=prompt, model=MODEL_ID, template=TEMPLATE
    )
    assert not created and again.pk == v1.pk
    assert PromptVersion.objects.filter(prompt=prompt).count() == 2


def test_post_versions_identical_to_an_older_version_is_200_naming_it(
    acme, prompt, production_behind_latest, api_key, api
):
    ci = api(api_key(acme, ["prompts:write"]))
    body = {"template": TEMPLATE, "model": MODEL_ID, "message": "again"}
    r = ci.post(f"{BASE}/{prompt.name}/versions", body, format="json")
    assert r.status_code == 200, r.content
    data = r.json()
    assert data["created"] is False and data["number"] == 1 and data["matches"] == 1
    assert data["status"] == "approved"
    assert "Identical to v1" in data["detail"] and "latest version is v2" in data["detail"]
    assert PromptVersion.objects.filter(prompt=prompt).count() == 2
    r = ci.post(
        f"{BASE}/{prompt.name}/versions", {**body, "template": "New {{ a }}"}, format="json"
    )
    assert r.status_code == 201 and r.json()["number"] == 3 and "matches" not in r.json()


def test_sync_api_names_the_matching_version(acme, prompt, production_behind_latest, api_key, api):
    ci = api(api_key(acme, ["prompts:write"]))
    content = f"name: {prompt.name}\nmodel: {MODEL_ID}\ntemplate: '{TEMPLATE}'\n"
    body = {"files": [{"path": "p.yaml", "content": content}], "commit": "abc123"}
    r = ci.post(f"{BASE}/sync", body, format="json")
    assert r.status_code == 200, r.content
    result = r.json()["results"][0]
    assert r.json()["created"] == 0 and r.json()["unchanged"] == 1
    assert result["created"] is False and result["matches"] == 1 and result["latest"] == 2
    assert PromptVersion.objects.filter(prompt=prompt).count() == 2


def test_pull_production_then_push_proposes_nothing(
    acme, prompt, production_behind_latest, tmp_path
):
    call_command(
        "prompts_pull", str(tmp_path), "--org", "acme", "--label", "production", stdout=StringIO()
    )
    out = StringIO()
    call_command("prompts_push", str(tmp_path), "--org", "acme", stdout=out)
    text = out.getvalue()
    assert "0 new version(s), 1 unchanged" in text
    assert "identical to v1 (approved), latest is v2" in text
    assert PromptVersion.objects.filter(prompt=prompt).count() == 2
