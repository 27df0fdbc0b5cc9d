"""The audit chain: contiguous, linked, verified; tampering named; append-only on PostgreSQL
and SQLite;
concurrent writers never fork it."""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, close_old_connections, connection, transaction

from llmops.audit import appendonly
from llmops.audit.chain import GENESIS, event_hash
from llmops.audit.models import AuditEvent, ChainHead
from llmops.audit.services import audit_record
from llmops.audit.verify import COLUMNS, verify_org
from llmops.tenancy.actor import Actor


def append(world, n, action="test.event", actor=None):
    actor = actor or world.actor()
    with transaction.atomic():
        for i in range(n):
            audit_record(
                actor=actor, action=action, target=("test.thing", i, f"thing {i}"), details={"i": i}
            )


def chain(world):
    return list(AuditEvent.objects.filter(organization=world.org).order_by("seq"))


def verify(*args):
    """Runs audit_verify; returns (exit code, stdout)."""
    out = StringIO()
    try:
        call_command("audit_verify", *args, stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


@contextmanager
def tampering():
    """On PostgreSQL the trigger refuses edits; an attacker who owns the table disables it.
    Inside the test's transaction, so it is rolled back with the test."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Django's foreign keys are deferred: fire their pending checks first, or
            # PostgreSQL refuses to ALTER a table with pending trigger events.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    else:
        # SQLite: the triggers of llmops/audit/appendonly.py, dropped the same way.
        with connection.cursor() as cursor:
            appendonly.uninstall(cursor)
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                appendonly.install(cursor)


def test_appends_are_contiguous_and_linked(acme, globex):
    append(acme, 5)
    append(globex, 2)
    events = chain(acme)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    prev = GENESIS
    for e in events:
        values = {c: getattr(e, c) for c in COLUMNS if c != "id"}
        assert e.prev_hash == prev
        assert e.hash == event_hash(values) and re.fullmatch(r"[0-9a-f]{64}", e.hash)
        prev = e.hash
    head = ChainHead.objects.get(organization=acme.org)
    assert (head.seq, head.hash) == (events[-1].seq, events[-1].hash)
    # Each organization has its own chain starting at 1.
    assert chain(globex)[0].seq == 1 and chain(globex)[0].prev_hash == GENESIS
    last = events[-1]
    assert last.actor_type == "user" and last.actor_id == str(acme.users["admin"].pk)
    assert last.actor_label == "acme-admin" and last.details == {"i": 4}
    assert (last.target_type, last.target_id, last.target_label) == ("test.thing", "4", "thing 4")


@pytest.mark.django_db(transaction=True)
def test_audit_record_needs_the_callers_transaction():
    from llmops.tenancy.models import Organization

    org = Organization.objects.create(slug="solo", name="Solo")
    with pytest.raises(RuntimeError, match="inside the service's transaction"):
        audit_record(actor=Actor.system_for(org), action="test.event")
    assert not AuditEvent.objects.exists()


def test_details_are_stored_as_hashed(acme, globex):
    import datetime
    import decimal
    import uuid

    with transaction.atomic():
        audit_record(
            actor=Actor.system_for(acme.org),
            action="test.values",
            details={
                "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
                "amount": decimal.Decimal("1.50"),
                "id": uuid.UUID(int=7),
                "nested": {"b": [1, 2.5, None, True], "a": "ünïcode ✓"},
                # jsonb keeps numerics: these must read back as they were hashed.
                "big": 1e20,
                "bigger": 1.5e300,
                "tiny": 1e-7,
                "third": 0.30000000000000004,
                "nan": float("nan"),
                "inf": float("-inf"),
                "nul": "a\x00b",
            },
        )
    assert verify_org(acme.org.pk).ok
    stored = AuditEvent.objects.get(organization=acme.org, action="test.values").details
    assert stored["big"] == 10**20 and stored["nan"] == "nan" and stored["nul"] == "ab"


def test_verify_intact_exit_0_and_heads(acme, globex):
    append(acme, 3)
    code, out = verify()
    assert code == 0
    n_acme = AuditEvent.objects.filter(organization=acme.org).count()
    assert f"acme: ok, {n_acme} events" in out and "globex: ok" in out
    code, out = verify("--heads")
    assert code == 0
    for world in (acme, globex):
        head = ChainHead.objects.get(organization=world.org)
        assert f"head {world.org.slug} seq={head.seq} hash={head.hash}" in out
    code, out = verify("--org", "globex")
    assert code == 0 and "acme" not in out
    with pytest.raises(CommandError, match="No organization 'nope'"):
        call_command("audit_verify", "--org", "nope", stdout=StringIO())


def _middle(world):
    events = chain(world)
    return events[len(events) // 2]


def test_edited_event_is_named(acme, globex):
    append(acme, 6)
    target = _middle(acme)
    with tampering():
        AuditEvent.objects.filter(pk=target.pk).update(actor_label="somebody else")
    code, out = verify()
    assert code == 1
    assert f"acme: BROKEN at event #{target.seq}: event #{target.seq} was edited" in out
    assert "globex: ok" in out


def test_edited_details_are_named(acme, globex):
    append(acme, 4)
    target = _middle(acme)
    with tampering():
        AuditEvent.objects.filter(pk=target.pk).update(details={"i": 999})
    code, out = verify("--org", "acme")
    assert code == 1 and f"BROKEN at event #{target.seq}" in out


def test_edit_with_a_recomputed_hash_breaks_the_next_link(acme, globex):
    append(acme, 5)
    target = _middle(acme)
    values = {c: getattr(target, c) for c in COLUMNS if c != "id"}
    values["action"] = "nothing.happened"
    with tampering():
        AuditEvent.objects.filter(pk=target.pk).update(
            action="nothing.happened", hash=event_hash(values)
        )
    code, out = verify()
    assert code == 1
    assert f"event #{target.seq + 1} does not link to #{target.seq}" in out


def test_deleted_middle_event_is_named(acme, globex):
    append(acme, 6)
    target = _middle(acme)
    with tampering():
        AuditEvent.objects.filter(pk=target.pk).delete()
    code, out = verify()
    assert code == 1
    assert f"acme: BROKEN at event #{target.seq}: event #{target.seq} is missing" in out


def test_deleted_tail_event_is_named(acme, globex):
    append(acme, 3)
    last = chain(acme)[-1]
    with tampering():
        AuditEvent.objects.filter(pk=last.pk).delete()
    code, out = verify()
    assert code == 1
    assert f"acme: BROKEN at event #{last.seq}" in out
    assert "events were deleted" in out


def test_deleted_tail_with_the_head_rewritten_shows_in_the_kept_heads(acme, globex):
    """A table owner who also rewrites the chain head defeats the database check; the heads
    an operator kept outside the database show it."""
    append(acme, 3)
    _, kept = verify("--heads", "--org", "acme")
    events = chain(acme)
    with tampering():
        AuditEvent.objects.filter(pk=events[-1].pk).delete()
        ChainHead.objects.filter(organization=acme.org).update(
            seq=events[-2].seq, hash=events[-2].hash
        )
    code, now = verify("--heads", "--org", "acme")
    assert code == 0  # consistent inside the database...
    assert now != kept  # ...but not with the heads kept outside it
    assert f"seq={events[-1].seq} hash={events[-1].hash}" in kept
    assert f"seq={events[-2].seq} hash={events[-2].hash}" in now


def test_reordered_events_are_named(acme, globex):
    append(acme, 6)
    events = chain(acme)
    a, b = events[2], events[3]
    with tampering():
        AuditEvent.objects.filter(pk=a.pk).update(seq=-1)
        AuditEvent.objects.filter(pk=b.pk).update(seq=a.seq)
        AuditEvent.objects.filter(pk=a.pk).update(seq=b.seq)
    code, out = verify()
    assert code == 1
    assert f"acme: BROKEN at event #{a.seq}" in out


@pytest.mark.postgres
def test_trigger_refuses_update_delete_and_truncate(acme, globex):
    append(acme, 2)
    event = chain(acme)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET LOCAL llmops.allow_audit_truncate = 'off'")
            cursor.execute("TRUNCATE audit_auditevent CASCADE")
    event.refresh_from_db()
    assert event.action != "x"
    assert verify()[0] == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_four_concurrent_writers_never_fork_the_chain():
    from tests.factories import make_org

    acme = make_org("acme")
    make_org("globex")
    start = ChainHead.objects.get(organization=acme.org).seq
    barrier = threading.Barrier(4)
    errors: list = []

    def writer(n):
        try:
            barrier.wait()
            for i in range(25):
                with transaction.atomic():
                    audit_record(
                        actor=Actor.system_for(acme.org),
                        action="test.concurrent",
                        details={"w": n, "i": i},
                    )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    seqs = list(
        AuditEvent.objects.filter(organization=acme.org)
        .order_by("seq")
        .values_list("seq", flat=True)
    )
    assert seqs == list(range(1, start + 101))
    report = verify_org(acme.org.pk)
    assert report.ok and report.events == start + 100
    assert verify()[0] == 0


def test_an_append_costs_three_queries(acme, globex, django_assert_num_queries):
    actor = Actor.system_for(acme.org)
    with transaction.atomic():
        with django_assert_num_queries(3):  # lock the head, insert, move the head
            audit_record(actor=actor, action="test.cost")


def test_update_and_delete_are_refused_on_every_database(acme, globex):
    """PostgreSQL's trigger, or SQLite's (`make run`): the log is append-only on both."""
    append(acme, 2)
    event = chain(acme)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(organization=acme.org).delete()
    event.refresh_from_db()
    assert event.action != "x"
    assert AuditEvent.objects.filter(organization=acme.org).count() == len(chain(acme)) > 2
    assert verify()[0] == 0


def test_sqlite_triggers_outlast_a_migration_that_rebuilds_the_table(acme, globex):
    """A SQLite table rebuild drops its triggers; post_migrate puts them back."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cursor:
        appendonly.uninstall(cursor)
    appendonly.ensure_triggers(using="default")
    append(acme, 1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(organization=acme.org).delete()


def test_sqlite_refuses_a_delete_from_a_connection_without_the_flush_function(tmp_path):
    """Another program on the database file (the sqlite3 shell) cannot delete events."""
    import sqlite3

    db = sqlite3.connect(tmp_path / "x.sqlite3")
    db.execute("CREATE TABLE audit_auditevent (id INTEGER PRIMARY KEY, action TEXT)")
    db.execute("INSERT INTO audit_auditevent (action) VALUES ('a')")
    for sql in appendonly.TRIGGERS:
        db.execute(sql)
    for statement in ("DELETE FROM audit_auditevent", "UPDATE audit_auditevent SET action='b'"):
        with pytest.raises(sqlite3.DatabaseError):
            db.execute(statement)
    assert db.execute("SELECT action FROM audit_auditevent").fetchall() == [("a",)]
    db.close()


@pytest.mark.django_db(transaction=True)
def test_the_test_flush_still_empties_the_audit_table():
    """A transactional test's teardown flushes every table, audit events included (on
    PostgreSQL the TRUNCATE is allowed in a test database only, on SQLite the DELETE only
    while Django's flush runs)."""
    from django.core.management import call_command

    from tests.factories import make_org

    make_org("acme")
    assert AuditEvent.objects.exists()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditEvent.objects.exists()


def _load_migration(name):
    import importlib

    return importlib.import_module(f"llmops.audit.migrations.{name}")


@pytest.mark.postgres
def test_the_truncate_switch_works_only_in_a_test_database(acme, globex):
    """`llmops.allow_audit_truncate` is a setting any role may SET: in a production
    database (not named test_...) it opens nothing; in the test database it lets the
    flush truncate."""
    import uuid

    import psycopg

    append(acme, 1)
    # Here (test_...): the switch lets a TRUNCATE through (rolled back with the savepoint).
    assert connection.settings_dict["NAME"].startswith("test_")
    with pytest.raises(RuntimeError, match="roll back"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET LOCAL llmops.allow_audit_truncate = 'on'")
            cursor.execute("TRUNCATE audit_auditevent CASCADE")
            cursor.execute("SELECT count(*) FROM audit_auditevent")
            assert cursor.fetchone()[0] == 0
        raise RuntimeError("roll back")
    assert AuditEvent.objects.filter(organization=acme.org).exists()

    # A database with another name, with the migrations' own trigger SQL.
    params = connection.get_connection_params()
    params = {k: v for k, v in params.items() if k in ("host", "port", "user", "password")}
    name = f"llmops_prod_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(dbname=name, autocommit=True, **params) as prod:
            prod.execute("CREATE TABLE audit_auditevent (id bigint PRIMARY KEY)")
            prod.execute("INSERT INTO audit_auditevent VALUES (1)")
            prod.execute(_load_migration("0002_append_only_trigger").CREATE)
            prod.execute(_load_migration("0004_truncate_only_in_a_test_database").CREATE)
            prod.execute("SET llmops.allow_audit_truncate = 'on'")
            with pytest.raises(psycopg.Error, match="append-only"):
                prod.execute("TRUNCATE audit_auditevent")
            assert prod.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == 1
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


# --- heads kept outside the database: --heads-out and --against -------------------------


def _rewind(world, keep):
    """Delete the newest events down to `keep` and move the chain head back: consistent
    inside the database."""
    events = chain(world)
    with tampering():
        AuditEvent.objects.filter(organization=world.org, seq__gt=keep).delete()
        last = events[keep - 1]
        ChainHead.objects.filter(organization=world.org).update(seq=last.seq, hash=last.hash)


def test_heads_out_writes_json_that_against_accepts_while_nothing_changed(acme, globex, tmp_path):
    import json

    append(acme, 3)
    heads = tmp_path / "heads.json"
    code, _ = verify("--heads-out", str(heads))
    assert code == 0
    document = json.loads(heads.read_text())
    for world in (acme, globex):
        head = ChainHead.objects.get(organization=world.org)
        assert document["heads"][world.org.slug] == {
            "organization_id": world.org.pk,
            "seq": head.seq,
            "hash": head.hash,
        }
    # New events since: still the same chain, grown.
    append(acme, 2)
    append(globex, 1)
    code, out = verify("--against", str(heads))
    assert code == 0, out
    assert "DOES NOT MATCH" not in out


def test_against_catches_a_rewound_head(acme, globex, tmp_path):
    append(acme, 4)
    heads = tmp_path / "heads.json"
    verify("--heads-out", str(heads))
    recorded = ChainHead.objects.get(organization=acme.org).seq
    _rewind(acme, recorded - 2)
    assert verify()[0] == 0, "consistent inside the database"
    code, out = verify("--against", str(heads))
    assert code == 1
    assert f"acme: DOES NOT MATCH {heads}: chain rewound: the head is #{recorded - 2}" in out
    assert f"#{recorded} was recorded" in out
    assert "globex: DOES NOT MATCH" not in out and "globex: ok" in out


def test_against_catches_a_chain_rewritten_past_the_recorded_head(acme, globex, tmp_path):
    append(acme, 3)
    heads = tmp_path / "heads.json"
    verify("--heads-out", str(heads), "--org", "acme")
    recorded = ChainHead.objects.get(organization=acme.org).seq
    # Rewind, then append new events: the head is back at (and past) the recorded number,
    # but the event recorded there is another one.
    _rewind(acme, recorded - 1)
    append(acme, 3, action="test.rewritten")
    assert verify()[0] == 0
    code, out = verify("--against", str(heads))
    assert code == 1
    assert f"acme: DOES NOT MATCH {heads}: event #{recorded} has another hash" in out


def test_against_refuses_a_file_that_is_not_a_heads_file(acme, globex, tmp_path):
    bad = tmp_path / "bad.json"
    for text, message in [
        ("{not json", "bad.json"),
        ('{"heads": {}}', "not an audit heads file"),
        (
            '{"format": "llmops-audit-heads/1", "heads": {"acme": {"seq": "1", "hash": "x"}}}',
            "head of 'acme' needs an integer 'seq'",
        ),
    ]:
        bad.write_text(text)
        with pytest.raises(CommandError, match=message):
            call_command("audit_verify", "--against", str(bad), stdout=StringIO())
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("audit_verify", "--against", str(tmp_path / "none.json"), stdout=StringIO())


def test_against_names_an_organization_that_is_gone(acme, globex, tmp_path):
    import json

    heads = tmp_path / "heads.json"
    heads.write_text(
        json.dumps(
            {
                "format": "llmops-audit-heads/1",
                "heads": {"initech": {"organization_id": 999, "seq": 4, "hash": "ab"}},
            }
        )
    )
    code, out = verify("--against", str(heads))
    assert code == 1 and "initech: DOES NOT MATCH" in out and "the organization is gone" in out
