"""The audit log page, its CSV export, and `GET /api/v1/audit-events`."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import transaction
from django.utils import timezone

from llmops.audit.models import AuditEvent
from llmops.audit.services import audit_record
from llmops.tenancy.actor import Actor

LOG = "/o/acme/audit/"
API = "/api/v1/audit-events"


def record(world, action, label="thing", who="admin", details=None):
    actor = world.actor(who) if who else Actor.system_for(world.org)
    with transaction.atomic():
        return audit_record(
            actor=actor, action=action, target=("test.thing", 1, label), details=details or {}
        )


def csv_rows(response):
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_csv_export_makes_formula_cells_inert(acme, globex, login):
    for label in ('=HYPERLINK("http://evil")', "+1+1", "-2", "@SUM(A1)", "plain"):
        record(acme, "test.csv", label=label, details={"note": "=cmd|' /C calc'!A0"})
    response = login(acme.users["admin"]).get(LOG, {"format": "csv", "action": "test.csv"})
    rows = csv_rows(response)
    header, data = rows[0], rows[1:]
    assert header[:4] == ["seq", "time", "actor", "action"]
    targets = [r[header.index("target")] for r in data]
    assert sorted(targets) == sorted(
        ['\'=HYPERLINK("http://evil")', "'+1+1", "'-2", "'@SUM(A1)", "plain"]
    )
    for row in data:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell
    assert 'filename="audit-acme.csv"' in response["Content-Disposition"]


def test_csv_and_page_filters(acme, globex, login):
    record(acme, "member.added", label="alice", who="admin")
    record(acme, "team.created", label="owners", who="admin")
    record(acme, "team.created", label="reviewers", who=None)
    old = record(acme, "prompt.approved", label="summarise", who="admin")
    record(globex, "team.created", label="globex-team")
    client = login(acme.users["admin"])

    def exported(**params):
        rows = csv_rows(client.get(LOG, {"format": "csv", **params}))
        return [(r[3], r[6]) for r in rows[1:]]

    assert exported(action="team.created") == [
        ("team.created", "reviewers"),
        ("team.created", "owners"),
    ]
    assert exported(actor="system", action="team.created") == [("team.created", "reviewers")]
    assert ("team.created", "owners") not in exported(actor="system")
    assert exported(target="summarise") == [("prompt.approved", "summarise")]
    assert exported(target="test.thing", action="member.added") == [("member.added", "alice")]
    today = timezone.now().date()
    assert len(exported(since=str(today), until=str(today))) >= 4
    assert exported(until=str(today - timedelta(days=1))) == []
    assert exported(since=str(today + timedelta(days=1))) == []
    assert all("globex" not in target for _, target in exported())
    # The page applies the same filters.
    page = client.get(LOG, {"action": "team.created"}).content.decode()
    assert "owners" in page and "reviewers" in page and "summarise" not in page
    assert old.seq > 0


def test_log_page_paginates_and_has_an_empty_state(acme, globex, login):
    with transaction.atomic():
        for i in range(60):
            audit_record(actor=acme.actor(), action="test.page", target=("t", i, f"item-{i:03d}"))
    client = login(acme.users["admin"])
    first = client.get(LOG, {"action": "test.page"}).content.decode()
    second = client.get(LOG, {"action": "test.page", "page": 2}).content.decode()
    assert "item-059" in first and "item-010" in first and "item-009" not in first
    assert "item-009" in second and "item-000" in second and "item-059" not in second
    empty = client.get(LOG, {"action": "nothing.matches"}).content.decode()
    assert "No audit events match these filters." in empty


def test_log_page_roles(acme, globex, login):
    assert login(acme.users["viewer"]).get(LOG).status_code == 200
    assert login(acme.users["maint1"]).get(LOG).status_code == 200
    assert login(acme.users["reviewer1"]).get(LOG).status_code == 403
    assert login(acme.users["reviewer1"]).get(LOG, {"format": "csv"}).status_code == 403


# --- API -------------------------------------------------------------------------------


@pytest.fixture
def reader(acme, api_key, api):
    return api(api_key(acme, ["audit:read"]))


def test_api_lists_newest_first_with_cursor_pagination(acme, globex, reader):
    with transaction.atomic():
        for i in range(120):
            audit_record(actor=acme.actor(), action="test.api", details={"i": i})
    record(globex, "test.api")
    seen = []
    url = f"{API}?action=test.api&limit=50"
    pages = 0
    while url:
        body = reader.get(url).json()
        assert set(body) == {"results", "next"}
        seen.extend(e["seq"] for e in body["results"])
        url = body["next"]
        pages += 1
    assert pages == 3
    assert len(seen) == 120 and len(set(seen)) == 120
    assert seen == sorted(seen, reverse=True)
    first = reader.get(f"{API}?action=test.api&limit=1").json()["results"][0]
    assert {"seq", "created_at", "actor_label", "action", "target_type", "target_id",
            "target_label", "details", "prev_hash", "hash"} <= set(first)  # fmt: skip
    assert first["details"] == {"i": 119}
    cursor = parse_qs(urlsplit(reader.get(f"{API}?limit=1").json()["next"]).query)["cursor"]
    assert cursor


def test_api_filters_action_prefix_and_since(acme, globex, reader):
    record(acme, "demo.created")
    record(acme, "demo.deleted")
    record(acme, "other.added")
    actions = [e["action"] for e in reader.get(API, {"action": "demo."}).json()["results"]]
    assert actions == ["demo.deleted", "demo.created"]
    assert [e["action"] for e in reader.get(API, {"action": "other.added"}).json()["results"]] == [
        "other.added"
    ]
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert reader.get(API, {"since": future}).json()["results"] == []
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    assert len(reader.get(API, {"since": past}).json()["results"]) >= 3
    assert reader.get(API, {"since": "2026-01-31T00:00:00Z"}).status_code == 200


def test_api_bad_since_is_400_naming_the_field(acme, globex, reader):
    response = reader.get(API, {"since": "last tuesday"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["message"].startswith("since:")
    assert "since" in error["details"]["fields"]


def test_api_needs_the_scope_and_the_role(acme, globex, api_key, api):
    assert api(api_key(acme, ["ingest"])).get(API).status_code == 403
    reviewer_key = None
    from llmops.common.errors import PolicyViolation

    with pytest.raises(PolicyViolation):
        reviewer_key = api_key(acme, ["audit:read"], user=acme.users["reviewer1"])
    assert reviewer_key is None
    assert api(api_key(acme, ["audit:read"], user=acme.users["viewer"])).get(API).status_code == 200
    assert api().get(API).status_code == 401


def test_api_only_shows_the_keys_organization(acme, globex, api_key, api):
    record(acme, "test.mine", label="acme-only")
    record(globex, "test.theirs", label="globex-only")
    body = api(api_key(globex, ["audit:read"])).get(API).content.decode()
    assert "globex-only" in body and "acme-only" not in body
    assert not AuditEvent.objects.filter(organization=globex.org, target_label="acme-only").exists()
