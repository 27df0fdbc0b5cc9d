"""The incidents API (README.md, "HTTP API"): create/list/get, transition with 409s naming the rule,
timeline, alert intake with dedupe (201 created / 200 appended), runbooks, bad input."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import services
from incidents.models import Incident, TimelineEntry
from llmops.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

BASE = "/api/v1"


@pytest.fixture
def machine(acme, api_key, api):
    return api(api_key(acme, ["incidents:write"]))


def alert(client, **kw):
    body = {"dedupe_key": "checkout-bot/hallucination", "title": "Refund policy invented"}
    body.update({"category": "hallucination", **kw})
    return client.post(f"{BASE}/incidents/alerts", body, format="json")


def test_alert_creates_then_appends(acme, machine):
    first = alert(machine, severity="SEV2", details={"rate": 0.12})
    assert first.status_code == 201
    assert first.json()["created"] is True and first.json()["number"] == 1
    again = alert(machine, details="second burst")
    assert again.status_code == 200 and again.json() == {
        "number": 1,
        "ref": "INC-1",
        "created": False,
    }
    incident = Incident.objects.get(organization=acme.org)
    assert (incident.source, incident.status, incident.severity) == ("alert", "triage", "SEV2")
    assert incident.alert_count == 2
    assert TimelineEntry.objects.filter(incident=incident, kind="alert").count() == 1
    # Another key is another incident.
    assert alert(machine, dedupe_key="other").status_code == 201


def test_alert_without_severity_stays_pending(acme, machine):
    alert(machine)
    assert Incident.objects.get().severity == "pending"


def test_alert_after_window_or_on_ended_incident_opens_new(acme, machine):
    alert(machine)
    Incident.objects.update(last_alert_at=timezone.now() - timedelta(hours=49))
    assert alert(machine).status_code == 201
    second = Incident.objects.get(number=2)
    services.incident_transition(actor=acme.actor("maint1"), incident=second, to="cancelled")
    assert alert(machine).json()["number"] == 3


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"category": "alien"}, 400, "category"),
        ({"severity": "SEV0"}, 400, "severity"),
        ({"severity": "pending"}, 201, None),
        ({"dedupe_key": ""}, 400, "dedupe_key"),
        ({"dedupe_key": "k" * 201}, 400, "dedupe_key"),
        ({"title": ["x"]}, 400, "title"),
        ({"title": "t" * 201}, 400, "title"),
        ({"details": "x" * (70 * 1024)}, 413, None),
    ],
)
def test_alert_bad_input(acme, machine, body, status, field):
    response = alert(machine, **body)
    assert response.status_code == status, response.content
    if status >= 400:
        error = response.json()["error"]
        assert error["message"]
        if field:
            assert field in error["details"]["fields"]
        assert not Incident.objects.exists()


def test_non_object_body_and_huge_body(acme, machine):
    response = machine.post(f"{BASE}/incidents/alerts", [1, 2], format="json")
    assert response.status_code == 400
    response = machine.post(
        f"{BASE}/incidents/alerts",
        data=json.dumps({"details": "x" * (6 * 1024 * 1024)}),
        content_type="application/json",
    )
    assert response.status_code == 413
    response = machine.post(
        f"{BASE}/incidents/alerts", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400


def test_create_get_list(acme, machine, api):
    response = machine.post(
        f"{BASE}/incidents",
        {
            "title": "Cost spike",
            "category": "cost_spike",
            "severity": "SEV3",
            "cost_impact_usd": "1200.5",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["number"] == 1 and data["source"] == "api" and data["cost_impact_usd"] == "1200.50"
    assert data["owasp"]["id"] == "LLM10"
    got = machine.get(f"{BASE}/incidents/1").json()
    assert {"number", "status", "severity", "category", "title"} <= got.keys()
    listing = machine.get(f"{BASE}/incidents").json()
    assert [i["number"] for i in listing["results"]] == [1] and "next" in listing
    assert machine.get(f"{BASE}/incidents", {"status": "open"}).json()["results"]
    assert machine.get(f"{BASE}/incidents", {"status": "nope"}).status_code == 400
    assert machine.get(f"{BASE}/incidents/99").status_code == 404


def test_create_bad_input(acme, machine):
    for body in (
        {"title": "x", "category": "nope"},
        {"title": "", "category": "other"},
        {"title": "x", "category": "other", "users_affected": -1},
        {"title": "x", "category": "other", "cost_impact_usd": "lots"},
        {"title": "x", "category": "other", "detected_at": "2999-01-01T00:00:00Z"},
        {"title": "x", "category": "other", "detected_at": "tuesday"},
    ):
        response = machine.post(f"{BASE}/incidents", body, format="json")
        assert response.status_code == 400, (body, response.content)
    response = machine.post(
        f"{BASE}/incidents",
        {"title": "x", "category": "other", "summary": "s" * 20_001},
        format="json",
    )
    assert response.status_code == 413
    assert not Incident.objects.exists()


def test_transition_and_guards(acme, machine):
    alert(machine, severity="SEV2")
    t = f"{BASE}/incidents/1/transition"
    response = machine.post(t, {"to": "resolved"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    assert machine.post(t, {"to": "investigating"}, format="json").status_code == 200
    response = machine.post(t, {"to": "mitigated"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["details"]["rule"] == "mitigation_note_required"
    assert "mitigation_note_required" in response.json()["error"]["message"]
    assert (
        machine.post(t, {"to": "mitigated", "note": "Rolled back"}, format="json").status_code
        == 200
    )
    response = machine.post(t, {"to": "resolved"}, format="json")
    assert response.json()["error"]["details"]["rule"] == "eval_case_required"
    assert machine.post(t, {}, format="json").status_code == 400
    assert machine.post(t, {"to": "flying"}, format="json").status_code == 400
    assert (
        machine.post(
            t, {"to": "investigating", "at": "2000-01-01T00:00:00Z"}, format="json"
        ).status_code
        == 400
    )


def test_timeline(acme, machine):
    alert(machine)
    response = machine.post(
        f"{BASE}/incidents/1/timeline", {"note": "Paged on-call"}, format="json"
    )
    assert response.status_code == 201 and response.json()["kind"] == "note"
    assert (
        machine.post(f"{BASE}/incidents/1/timeline", {"note": ""}, format="json").status_code == 400
    )
    entries = machine.get(f"{BASE}/incidents/1/timeline").json()["results"]
    assert [e["kind"] for e in entries] == ["opened", "note"]


def test_scopes(acme, api_key, api):
    reader = api(api_key(acme, ["prompts:read"]))
    assert reader.get(f"{BASE}/incidents").status_code == 403
    assert alert(reader).status_code == 403
    assert api().get(f"{BASE}/incidents").status_code == 401


def test_runbooks_api(acme, machine, login):
    services.runbook_create(actor=acme.actor("maint1"), title="Outage", category="outage")
    data = machine.get(f"{BASE}/runbooks").json()["results"]
    assert data[0]["title"] == "Outage" and data[0]["conditions"]["category"] == "outage"
    # Writing runbooks is maintainers' work (session or personal key with the role).
    assert machine.post(f"{BASE}/runbooks", {"title": "x"}, format="json").status_code == 403
    client = login(acme.users["maint1"])
    response = client.post(
        f"{BASE}/runbooks",
        {"title": "Jailbreak", "category": "prompt_injection", "steps": [{"text": "Block"}]},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    response = client.post(
        f"{BASE}/runbooks", {"title": "Bad", "category": "nope"}, content_type="application/json"
    )
    assert response.status_code == 400


def test_runbooks_write_scope_creates_runbooks(acme, api_key, api):
    """A key with `runbooks:write` (machine or personal) creates runbooks; `incidents:write`
    alone does not."""
    body = {"title": "Drift response", "category": "drift", "steps": [{"text": "Compare runs"}]}
    writer = api(api_key(acme, ["runbooks:write"]))
    response = writer.post(f"{BASE}/runbooks", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["title"] == "Drift response"
    assert writer.get(f"{BASE}/runbooks").status_code == 200
    personal = api(api_key(acme, ["runbooks:write"], user=acme.users["maint1"]))
    assert personal.post(f"{BASE}/runbooks", {"title": "Mine"}, format="json").status_code == 201
    incidents_only = api(api_key(acme, ["incidents:write"]))
    assert incidents_only.post(f"{BASE}/runbooks", body, format="json").status_code == 403
    assert writer.get(f"{BASE}/incidents").status_code == 403
    assert AuditEvent.objects.filter(organization=acme.org, action="runbook.create").count() == 2


def test_deeply_nested_json_is_400_not_500(acme, machine):
    body = '{"dedupe_key": "k", "title": "t", "category": "other", "details": '
    body += "[" * 50_000 + "]" * 50_000 + "}"
    response = machine.post(f"{BASE}/incidents/alerts", data=body, content_type="application/json")
    assert response.status_code == 400
    assert not Incident.objects.exists()


def test_nested_details_within_parser_limit(acme, machine):
    details = "[" * 900 + "]" * 900
    body = '{"dedupe_key": "k", "title": "t", "category": "other", "details": ' + details + "}"
    response = machine.post(f"{BASE}/incidents/alerts", data=body, content_type="application/json")
    assert response.status_code in (201, 400)
