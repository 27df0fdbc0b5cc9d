"""The catalog journey in a real browser: an admin opens a proposed model, sees its eval
evidence and approves it; the proposer cannot (a maintainer sees no decision form, and an
admin who proposed a model is stopped by the four-eyes rule)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from llmops.catalog import services
from llmops.catalog.models import ModelVersion
from llmops.evals.services import run_create

pytestmark = pytest.mark.browser


def test_admin_approves_proposed_model_with_evidence_proposer_cannot(
    e2e_world, page, login_as, shot
):
    acme = e2e_world["acme"]
    maint = acme.actor("maint1")
    model = services.model_propose(
        actor=maint,
        provider="anthropic",
        model_id="claude-sonnet-4-5-20250929",
        display_name="Claude Sonnet 4.5",
        input_price_per_mtok="3",
        output_price_per_mtok="15",
    )
    run = run_create(
        actor=maint,
        tool="promptfoo",
        model_id=model.model_id,
        results=[
            {"passed": True, "input": {"q": f"question {i}"}, "output": "ok"} for i in range(10)
        ],
        commit="4f2a9c1",
    )
    services.model_attach_evidence(actor=maint, model=model, run=run)
    own = services.model_propose(
        actor=acme.actor("admin"), provider="openai", model_id="gpt-4o-2024-08-06"
    )

    # The proposer (a maintainer) sees the model but no decision form.
    login_as("acme-maint1")
    page.goto(f"/o/acme/models/{model.pk}/")
    expect(page.get_by_test_id("model-status")).to_have_text("Proposed")
    expect(page.get_by_test_id(f"evidence-run-{run.pk}")).to_be_visible()
    expect(page.get_by_test_id("decision-form")).to_have_count(0)
    shot("proposer-view")

    # The admin opens the proposed model from the list, sees the evidence, approves.
    login_as("acme-admin")
    page.goto("/o/acme/models/")
    shot("model-list")
    page.get_by_test_id("model-claude-sonnet-4-5-20250929").get_by_role(
        "link", name="claude-sonnet-4-5-20250929"
    ).click()
    expect(page).to_have_url(re.compile(rf"/o/acme/models/{model.pk}/$"))
    evidence = page.get_by_test_id(f"evidence-run-{run.pk}")
    expect(evidence).to_contain_text("passes")
    expect(evidence).to_contain_text("100%")
    shot("model-detail-proposed")
    page.fill("#decision-comment", "Evals pass on the support set.")
    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("model-status")).to_have_text("Approved")
    expect(page.get_by_test_id("decision-history")).to_contain_text(
        "Evals pass on the support set."
    )
    shot("model-approved")
    assert ModelVersion.objects.get(pk=model.pk).status == "approved"

    # An admin who proposed a model cannot approve it: four eyes.
    page.goto(f"/o/acme/models/{own.pk}/")
    page.get_by_test_id("approve").click()
    expect(page.locator(".flash-error")).to_contain_text("Four eyes")
    expect(page.get_by_test_id("model-status")).to_have_text("Proposed")
    shot("own-proposal-refused")
    assert ModelVersion.objects.get(pk=own.pk).status == "proposed"


def test_evals_pages_runs_compare_and_dataset_import(e2e_world, page, login_as, shot):
    from llmops.evals import services as evals

    acme = e2e_world["acme"]
    maint = acme.actor("maint1")
    dataset = evals.dataset_create(actor=maint, name="Support golden set", tags=["support"])
    cases = evals.cases_bulk_create(
        actor=maint,
        dataset=dataset,
        cases=[
            {"input": {"question": f"Question {i}?"}, "expected": f"Answer {i}"} for i in range(4)
        ],
    )
    before = evals.run_create(
        actor=maint,
        tool="promptfoo",
        dataset=dataset,
        model_id="gpt-4o-2024-08-06",
        results=[{"case": c.pk, "passed": True, "output": "fine"} for c in cases],
    )
    after = evals.run_create(
        actor=maint,
        tool="promptfoo",
        dataset=dataset,
        model_id="gpt-4o-2024-08-06",
        results=[
            {
                "case": c.pk,
                "passed": i != 2,
                "output": "<img src=x onerror=alert(1)>",
                "reason": "too vague" if i == 2 else "",
            }
            for i, c in enumerate(cases)
        ],
    )
    login_as("acme-maint1")
    page.goto("/o/acme/evals/")
    expect(page.get_by_test_id(f"run-{after.pk}")).to_contain_text("fails")
    shot("runs")
    page.get_by_role("link", name=f"Run {after.pk}").click()
    expect(page.get_by_test_id("verdict")).to_contain_text("fails")
    expect(page.get_by_test_id("checks")).to_contain_text("pass_rate = 0.75 fails >= 0.9")
    shot("run-detail")
    page.select_option("#outcome-filter", "failed")
    expect(page.get_by_test_id("results")).to_contain_text("too vague")
    shot("run-detail-failed-only")

    page.goto(f"/o/acme/evals/compare/?a={before.pk}&b={after.pk}")
    expect(page.get_by_test_id("flipped-to-fail")).to_contain_text("Question 2?")
    shot("compare")

    page.goto(f"/o/acme/evals/datasets/{dataset.pk}/")
    page.fill(
        "#id_text",
        '{"input": {"question": "Refund after 31 days?"}, "criteria": "declines politely"}',
    )
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".flash-success")).to_contain_text("Imported 1 case")
    expect(page.get_by_test_id("case-table")).to_contain_text("Refund after 31 days?")
    shot("dataset-detail")
