"""Members, invitations and teams: pages, services, the last-admin rule, audit events."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.urls import reverse
from django.utils import timezone

from llmops.audit.models import AuditEvent
from llmops.common.errors import InvalidInput, NotFound, NotPermitted, PolicyViolation
from llmops.tenancy import services
from llmops.tenancy.models import Invitation, Membership, Team
from tests.factories import UserFactory


def events(world, action):
    return list(AuditEvent.objects.filter(organization=world.org, action=action).order_by("seq"))


def url(name, **kwargs):
    return reverse(f"tenancy:{name}", kwargs={"org_slug": "acme", **kwargs})


def membership(world, who):
    return Membership.objects.get(organization=world.org, user=world.users[who])


# --- members ---------------------------------------------------------------------------


def test_no_direct_add_by_username_and_the_answer_never_tells_who_exists(acme, globex, login):
    """An admin cannot pull someone (another organization's member, or anyone) into theirs:
    the old "add an existing user" post adds nobody, and its answer is the same whether or
    not the username exists."""
    client = login(acme.users["admin"])
    page = client.get(url("members")).content.decode()
    assert 'name="username"' not in page and "Add an existing user" not in page
    answers = []
    for username in ("globex-viewer", "no-such-person"):
        response = client.post(url("members"), {"op": "add", "username": username, "role": "admin"})
        answers.append((response.status_code, response.get("Location")))
        followed = client.get(url("members")).content.decode()
        assert username not in followed
    assert answers[0] == answers[1]
    assert not Membership.objects.filter(
        organization=acme.org, user=globex.users["viewer"]
    ).exists()
    assert not events(acme, "member.added")[1:], "only the creating admin was ever added"
    assert not hasattr(services, "member_add")


def test_an_existing_account_joins_only_by_accepting_an_invitation(acme, globex, login, client):
    page = login(acme.users["admin"]).post(
        url("members"), {"op": "invite", "role": "reviewer", "email": ""}
    )
    assert page.status_code == 200, "the link is rendered in the answer to the post"
    (path,) = re.findall(r"/invitations/[A-Za-z0-9_\-]+/", page.content.decode())
    assert not any("invitations/" in str(v) for v in client.session.values())
    outsider = globex.users["viewer"]
    assert not Membership.objects.filter(organization=acme.org, user=outsider).exists()
    login(outsider)
    client.post(path)
    assert Membership.objects.get(organization=acme.org, user=outsider).role == "reviewer"
    (event,) = events(acme, "invitation.accepted")
    assert event.actor_label == "globex-viewer"


def test_change_role_on_the_page(acme, globex, login):
    m = membership(acme, "viewer")
    client = login(acme.users["admin"])
    response = client.post(
        url("member_detail", membership_id=m.pk), {"op": "role", "role": "maintainer"}
    )
    assert response.status_code == 302
    m.refresh_from_db()
    assert m.role == "maintainer"
    (event,) = events(acme, "member.role_changed")
    assert event.details == {"before": "viewer", "after": "maintainer"}
    assert event.target_label == "acme-viewer"


@pytest.mark.parametrize("role", ["owner", ""])
def test_an_unknown_role_is_shown_on_the_form_not_a_500(acme, globex, login, role):
    m = membership(acme, "viewer")
    client = login(acme.users["admin"])
    response = client.post(url("member_detail", membership_id=m.pk), {"op": "role", "role": role})
    assert response.status_code == 200
    page = response.content.decode()
    form = page.split('<label for="id_role">')[1].split("</form>")[0]
    assert 'class="errorlist"' in form, "the error stands under the role field"
    m.refresh_from_db()
    assert m.role == "viewer"
    assert not events(acme, "member.role_changed")


def test_remove_on_the_page_takes_team_places_and_personal_keys(acme, globex, login):
    team = services.team_create(actor=acme.actor(), name="owners")
    services.team_add_member(actor=acme.actor(), team=team, username="acme-maint1")
    key, _ = services.api_key_create(
        actor=acme.actor("maint1"), name="mine", scopes=["ingest"], user=acme.users["maint1"]
    )
    m = membership(acme, "maint1")
    client = login(acme.users["admin"])
    response = client.post(url("member_detail", membership_id=m.pk), {"op": "remove"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=m.pk).exists()
    assert not team.group.user_set.filter(pk=acme.users["maint1"].pk).exists()
    key.refresh_from_db()
    assert key.revoked_at is not None
    (event,) = events(acme, "member.removed")
    assert event.target_label == "acme-maint1"
    assert event.details == {"role": "maintainer", "object_grants_dropped": 0}
    # Their globex membership is untouched.
    assert Membership.objects.filter(organization=globex.org, user=globex.users["maint1"]).exists()


def test_the_last_admin_can_be_neither_demoted_nor_removed(acme, globex, login):
    admin = membership(acme, "admin")
    with pytest.raises(PolicyViolation, match="last admin cannot be demoted") as err:
        services.member_change_role(actor=acme.actor(), membership=admin, role="viewer")
    assert err.value.code == "last_admin" and err.value.status == 409
    with pytest.raises(PolicyViolation, match="last admin cannot be removed"):
        services.member_remove(actor=acme.actor(), membership=admin)
    # On the page: a message, nothing changed.
    client = login(acme.users["admin"])
    response = client.post(
        url("member_detail", membership_id=admin.pk), {"op": "remove"}, follow=True
    )
    assert "The last admin cannot be removed" in response.content.decode()
    admin.refresh_from_db()
    assert admin.role == "admin"
    assert not events(acme, "member.removed") and not events(acme, "member.role_changed")
    # With a second admin, the first may step down.
    services.member_change_role(
        actor=acme.actor(), membership=membership(acme, "maint1"), role="admin"
    )
    services.member_change_role(actor=acme.actor(), membership=admin, role="viewer")
    assert membership(acme, "admin").role == "viewer"
    with pytest.raises(PolicyViolation):
        services.member_remove(actor=acme.actor("maint1"), membership=membership(acme, "maint1"))


def test_non_admins_may_not_manage_members(acme, globex, login):
    client = login(acme.users["maint1"])
    m = membership(acme, "viewer")
    assert client.get(url("member_detail", membership_id=m.pk)).status_code == 403
    assert (
        client.post(url("member_detail", membership_id=m.pk), {"op": "remove"}).status_code == 403
    )
    assert (
        client.post(url("members"), {"op": "add", "username": "x", "role": "viewer"}).status_code
        == 403
    )
    assert Membership.objects.filter(pk=m.pk).exists()
    # They may see the member list.
    assert client.get(url("members")).status_code == 200


def test_membership_of_another_org_is_404(acme, globex, login):
    client = login(acme.users["admin"])
    other = membership(globex, "viewer")
    assert client.get(url("member_detail", membership_id=other.pk)).status_code == 404
    assert (
        client.post(url("member_detail", membership_id=other.pk), {"op": "remove"}).status_code
        == 404
    )
    with pytest.raises(Membership.DoesNotExist):
        services.member_remove(actor=acme.actor(), membership=other)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_last_admin_rule_holds_under_concurrency():
    """Two admins demote each other (and remove each other) at the same moment: one wins,
    the organization keeps one admin, and neither request fails with a deadlock."""
    from tests.factories import make_org

    world = make_org("acme")
    make_org("globex")
    services.member_change_role(
        actor=world.actor(), membership=membership(world, "maint1"), role="admin"
    )
    for op in ("demote", "remove"):
        admins = list(Membership.objects.filter(organization=world.org, role="admin"))
        assert len(admins) == 2
        results: list = []
        barrier = threading.Barrier(2)

        def act(me, other, op=op, barrier=barrier, results=results):
            try:
                actor = world.actor(next(k for k, u in world.users.items() if u.pk == me.user_id))
                barrier.wait()
                if op == "demote":
                    services.member_change_role(actor=actor, membership=other, role="viewer")
                else:
                    services.member_remove(actor=actor, membership=other)
                results.append("ok")
            except PolicyViolation:
                results.append("refused")
            except NotPermitted:
                results.append("refused")  # already demoted by the other: no longer admin
            except Exception as exc:  # noqa: BLE001 - reported below
                results.append(repr(exc))
            finally:
                close_old_connections()
                connection.close()

        threads = [
            threading.Thread(target=act, args=(admins[0], admins[1])),
            threading.Thread(target=act, args=(admins[1], admins[0])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["ok", "refused"], results
        assert Membership.objects.filter(organization=world.org, role="admin").count() == 1
        if op == "demote":
            # Make a second admin again for the removal round.
            remaining = Membership.objects.get(organization=world.org, role="admin")
            who = next(k for k, u in world.users.items() if u.pk == remaining.user_id)
            demoted = next(m for m in admins if m.pk != remaining.pk)
            services.member_change_role(actor=world.actor(who), membership=demoted, role="admin")


# --- invitations -------------------------------------------------------------------------


def _invite(client, role="maintainer"):
    response = client.post(url("members"), {"op": "invite", "role": role, "email": ""}, follow=True)
    page = response.content.decode()
    links = re.findall(r"http://testserver/invitations/[A-Za-z0-9_\-]+/", page)
    assert len(links) == 1, "the invitation link is shown once on the page"
    return links[0].removeprefix("http://testserver")


def test_invitation_link_create_and_accept(acme, globex, login, client):
    path = _invite(login(acme.users["admin"]))
    assert path not in client.get(url("members")).content.decode(), "shown only once"
    assert events(acme, "invitation.created")
    newcomer = UserFactory(username="newcomer")
    login(newcomer)
    page = client.get(path)
    assert page.status_code == 200 and "Join Acme" in page.content.decode()
    response = client.post(path)
    assert response.status_code == 302 and response["Location"] == "/o/acme/"
    assert Membership.objects.get(organization=acme.org, user=newcomer).role == "maintainer"
    (event,) = events(acme, "invitation.accepted")
    assert event.actor_label == "newcomer" and event.details["new_member"] is True
    # Used once: a second use is refused.
    assert client.get(path).status_code == 404
    assert client.post(path).status_code == 404


def test_invitation_for_someone_without_an_account(acme, globex, login, client):
    path = _invite(login(acme.users["admin"]), role="reviewer")
    client.logout()
    page = client.get(path).content.decode()
    assert "Join Acme" in page and f"/accounts/login/?next={path.replace('/', '%2F')}" in page
    # A taken username or mismatched passwords: the form says so, nothing is created.
    taken = client.post(
        path,
        {"username": "ACME-viewer", "password1": "s3cret-pass-99", "password2": "s3cret-pass-99"},
    )
    assert taken.status_code == 200
    mismatch = client.post(
        path, {"username": "newbie", "password1": "s3cret-pass-99", "password2": "other-pass-99"}
    )
    assert mismatch.status_code == 200 and "password" in mismatch.content.decode().lower()
    assert not Membership.objects.filter(user__username="newbie").exists()
    response = client.post(
        path,
        {"username": "newbie", "email": "n@example.com", "password1": "s3cret-pass-99",
         "password2": "s3cret-pass-99"},
    )  # fmt: skip
    assert response.status_code == 302 and response["Location"] == "/o/acme/"
    assert Membership.objects.get(organization=acme.org, user__username="newbie").role == "reviewer"
    assert client.get("/o/acme/").status_code == 200, "logged in as the new account"
    (event,) = events(acme, "invitation.accepted")
    assert event.actor_label == "newbie"
    # Single use: the next visitor cannot sign up with it.
    client.logout()
    again = client.post(
        path, {"username": "second", "password1": "s3cret-pass-99", "password2": "s3cret-pass-99"}
    )
    assert again.status_code == 404
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="second").exists()


def test_expired_and_revoked_invitations_are_refused(acme, globex, login, client):
    admin = login(acme.users["admin"])
    expired_path = _invite(admin)
    Invitation.objects.filter(organization=acme.org).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    revoked_path = _invite(admin)
    inv = Invitation.objects.get(organization=acme.org, expires_at__gt=timezone.now())
    response = admin.post(url("members"), {"op": "revoke_invite", "invitation": inv.pk})
    assert response.status_code == 302
    assert events(acme, "invitation.revoked")
    assert admin.post(url("members"), {"op": "revoke_invite", "invitation": "x"}).status_code == 404
    login(UserFactory(username="late"))
    for path in (expired_path, revoked_path):
        assert client.get(path).status_code == 404
        assert client.post(path).status_code == 404
    assert not Membership.objects.filter(user__username="late").exists()
    with pytest.raises(NotFound):
        services.invitation_accept(token="not-a-token", user=acme.users["viewer"])


def test_invitation_accepted_by_an_existing_member_keeps_their_role(acme, globex, login, client):
    path = _invite(login(acme.users["admin"]), role="viewer")
    login(acme.users["maint1"])
    client.post(path)
    assert membership(acme, "maint1").role == "maintainer"


def test_another_orgs_invitation_cannot_be_revoked(acme, globex):
    inv, _ = services.invitation_create(actor=globex.actor(), role="viewer")
    with pytest.raises(Invitation.DoesNotExist):
        services.invitation_revoke(actor=acme.actor(), invitation=inv)


# --- teams -------------------------------------------------------------------------------


def test_team_create_add_remove_delete_on_the_pages(acme, globex, login):
    client = login(acme.users["admin"])
    response = client.post(url("teams"), {"name": "Prompt owners"})
    team = Team.objects.get(organization=acme.org, name="Prompt owners")
    assert response.status_code == 302 and response["Location"] == url(
        "team_detail", team_id=team.pk
    )
    detail = url("team_detail", team_id=team.pk)
    assert client.post(detail, {"op": "add", "username": "acme-maint1"}).status_code == 302
    assert list(team.group.user_set.values_list("username", flat=True)) == ["acme-maint1"]
    page = client.get(detail).content.decode()
    assert "acme-maint1" in page
    # Only members of the organization may join its teams.
    response = client.post(detail, {"op": "add", "username": "globex-maint1"}, follow=True)
    assert "is not a member of this organization" in response.content.decode()
    assert team.group.user_set.count() == 1
    uid = acme.users["maint1"].pk
    assert client.post(detail, {"op": "remove", "user": uid}).status_code == 302
    assert team.group.user_set.count() == 0
    assert client.post(detail, {"op": "remove", "user": "abc"}).status_code == 404
    group_id = team.group_id
    assert client.post(detail, {"op": "delete"}).status_code == 302
    assert not Team.objects.filter(pk=team.pk).exists()
    from django.contrib.auth.models import Group

    assert not Group.objects.filter(pk=group_id).exists()
    actions = [
        e.action
        for e in AuditEvent.objects.filter(
            organization=acme.org, target_type="tenancy.team"
        ).order_by("seq")
    ]
    assert actions == ["team.created", "team.member_added", "team.member_removed", "team.deleted"]


def test_team_rules(acme, globex):
    team = services.team_create(actor=acme.actor(), name="owners")
    with pytest.raises(InvalidInput, match="already exists"):
        services.team_create(actor=acme.actor(), name="owners")
    with pytest.raises(InvalidInput):
        services.team_create(actor=acme.actor(), name="  ")
    # The same name in another organization is fine.
    services.team_create(actor=globex.actor(), name="owners")
    with pytest.raises(NotPermitted):
        services.team_create(actor=acme.actor("maint1"), name="mine")
    with pytest.raises(NotPermitted):
        services.team_add_member(actor=acme.actor("maint1"), team=team, username="acme-maint1")
    with pytest.raises(NotFound):
        services.team_remove_member(actor=acme.actor(), team=team, user_id=acme.users["viewer"].pk)
    # globex's admin may not touch acme's team (policy: another org's object).
    with pytest.raises(NotPermitted):
        services.team_add_member(actor=globex.actor(), team=team, username="globex-maint1")


def test_non_admin_sees_teams_but_cannot_change_them(acme, globex, login):
    team = services.team_create(actor=acme.actor(), name="owners")
    client = login(acme.users["reviewer1"])
    assert client.get(url("teams")).status_code == 200
    assert client.get(url("team_detail", team_id=team.pk)).status_code == 200
    assert client.post(url("teams"), {"name": "x"}).status_code == 403
    assert client.post(url("team_detail", team_id=team.pk), {"op": "delete"}).status_code == 403
    assert Team.objects.filter(pk=team.pk).exists()
