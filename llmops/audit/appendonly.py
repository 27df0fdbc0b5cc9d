"""Append-only audit events on SQLite too (`make run`), as the PostgreSQL trigger does.

Two triggers refuse UPDATE and DELETE on `audit_auditevent`. The only DELETE let through
is the test flush (a transactional test's teardown empties every table): the DELETE
trigger asks `llmops_audit_flush_allowed()`, a function this process registers on each of
its SQLite connections, which answers yes only while the test settings' flush runs on
that connection. Another program (the sqlite3 shell) has no such function, so its
DELETE fails too. `manage.py demo --reset` wipes the database with `triggers_off()`.

Table rebuilds by later migrations drop a SQLite table's triggers: `post_migrate`
reinstalls them (`ensure_triggers`)."""

from __future__ import annotations

from contextlib import contextmanager

from django.conf import settings

from llmops.common.sqlite_append_only import AppendOnlyTriggers

FLUSH_FUNCTION = "llmops_audit_flush_allowed"

_triggers = AppendOnlyTriggers(
    table="audit_auditevent",
    prefix="audit_event",
    noun="audit events",
    flush_function=FLUSH_FUNCTION,
)
TRIGGERS = _triggers.create
DROP = _triggers.drop
install = _triggers.install
uninstall = _triggers.uninstall


def ensure_triggers(using: str = "default", **kwargs) -> None:
    """post_migrate: the triggers exist on a SQLite database with the audit table."""
    _triggers.ensure(using)


def on_connection_created(sender, connection, **kwargs) -> None:
    """Register the flush function on a new SQLite connection; under the test settings,
    mark the connection while Django's flush runs on it."""
    if connection.vendor != "sqlite":
        return
    _triggers.register(
        connection, lambda: 1 if getattr(connection, "_llmops_audit_flush", False) else 0
    )
    ops = connection.ops
    if not getattr(settings, "TESTING", False) or getattr(ops, "_llmops_flush_marked", False):
        return
    original = ops.execute_sql_flush

    def execute_sql_flush(sql_list):
        connection._llmops_audit_flush = True
        try:
            return original(sql_list)
        finally:
            connection._llmops_audit_flush = False

    ops.execute_sql_flush = execute_sql_flush
    ops._llmops_flush_marked = True


@contextmanager
def triggers_off(connection):
    """For an operator wiping a SQLite database (`demo --reset`): drop the triggers, put
    them back afterwards."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        uninstall(cursor)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            install(cursor)
