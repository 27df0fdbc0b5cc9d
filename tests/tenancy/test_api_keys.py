"""API keys: format, hashing, shown once, revocation, last use, the warm path, scopes."""

from __future__ import annotations

import hashlib
import re
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from llmops.audit.models import AuditEvent
from llmops.common.errors import InvalidInput, NotPermitted, PolicyViolation
from llmops.tenancy import keys
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import ApiKey, Membership
from llmops.tenancy.services import (
    api_key_create,
    api_key_revoke,
    member_change_role,
    member_remove,
)

KEY_RE = re.compile(r"^llmops_[0-9A-Za-z]{50}$")
ME = "/api/v1/me"


def _mistype(raw: str) -> str:
    i = len(raw) - 10
    ch = "a" if raw[i] != "a" else "b"
    return raw[:i] + ch + raw[i + 1 :]


def test_format_is_prefix_and_base62_with_a_checksum():
    seen = set()
    for _ in range(50):
        raw, public_id = keys.generate()
        assert KEY_RE.match(raw), raw
        assert raw.startswith(f"llmops_{public_id}")
        assert keys.well_formed(raw)
        assert not keys.well_formed(_mistype(raw))
        assert not keys.well_formed(raw[:-1])
        assert not keys.well_formed(raw.replace("llmops_", "llmopz_"))
        assert not keys.well_formed(raw[:-1] + "!")
        seen.add(raw)
    assert len(seen) == 50


def test_only_the_hash_is_stored(acme, globex, api_key):
    raw = api_key(acme, ["ingest"])
    row = ApiKey.objects.get(organization=acme.org)
    assert row.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    stored = " ".join(str(v) for v in ApiKey.objects.filter(pk=row.pk).values().first().values())
    secret = raw[len("llmops_") + 12 :]
    assert secret not in stored and raw not in stored
    assert raw.startswith(row.prefix)


def test_mistyped_key_is_refused_without_a_query(
    acme, globex, api_key, api, django_assert_num_queries
):
    raw = api_key(acme, ["audit:read"])
    client = api(_mistype(raw))
    with django_assert_num_queries(0):
        response = client.get(ME)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_well_formed_key_is_401(acme, globex, api):
    raw, _ = keys.generate()
    response = api(raw).get(ME)
    assert response.status_code == 401


def test_me_tells_who_the_key_acts_as(acme, globex, api_key, api):
    machine = api(api_key(acme, ["ingest"], name="ci")).get(ME).json()
    assert machine["organization"] == "acme"
    assert machine["user"] is None and machine["role"] is None
    assert machine["key"]["kind"] == "machine" and machine["key"]["scopes"] == ["ingest"]
    personal = api(api_key(globex, ["audit:read"], user=globex.users["viewer"])).get(ME).json()
    assert personal["organization"] == "globex"
    assert personal["user"] == "globex-viewer" and personal["role"] == "viewer"
    assert personal["key"]["kind"] == "personal"


def test_warm_request_costs_no_query_for_authentication(
    acme, globex, api_key, api, django_assert_num_queries
):
    client = api(api_key(acme, ["audit:read"]))
    assert client.get(ME).status_code == 200  # cold: loads the key, the org, writes last use
    with django_assert_num_queries(0):
        assert client.get(ME).status_code == 200
    assert client.get("/api/v1/audit-events").status_code == 200
    with django_assert_num_queries(1):  # the list's own query; authentication adds none
        response = client.get("/api/v1/audit-events")
    assert response.status_code == 200


def test_last_used_is_written_at_most_once_a_minute(
    acme, globex, api_key, api, django_assert_num_queries
):
    raw = api_key(acme, ["ingest"])
    row = ApiKey.objects.get(organization=acme.org)
    assert row.last_used_at is None
    client = api(raw)
    client.get(ME)
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None
    for _ in range(3):
        with django_assert_num_queries(0):
            client.get(ME)
    row.refresh_from_db()
    assert row.last_used_at == first
    # A minute later (the throttle entry expired) the next request writes it again.
    # (the shared throttle entry and this process's memo of it both lapse after a minute)
    from llmops.tenancy.authentication import _touched_at

    _touched_at.clear()
    with django_assert_num_queries(0):
        client.get(ME)  # the shared entry still holds: no write
    cache.delete(f"tenancy:apikey-used:{row.pk}")
    _touched_at.clear()
    with django_assert_num_queries(1):
        client.get(ME)
    row.refresh_from_db()
    assert row.last_used_at > first


def test_revocation_is_immediate_even_on_a_warm_cache(acme, globex, api_key, api, login):
    raw = api_key(acme, ["audit:read"])
    client = api(raw)
    assert client.get(ME).status_code == 200
    key = ApiKey.objects.get(organization=acme.org)
    response = login(acme.users["admin"]).post(
        reverse("tenancy:api_keys", kwargs={"org_slug": "acme"}), {"op": "revoke", "key": key.pk}
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert client.get(ME).status_code == 401
    event = AuditEvent.objects.filter(organization=acme.org, action="api_key.revoked").get()
    assert event.target_id == str(key.pk) and event.actor_label == "acme-admin"


def test_key_page_shows_a_new_key_once(acme, globex, login):
    client = login(acme.users["admin"])
    url = reverse("tenancy:api_keys", kwargs={"org_slug": "acme"})
    response = client.post(
        url, {"op": "create", "name": "ci", "kind": "machine", "scopes": ["ingest", "evals:write"]}
    )
    # Shown in the answer to the post itself, never parked in the session for a later view.
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    shown = re.findall(r"llmops_[0-9A-Za-z]{50}", response.content.decode())
    assert len(shown) == 1
    raw = shown[0]
    from django.contrib.sessions.models import Session

    for row in Session.objects.all():
        assert raw not in str(row.get_decoded())
    assert raw not in str(dict(client.session.items()))
    key = ApiKey.objects.get(organization=acme.org, name="ci")
    assert key.key_hash == keys.digest(raw) and key.scopes == ["evals:write", "ingest"]
    again = client.get(url).content.decode()
    assert raw not in again and key.prefix in again
    assert not re.findall(r"llmops_[0-9A-Za-z]{50}", again)
    assert AuditEvent.objects.filter(organization=acme.org, action="api_key.created").exists()


def test_key_page_refuses_a_machine_key_with_a_human_only_scope(acme, globex, login):
    client = login(acme.users["admin"])
    url = reverse("tenancy:api_keys", kwargs={"org_slug": "acme"})
    response = client.post(
        url, {"op": "create", "name": "ci", "kind": "machine", "scopes": ["prompts:approve"]}
    )
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "Machine keys may not hold human-only scopes: prompts:approve" in page
    assert not ApiKey.objects.filter(organization=acme.org).exists()


def test_machine_key_refuses_human_only_scopes(acme, globex):
    for scope in ("prompts:approve", "models:approve", "reviews:write"):
        with pytest.raises(PolicyViolation) as err:
            api_key_create(actor=acme.actor(), name="ci", scopes=["ingest", scope])
        assert err.value.status == 409 and err.value.code == "human_only_scope"
        assert scope in err.value.message
    assert not ApiKey.objects.exists()


def test_personal_key_beyond_the_role_is_refused_with_the_rule(acme, globex):
    viewer = acme.users["viewer"]
    with pytest.raises(PolicyViolation) as err:
        api_key_create(
            actor=acme.actor("viewer"), name="mine", scopes=["prompts:write"], user=viewer
        )
    assert err.value.status == 409 and err.value.code == "scope_beyond_role"
    assert "never exceeds its user's role (viewer)" in err.value.message
    assert "prompts:write" in err.value.message
    # Within the role: fine, and it acts as the viewer.
    key, raw = api_key_create(
        actor=acme.actor("viewer"), name="mine", scopes=["audit:read"], user=viewer
    )
    assert key.user == viewer and keys.well_formed(raw)


def test_non_admin_may_not_mint_for_someone_else_or_a_machine(acme, globex):
    with pytest.raises(NotPermitted):
        api_key_create(actor=acme.actor("maint1"), name="ci", scopes=["ingest"])
    with pytest.raises(NotPermitted):
        api_key_create(
            actor=acme.actor("maint1"), name="x", scopes=["ingest"], user=acme.users["maint2"]
        )
    with pytest.raises(InvalidInput):
        api_key_create(actor=acme.actor(), name="x", scopes=["ingest"], user=globex.users["maint1"])
    with pytest.raises(InvalidInput):
        api_key_create(actor=acme.actor(), name="x", scopes=["nope"])
    with pytest.raises(InvalidInput):
        api_key_create(actor=acme.actor(), name="x", scopes=[])


def test_personal_key_follows_its_user_role_and_membership(acme, globex, api_key, api):
    maint = acme.users["maint1"]
    raw = api_key(acme, ["audit:read", "ingest"], user=maint)
    client = api(raw)
    assert client.get("/api/v1/audit-events").status_code == 200
    membership = Membership.objects.get(organization=acme.org, user=maint)
    member_change_role(actor=acme.actor(), membership=membership, role="reviewer")
    # Reviewers may not read the audit log: the key narrows at once.
    response = client.get("/api/v1/audit-events")
    assert response.status_code == 403
    assert "audit.view" in response.json()["error"]["message"]
    member_remove(actor=acme.actor(), membership=Membership.objects.get(pk=membership.pk))
    assert client.get(ME).status_code == 401
    assert ApiKey.objects.get(user=maint).revoked_at is not None


def test_revoke_own_personal_key_and_admin_revokes_any(acme, globex):
    mine, _ = api_key_create(
        actor=acme.actor("maint1"), name="mine", scopes=["ingest"], user=acme.users["maint1"]
    )
    api_key_revoke(actor=acme.actor("maint1"), key=mine)
    machine, _ = api_key_create(actor=acme.actor(), name="ci", scopes=["ingest"])
    with pytest.raises(NotPermitted):
        api_key_revoke(actor=acme.actor("maint1"), key=machine)
    api_key_revoke(actor=acme.actor(), key=machine)
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 0
    # Another organization's key: not found for globex.
    other, _ = api_key_create(actor=acme.actor(), name="ci2", scopes=["ingest"])
    with pytest.raises(ApiKey.DoesNotExist):
        api_key_revoke(actor=globex.actor(), key=other)


def test_cli_machine_key(acme, globex, api):
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_key", "--org", "acme", "--name", "ci", "--scopes", "ingest,prompts:read",
        stdout=out, stderr=err,
    )  # fmt: skip
    raw = out.getvalue().strip()
    assert KEY_RE.match(raw)
    assert "machine key" in err.getvalue()
    key = ApiKey.objects.get(key_hash=keys.digest(raw))
    assert key.user is None and key.scopes == ["ingest", "prompts:read"]
    assert key.organization == acme.org
    assert api(raw).get(ME).json()["organization"] == "acme"
    event = AuditEvent.objects.get(organization=acme.org, action="api_key.created")
    assert event.actor_type == "system"


def test_cli_personal_key(acme, globex, api):
    out = StringIO()
    call_command(
        "create_api_key", "--org", "acme", "--name", "me", "--scopes", "prompts:approve",
        "--user", "acme-maint1", stdout=out, stderr=StringIO(),
    )  # fmt: skip
    raw = out.getvalue().strip()
    me = api(raw).get(ME).json()
    assert me["user"] == "acme-maint1" and me["key"]["kind"] == "personal"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--org", "nope", "--name", "x", "--scopes", "ingest"], "No organization 'nope'"),
        (["--org", "acme", "--name", "x", "--scopes", "reviews:write"], "human-only"),
        (
            ["--org", "acme", "--name", "x", "--scopes", "audit:read", "--user", "acme-reviewer1"],
            "never exceeds",
        ),
        (["--org", "acme", "--name", "x", "--scopes", "ingest", "--user", "ghost"], "No user"),
        (
            ["--org", "acme", "--name", "x", "--scopes", "ingest", "--user", "globex-admin"],
            "not a member",
        ),
        (["--org", "acme", "--name", "x", "--scopes", "bogus"], "Unknown scope"),
    ],
)
def test_cli_refusals(acme, globex, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", *args, stdout=StringIO(), stderr=StringIO())
    assert not ApiKey.objects.exists()


def test_actor_labels_for_keys(acme, globex):
    key, _ = api_key_create(actor=acme.actor(), name="ci", scopes=["ingest"])
    from llmops.tenancy.authentication import actor_for_key

    _, raw = api_key_create(actor=acme.actor(), name="ci", scopes=["ingest"])
    principal, actor = actor_for_key(raw)
    assert isinstance(actor, Actor) and actor.is_machine
    assert actor.label.startswith("key ci (llmops_") and actor.kind == "api_key"
    assert actor.author_user_ids() == {acme.users["admin"].pk}
    assert principal.is_authenticated and principal.pk is None


def test_deactivated_user_personal_key_stops_at_once(acme, globex, api_key, api):
    user = acme.users["maint1"]
    client = api(api_key(acme, ["ingest"], user=user))
    assert client.get(ME).status_code == 200  # cached now
    user.is_active = False
    user.save()
    assert client.get(ME).status_code == 401


def test_revocation_from_another_process_takes_effect_within_a_second(acme, globex, api_key, api):
    """Each process remembers a key entry for at most a second (no shared-cache round trip on
    a warm request); a revocation made elsewhere clears the shared cache at once, and this
    process drops its copy when that second is over."""
    from llmops.tenancy import authentication
    from llmops.tenancy.authentication import _cache_key

    raw = api_key(acme, ["audit:read"])
    client = api(raw)
    assert client.get(ME).status_code == 200
    key = ApiKey.objects.get(organization=acme.org)
    # Another process revokes: the row and the shared cache change; this process's memo stays.
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    cache.delete(_cache_key(key.key_hash))
    assert client.get(ME).status_code == 200  # within the second
    digest, (seen_at, entry) = next(iter(authentication._entry_memo.items()))
    authentication._entry_memo[digest] = (seen_at - authentication.ENTRY_MEMO_SECONDS, entry)
    assert client.get(ME).status_code == 401
