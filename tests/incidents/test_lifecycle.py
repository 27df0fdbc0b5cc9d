"""Lifecycle and guards: order, the rules that block (409 naming the rule), chronology,
append-only timeline, numbering per organization, audit and notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import services
from incidents.models import Incident, TimelineEntry
from llmops.audit.models import AuditEvent
from llmops.common.errors import (
    InvalidInput,
    InvalidTransition,
    NotPermitted,
    PolicyViolation,
)
from llmops.notify.models import Notification

pytestmark = pytest.mark.django_db


def _eval_case(acme, incident, who="maint1"):
    from llmops.evals.services import dataset_create

    dataset = dataset_create(actor=acme.actor("admin"), name=f"regressions-{incident.number}")
    return services.incident_add_eval_case(
        actor=acme.actor(who), incident=incident, dataset=dataset, input={"q": "refund?"}
    )


def test_numbers_are_sequential_per_organization(acme, globex, open_incident):
    a1 = open_incident()
    a2 = open_incident()
    g1 = services.incident_open(actor=globex.actor("maint1"), title="x", category="other")
    assert (a1.number, a2.number, g1.number) == (1, 2, 1)
    assert a2.ref == "INC-2"


def test_full_lifecycle_sets_chronological_timestamps(acme, open_incident):
    m = acme.actor("maint1")
    incident = open_incident(severity="SEV3", category="outage")
    assert incident.status == "triage"
    services.incident_transition(actor=m, incident=incident, to="investigating")
    services.incident_transition(actor=m, incident=incident, to="mitigated", note="Failover")
    services.incident_transition(actor=m, incident=incident, to="resolved")
    services.incident_transition(actor=m, incident=incident, to="closed")
    incident.refresh_from_db()
    assert incident.status == "closed"
    stamps = [
        incident.detected_at,
        incident.acknowledged_at,
        incident.mitigated_at,
        incident.resolved_at,
        incident.closed_at,
    ]
    assert all(stamps) and stamps == sorted(stamps)
    assert incident.mitigation_note == "Failover"
    kinds = list(incident.timeline.values_list("kind", flat=True))
    assert kinds.count("status") == 4 and kinds[0] == "opened"
    assert (
        AuditEvent.objects.filter(organization=acme.org, action="incident.transition").count() == 4
    )


def test_out_of_order_transition_is_409_naming_allowed(acme, open_incident):
    incident = open_incident(severity="SEV3")
    with pytest.raises(InvalidTransition) as exc:
        services.incident_transition(actor=acme.actor("maint1"), incident=incident, to="resolved")
    assert "Allowed: investigating, cancelled, duplicate" in exc.value.message
    assert exc.value.status == 409
    incident.refresh_from_db()
    assert incident.status == "triage"


def test_unknown_status_is_400(acme, open_incident):
    incident = open_incident(severity="SEV3")
    with pytest.raises(InvalidInput):
        services.incident_transition(actor=acme.actor("maint1"), incident=incident, to="done")


def test_pending_severity_must_be_set_before_investigating(acme, open_incident):
    incident = open_incident()
    assert incident.severity == "pending"
    with pytest.raises(PolicyViolation) as exc:
        services.incident_transition(
            actor=acme.actor("maint1"), incident=incident, to="investigating"
        )
    assert exc.value.details["rule"] == "severity_required"
    services.incident_transition(
        actor=acme.actor("maint1"), incident=incident, to="investigating", severity="SEV2"
    )
    incident.refresh_from_db()
    assert (incident.status, incident.severity) == ("investigating", "SEV2")


def test_mitigated_needs_a_note(acme, open_incident):
    m = acme.actor("maint1")
    incident = open_incident(severity="SEV3", category="outage")
    services.incident_transition(actor=m, incident=incident, to="investigating")
    with pytest.raises(PolicyViolation) as exc:
        services.incident_transition(actor=m, incident=incident, to="mitigated", note="  ")
    assert exc.value.details["rule"] == "mitigation_note_required"
    assert "mitigation_note_required" in exc.value.message


@pytest.mark.parametrize("category", ["hallucination", "harmful_output"])
def test_resolve_needs_an_eval_case_for_hallucination_and_harm(acme, open_incident, category):
    m = acme.actor("maint1")
    incident = open_incident(severity="SEV3", category=category)
    services.incident_transition(actor=m, incident=incident, to="investigating")
    services.incident_transition(actor=m, incident=incident, to="mitigated", note="Rolled back")
    with pytest.raises(PolicyViolation) as exc:
        services.incident_transition(actor=m, incident=incident, to="resolved")
    assert exc.value.details["rule"] == "eval_case_required"
    link = _eval_case(acme, incident)
    from llmops.evals.models import EvalCase

    case = EvalCase.objects.get(pk=link.eval_case_id)
    assert (case.source_kind, case.source_label) == ("incident", incident.ref)
    assert case.source_link == f"/o/acme/incidents/{incident.number}/"
    services.incident_transition(actor=m, incident=incident, to="resolved")


def test_other_categories_resolve_without_eval_case(acme, open_incident):
    m = acme.actor("maint1")
    incident = open_incident(severity="SEV3", category="cost_spike")
    services.incident_transition(actor=m, incident=incident, to="investigating")
    services.incident_transition(actor=m, incident=incident, to="mitigated", note="Rate limit")
    services.incident_transition(actor=m, incident=incident, to="resolved")


@pytest.mark.parametrize("severity", ["SEV1", "SEV2"])
def test_severe_incidents_close_with_postmortem_and_owned_action_items(
    acme, open_incident, severity
):
    m = acme.actor("maint1")
    incident = open_incident(severity=severity, category="outage")
    for to, note in (("investigating", ""), ("mitigated", "Failover"), ("resolved", "")):
        services.incident_transition(actor=m, incident=incident, to=to, note=note)
    with pytest.raises(PolicyViolation) as exc:
        services.incident_transition(actor=m, incident=incident, to="closed")
    assert exc.value.details["rule"] == "postmortem_required"
    # The untouched template is not a postmortem.
    services.postmortem_save(actor=m, incident=incident, body=services.postmortem_template())
    with pytest.raises(PolicyViolation):
        services.incident_transition(actor=m, incident=incident, to="closed")
    services.postmortem_save(actor=m, incident=incident, body="## Root cause\nVendor outage.")
    item = services.action_item_create(actor=m, incident=incident, title="Add second vendor")
    with pytest.raises(PolicyViolation) as exc:
        services.incident_transition(actor=m, incident=incident, to="closed")
    assert exc.value.details["rule"] == "action_item_owner_required"
    services.action_item_update(actor=m, item=item, owner=acme.users["maint2"])
    services.incident_transition(actor=m, incident=incident, to="closed")
    incident.refresh_from_db()
    assert incident.status == "closed"


def test_sev3_closes_without_postmortem(acme, open_incident):
    m = acme.actor("maint1")
    incident = open_incident(severity="SEV3", category="outage")
    for to, note in (("investigating", ""), ("mitigated", "x"), ("resolved", ""), ("closed", "")):
        services.incident_transition(actor=m, incident=incident, to=to, note=note)


def test_backdated_timestamp_must_be_chronological(acme, open_incident):
    m = acme.actor("maint1")
    now = timezone.now()
    incident = open_incident(severity="SEV3", detected_at=now - timedelta(hours=3))
    with pytest.raises(InvalidInput) as exc:
        services.incident_transition(
            actor=m, incident=incident, to="investigating", at=now - timedelta(hours=4)
        )
    assert "chronological" in exc.value.message
    services.incident_transition(
        actor=m, incident=incident, to="investigating", at=(now - timedelta(hours=2)).isoformat()
    )
    with pytest.raises(InvalidInput):
        services.incident_transition(
            actor=m,
            incident=incident,
            to="mitigated",
            note="x",
            at=now - timedelta(hours=2, minutes=5),
        )
    with pytest.raises(InvalidInput) as exc:
        services.incident_transition(
            actor=m, incident=incident, to="mitigated", note="x", at=now + timedelta(days=1)
        )
    assert "future" in exc.value.message
    with pytest.raises(InvalidInput):
        services.incident_transition(
            actor=m, incident=incident, to="mitigated", note="x", at="yesterday"
        )
    incident.refresh_from_db()
    assert incident.status == "investigating" and incident.mitigated_at is None


def test_detected_in_future_is_refused(acme, open_incident):
    with pytest.raises(InvalidInput):
        open_incident(detected_at=timezone.now() + timedelta(days=2))


def test_duplicate_needs_another_incident_of_same_org(acme, globex, open_incident):
    m = acme.actor("maint1")
    original = open_incident()
    dup = open_incident()
    other = services.incident_open(actor=globex.actor("maint1"), title="g", category="other")
    with pytest.raises(InvalidInput):
        services.incident_transition(actor=m, incident=dup, to="duplicate")
    with pytest.raises(InvalidInput):
        services.incident_transition(actor=m, incident=dup, to="duplicate", duplicate_of=dup.number)
    with pytest.raises(InvalidInput):
        services.incident_transition(actor=m, incident=dup, to="duplicate", duplicate_of=99)
    assert other.number == 1  # exists in globex only; acme's 1 is `original`
    services.incident_transition(
        actor=m, incident=dup, to="duplicate", duplicate_of=original.number
    )
    dup.refresh_from_db()
    assert dup.duplicate_of == original and dup.closed_at is not None
    with pytest.raises(InvalidTransition):
        services.incident_transition(actor=m, incident=dup, to="investigating")


def test_cancel_as_false_alarm(acme, open_incident):
    incident = open_incident()
    services.incident_transition(actor=acme.actor("maint1"), incident=incident, to="cancelled")
    incident.refresh_from_db()
    assert incident.status == "cancelled"


def test_reopen_from_mitigated_clears_later_milestones(acme, open_incident):
    m = acme.actor("maint1")
    incident = open_incident(severity="SEV3", category="outage")
    services.incident_transition(actor=m, incident=incident, to="investigating")
    services.incident_transition(actor=m, incident=incident, to="mitigated", note="x")
    services.incident_transition(actor=m, incident=incident, to="investigating", note="Back")
    incident.refresh_from_db()
    assert incident.mitigated_at is None and incident.acknowledged_at is not None


def test_roles(acme, open_incident):
    incident = open_incident(who="reviewer1", severity="SEV3")
    assert incident.reporter == acme.users["reviewer1"]
    with pytest.raises(NotPermitted):
        services.incident_transition(
            actor=acme.actor("reviewer1"), incident=incident, to="investigating"
        )
    with pytest.raises(NotPermitted):
        open_incident(who="viewer")
    services.incident_note(actor=acme.actor("reviewer1"), incident=incident, note="Seen again")


def test_another_orgs_incident_is_not_found(acme, globex, open_incident):
    from llmops.common.errors import NotFound

    incident = open_incident(severity="SEV3")
    with pytest.raises(NotFound):
        services.incident_transition(
            actor=globex.actor("admin"), incident=incident, to="investigating"
        )


def test_timeline_is_append_only(acme, open_incident):
    incident = open_incident()
    entry = services.incident_note(actor=acme.actor("maint1"), incident=incident, note="hello")
    entry.body = "rewritten"
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()
    assert TimelineEntry.objects.get(pk=entry.pk).body == "hello"


def test_unknown_category_and_severity(acme, open_incident):
    with pytest.raises(InvalidInput) as exc:
        open_incident(category="alien")
    assert "hallucination" in exc.value.message
    with pytest.raises(InvalidInput):
        open_incident(severity="SEV9")
    assert not Incident.objects.exists()


def test_commander_and_notifications(acme, open_incident):
    incident = open_incident(severity="SEV2")
    # Opening notifies the admins.
    assert Notification.objects.filter(
        organization=acme.org, kind="incident.opened", recipient=acme.users["admin"]
    ).exists()
    services.incident_set_commander(
        actor=acme.actor("maint2"), incident=incident, user=acme.users["maint2"]
    )
    incident.refresh_from_db()
    assert incident.commander == acme.users["maint2"]
    assert incident.timeline.filter(kind="command", body__contains="took command").exists()
    with pytest.raises(InvalidInput):
        services.incident_set_commander(
            actor=acme.actor("maint2"), incident=incident, user=acme.users["viewer"]
        )
    services.incident_update(actor=acme.actor("maint2"), incident=incident, severity="SEV1")
    assert Notification.objects.filter(
        kind="incident.severity", recipient=acme.users["maint2"]
    ).exists()
    services.incident_transition(actor=acme.actor("maint2"), incident=incident, to="investigating")
    assert Notification.objects.filter(
        kind="incident.status", recipient=acme.users["maint2"]
    ).exists()


def test_serious_incident_clock(acme, open_incident):
    incident = open_incident(severity="SEV1")
    aware = timezone.now() - timedelta(hours=1)
    services.incident_mark_serious(
        actor=acme.actor("maint1"), incident=incident, kind="death", aware_at=aware
    )
    incident.refresh_from_db()
    assert incident.report_due_at == aware + timedelta(days=10)
    services.incident_mark_serious(
        actor=acme.actor("maint1"), incident=incident, kind="widespread", aware_at=aware
    )
    incident.refresh_from_db()
    assert incident.report_due_at == aware + timedelta(days=2)
    with pytest.raises(InvalidInput):
        services.incident_mark_serious(
            actor=acme.actor("maint1"),
            incident=incident,
            kind="other",
            aware_at=aware,
            initial_report_at=aware - timedelta(hours=1),
        )


def test_overdue_action_items_notify_once(acme, open_incident):
    incident = open_incident(severity="SEV3")
    m = acme.actor("maint1")
    yesterday = timezone.localdate() - timedelta(days=1)
    services.action_item_create(
        actor=m, incident=incident, title="Fix it", owner=acme.users["maint2"], due=yesterday
    )
    services.action_item_create(actor=m, incident=incident, title="Nobody's", due=yesterday)
    services.action_item_create(actor=m, incident=incident, title="Later", due=timezone.localdate())
    assert services.action_items_notify_overdue(org=acme.org) == 2
    assert services.action_items_notify_overdue(org=acme.org) == 0
    assert Notification.objects.filter(
        kind="incident.action_item_overdue", recipient=acme.users["maint2"]
    ).exists()
    assert Notification.objects.filter(
        kind="incident.action_item_overdue", recipient=acme.users["admin"]
    ).exists()


def test_beat_task_is_scheduled_and_runs(acme, open_incident):
    from django.conf import settings

    from incidents.tasks import notify_overdue_action_items

    entry = settings.CELERY_BEAT_SCHEDULE["incidents-overdue-action-items"]
    assert entry["task"] == notify_overdue_action_items.name
    incident = open_incident(severity="SEV3")
    services.action_item_create(
        actor=acme.actor("maint1"),
        incident=incident,
        title="Late",
        due=timezone.localdate() - timedelta(days=3),
    )
    assert notify_overdue_action_items.delay().get() == 1
