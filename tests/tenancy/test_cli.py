"""The operator CLI of the kernel: create_org and demo."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from llmops.audit.models import AuditEvent
from llmops.audit.verify import verify_org
from llmops.tenancy.models import Membership, Organization, Team


def test_create_org_with_a_new_admin(db, client):
    out = StringIO()
    call_command(
        "create_org", "initech", "--name", "Initech", "--admin", "peter", "--password", "tps-report-1",
        stdout=out,
    )  # fmt: skip
    org = Organization.objects.get(slug="initech")
    assert org.name == "Initech"
    assert Membership.objects.get(organization=org).role == "admin"
    assert "Organization initech created; peter is its admin." in out.getvalue()
    actions = list(
        AuditEvent.objects.filter(organization=org).order_by("seq").values_list("action", flat=True)
    )
    assert actions[:2] == ["organization.created", "member.added"]
    assert verify_org(org.pk).ok
    response = client.post("/accounts/login/", {"username": "peter", "password": "tps-report-1"})
    assert response.status_code == 302


def test_create_org_refusals(acme, globex):
    with pytest.raises(CommandError, match="already exists"):
        call_command(
            "create_org", "acme", "--name", "Again", "--admin", "acme-admin", stdout=StringIO()
        )
    with pytest.raises(CommandError, match="--password applies only to a new user"):
        call_command(
            "create_org", "x", "--name", "X", "--admin", "acme-admin", "--password", "p",
            stdout=StringIO(),
        )  # fmt: skip
    assert not Organization.objects.filter(slug="x").exists()


def test_existing_user_becomes_admin_of_a_second_org(acme, globex):
    call_command(
        "create_org", "umbrella", "--name", "Umbrella", "--admin", "acme-viewer", stdout=StringIO()
    )
    viewer = get_user_model().objects.get(username="acme-viewer")
    assert set(Membership.objects.filter(user=viewer).values_list("role", flat=True)) == {
        "viewer",
        "admin",
    }


def test_demo_refuses_with_debug_off_unless_forced(db):
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("demo", stdout=StringIO())
    assert not Organization.objects.exists()


def test_demo_seeds_two_orgs_with_intact_chains_and_is_idempotent(db, client):
    out = StringIO()
    call_command("demo", "--force", stdout=out)
    assert "Demo ready" in out.getvalue()
    for slug in ("acme", "globex"):
        org = Organization.objects.get(slug=slug)
        roles = dict(
            Membership.objects.filter(organization=org).values_list("user__username", "role")
        )
        assert roles == {
            f"{slug}-admin": "admin",
            f"{slug}-maint1": "maintainer",
            f"{slug}-maint2": "maintainer",
            f"{slug}-reviewer1": "reviewer",
            f"{slug}-reviewer2": "reviewer",
            f"{slug}-viewer": "viewer",
        }
        assert Team.objects.filter(organization=org).count() >= 2
        report = verify_org(org.pk)
        assert report.ok, report.problem
    response = client.post("/accounts/login/", {"username": "acme-admin", "password": "demo"})
    assert response.status_code == 302
    again = StringIO()
    call_command("demo", "--force", stdout=again)
    assert "already present" in again.getvalue()
