"""The prompt registry in a real browser: maint1 proposes a version and cannot approve it
(four eyes), maint2 approves it, deploys it to production and rolls production back."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from llmops.catalog.models import ModelVersion
from prompts import services
from prompts.models import Label, PromptVersion

MODEL_ID = "claude-sonnet-4-5-20250929"


def _setup(acme):
    """support-reply with v1 approved and in production; maint1 and maint2 own it."""
    ModelVersion.objects.create(
        organization=acme.org, provider="anthropic", model_id=MODEL_ID, status="approved"
    )
    m1, m2 = acme.actor("maint1"), acme.actor("maint2")
    prompt = services.prompt_create(actor=m1, name="support-reply", description="First reply.")
    services.prompt_owner_grant(actor=acme.actor("admin"), prompt=prompt, username="acme-maint2")
    v1, _ = services.version_create(
        actor=m1, prompt=prompt, model=MODEL_ID, template="Hello {{ customer_name }}."
    )
    services.version_record_eval_run(
        actor=m1, version=v1, data={"tool": "custom", "results": [{"passed": True}]}
    )
    services.version_review(actor=m2, version=v1, decision="approve", comment="ok")
    services.label_deploy(actor=m2, prompt=prompt, label="production", version=v1, reason="launch")
    return prompt


def test_propose_four_eyes_approve_deploy_rollback(e2e_world, page, login_as, shot):
    acme = e2e_world["acme"]
    prompt = _setup(acme)
    page.on("dialog", lambda dialog: dialog.accept())  # the data-confirm confirmations

    # maint1 proposes v2 in the browser.
    login_as("acme-maint1")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Prompts").click()
    expect(page).to_have_url(re.compile(r"/o/acme/prompts/$"))
    shot("list")
    page.get_by_role("link", name="support-reply").first.click()
    shot("prompt")
    page.get_by_role("link", name="Propose a version").click()
    page.fill("#id_template", "Hello {{ customer_name }}, thanks for writing about {{ topic }}.")
    expect(page.locator("[data-variables-preview]")).to_have_text("customer_name, topic")
    page.fill("#id_message", "Mention the topic.")
    shot("propose")
    page.get_by_role("button", name="Propose").click()
    expect(page).to_have_url(re.compile(r"/o/acme/prompts/support-reply/v/2/$"))
    expect(page.get_by_test_id("version-status")).to_have_text("In review")
    shot("version-in-review")

    # CI uploads a passing eval run of v2.
    v2 = PromptVersion.objects.get(prompt=prompt, number=2)
    services.version_record_eval_run(
        actor=acme.actor("maint1"),
        version=v2,
        data={"tool": "custom", "results": [{"passed": True}, {"passed": True}]},
    )

    # maint1 cannot approve their own version.
    page.goto("/o/acme/prompts/support-reply/v/2/review/")
    page.check("input[name=decision][value=approve]")
    page.get_by_test_id("submit-review").click()
    expect(page.locator(".flash-error")).to_contain_text("Four eyes")
    shot("self-approval-refused")
    v2.refresh_from_db()
    assert v2.status == "in_review"

    # maint2 finds it under "needs my review" and approves it.
    login_as("acme-maint2")
    page.goto("/o/acme/prompts/")
    page.get_by_test_id("needs-my-review").click()
    expect(page.get_by_test_id("prompt-row")).to_have_count(1)
    page.get_by_role("link", name="support-reply").first.click()
    page.get_by_role("link", name="v2", exact=True).click()
    page.get_by_test_id("review-link").click()
    shot("review")
    page.check("input[name=decision][value=approve]")
    page.fill("#id_comment", "Reads well.")
    page.get_by_test_id("submit-review").click()
    expect(page.get_by_test_id("version-status")).to_have_text("Approved")
    shot("approved")

    # ... deploys it to production (with confirmation) ...
    page.goto("/o/acme/prompts/support-reply/deploy/")
    page.fill("#id_label", "production")
    page.select_option("#id_version", "2")
    page.fill("#id_reason", "Mention the topic")
    shot("deploy")
    page.get_by_test_id("deploy-submit").click()
    expect(page).to_have_url(re.compile(r"/o/acme/prompts/support-reply/$"))
    expect(page.get_by_test_id("label-production")).to_contain_text("v2")
    shot("deployed")
    assert Label.objects.get(prompt=prompt, name="production").version.number == 2

    # ... and rolls production back to v1 in one click (with confirmation).
    page.get_by_test_id("rollback").first.click()
    expect(page.get_by_test_id("label-production")).to_contain_text("v1")
    expect(page.get_by_test_id("deployment-row").first).to_contain_text("rollback")
    shot("rolled-back")
    assert Label.objects.get(prompt=prompt, name="production").version.number == 1
