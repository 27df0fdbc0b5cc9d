"""Prompt services: labels and deploys (protected labels, model risk, rollback), git sync and the daily model-risk warning."""

from __future__ import annotations

import pytest

from llmops.audit.models import AuditEvent
from llmops.common.errors import InvalidInput, NotPermitted, PolicyViolation
from llmops.notify.models import Notification
from llmops.tenancy.actor import Actor
from llmops.tenancy.services import api_key_create
from prompts import services
from prompts.models import Deployment, Label, PromptVersion

from .conftest import (
    approve,
    approved_version,
    key_info,
    make_prompt,
    pass_eval,
    prompt_yaml,
    propose,
)

S = PromptVersion.Status


def _audit_count(world):
    return AuditEvent.objects.filter(organization=world.org).count()


# -- prompts and owners -------------------------------------------------------------------


def test_deploy_unapproved_to_production_is_409_and_changes_nothing(acme, prompt):
    v = propose(acme, prompt)
    before = _audit_count(acme)
    with pytest.raises(PolicyViolation) as exc:
        services.label_deploy(
            actor=acme.actor("maint1"), prompt=prompt, label="production", version=v
        )
    assert exc.value.code == "protected_label_unapproved"
    assert "Protected label" in exc.value.message
    assert not Label.objects.filter(prompt=prompt).exists()
    assert not Deployment.objects.exists()
    assert _audit_count(acme) == before


def test_deploy_to_an_unprotected_label_creates_it(acme, prompt):
    v = propose(acme, prompt)
    d = services.label_deploy(
        actor=acme.actor("maint1"), prompt=prompt, label="staging", version=v, reason="try"
    )
    label = Label.objects.get(prompt=prompt, name="staging")
    assert label.version == v and not label.is_protected
    assert d.from_version is None and d.to_version == v and d.reason == "try"
    assert (
        services.label_deploy(actor=acme.actor("maint1"), prompt=prompt, label="staging", version=v)
        is None
    )


def test_deploy_needs_the_grant(acme, prompt, model):
    other = make_prompt(acme, name="solo", owners=("maint1",))
    v = approved_version_by(acme, other)
    with pytest.raises(NotPermitted):
        services.label_deploy(
            actor=acme.actor("maint2"), prompt=other, label="production", version=v
        )


def approved_version_by(world, prompt):
    v = propose(world, prompt)
    pass_eval(world, v)
    approve(world, v, who="admin")
    v.refresh_from_db()
    return v


def test_model_not_allowed_on_protected_label_unless_break_glass(acme, prompt):
    v = approved_version(acme, prompt)
    v.model.status = "suspended"
    v.model.save()
    with pytest.raises(PolicyViolation) as exc:
        services.label_deploy(
            actor=acme.actor("maint1"), prompt=prompt, label="production", version=v
        )
    assert exc.value.code == "protected_label_model" and "suspended" in exc.value.message
    with pytest.raises(NotPermitted):
        services.label_deploy(
            actor=acme.actor("maint1"),
            prompt=prompt,
            label="production",
            version=v,
            break_glass_reason="incident",
        )
    d = services.label_deploy(
        actor=acme.actor("admin"),
        prompt=prompt,
        label="production",
        version=v,
        break_glass_reason="INC-9 rollback",
    )
    assert d.break_glass_reason == "INC-9 rollback"
    assert Notification.objects.filter(kind="prompts.break_glass").exists()


def test_deprecated_model_is_still_deployable(acme, prompt):
    v = approved_version(acme, prompt)
    v.model.status = "deprecated"
    v.model.save()
    assert services.label_deploy(
        actor=acme.actor("maint1"), prompt=prompt, label="production", version=v
    )


def test_machine_key_never_moves_a_protected_label(acme, prompt):
    v = approved_version(acme, prompt)
    row, _ = api_key_create(actor=acme.actor("admin"), name="cd", scopes=["prompts:deploy"])
    machine = Actor(org=acme.org, key=key_info(row))
    with pytest.raises(PolicyViolation) as exc:
        services.label_deploy(actor=machine, prompt=prompt, label="production", version=v)
    assert exc.value.code == "protected_label_machine"
    services.label_set_protected(
        actor=acme.actor("maint1"),
        label=Label.objects.get_or_create(organization=acme.org, prompt=prompt, name="canary")[0],
        protected=True,
    )
    with pytest.raises(PolicyViolation):
        services.label_deploy(actor=machine, prompt=prompt, label="canary", version=v)
    assert services.label_deploy(actor=machine, prompt=prompt, label="staging", version=v)


def test_production_is_always_protected(acme, prompt):
    v = approved_version(acme, prompt)
    services.label_deploy(actor=acme.actor("maint1"), prompt=prompt, label="production", version=v)
    label = Label.objects.get(prompt=prompt, name="production")
    with pytest.raises(PolicyViolation):
        services.label_set_protected(actor=acme.actor("maint1"), label=label, protected=False)


def test_rollback_is_a_deployment_of_an_earlier_version(acme, prompt):
    v1 = approved_version(acme, prompt)
    v2 = approved_version(acme, prompt, template="second {{ x }}")
    actor = acme.actor("maint2")
    services.label_deploy(actor=actor, prompt=prompt, label="production", version=v1)
    services.label_deploy(actor=actor, prompt=prompt, label="production", version=v2)
    back = services.label_deploy(
        actor=actor, prompt=prompt, label="production", version=v1, reason="bad answers"
    )
    assert back.is_rollback and back.from_version == v2 and back.to_version == v1
    assert Label.objects.get(prompt=prompt, name="production").version == v1
    assert Deployment.objects.filter(prompt=prompt).count() == 3
    assert AuditEvent.objects.filter(action="prompt.rolled_back").count() == 1


def test_rejected_versions_never_deploy(acme, prompt):
    v = propose(acme, prompt)
    services.version_review(actor=acme.actor("maint2"), version=v, decision="reject", comment="no")
    with pytest.raises(PolicyViolation):
        services.label_deploy(actor=acme.actor("maint1"), prompt=prompt, label="staging", version=v)


# -- git sync ------------------------------------------------------------------------------


def test_sync_is_idempotent_and_creates_missing_prompts(acme, model):
    files = [
        {"path": "p/a.yaml", "content": prompt_yaml("alpha")},
        {"path": "p/b.yaml", "content": prompt_yaml("beta", template="B {{ x }}")},
    ]
    first = services.prompts_sync(actor=acme.actor("maint1"), files=files, commit="c1")
    assert [r["created"] for r in first] == [True, True]
    assert all(r["prompt_created"] for r in first)
    second = services.prompts_sync(actor=acme.actor("maint1"), files=files, commit="c2")
    assert [r["created"] for r in second] == [False, False]
    assert PromptVersion.objects.filter(organization=acme.org).count() == 2
    files[0]["content"] = prompt_yaml("alpha", template="changed {{ y }}")
    third = services.prompts_sync(actor=acme.actor("maint1"), files=files, commit="c3")
    assert [r["created"] for r in third] == [True, False]
    assert third[0]["number"] == 2


def test_sync_is_all_or_nothing_and_names_the_file(acme, model):
    files = [
        {"path": "ok.yaml", "content": prompt_yaml("fine")},
        {"path": "broken.yaml", "content": prompt_yaml("broken", model="nope-2020-01-01")},
    ]
    with pytest.raises(InvalidInput) as exc:
        services.prompts_sync(actor=acme.actor("maint1"), files=files, commit="c")
    assert "broken.yaml" in exc.value.message
    assert not PromptVersion.objects.filter(organization=acme.org).exists()
    with pytest.raises(InvalidInput) as exc:
        services.prompts_sync(
            actor=acme.actor("maint1"), files=[{"path": "x.yaml", "content": "name: [unclosed"}]
        )
    assert exc.value.field == "x.yaml"


# -- lifecycle warnings --------------------------------------------------------------------


def test_daily_warning_about_risky_models_behind_labels_once(acme, prompt):
    import datetime

    v = approved_version(acme, prompt)
    services.label_deploy(actor=acme.actor("maint1"), prompt=prompt, label="production", version=v)
    assert services.labels_warn_model_risks(org=acme.org) == 0
    v.model.status = "deprecated"
    v.model.retirement_date = datetime.date.today() + datetime.timedelta(days=20)
    v.model.save()
    assert services.labels_warn_model_risks(org=acme.org) == 1
    notes = Notification.objects.filter(kind="prompts.model_warning", channel="inbox")
    assert {n.recipient.username for n in notes} == {"acme-maint1", "acme-maint2"}
    assert "retires in 20 day" in notes.first().subject
    assert services.labels_warn_model_risks(org=acme.org) == 0  # once per reason
    v.model.retirement_date = datetime.date.today() + datetime.timedelta(days=5)
    v.model.save()
    assert services.labels_warn_model_risks(org=acme.org) == 1  # the 7-day warning


def test_beat_task_runs_for_every_org(acme, globex, prompt):
    from prompts.tasks import warn_model_risks

    v = approved_version(acme, prompt)
    services.label_deploy(actor=acme.actor("maint1"), prompt=prompt, label="production", version=v)
    v.model.status = "suspended"
    v.model.save()
    assert warn_model_risks() == 1


# -- input cleaning (llmops.common.clean): a 400 naming the field, never a 500 ----------
