"""List pages cost the same number of queries for 3 rows as for 20: an N+1 fails here."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from llmops.audit.services import audit_record
from llmops.tenancy import services
from llmops.tenancy.models import Membership
from tests.factories import UserFactory


def _grow(world, n, start):
    admin = world.actor()
    for i in range(start, start + n):
        user = UserFactory(username=f"qc-{i:03d}")
        Membership.objects.create(user=user, organization=world.org, role="viewer")
        team = services.team_create(actor=admin, name=f"team-{i:03d}")
        services.team_add_member(actor=admin, team=team, username=user.username)
        services.api_key_create(actor=admin, name=f"key-{i:03d}", scopes=["ingest"])
        services.api_key_create(
            actor=admin, name=f"pkey-{i:03d}", scopes=["prompts:read"], user=user
        )
        with transaction.atomic():
            audit_record(actor=admin, action="test.qc", target=("t", i, f"t{i}"))


def _count(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "url",
    [
        "/o/acme/members/",
        "/o/acme/teams/",
        "/o/acme/api-keys/",
        "/o/acme/api-keys/?revoked=1",
        "/o/acme/audit/",
    ],
)
def test_list_pages_do_not_grow_with_rows(url, acme, globex, login):
    client = login(acme.users["admin"])
    _grow(acme, 3, 0)
    client.get(url)  # warm whatever is cached per process
    small = _count(client, url)
    _grow(acme, 17, 3)
    large = _count(client, url)
    assert large == small, f"{url}: {small} queries for few rows, {large} for many"
