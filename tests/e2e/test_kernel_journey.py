"""The kernel journey in a real browser: log in, switch organization, an admin mints an
API key (shown once), changes a member's role and finds it in the audit log; and the
login locks after too many wrong passwords."""

from __future__ import annotations

import re

from django.conf import settings
from playwright.sync_api import expect

from llmops.tenancy.models import Membership, Role


def test_login_switch_org_key_once_role_change_audited(
    e2e_world, page, login_as, shot, allow_console
):
    allow_console(r"status of 403")  # the viewer's refused page below
    acme, globex = e2e_world["acme"], e2e_world["globex"]
    # acme-admin is also a viewer in globex, so the switcher offers both.
    Membership.objects.create(user=acme.users["admin"], organization=globex.org, role=Role.VIEWER)

    page.goto("/accounts/login/")
    shot("login")
    login_as("acme-admin")
    expect(page).to_have_url(re.compile(r"/o/acme/$"))
    expect(page.locator("h1").first).to_be_visible()
    shot("acme-home")

    # Switch organization through the switcher in the top bar.
    switcher = page.get_by_test_id("org-switcher")
    switcher.locator("summary").click()
    shot("switcher-open")
    switcher.get_by_role("link", name="Globex").click()
    expect(page).to_have_url(re.compile(r"/o/globex/$"))
    expect(switcher.locator("summary")).to_have_text("Globex")
    shot("globex-home")
    # A viewer in globex may not manage its members.
    page.goto("/o/globex/members/")
    expect(page.get_by_test_id("member-globex-admin")).to_be_visible()
    expect(page.get_by_role("link", name="Change role or remove")).to_have_count(0)
    shot("globex-members-as-viewer")
    other = Membership.objects.get(user=globex.users["maint1"], organization=globex.org)
    assert page.goto(f"/o/globex/members/{other.pk}/").status == 403

    # Back in acme as its admin: mint a machine key; it is shown once.
    page.goto("/o/acme/api-keys/")
    shot("api-keys-empty")
    page.fill("#id_name", "ci pipeline")
    page.check("input[name=scopes][value=ingest]")
    page.check("input[name=scopes][value='prompts:read']")
    page.get_by_role("button", name="Create key").click()
    new_key = page.get_by_test_id("new-key")
    expect(new_key).to_be_visible()
    raw = page.locator("#new-key-value").inner_text().strip()
    assert re.fullmatch(r"llmops_[0-9A-Za-z]+", raw), raw
    shot("api-key-created")
    page.goto("/o/acme/api-keys/")
    expect(page.get_by_test_id("new-key")).to_have_count(0)
    assert raw not in page.content()
    expect(page.locator("tbody tr", has_text="ci pipeline")).to_have_count(1)
    shot("api-keys-after-reload")

    # Change a member's role: acme-viewer becomes a reviewer.
    page.goto("/o/acme/members/")
    shot("members")
    row = page.get_by_test_id("member-acme-viewer")
    row.get_by_role("link", name="Change role or remove").click()
    expect(page.locator("h1")).to_have_text("acme-viewer")
    shot("member-detail")
    page.select_option("#id_role", "reviewer")
    page.get_by_role("button", name="Save role").click()
    expect(page).to_have_url(re.compile(r"/o/acme/members/$"))
    expect(page.locator("#messages")).to_contain_text("acme-viewer is now reviewer")
    expect(page.get_by_test_id("member-acme-viewer")).to_contain_text("reviewer")
    assert Membership.objects.get(user=acme.users["viewer"], organization=acme.org).role == (
        Role.REVIEWER
    )

    # The audit log shows both governance actions, with the acting admin.
    page.goto("/o/acme/audit/")
    table = page.locator("table tbody")
    expect(table).to_contain_text("acme-viewer")
    expect(table).to_contain_text("ci pipeline")
    assert "acme-admin" in table.inner_text()
    shot("audit-log")

    # The organization the admin only views has none of acme's events.
    page.goto("/o/globex/audit/")
    assert "ci pipeline" not in page.content()


def test_login_locks_after_too_many_wrong_passwords(e2e_world, page, allow_console, shot):
    allow_console(r"status of 4(29|03)")  # the lockout page answers with an error status
    limit = settings.AXES_FAILURE_LIMIT
    for attempt in range(limit):
        page.goto("/accounts/login/")
        page.fill("#id_username", "globex-maint1")
        page.fill("#id_password", f"wrong-{attempt}")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        if attempt < limit - 1:
            expect(page.get_by_role("alert")).to_contain_text("didn't match")
    expect(page.locator("h1")).to_have_text("Too many failed log-in attempts")
    shot("locked")

    # Even the right password is refused now.
    page.goto("/accounts/login/")
    page.fill("#id_username", "globex-maint1")
    page.fill("#id_password", "pw-for-tests-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    expect(page.locator("h1")).to_have_text("Too many failed log-in attempts")
    assert "/o/globex/" not in page.url


def test_api_docs_render_under_the_csp(e2e_world, page, login_as, shot):
    login_as("acme-maint1")
    assert page.goto("/api/docs/").status == 200
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("llmops API")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    shot("api-docs")
