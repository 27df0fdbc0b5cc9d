"""llmops/common/sqlite_append_only.py: the SQLite append-only triggers the audit log and
the incident timeline share."""

from __future__ import annotations

import sqlite3

import pytest

from llmops.common.sqlite_append_only import AppendOnlyTriggers

GUARD = AppendOnlyTriggers(table="t", prefix="t_guard", noun="rows", flush_function="t_flushing")


@pytest.fixture
def db(tmp_path):
    db = sqlite3.connect(tmp_path / "x.sqlite3", isolation_level=None)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.execute("INSERT INTO t (v) VALUES ('a')")
    yield db
    db.close()


def test_update_and_delete_are_refused_and_inserts_allowed(db):
    GUARD.install(db.cursor())
    db.create_function("t_flushing", 0, lambda: 0)
    with pytest.raises(sqlite3.DatabaseError, match=r"rows are append-only \(UPDATE refused\)"):
        db.execute("UPDATE t SET v = 'b'")
    with pytest.raises(sqlite3.DatabaseError, match=r"rows are append-only \(DELETE refused\)"):
        db.execute("DELETE FROM t")
    db.execute("INSERT INTO t (v) VALUES ('c')")
    assert db.execute("SELECT v FROM t ORDER BY id").fetchall() == [("a",), ("c",)]


def test_delete_passes_only_while_the_flush_function_says_so(db):
    GUARD.install(db.cursor())
    with pytest.raises(sqlite3.DatabaseError):  # no such function: refused as well
        db.execute("DELETE FROM t")
    db.create_function("t_flushing", 0, lambda: 1)
    db.execute("DELETE FROM t")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_uninstall_drops_both_triggers(db):
    GUARD.install(db.cursor())
    GUARD.uninstall(db.cursor())
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert names == set()
    db.execute("UPDATE t SET v = 'b'")


def test_the_apps_use_it():
    from incidents import appendonly as incidents
    from llmops.audit import appendonly as audit

    assert any("incidents_timelineentry" in sql for sql in incidents.TRIGGERS)
    assert any("audit_auditevent" in sql for sql in audit.TRIGGERS)
    assert incidents._triggers.flush_function == incidents.FLUSH_FUNCTION
    assert audit._triggers.flush_function == audit.FLUSH_FUNCTION
