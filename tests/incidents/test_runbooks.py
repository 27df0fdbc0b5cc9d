"""Runbooks: immutable versions, stale flag, attachment by condition, re-evaluation when
category or severity changes (ticked checklists are kept)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import services
from incidents.models import ChecklistRun, Runbook
from llmops.common.errors import InvalidInput, NotPermitted, PolicyViolation

pytestmark = pytest.mark.django_db


def _titles(incident):
    return sorted(
        ChecklistRun.objects.filter(incident=incident).values_list(
            "runbook_version__title", flat=True
        )
    )


def test_versions_are_immutable_and_numbered(acme, runbook):
    v1 = runbook()
    v2 = services.runbook_version_create(
        actor=acme.actor("maint1"),
        runbook=v1.runbook,
        title="Hallucination response",
        steps="Confirm | commander\nRoll back | maintainer | rollback_prompt",
        change_note="add roles",
    )
    assert (v1.number, v2.number) == (1, 2)
    assert v2.steps[1] == {"text": "Roll back", "role": "maintainer", "action": "rollback_prompt"}
    v1.title = "changed"
    with pytest.raises(ValueError):
        v1.save()


def test_runbook_permissions_and_bad_input(acme, runbook):
    with pytest.raises(NotPermitted):
        runbook(who="reviewer1")
    with pytest.raises(InvalidInput):
        runbook(category="alien")
    with pytest.raises(InvalidInput):
        runbook(min_severity="pending")
    with pytest.raises(InvalidInput):
        runbook(steps=[{"text": ""}])
    assert not Runbook.objects.exists()


def test_stale_after_180_days_unreviewed(acme, runbook):
    rb = runbook().runbook
    assert not rb.is_stale
    Runbook.objects.filter(pk=rb.pk).update(reviewed_at=timezone.now() - timedelta(days=181))
    rb.refresh_from_db()
    assert rb.is_stale
    services.runbook_mark_reviewed(actor=acme.actor("maint1"), runbook=rb)
    rb.refresh_from_db()
    assert not rb.is_stale


def test_attaches_by_category_and_min_severity(acme, runbook, open_incident):
    runbook(title="Any hallucination", category="hallucination")
    runbook(title="Severe anything", min_severity="SEV2")
    runbook(title="Injection", category="prompt_injection")
    incident = open_incident(category="hallucination")  # pending severity
    assert _titles(incident) == ["Any hallucination"]
    step_count = ChecklistRun.objects.get(incident=incident).steps.count()
    assert step_count == 2


def test_severity_change_attaches_and_detaches(acme, runbook, open_incident):
    runbook(title="Severe anything", min_severity="SEV2")
    incident = open_incident(category="outage", severity="SEV3")
    assert _titles(incident) == []
    m = acme.actor("maint1")
    services.incident_update(actor=m, incident=incident, severity="SEV1")
    assert _titles(incident) == ["Severe anything"]
    assert incident.timeline.filter(kind="checklist", body__contains="attached").exists()
    services.incident_update(actor=m, incident=incident, severity="SEV4")
    assert _titles(incident) == []
    assert incident.timeline.filter(kind="checklist", body__contains="detached").exists()


def test_ticked_checklist_is_kept_when_conditions_stop_matching(acme, runbook, open_incident):
    runbook(title="Hallucination", category="hallucination")
    m = acme.actor("maint1")
    incident = open_incident(category="hallucination", severity="SEV3")
    run = ChecklistRun.objects.get(incident=incident)
    step = run.steps.first()
    services.checklist_step_set(actor=m, step=step, done=True)
    step.refresh_from_db()
    assert step.done and step.done_by == acme.users["maint1"] and step.done_at
    services.incident_update(actor=m, incident=incident, category="outage")
    run.refresh_from_db()
    assert run.unmatched_at is not None
    services.incident_update(actor=m, incident=incident, category="hallucination")
    run.refresh_from_db()
    assert run.unmatched_at is None
    assert incident.timeline.filter(kind="checklist", body__startswith="Ticked").exists()


def test_new_version_does_not_change_attached_checklist(acme, runbook, open_incident):
    v1 = runbook(title="Hallucination", category="hallucination")
    incident = open_incident(category="hallucination")
    services.runbook_version_create(
        actor=acme.actor("maint1"),
        runbook=v1.runbook,
        title="Hallucination v2",
        category="hallucination",
        steps=["only one"],
    )
    run = ChecklistRun.objects.get(incident=incident)
    assert run.runbook_version_id == v1.pk and run.steps.count() == 2
    later = open_incident(category="hallucination")
    assert ChecklistRun.objects.get(incident=later).steps.count() == 1


def test_archived_runbooks_do_not_attach(acme, runbook, open_incident):
    v = runbook(category="hallucination")
    services.runbook_set_archived(actor=acme.actor("maint1"), runbook=v.runbook, archived=True)
    assert _titles(open_incident()) == []


def test_model_condition_attaches_when_model_is_evidence(acme, runbook, open_incident):
    from llmops.catalog.models import ModelVersion

    model = ModelVersion.objects.create(
        organization=acme.org, provider="openai", model_id="gpt-4o-2024-08-06", status="approved"
    )
    runbook(title="GPT-4o", model_id="gpt-4o-2024-08-06")
    incident = open_incident(category="drift")
    assert _titles(incident) == []
    evidence = services.evidence_link(
        actor=acme.actor("maint1"), incident=incident, kind="model_version", obj=model
    )
    assert len(evidence.snapshot_hash) == 64
    assert evidence.snapshot["model_id"] == "gpt-4o-2024-08-06"
    assert _titles(incident) == ["GPT-4o"]


def test_checklist_closed_after_incident_ends(acme, runbook, open_incident):
    runbook(category="hallucination")
    incident = open_incident()
    services.incident_transition(actor=acme.actor("maint1"), incident=incident, to="cancelled")
    step = ChecklistRun.objects.get(incident=incident).steps.first()
    with pytest.raises(PolicyViolation):
        services.checklist_step_set(actor=acme.actor("maint1"), step=step, done=True)


def test_percentiles():
    from incidents.selectors import median, percentile

    assert median([]) is None and percentile([], 90) is None
    assert median([5, 1, 3]) == 3 and median([1, 2, 3, 4]) == 2.5
    values = list(range(1, 11))
    assert percentile(values, 90) == 9 and percentile(values, 100) == 10
    assert percentile([7], 90) == 7
