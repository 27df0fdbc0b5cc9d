"""HTML pages: list (filters, empty state, open first), open form, incident page and its
operations, postmortem preview (escaped Markdown), metrics SVG, runbook editor."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.models import Incident, Postmortem, RunbookVersion

pytestmark = pytest.mark.django_db


def url(name, **kw):
    return reverse(f"incidents:{name}", kwargs={"org_slug": "acme", **kw})


def test_list_empty_state_and_nav(acme, login):
    client = login(acme.users["viewer"])
    response = client.get(url("list"))
    assert response.status_code == 200
    assert b"No incidents yet" in response.content
    assert b'href="/o/acme/incidents/"' in response.content  # nav item
    assert b"Open an incident" not in response.content  # viewers may not open


def test_list_open_first_and_filters(acme, login, open_incident):
    closed = open_incident(title="Old cancelled one")
    services.incident_transition(actor=acme.actor("maint1"), incident=closed, to="cancelled")
    open_incident(title="Live one", category="prompt_injection", severity="SEV1")
    open_incident(title="Newer minor one", severity="SEV4")
    client = login(acme.users["maint1"])
    body = client.get(url("list")).content.decode()
    assert body.index("Live one") < body.index("Newer minor one") < body.index("Old cancelled one")
    body = client.get(url("list"), {"category": "prompt_injection"}).content.decode()
    assert "Live one" in body and "Old cancelled one" not in body
    body = client.get(url("list"), {"status": "open"}).content.decode()
    assert "Old cancelled one" not in body
    # Unknown filter values are ignored, not a 500.
    assert client.get(url("list"), {"severity": "SEV9", "category": "x"}).status_code == 200


def test_open_form_creates_and_shows_errors(acme, login):
    client = login(acme.users["reviewer1"])
    response = client.post(url("create"), {"title": "", "category": "other"})
    assert response.status_code == 200 and b"errorlist" in response.content
    response = client.post(
        url("create"),
        {"title": "Jailbreak seen", "category": "prompt_injection", "severity": "SEV2"},
    )
    incident = Incident.objects.get(organization=acme.org)
    assert response.status_code == 302 and response["Location"] == url(
        "detail", number=incident.number
    )
    assert incident.source == "manual" and incident.severity == "SEV2"


def test_detail_page_and_operations(acme, login, open_incident, runbook):
    runbook(title="Hallucination runbook", category="hallucination")
    incident = open_incident(summary="<script>alert(1)</script> **bold**")
    client = login(acme.users["maint1"])
    page = client.get(url("detail", number=incident.number))
    assert page.status_code == 200
    body = page.content.decode()
    assert "<script>alert(1)</script>" not in body and "<strong>bold</strong>" in body
    assert "Hallucination runbook" in body and "OWASP LLM09" in body
    assert "severity_required" in body  # the blocker shows before anyone tries
    d = url("detail", number=incident.number)
    client.post(d, {"op": "command", "take": "1"})
    client.post(d, {"op": "transition", "to": "investigating", "severity": "SEV2"})
    step = incident.checklists.get().steps.first()
    client.post(d, {"op": "step", "step": step.pk, "done": "1"})
    client.post(d, {"op": "note", "note": "Customer *complaints* rising"})
    # A guard failure comes back as a message naming the rule, not a 500.
    response = client.post(d, {"op": "transition", "to": "mitigated"}, follow=True)
    assert b"mitigation_note_required" in response.content
    incident.refresh_from_db()
    step.refresh_from_db()
    assert incident.commander == acme.users["maint1"]
    assert incident.status == "investigating" and step.done
    assert b"<em>complaints</em>" in client.get(d).content


def test_viewer_sees_page_but_cannot_act(acme, login, open_incident):
    incident = open_incident(severity="SEV3")
    client = login(acme.users["viewer"])
    d = url("detail", number=incident.number)
    body = client.get(d).content
    assert b"Change status" not in body and b"Take command" not in body
    response = client.post(d, {"op": "transition", "to": "investigating"})
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.status == "triage"


def test_postmortem_preview_is_sanitised(acme, login, open_incident):
    incident = open_incident(severity="SEV1")
    client = login(acme.users["maint1"])
    d = url("detail", number=incident.number)
    response = client.post(
        d,
        {"op": ["postmortem", "preview"], "body": "# Impact\n<img src=x onerror=alert(1)>"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert b"<h1>Impact</h1>" in response.content and b"<img" not in response.content
    assert not Postmortem.objects.exists()
    client.post(d, {"op": "postmortem", "body": "## Root cause\nA bad prompt."})
    assert Postmortem.objects.get(incident=incident).is_written


def test_metrics_page_svg(acme, login, open_incident):
    m = acme.actor("maint1")
    now = timezone.now()
    incident = open_incident(
        severity="SEV2", category="outage", detected_at=now - timedelta(hours=5)
    )
    services.incident_transition(
        actor=m, incident=incident, to="investigating", at=now - timedelta(hours=4)
    )
    services.incident_transition(
        actor=m, incident=incident, to="mitigated", note="x", at=now - timedelta(hours=3)
    )
    services.incident_transition(
        actor=m, incident=incident, to="resolved", at=now - timedelta(hours=1)
    )
    client = login(acme.users["viewer"])
    body = client.get(url("metrics")).content.decode()
    assert "<svg" in body and "Latency or vendor outage" in body
    assert "60 min" in body  # MTTA median
    assert "4.0 h" in body  # MTTR median


def test_metrics_empty(acme, login):
    body = login(acme.users["viewer"]).get(url("metrics")).content.decode()
    assert "No incidents in this period" in body


def test_runbook_editor_saves_versions(acme, login):
    client = login(acme.users["maint1"])
    response = client.post(
        url("runbooks"),
        {
            "title": "Jailbreak",
            "steps": "Block user | commander\nAdd eval",
            "category": "prompt_injection",
        },
    )
    version = RunbookVersion.objects.get()
    assert response.status_code == 302
    detail = url("runbook_detail", runbook_id=version.runbook_id)
    client.post(
        detail,
        {"op": "version", "title": "Jailbreak", "steps": "One step", "change_note": "shorter"},
    )
    assert RunbookVersion.objects.count() == 2
    body = client.get(detail, {"v": 1}).content.decode()
    assert "older version" in body and "Block user" in body
    assert client.get(url("runbooks")).status_code == 200
    # Reviewers see runbooks but have no editor.
    body = login(acme.users["reviewer1"]).get(url("runbooks")).content
    assert b"New runbook" not in body


def test_home_card(acme, login, open_incident):
    open_incident()
    body = login(acme.users["viewer"]).get(reverse("tenancy:home", kwargs={"org_slug": "acme"}))
    assert b"open incidents" in body.content


def test_list_query_count_is_flat(acme, login, open_incident, django_assert_max_num_queries):
    client = login(acme.users["maint1"])
    for i in range(3):
        open_incident(title=f"incident {i}")
    with django_assert_max_num_queries(16) as few:
        client.get(url("list"))
    for i in range(12):
        incident = open_incident(title=f"more {i}", severity="SEV3")
        services.incident_set_commander(
            actor=acme.actor("maint1"), incident=incident, user=acme.users["maint2"]
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url("list"))


def test_detail_query_count_is_bounded(
    acme, login, open_incident, runbook, django_assert_max_num_queries
):
    runbook(category="hallucination")
    incident = open_incident(severity="SEV3")
    client = login(acme.users["maint1"])
    for i in range(20):
        services.incident_note(actor=acme.actor("maint1"), incident=incident, note=f"note {i}")
        services.action_item_create(
            actor=acme.actor("maint1"), incident=incident, title=f"a{i}", owner=acme.users["maint2"]
        )
    with django_assert_max_num_queries(40):
        assert client.get(url("detail", number=incident.number)).status_code == 200


def test_api_schema_renders(acme, login):
    response = login(acme.users["admin"]).get("/api/schema/")
    assert response.status_code == 200 and b"/api/v1/incidents/alerts" in response.content


def test_ended_incident_page_hides_actions_but_shows_clock(acme, login, open_incident):
    incident = open_incident(severity="SEV1")
    services.incident_mark_serious(actor=acme.actor("admin"), incident=incident, kind="death")
    services.incident_transition(actor=acme.actor("maint1"), incident=incident, to="cancelled")
    body = login(acme.users["maint1"]).get(url("detail", number=incident.number)).content
    assert b"Quick actions" not in body and b"Take command" not in body
    assert b'data-testid="report-due"' in body
    viewer = login(acme.users["viewer"]).get(url("detail", number=incident.number)).content
    assert b'data-testid="report-due"' in viewer and b"Mark as serious" not in viewer


def test_admin_site_is_read_only(acme, open_incident, client):
    from django.contrib.auth import get_user_model

    open_incident()
    su = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(su, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/admin/incidents/incident/").status_code == 200
    assert client.get("/admin/incidents/incident/add/").status_code == 403


def test_owners_and_commanders_must_be_members_of_this_organization(
    acme, globex, login, open_incident
):
    incident = open_incident()
    client = login(acme.users["maint1"])
    d = url("detail", number=incident.number)
    # Someone of another organization, or a name nobody has: refused, nothing written.
    response = client.post(d, {"op": "command", "user": "globex-admin"}, follow=True)
    assert b"No such member" in response.content
    for owner in ("globex-maint1", "nobody-by-that-name"):
        response = client.post(
            d, {"op": "action_item", "title": "Fix it", "owner": owner}, follow=True
        )
        assert b"is not a member of this organization" in response.content
    incident.refresh_from_db()
    assert incident.commander is None and not incident.action_items.exists()
    # A member works, and so does no owner yet.
    client.post(d, {"op": "command", "user": "acme-maint2"})
    client.post(d, {"op": "action_item", "title": "Fix it", "owner": "acme-maint2"})
    client.post(d, {"op": "action_item", "title": "Later"})
    incident.refresh_from_db()
    assert incident.commander == acme.users["maint2"]
    owners = dict(incident.action_items.values_list("title", "owner__username"))
    assert owners == {"Fix it": "acme-maint2", "Later": None}


def test_unknown_op_is_a_clear_400_page_and_changes_nothing(acme, login, open_incident, runbook):
    incident = open_incident()
    version = runbook()
    client = login(acme.users["maint1"])
    pages = [
        url("detail", number=incident.number),
        url("runbook_detail", runbook_id=version.runbook_id),
    ]
    for page in pages:
        for data in ({"op": "launch_rockets", "title": "x"}, {"title": "x"}):
            response = client.post(page, data)
            assert response.status_code == 400
            body = response.content.decode()
            assert 'data-testid="unknown-op"' in body
            assert (data.get("op") or "named no action") in body
    assert RunbookVersion.objects.count() == 1
    incident.refresh_from_db()
    assert incident.status == "triage" and incident.title != "x"
