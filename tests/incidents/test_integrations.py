"""Quick actions through the owning apps (prompt rollback with break-glass, model suspension),
escalation from a reviewed output, and evidence snapshots that outlive retention."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.models import Evidence, Incident
from llmops.audit.models import AuditEvent
from llmops.common.errors import NotPermitted, PolicyViolation
from tests.prompts.conftest import approved_version, make_model, make_prompt

pytestmark = pytest.mark.django_db

OLD_MODEL = "claude-sonnet-4-5-20250929"
NEW_MODEL = "claude-opus-4-1-20250805"


@pytest.fixture
def deployed(acme):
    """support-reply@production moved from v1 (OLD_MODEL) to v2 (NEW_MODEL)."""
    from prompts.services import label_deploy

    old = make_model(acme, OLD_MODEL)
    make_model(acme, NEW_MODEL)
    prompt = make_prompt(acme)
    v1 = approved_version(acme, prompt, model=OLD_MODEL)
    v2 = approved_version(
        acme, prompt, template="Answer {{ customer_name }} kindly.", model=NEW_MODEL
    )
    for version in (v1, v2):
        label_deploy(
            actor=acme.actor("maint1"),
            prompt=prompt,
            label="production",
            version=version,
            reason="ship",
        )
    return prompt, v1, v2, old


def _label(prompt):
    from prompts.models import Label

    return Label.objects.get(prompt=prompt, name="production")


def test_rollback_prompt_label(acme, deployed, open_incident):
    from prompts.models import Deployment

    prompt, v1, v2, _ = deployed
    incident = open_incident(severity="SEV2")
    services.incident_rollback_prompt(
        actor=acme.actor("maint1"),
        incident=incident,
        prompt=prompt,
        label="production",
        reason="bad v2",
    )
    assert _label(prompt).version == v1
    deployment = Deployment.objects.filter(prompt=prompt).order_by("-id").first()
    assert deployment.is_rollback and incident.ref in deployment.reason
    assert incident.timeline.filter(kind="action", body__contains="from v2 to v1").exists()
    refs = set(Evidence.objects.filter(incident=incident).values_list("label", flat=True))
    assert {"Prompt support-reply v1", "Prompt support-reply v2"} <= refs
    assert AuditEvent.objects.filter(action="incident.quick_action").exists()


def test_rollback_to_suspended_model_needs_admin_break_glass(acme, deployed, open_incident):
    from llmops.catalog.services import model_transition

    prompt, v1, v2, old = deployed
    model_transition(actor=acme.actor("admin"), model=old, to="suspended", reason="incident")
    incident = open_incident(severity="SEV1")
    with pytest.raises(PolicyViolation):
        services.incident_rollback_prompt(
            actor=acme.actor("maint1"),
            incident=incident,
            prompt=prompt,
            label="production",
            reason="r",
        )
    with pytest.raises(NotPermitted):
        services.incident_rollback_prompt(
            actor=acme.actor("maint1"),
            incident=incident,
            prompt=prompt,
            label="production",
            reason="r",
            break_glass_reason="please",
        )
    assert _label(prompt).version == v2
    assert not incident.timeline.filter(kind="action").exists()
    services.incident_rollback_prompt(
        actor=acme.actor("admin"),
        incident=incident,
        prompt=prompt,
        label="production",
        reason="v2 leaks data",
        break_glass_reason="v1's model is suspended but v2 is worse",
    )
    assert _label(prompt).version == v1
    assert incident.timeline.filter(body__contains="Break-glass").exists()


def test_rollback_without_earlier_version(acme, open_incident):
    from prompts.services import label_deploy

    make_model(acme, OLD_MODEL)
    prompt = make_prompt(acme)
    v1 = approved_version(acme, prompt, model=OLD_MODEL)
    label_deploy(
        actor=acme.actor("maint1"), prompt=prompt, label="production", version=v1, reason="x"
    )
    with pytest.raises(PolicyViolation) as exc:
        services.incident_rollback_prompt(
            actor=acme.actor("maint1"),
            incident=open_incident(),
            prompt=prompt,
            label="production",
            reason="r",
        )
    assert exc.value.details["rule"] == "no_previous_version"


def test_suspend_model(acme, open_incident):
    model = make_model(acme, OLD_MODEL)
    incident = open_incident(severity="SEV2", category="drift")
    with pytest.raises(NotPermitted):
        services.incident_suspend_model(
            actor=acme.actor("maint1"), incident=incident, model=model, reason="drift"
        )
    model.refresh_from_db()
    assert model.status == "approved"
    services.incident_suspend_model(
        actor=acme.actor("admin"), incident=incident, model=model, reason="drift after update"
    )
    model.refresh_from_db()
    assert model.status == "suspended"
    assert incident.timeline.filter(kind="action", body__contains="suspended model").exists()


def test_rollback_from_the_page(acme, deployed, login, open_incident):
    prompt, v1, _, _ = deployed
    incident = open_incident(severity="SEV2")
    client = login(acme.users["maint1"])
    d = reverse("incidents:detail", kwargs={"org_slug": "acme", "number": incident.number})
    page = client.get(d).content.decode()
    assert "support-reply@production" in page
    client.post(d, {"op": "rollback", "label": _label(prompt).pk, "reason": "from page"})
    assert _label(prompt).version == v1


def _reviewed_item(acme):
    from llmops.traces.models import Generation
    from reviews.models import Assignment, QueueItem, Review, ReviewQueue

    now = timezone.now()
    generation = Generation.objects.create(
        organization=acme.org,
        external_id="gen-42",
        created_at=now,
        ingested_at=now,
        model_id=OLD_MODEL,
        prompt_name="support-reply",
        prompt_version=2,
        input={"q": "Can I get a refund after 90 days?"},
        output="Yes, refunds are available for 365 days.",
    )
    queue = ReviewQueue.objects.create(organization=acme.org, name="Support answers")
    item = QueueItem.objects.create(organization=acme.org, queue=queue, generation=generation)
    assignment = Assignment.objects.create(
        organization=acme.org,
        queue=queue,
        item=item,
        reviewer=acme.users["admin"],
        state="submitted",
        claimed_at=now,
        lease_expires_at=now,
    )
    review = Review.objects.create(
        organization=acme.org,
        queue=queue,
        item=item,
        assignment=assignment,
        reviewer=acme.users["admin"],
        answers={"accurate": False},
        comment="Invented policy",
    )
    return item, review, generation


def test_escalate_from_review(acme, login):
    item, review, generation = _reviewed_item(acme)
    client = login(acme.users["admin"])
    u = reverse("incidents:from_review", kwargs={"org_slug": "acme", "item_id": item.pk})
    page = client.get(u)
    assert page.status_code == 200 and b"gen-42" in page.content
    assert b"Invented policy" in page.content
    response = client.post(u, {"title": "Refund policy invented", "category": "hallucination"})
    assert response.status_code == 302
    incident = Incident.objects.get(organization=acme.org)
    assert incident.source == "review"
    kinds = set(incident.evidence.values_list("kind", flat=True))
    assert kinds == {"generation", "review"}
    snap = incident.evidence.get(kind="generation")
    assert snap.url == f"/o/acme/generations/{generation.pk}/"
    assert incident.evidence.get(kind="review").url == (
        f"/o/acme/reviews/{item.queue_id}/items/{item.pk}/"
    )
    assert snap.snapshot["output"].startswith("Yes, refunds") and len(snap.snapshot_hash) == 64
    generation.refresh_from_db()
    assert generation.pinned  # retention keeps it
    # Even if the generation goes, the snapshot stays.
    generation.delete()
    assert Evidence.objects.get(pk=snap.pk).snapshot["external_id"] == "gen-42"


def test_escalate_from_review_of_invisible_queue_is_404(acme, login):
    item, _, _ = _reviewed_item(acme)
    client = login(acme.users["reviewer2"])  # no grant on the queue
    u = reverse("incidents:from_review", kwargs={"org_slug": "acme", "item_id": item.pk})
    assert client.get(u).status_code == 404


def test_quick_actions_refused_on_ended_incident(acme, open_incident):
    model = make_model(acme, OLD_MODEL)
    incident = open_incident()
    services.incident_transition(actor=acme.actor("maint1"), incident=incident, to="cancelled")
    with pytest.raises(PolicyViolation) as exc:
        services.incident_suspend_model(
            actor=acme.actor("admin"), incident=incident, model=model, reason="late"
        )
    assert exc.value.details["rule"] == "incident_ended"
    model.refresh_from_db()
    assert model.status == "approved"
