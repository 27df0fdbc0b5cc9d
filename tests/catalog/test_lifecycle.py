"""Catalog lifecycle: propose, decide (four eyes, eval gate, floating), transitions,
break-glass, evidence, the one resolver behind list and check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from llmops.audit.models import AuditEvent
from llmops.catalog import selectors, services
from llmops.catalog.models import ModelDecision, ModelVersion
from llmops.common.errors import (
    InvalidInput,
    InvalidTransition,
    NotPermitted,
    PolicyViolation,
)
from llmops.evals.services import run_create
from llmops.tenancy.actor import Actor

pytestmark = pytest.mark.django_db


def propose(world, who="maint1", model_id="claude-sonnet-4-5-20250929", **extra):
    fields = {"provider": "anthropic", "model_id": model_id, **extra}
    return services.model_propose(actor=world.actor(who), **fields)


def evidence(world, model, pass_rate_cases=(True, True, True)):
    run = run_create(
        actor=world.actor("maint1"),
        tool="custom",
        results=[{"passed": p} for p in pass_rate_cases],
        model_id=model.model_id,
    )
    return services.model_attach_evidence(actor=world.actor("maint1"), model=model, run=run)


@pytest.mark.parametrize(
    "model_id,floating",
    [
        ("claude-sonnet-4-5-20250929", False),
        ("gpt-4o-2024-08-06", False),
        ("gemini-1.5-pro-002", False),
        ("text-embedding@001", False),
        ("my-model-v2", False),
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", False),
        ("gpt-4o", True),
        ("claude-sonnet-latest", True),
        ("gpt-4o-2024-08-06-latest", True),
        ("llama-3.1-70b-instruct", True),
    ],
)
def test_floating_rule(model_id, floating):
    assert selectors.is_floating_model_id(model_id) is floating


def test_propose_records_history_and_audit(acme):
    model = propose(acme, input_price_per_mtok="3", output_price_per_mtok=15)
    assert model.status == "proposed" and model.requested_by == acme.users["maint1"]
    assert not model.is_floating
    assert ModelDecision.objects.filter(model_version=model, kind="proposal").count() == 1
    assert AuditEvent.objects.filter(organization=acme.org, action="model.proposed").exists()


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"provider": "nope", "model_id": "x-20250101"}, "provider"),
        ({"provider": "openai", "model_id": ""}, "model_id"),
        (
            {"provider": "openai", "model_id": "a-20250101", "deprecation_date": "31/12/2026"},
            "deprecation_date",
        ),
        (
            {"provider": "openai", "model_id": "a-20250101", "input_price_per_mtok": "cheap"},
            "input_price_per_mtok",
        ),
        (
            {"provider": "openai", "model_id": "a-20250101", "data_classes": ["secret"]},
            "data_classes",
        ),
        (
            {
                "provider": "openai",
                "model_id": "a-20250101",
                "deprecation_date": "2027-01-02",
                "retirement_date": "2027-01-01",
            },
            "retirement_date",
        ),
    ],
)
def test_propose_rejects_bad_input(acme, fields, field):
    with pytest.raises(InvalidInput) as exc:
        services.model_propose(actor=acme.actor("maint1"), **fields)
    assert exc.value.field == field
    assert not ModelVersion.objects.exists()


def test_duplicate_model_id_is_invalid_but_other_org_may_have_it(acme, globex):
    propose(acme)
    with pytest.raises(InvalidInput) as exc:
        propose(acme, who="admin")
    assert exc.value.field == "model_id"
    propose(globex)  # another organization's catalog is its own


def test_viewer_and_reviewer_cannot_propose(acme):
    for who in ("viewer", "reviewer1"):
        with pytest.raises(NotPermitted):
            propose(acme, who=who)


def test_approval_needs_passing_evidence(acme):
    model = propose(acme)
    with pytest.raises(PolicyViolation, match="Eval gate"):
        services.model_decide(actor=acme.actor("admin"), model=model, decision="approve")
    evidence(acme, model, (True, False, False))  # pass_rate 0.33 fails the default policy
    with pytest.raises(PolicyViolation, match="Eval gate"):
        services.model_decide(actor=acme.actor("admin"), model=model, decision="approve")
    ev = evidence(acme, model)
    assert ev.passed and ev.verdict["passed"] is True
    model = services.model_decide(
        actor=acme.actor("admin"), model=model, decision="approve", comment="looks good"
    )
    assert model.status == "approved" and not model.break_glass_used
    row = ModelDecision.objects.get(model_version=model, kind="decision")
    assert row.decision == "approve" and row.actor_label == "acme-admin" and row.evidence
    assert AuditEvent.objects.filter(action="model.approved", target_id=str(model.pk)).exists()


def test_only_admin_decides_never_the_proposer(acme):
    model = propose(acme, who="admin")
    evidence(acme, model)
    with pytest.raises(NotPermitted):
        services.model_decide(actor=acme.actor("maint2"), model=model, decision="approve")
    with pytest.raises(PolicyViolation, match="Four eyes"):
        services.model_decide(actor=acme.actor("admin"), model=model, decision="approve")
    assert ModelVersion.objects.get(pk=model.pk).status == "proposed"


def test_break_glass_marks_audits_and_notifies(acme):
    from llmops.notify.models import Notification

    model = propose(acme, who="admin")
    with pytest.raises(InvalidInput):
        services.model_decide(
            actor=acme.actor("admin"), model=model, decision="approve", break_glass_reason="x"
        )
    reason = "Vendor outage, only model available; evals to follow tomorrow."
    model = services.model_decide(
        actor=acme.actor("admin"), model=model, decision="approve", break_glass_reason=reason
    )
    assert model.status == "approved" and model.break_glass_used
    row = ModelDecision.objects.get(model_version=model, kind="decision")
    assert row.break_glass_reason == reason
    event = AuditEvent.objects.get(action="model.approved", target_id=str(model.pk))
    assert event.details["break_glass"] is True and event.details["break_glass_reason"] == reason
    assert len(event.details["rules_overridden"]) == 2
    notes = Notification.objects.filter(organization=acme.org, kind="model.break_glass")
    assert notes.exists()


def test_floating_ids_need_the_org_setting(acme):
    model = propose(acme, model_id="gpt-4o", provider="openai")
    assert model.is_floating
    evidence(acme, model)
    with pytest.raises(PolicyViolation, match="Floating"):
        services.model_decide(actor=acme.actor("admin"), model=model, decision="approve")
    acme.org.allow_floating_models = True
    acme.org.save()
    actor = Actor(org=acme.org, user=acme.users["admin"], role="admin")
    model = services.model_decide(actor=actor, model=model, decision="approve")
    assert model.status == "approved"


def test_admin_corrects_floating_flag(acme):
    model = propose(acme, model_id="my-finetune", provider="self_hosted")
    assert model.is_floating
    model = services.model_set_floating(
        actor=acme.actor("admin"), model=model, is_floating=False, reason="a pinned snapshot"
    )
    assert not model.is_floating and model.floating_flag_overridden
    evidence(acme, model)
    services.model_decide(actor=acme.actor("admin"), model=model, decision="approve")


def test_lifecycle_transitions(acme):
    model = propose(acme)
    evidence(acme, model)
    admin = acme.actor("admin")
    with pytest.raises(InvalidTransition):
        services.model_transition(actor=admin, model=model, to="suspended", reason="x")
    model = services.model_decide(actor=admin, model=model, decision="approve")
    with pytest.raises(InvalidInput) as exc:
        services.model_transition(actor=admin, model=model, to="suspended", reason=" ")
    assert exc.value.field == "reason"
    model = services.model_transition(actor=admin, model=model, to="suspended", reason="INC-4")
    assert model.status == "suspended"
    assert not selectors.model_check(org=acme.org, model_id=model.model_id).allowed
    with pytest.raises(InvalidTransition, match="lifecycle"):
        services.model_transition(actor=admin, model=model, to="retired", reason="x")
    model = services.model_transition(actor=admin, model=model, to="approved", reason="fixed")
    model = services.model_transition(actor=admin, model=model, to="deprecated", reason="vendor")
    assert model.deprecation_date == timezone.localdate()
    check = selectors.model_check(org=acme.org, model_id=model.model_id)
    assert check.allowed and check.status == "deprecated"
    model = services.model_transition(actor=admin, model=model, to="retired", reason="gone")
    assert not selectors.model_check(org=acme.org, model_id=model.model_id).allowed
    kinds = list(
        ModelDecision.objects.filter(model_version=model, kind="transition").values_list(
            "to_status", flat=True
        )
    )
    assert sorted(kinds) == sorted(["suspended", "approved", "deprecated", "retired"])
    with pytest.raises(NotPermitted):
        services.model_transition(
            actor=acme.actor("maint1"), model=model, to="approved", reason="x"
        )


def test_system_actor_may_suspend(acme):
    model = propose(acme)
    evidence(acme, model)
    services.model_decide(actor=acme.actor("admin"), model=model, decision="approve")
    model = services.model_transition(
        actor=Actor.system_for(acme.org), model=model, to="suspended", reason="INC-9 drift"
    )
    assert model.status == "suspended"


def test_check_and_list_use_the_same_rule(acme, globex):
    admin = acme.actor("admin")
    ok = propose(acme, model_id="a-20250101")
    evidence(acme, ok)
    services.model_decide(actor=admin, model=ok, decision="approve")
    past = propose(
        acme, model_id="b-20250101", retirement_date=timezone.localdate() - timedelta(days=1)
    )
    evidence(acme, past)
    services.model_decide(actor=admin, model=past, decision="approve")
    propose(acme, model_id="c-20250101")
    listed = set(
        selectors.model_list(org=acme.org, allowed=True).values_list("model_id", flat=True)
    )
    for mid in ("a-20250101", "b-20250101", "c-20250101", "unknown"):
        assert selectors.model_check(org=acme.org, model_id=mid).allowed == (mid in listed)
    assert listed == {"a-20250101"}
    assert not selectors.model_check(org=globex.org, model_id="a-20250101").allowed
    assert "retired on" in selectors.model_check(org=acme.org, model_id="b-20250101").reason


def test_models_by_model_ids_is_one_query(acme, django_assert_num_queries):
    propose(acme, model_id="a-20250101")
    propose(acme, model_id="b-20250101")
    with django_assert_num_queries(1):
        found = selectors.models_by_model_ids(
            org=acme.org, model_ids=["a-20250101", "b-20250101", "zz"]
        )
    assert set(found) == {"a-20250101", "b-20250101"}


def test_deprecation_warnings_at_30_7_0_days_once_each(acme):
    from llmops.notify.models import Notification

    today = timezone.localdate()
    model = propose(acme, deprecation_date=today + timedelta(days=30))
    assert services.deprecation_warnings_send(today=today) == 1
    assert services.deprecation_warnings_send(today=today) == 0  # once per threshold
    assert services.deprecation_warnings_send(today=today + timedelta(days=10)) == 0
    assert services.deprecation_warnings_send(today=today + timedelta(days=23)) == 1  # 7 days
    assert services.deprecation_warnings_send(today=today + timedelta(days=30)) == 1  # the day
    assert services.deprecation_warnings_send(today=today + timedelta(days=31)) == 0
    subjects = list(
        Notification.objects.filter(organization=acme.org, kind="model.deprecation_warning")
        .values_list("subject", flat=True)
        .distinct()
    )
    assert any("in 30 days" in s for s in subjects) and any("today" in s for s in subjects)
    assert model.model_id in subjects[0]


def test_warn_task_runs(acme):
    from llmops.catalog.tasks import warn_deprecations

    propose(acme, retirement_date=timezone.localdate() + timedelta(days=7))
    assert warn_deprecations.delay().get() == 1
