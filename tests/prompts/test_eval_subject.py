"""The eval gate counts only a run recorded for exactly the version: its content hash and its
pinned model. Attaching checks the same facts; the version page lists only matching runs."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.urls import reverse

from llmops.common.errors import InvalidInput, PolicyViolation
from llmops.evals.models import EvalRun
from llmops.evals.services import run_create
from prompts import services
from prompts.models import PromptVersion, PromptVersionEvalRun

from .conftest import MODEL_ID, approve, make_model, make_prompt, pass_eval, propose

OTHER_MODEL = "gpt-4o-2024-08-06"
PASSING = [{"passed": True}, {"passed": True}]


def _version_url(acme, version):
    return reverse(
        "prompts:version",
        kwargs={"org_slug": acme.org.slug, "name": version.prompt.name, "number": version.number},
    )


def test_a_run_recorded_for_a_version_keeps_what_it_judged(acme, prompt):
    v = propose(acme, prompt)
    run, link = pass_eval(acme, v)
    run.refresh_from_db()
    assert run.subject_content_hash == v.content_hash and run.model_id == MODEL_ID
    assert link.passed


def test_attaching_another_prompts_run_is_refused(acme, prompt):
    v = propose(acme, prompt)
    other = make_prompt(acme, name="other-prompt")
    ov = propose(acme, other, template="Something else entirely {{ x }}")
    other_run, _ = pass_eval(acme, ov)
    with pytest.raises(InvalidInput) as exc:
        services.version_attach_eval_run(actor=acme.actor("maint1"), version=v, run_id=other_run.pk)
    assert exc.value.field == "run" and "other prompt content" in exc.value.message
    assert not v.eval_links.exists()
    with pytest.raises(PolicyViolation) as blocked:
        approve(acme, v)
    assert blocked.value.code == "eval_gate"


def test_attaching_a_run_of_another_model_is_refused(acme, prompt):
    v = propose(acme, prompt)
    make_model(acme, model_id=OTHER_MODEL, status="suspended")
    # Same content hash claimed, but another model judged.
    crafted = run_create(
        actor=acme.actor("maint1"),
        tool="custom",
        results=PASSING,
        model_id=OTHER_MODEL,
        subject_content_hash=v.content_hash,
    )
    with pytest.raises(InvalidInput) as exc:
        services.version_attach_eval_run(actor=acme.actor("maint1"), version=v, run_id=crafted.pk)
    assert exc.value.field == "run" and OTHER_MODEL in exc.value.message
    # A run about the model alone (POST /api/v1/eval-runs) judged no prompt version.
    loose = run_create(
        actor=acme.actor("maint1"), tool="custom", results=PASSING, model_id=MODEL_ID
    )
    with pytest.raises(InvalidInput) as exc:
        services.version_attach_eval_run(actor=acme.actor("maint1"), version=v, run_id=loose.pk)
    assert exc.value.field == "run"
    assert not v.eval_links.exists()


def test_recording_a_run_of_another_model_for_a_version_is_400(acme, prompt, api_key, api):
    v = propose(acme, prompt)
    ci = api(api_key(acme, ["evals:write"]))
    url = f"/api/v1/prompts/{prompt.name}/versions/{v.number}/eval-runs"
    r = ci.post(url, {"tool": "custom", "results": PASSING, "model": OTHER_MODEL}, format="json")
    assert r.status_code == 400, r.content
    assert "model" in r.json()["error"]["details"]["fields"]
    assert not EvalRun.objects.for_org(acme.org).exists()
    r = ci.post(url, {"tool": "custom", "results": PASSING, "model": MODEL_ID}, format="json")
    assert r.status_code == 201 and r.json()["model"] == MODEL_ID


def test_a_matching_run_can_be_attached(acme, prompt):
    v = propose(acme, prompt)
    twin_prompt = make_prompt(acme, name="twin")
    twin = propose(acme, twin_prompt)  # identical content and model: the same thing judged
    assert twin.content_hash == v.content_hash
    run, _ = pass_eval(acme, twin)
    link = services.version_attach_eval_run(actor=acme.actor("maint1"), version=v, run_id=run.pk)
    assert link.passed
    approve(acme, v)
    v.refresh_from_db()
    assert v.status == PromptVersion.Status.APPROVED


def test_gate_refuses_a_linked_run_whose_facts_do_not_match(acme, prompt, api_key, api, login):
    v = propose(acme, prompt)
    other = make_prompt(acme, name="other-prompt")
    ov = propose(acme, other, template="Another text {{ y }}")
    foreign, _ = pass_eval(acme, ov)
    legacy = run_create(actor=acme.actor("maint1"), tool="custom", results=PASSING)
    # Links made before the facts were checked (or by hand): passing, but not of this version.
    for run in (foreign, legacy):
        PromptVersionEvalRun.objects.create(
            organization=acme.org, version=v, eval_run=run, passed=True, verdict={}
        )
    with pytest.raises(PolicyViolation) as blocked:
        approve(acme, v)
    assert blocked.value.code == "eval_gate"
    reader = api(api_key(acme, ["prompts:read"]))
    runs = reader.get(f"/api/v1/prompts/{prompt.name}/versions/{v.number}").json()["eval_runs"]
    assert {r["id"]: r["counted"] for r in runs} == {foreign.pk: False, legacy.pk: False}
    page = login(acme.users["maint2"]).get(_version_url(acme, v)).content.decode()
    assert page.count('data-testid="eval-run-not-counted"') == 2
    pass_eval(acme, v)
    runs = reader.get(f"/api/v1/prompts/{prompt.name}/versions/{v.number}").json()["eval_runs"]
    assert sorted(r["counted"] for r in runs) == [False, False, True]
    approve(acme, v)
    v.refresh_from_db()
    assert v.status == PromptVersion.Status.APPROVED


def test_picker_lists_only_matching_runs_and_attach_refuses_others(acme, prompt, login):
    v = propose(acme, prompt)
    twin = propose(acme, make_prompt(acme, name="twin"))
    matching, _ = pass_eval(acme, twin)
    ov = propose(acme, make_prompt(acme, name="other-prompt"), template="Different {{ z }}")
    foreign, _ = pass_eval(acme, ov)
    loose = run_create(
        actor=acme.actor("maint1"), tool="custom", results=PASSING, model_id=MODEL_ID
    )
    c = login(acme.users["maint1"])
    page = c.get(_version_url(acme, v)).content.decode()
    assert f'<option value="{matching.pk}">' in page
    assert f'<option value="{foreign.pk}">' not in page
    assert f'<option value="{loose.pk}">' not in page
    r = c.post(_version_url(acme, v), {"op": "attach", "run": foreign.pk}, follow=True)
    assert r.status_code == 200 and b"other prompt content" in r.content
    assert not v.eval_links.exists()
    c.post(_version_url(acme, v), {"op": "attach", "run": matching.pk})
    assert list(v.eval_links.values_list("eval_run_id", flat=True)) == [matching.pk]
    # Once linked it leaves the picker.
    assert f'<option value="{matching.pk}">' not in c.get(_version_url(acme, v)).content.decode()


def test_backfill_keeps_facts_only_for_runs_recorded_for_their_version(acme, prompt):
    backfill = importlib.import_module("prompts.migrations.0002_backfill_eval_run_subjects")
    v = propose(acme, prompt)
    recorded, _ = pass_eval(acme, v)
    ov = propose(acme, make_prompt(acme, name="other-prompt"), template="Other {{ q }}")
    attached, _ = pass_eval(acme, ov)
    # Simulate data from before the facts existed: blank facts, and the other prompt's run
    # attached to v by someone else later.
    EvalRun.objects.filter(pk__in=[recorded.pk, attached.pk]).update(subject_content_hash="")
    PromptVersionEvalRun.objects.create(
        organization=acme.org,
        version=v,
        eval_run=attached,
        passed=True,
        verdict={},
        attached_by_label="someone else",
    )
    backfill.backfill(apps, None)
    recorded.refresh_from_db()
    attached.refresh_from_db()
    assert recorded.subject_content_hash == v.content_hash
    assert attached.subject_content_hash == ""
