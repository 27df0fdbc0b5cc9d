"""Kernel pages: login/logout, the organization switcher, home, members/teams/keys/settings
with empty states, 403 for non-admins on admin pages, 404 for strangers."""

from __future__ import annotations

import re

import pytest

from llmops.audit.models import AuditEvent
from llmops.tenancy.models import Membership
from tests.factories import PASSWORD, UserFactory

ADMIN_PAGES = ["/o/acme/settings/", "/o/acme/audit/?format=csv"]
MEMBER_PAGES = ["/o/acme/", "/o/acme/members/", "/o/acme/teams/", "/o/acme/api-keys/"]


def switcher(html: str) -> str:
    match = re.search(r'<details class="org-switcher".*?</details>', html, re.S)
    assert match, "the page has an organization switcher"
    return match.group(0)


def test_login_and_logout(acme, globex, client):
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and "Log in to llmops" in page.content.decode()
    response = client.post("/accounts/login/", {"username": "acme-maint1", "password": PASSWORD})
    assert response.status_code == 302
    response = client.get(response["Location"])
    assert response.status_code == 302 and response["Location"] == "/o/acme/"
    assert client.get("/o/acme/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    response = client.get("/o/acme/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_wrong_password_shows_an_error(acme, globex, client):
    response = client.post("/accounts/login/", {"username": "acme-admin", "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()


def test_switcher_lists_only_the_users_organizations(acme, globex, login):
    Membership.objects.create(user=acme.users["admin"], organization=globex.org, role="viewer")
    both = switcher(login(acme.users["admin"]).get("/o/acme/").content.decode())
    assert 'href="/o/acme/"' in both and 'href="/o/globex/"' in both
    assert 'aria-current="true"' in both
    only = switcher(login(acme.users["viewer"]).get("/o/acme/").content.decode())
    assert 'href="/o/acme/"' in only and "/o/globex/" not in only and "Globex" not in only


def test_index_without_an_organization(db, login):
    loner = UserFactory(username="loner")
    page = login(loner).get("/")
    assert page.status_code == 200 and "No organization yet" in page.content.decode()


@pytest.mark.parametrize("who", ["admin", "maint1", "reviewer1", "viewer"])
def test_home_renders_for_every_role(who, acme, globex, login):
    page = login(acme.users[who]).get("/o/acme/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Acme" in html and "Globex" not in html
    assert ("Administration" in html) is (who == "admin")


def test_admin_pages_render_with_empty_states(acme, globex, login):
    client = login(acme.users["admin"])
    teams = client.get("/o/acme/teams/").content.decode()
    assert "No teams yet." in teams
    keys = client.get("/o/acme/api-keys/").content.decode()
    assert "No API keys yet." in keys
    members = client.get("/o/acme/members/", {"q": "nobody-by-that-name"}).content.decode()
    assert "No members match." in members
    members = client.get("/o/acme/members/").content.decode()
    assert "acme-reviewer2" in members and "globex-" not in members
    settings_page = client.get("/o/acme/settings/")
    assert settings_page.status_code == 200 and "retention_days" in settings_page.content.decode()


def test_members_page_filters_by_role(acme, globex, login):
    html = login(acme.users["admin"]).get("/o/acme/members/", {"role": "reviewer"}).content.decode()
    assert "acme-reviewer1" in html and "acme-reviewer2" in html and "acme-maint1" not in html


def test_members_page_paginates(acme, globex, login):
    for i in range(30):
        Membership.objects.create(
            user=UserFactory(username=f"zz-member-{i:02d}"), organization=acme.org, role="viewer"
        )
    client = login(acme.users["admin"])
    first = client.get("/o/acme/members/").content.decode()
    second = client.get("/o/acme/members/", {"page": 2}).content.decode()
    assert "acme-admin" in first and "zz-member-29" not in first
    assert "zz-member-29" in second


def test_settings_are_saved_and_audited(acme, globex, login):
    client = login(acme.users["admin"])
    response = client.post(
        "/o/acme/settings/", {"allow_floating_models": "on", "retention_days": "30"}
    )
    assert response.status_code == 302
    acme.org.refresh_from_db()
    assert acme.org.allow_floating_models is True and acme.org.retention_days == 30
    event = AuditEvent.objects.get(organization=acme.org, action="organization.settings_changed")
    assert event.details["after"] == {"allow_floating_models": True, "retention_days": 30}
    response = client.post("/o/acme/settings/", {"retention_days": "0"})
    assert response.status_code == 200
    acme.org.refresh_from_db()
    assert acme.org.retention_days == 30


@pytest.mark.parametrize("who", ["maint1", "reviewer1", "viewer"])
def test_non_admins_get_403_on_admin_pages(who, acme, globex, login):
    client = login(acme.users[who])
    for url in ADMIN_PAGES[:1]:
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"op": "create"}).status_code == 403, url
    member = acme.org.memberships.get(user=acme.users["viewer"])
    assert client.get(f"/o/acme/members/{member.pk}/").status_code == 403
    for url in MEMBER_PAGES:
        assert client.get(url).status_code == 200, url


def test_a_stranger_gets_404_and_anonymous_is_sent_to_log_in(acme, globex, client, login):
    for url in MEMBER_PAGES + ADMIN_PAGES + ["/o/acme/audit/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    stranger = login(globex.users["admin"])
    for url in MEMBER_PAGES + ADMIN_PAGES + ["/o/acme/audit/", "/o/no-such-org/"]:
        assert stranger.get(url).status_code == 404, url


def test_pages_carry_a_strict_content_security_policy(acme, globex, login):
    response = login(acme.users["admin"]).get("/o/acme/")
    csp = response["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "script-src 'self' 'nonce-" in csp
    html = response.content.decode()
    assert " style=" not in html and " onclick=" not in html and "hx-on" not in html
    for url in ("/accounts/login/",):
        body = login(acme.users["admin"]).get(url).content.decode()
        assert " style=" not in body


@pytest.mark.parametrize("who", ["maint1", "reviewer1", "viewer"])
def test_members_see_and_mint_only_their_own_personal_keys(who, acme, globex, login, api_key):
    from llmops.tenancy.models import ApiKey

    api_key(acme, ["ingest"], name="admins-machine-key")
    api_key(acme, ["prompts:read"], user=acme.users["maint2"], name="someone-elses-key")
    client = login(acme.users[who])
    page = client.get("/o/acme/api-keys/").content.decode()
    assert "Your API keys" in page and "You have no personal API keys yet." in page
    assert "admins-machine-key" not in page and "someone-elses-key" not in page
    assert 'value="machine"' not in page
    # A machine key is refused; a personal key within the role is made and shown once.
    response = client.post(
        "/o/acme/api-keys/", {"name": "m", "kind": "machine", "scopes": ["prompts:read"]}
    )
    assert response.status_code == 200  # the form refuses the choice
    assert not ApiKey.objects.filter(name="m").exists()
    response = client.post(
        "/o/acme/api-keys/", {"name": "mine", "kind": "personal", "scopes": ["prompts:read"]}
    )
    assert response.status_code == 200 and 'data-testid="new-key"' in response.content.decode()
    key = ApiKey.objects.get(name="mine")
    assert key.user == acme.users[who]
    page = client.get("/o/acme/api-keys/").content.decode()
    assert "mine" in page and "someone-elses-key" not in page
    # Scopes beyond the role are not offered, and refused if posted anyway.
    response = client.post(
        "/o/acme/api-keys/", {"name": "big", "kind": "personal", "scopes": ["models:approve"]}
    )
    assert response.status_code == 200 and not ApiKey.objects.filter(name="big").exists()
    # Someone else's key cannot be revoked from here: it is not theirs to see.
    other = ApiKey.objects.get(name="someone-elses-key")
    response = client.post("/o/acme/api-keys/", {"op": "revoke", "key": other.pk})
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None
    assert client.post("/o/acme/api-keys/", {"op": "revoke", "key": key.pk}).status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
