"""Webhooks in a real browser: an admin creates an endpoint and sees its signing secret
once, in the answer to the form; rotating with a grace period shows the new secret once
and the page then says the old one still signs; neither secret is shown again."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from llmops.notify.models import WebhookEndpoint


def test_webhook_secret_shown_once_and_rotated_with_grace(e2e_world, page, login_as, shot):
    page.on("dialog", lambda dialog: dialog.accept())  # data-confirm on "Rotate secret"
    login_as("acme-admin")
    page.goto("/o/acme/webhooks/")
    shot("webhooks-empty")
    page.fill("#id_name", "Receiver")
    page.fill("#id_url", "https://hooks.example.test/in")
    page.fill("#id_event_filter", "prompt., incident.")
    page.get_by_role("button", name="Create endpoint").click()

    secret_box = page.get_by_test_id("new-secret")
    expect(secret_box).to_be_visible()
    first = page.locator("#new-secret-value").inner_text().strip()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", first), first
    endpoint = WebhookEndpoint.objects.get(organization=e2e_world["acme"].org)
    assert endpoint.secret == first
    shot("webhook-created-secret")

    detail = f"/o/acme/webhooks/{endpoint.pk}/"
    page.goto(detail)
    expect(page.get_by_test_id("new-secret")).to_have_count(0)
    assert first not in page.content()
    shot("webhook-detail")

    page.fill("#id_keep_old_hours", "2")
    page.get_by_test_id("rotate").get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_test_id("new-secret")).to_be_visible()
    second = page.locator("#new-secret-value").inner_text().strip()
    assert second != first and second.startswith("whsec_")
    expect(page.locator("#messages")).to_contain_text("the old one also signs until")
    shot("webhook-rotated-secret")

    page.goto(detail)
    expect(page.get_by_test_id("new-secret")).to_have_count(0)
    assert first not in page.content() and second not in page.content()
    expect(page.locator("dl.facts")).to_contain_text("the previous secret also signs until")
    endpoint.refresh_from_db()
    assert endpoint.signing_secrets() == [second, first]
    shot("webhook-detail-after-rotation")
