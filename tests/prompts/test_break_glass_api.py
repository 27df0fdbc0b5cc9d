"""Break-glass through the API: an admin's personal key with the endpoint's scope may send
`break_glass_reason` on reviews and deploys (the key holder's role carries break_glass, no
scope does); every other key is refused with a 403. Marked, audited and notified."""

from __future__ import annotations

import pytest

from llmops.audit.models import AuditEvent
from llmops.notify.models import Notification
from prompts.models import Approval, Deployment, Label, PromptVersion

from .conftest import approved_version, propose

BASE = "/api/v1/prompts"
REASON = "INC-12: customer-facing outage, eval pipeline down"


@pytest.fixture
def personal(acme, api_key, api):
    def _client(who, scopes):
        return api(api_key(acme, scopes, user=acme.users[who], name=f"{who} key"))

    return _client


def _review(client, version, **body):
    url = f"{BASE}/{version.prompt.name}/versions/{version.number}/reviews"
    return client.post(url, {"decision": "approve", "comment": "ok", **body}, format="json")


def _deploy(client, version, label="production", **body):
    url = f"{BASE}/{version.prompt.name}/labels/{label}"
    return client.post(url, {"version": version.number, **body}, format="json")


def _glass_notes(acme):
    return Notification.objects.filter(kind="prompts.break_glass", recipient=acme.users["admin"])


def test_admin_personal_key_approves_past_the_eval_gate_with_a_reason(acme, prompt, personal):
    v = propose(acme, prompt)  # no eval run: the eval gate blocks
    admin = personal("admin", ["prompts:approve"])
    r = _review(admin, v)
    assert r.status_code == 409 and r.json()["error"]["code"] == "eval_gate"
    r = _review(admin, v, break_glass_reason=REASON)
    assert r.status_code == 201, r.content
    assert r.json()["break_glass"] is True and r.json()["version"]["status"] == "approved"
    v.refresh_from_db()
    assert v.status == PromptVersion.Status.APPROVED and v.break_glass_reason == REASON
    event = AuditEvent.objects.filter(action="prompt.version_reviewed").latest("seq")
    assert event.details["break_glass_reason"] == REASON
    assert event.details["overridden"] == ["eval_gate"]
    assert _glass_notes(acme).exists()


@pytest.mark.parametrize(
    "who, scopes",
    [
        ("maint2", ["prompts:approve"]),  # an owner, but not an admin
        (None, ["prompts:write", "evals:write"]),  # a machine key
    ],
)
def test_every_other_key_is_refused_a_review_break_glass(
    acme, prompt, personal, api_key, api, who, scopes
):
    v = propose(acme, prompt)
    client = personal(who, scopes) if who else api(api_key(acme, scopes))
    r = _review(client, v, break_glass_reason=REASON)
    assert r.status_code == 403, r.content
    assert r.json()["error"]["code"]
    v.refresh_from_db()
    assert v.status == PromptVersion.Status.IN_REVIEW and not v.break_glass_reason
    assert not Approval.objects.filter(version=v).exists()
    assert not _glass_notes(acme).exists()


def _suspended_model_version(acme, prompt):
    v = approved_version(acme, prompt)
    v.model.status = "suspended"
    v.model.save(update_fields=["status"])
    return v


def test_admin_personal_key_deploys_a_suspended_model_with_a_reason(acme, prompt, personal):
    v = _suspended_model_version(acme, prompt)
    admin = personal("admin", ["prompts:deploy"])
    r = _deploy(admin, v)
    assert r.status_code == 409 and r.json()["error"]["code"] == "protected_label_model"
    r = _deploy(admin, v, reason="roll forward", break_glass_reason=REASON)
    assert r.status_code == 201, r.content
    assert r.json()["break_glass"] is True
    deployment = Deployment.objects.get(prompt=prompt)
    assert deployment.break_glass_reason == REASON
    assert Label.objects.get(prompt=prompt, name="production").version == v
    event = AuditEvent.objects.filter(action="prompt.deployed").latest("seq")
    assert event.details["break_glass_reason"] == REASON
    assert _glass_notes(acme).exists()


@pytest.mark.parametrize(
    "who, scopes, label",
    [
        ("maint2", ["prompts:deploy"], "production"),  # an owner with the deploy grant
        (None, ["prompts:deploy"], "staging"),  # a machine key, even on an unprotected label
    ],
)
def test_every_other_key_is_refused_a_deploy_break_glass(
    acme, prompt, personal, api_key, api, who, scopes, label
):
    v = _suspended_model_version(acme, prompt)
    client = personal(who, scopes) if who else api(api_key(acme, scopes))
    r = _deploy(client, v, label=label, break_glass_reason=REASON)
    assert r.status_code == 403, r.content
    assert not Deployment.objects.exists()
    assert not _glass_notes(acme).exists()


def test_admin_personal_key_without_the_endpoint_scope_cannot_break_glass(acme, prompt, personal):
    v = propose(acme, prompt)
    r = _review(personal("admin", ["prompts:read"]), v, break_glass_reason=REASON)
    assert r.status_code == 403
    v.refresh_from_db()
    assert v.status == PromptVersion.Status.IN_REVIEW
