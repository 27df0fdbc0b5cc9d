"""Append-only incident timelines on SQLite too (`make run`), as the PostgreSQL trigger of
migration 0002 does there.

Two triggers refuse UPDATE and DELETE of `incidents_timelineentry` rows. The one DELETE let
through is Django's flush (the test teardown of a transactional test, `manage.py flush`,
`demo --reset`), which on PostgreSQL is a TRUNCATE that the trigger there does not stop
either: the DELETE trigger asks `incidents_timeline_flushing()`, a function this process
registers on each of its SQLite connections, and it answers yes only while
`execute_sql_flush` runs. Another program (the sqlite3 shell) has no such function, so a
DELETE there fails too. ORM deletes of an incident or an organization with a timeline are
refused, as on PostgreSQL (README.md, known limitations).

Django rebuilds a SQLite table for some later schema changes, which drops its triggers:
`post_migrate` puts them back (`ensure_triggers`)."""

from __future__ import annotations

import sys

FLUSH_FUNCTION = "incidents_timeline_flushing"
TABLE = "incidents_timelineentry"
MIGRATION = "0004_timeline_append_only_sqlite"

TRIGGERS = [
    f"""CREATE TRIGGER IF NOT EXISTS incidents_timeline_no_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'timeline entries are append-only (UPDATE refused)'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS incidents_timeline_no_delete BEFORE DELETE ON {TABLE}
WHEN NOT {FLUSH_FUNCTION}()
BEGIN SELECT RAISE(ABORT, 'timeline entries are append-only (DELETE refused)'); END""",
]
DROP = [
    "DROP TRIGGER IF EXISTS incidents_timeline_no_update",
    "DROP TRIGGER IF EXISTS incidents_timeline_no_delete",
]


def install(cursor) -> None:
    for sql in TRIGGERS:
        cursor.execute(sql)


def uninstall(cursor) -> None:
    for sql in DROP:
        cursor.execute(sql)


def flushing() -> int:
    """1 while Django's flush (`DatabaseOperations.execute_sql_flush`) is on this thread's
    stack: SQLite calls this synchronously from the statement the flush executes."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "execute_sql_flush" and frame.f_globals.get(
            "__name__", ""
        ).startswith("django.db.backends."):
            return 1
        frame = frame.f_back
    return 0


def on_connection_created(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function(FLUSH_FUNCTION, 0, flushing)


def ensure_triggers(using: str = "default", **kwargs) -> None:
    """post_migrate: the triggers exist on a SQLite database that has the timeline table."""
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    if TABLE not in connection.introspection.table_names():
        return
    if ("incidents", MIGRATION) not in MigrationRecorder(connection).applied_migrations():
        return  # migrated back before the triggers: leave them off
    with connection.cursor() as cursor:
        install(cursor)
