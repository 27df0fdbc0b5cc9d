"""AI incidents in a real browser: an alert opens an incident, a maintainer takes command,
follows the checklist, rolls back the prompt, adds the failure to an eval dataset, resolves
and closes it with a postmortem."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from rest_framework.test import APIClient

from incidents import services as incident_services
from incidents.models import Incident
from llmops.catalog.models import ModelVersion
from llmops.evals.services import dataset_create
from llmops.tenancy.services import api_key_create
from prompts import services
from prompts.models import Label

MODEL_ID = "claude-sonnet-4-5-20250929"


def _setup(acme):
    """support-reply: v1 and v2 approved, production on v2; a regression dataset; runbooks."""
    ModelVersion.objects.create(
        organization=acme.org, provider="anthropic", model_id=MODEL_ID, status="approved"
    )
    m1, m2 = acme.actor("maint1"), acme.actor("maint2")
    prompt = services.prompt_create(actor=m1, name="support-reply", description="First reply.")
    services.prompt_owner_grant(actor=acme.actor("admin"), prompt=prompt, username="acme-maint2")
    for template in ("Hello {{ customer_name }}.", "Hi {{ customer_name }}, refunds any time!"):
        version, _ = services.version_create(
            actor=m1, prompt=prompt, model=MODEL_ID, template=template
        )
        services.version_record_eval_run(
            actor=m1, version=version, data={"tool": "custom", "results": [{"passed": True}]}
        )
        services.version_review(actor=m2, version=version, decision="approve", comment="ok")
        services.label_deploy(
            actor=m2, prompt=prompt, label="production", version=version, reason="ship"
        )
    dataset_create(actor=acme.actor("admin"), name="Refund regressions")
    incident_services.runbook_create(
        actor=m1,
        title="Hallucination reaching users",
        category="hallucination",
        steps=[
            {"text": "Collect failing generations", "role": "commander"},
            {"text": "Roll the prompt label back", "action": "rollback_prompt"},
        ],
    )
    incident_services.runbook_create(
        actor=m1,
        title="Severe incident basics",
        min_severity="SEV2",
        steps=[{"text": "Post a status update every 30 minutes"}],
    )
    return prompt


def test_alert_to_closed_incident(e2e_world, page, login_as, shot):
    acme = e2e_world["acme"]
    prompt = _setup(acme)
    page.on("dialog", lambda dialog: dialog.accept())  # data-confirm confirmations

    # Monitoring posts an alert (twice: the second is deduped onto the same incident).
    _, raw = api_key_create(
        actor=acme.actor("admin"), name="monitoring", scopes=["incidents:write"]
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = {
        "dedupe_key": "support-reply/refund-hallucination",
        "title": "Support bot invents refund policy",
        "category": "hallucination",
        "details": {"flagged": 14},
    }
    assert api.post("/api/v1/incidents/alerts", body, format="json").status_code == 201
    assert api.post("/api/v1/incidents/alerts", body, format="json").json()["created"] is False

    login_as("acme-maint1")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Incidents").click()
    expect(page).to_have_url(re.compile(r"/o/acme/incidents/$"))
    expect(page.get_by_test_id("incident-list")).to_contain_text("INC-1")
    shot("list")
    page.get_by_role("link", name=re.compile("INC-1")).click()
    expect(page.get_by_test_id("incident-status")).to_have_text("Triage")
    expect(page.get_by_test_id("checklist")).to_contain_text("Collect failing generations")
    shot("triage")

    # Take command, set a severity and start investigating.
    page.get_by_test_id("take-command").click()
    expect(page.get_by_test_id("commander")).to_have_text("acme-maint1")
    page.select_option("#t-to", "investigating")
    page.select_option("#t-sev", "SEV2")
    page.get_by_role("button", name="Change status").click()
    expect(page.get_by_test_id("incident-status")).to_have_text("Investigating")
    # SEV2 attached the severe-incident runbook too.
    expect(page.get_by_test_id("checklist")).to_contain_text("Post a status update")

    # Follow the checklist.
    page.get_by_test_id("step-1").first.click()
    expect(page.get_by_test_id("checklist")).to_contain_text("acme-maint1")

    # Roll the prompt back (confirmation accepted).
    page.fill("#r-reason", "v2 promises refunds any time")
    page.get_by_role("button", name="Roll back").click()
    expect(page.locator(".flash-success")).to_contain_text("Rolled support-reply@production back")
    assert Label.objects.get(prompt=prompt, name="production").version.number == 1
    expect(page.get_by_test_id("timeline")).to_contain_text("from v2 to v1")
    expect(page.get_by_test_id("evidence")).to_contain_text("Prompt support-reply v2")

    # Mitigated needs a note: first without one, the rule is named.
    page.select_option("#t-to", "mitigated")
    page.get_by_role("button", name="Change status").click()
    expect(page.locator(".flash-error")).to_contain_text("mitigation_note_required")
    page.select_option("#t-to", "mitigated")
    page.fill("#t-note", "Rolled production back to v1.")
    page.get_by_role("button", name="Change status").click()
    expect(page.get_by_test_id("incident-status")).to_have_text("Mitigated")

    # Resolving a hallucination needs an eval case.
    page.select_option("#t-to", "resolved")
    page.get_by_role("button", name="Change status").click()
    expect(page.locator(".flash-error")).to_contain_text("eval_case_required")
    page.fill("#x-input", "Can I get a refund after 90 days?")
    page.fill("#x-expected", "Refunds are available within 30 days of purchase.")
    page.get_by_role("button", name="Add eval case").click()
    expect(page.locator(".flash-success")).to_contain_text("Refund regressions")
    page.select_option("#t-to", "resolved")
    page.get_by_role("button", name="Change status").click()
    expect(page.get_by_test_id("incident-status")).to_have_text("Resolved")
    shot("resolved")

    # SEV2 closes with a postmortem and owned action items.
    page.fill("#pm-body", "## Root cause\n\nv2 told users **refunds any time**.")
    page.get_by_test_id("pm-preview-button").click()
    expect(page.locator("#pm-preview strong")).to_have_text("refunds any time")
    page.get_by_role("button", name="Save postmortem").click()
    expect(page.locator(".flash-success")).to_contain_text("Postmortem saved")
    page.fill("#ai-title", "Eval gate on refund answers")
    page.select_option("#ai-owner", "acme-maint2")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_test_id("action-items")).to_contain_text("acme-maint2")
    page.select_option("#t-to", "closed")
    page.get_by_role("button", name="Change status").click()
    expect(page.get_by_test_id("incident-status")).to_have_text("Closed")
    shot("closed")

    incident = Incident.objects.get(organization=acme.org, number=1)
    stamps = [
        incident.detected_at,
        incident.acknowledged_at,
        incident.mitigated_at,
        incident.resolved_at,
        incident.closed_at,
    ]
    assert all(stamps) and stamps == sorted(stamps)
    assert incident.eval_cases.count() == 1 and incident.alert_count == 2

    page.goto("/o/acme/incidents/metrics/")
    expect(page.get_by_test_id("metric-total")).to_have_text("1")
    shot("metrics")
    page.goto("/o/acme/incidents/runbooks/")
    expect(page.get_by_test_id("runbook-list")).to_contain_text("Hallucination reaching users")
    shot("runbooks")
