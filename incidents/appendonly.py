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

from llmops.common.sqlite_append_only import AppendOnlyTriggers

FLUSH_FUNCTION = "incidents_timeline_flushing"
TABLE = "incidents_timelineentry"
MIGRATION = "0004_timeline_append_only_sqlite"

_triggers = AppendOnlyTriggers(
    table=TABLE, prefix="incidents_timeline", noun="timeline entries", flush_function=FLUSH_FUNCTION
)
TRIGGERS = _triggers.create
DROP = _triggers.drop
install = _triggers.install
uninstall = _triggers.uninstall


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
    _triggers.register(connection, flushing)


def ensure_triggers(using: str = "default", **kwargs) -> None:
    """post_migrate: the triggers exist on a SQLite database that has the timeline table
    (unless it was migrated back before them)."""
    _triggers.ensure(using, migration=("incidents", MIGRATION))
