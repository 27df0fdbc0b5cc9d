"""Append-only tables on SQLite (`make run`, the default test database), as the PostgreSQL
triggers of the audit and incidents migrations are there.

`AppendOnlyTriggers` describes two triggers on one table: one refuses every UPDATE, the other
every DELETE unless a SQL function of no arguments (`flush_function`) answers true. Each app
registers that function on its SQLite connections (`register`) with its own answer for "a
flush is running"; another program (the sqlite3 shell) has no such function, so a DELETE
there fails too. Django rebuilds a SQLite table for some schema changes, which drops its
triggers: the app's `post_migrate` handler calls `ensure` to put them back.

Imports no app (llmops.common is the floor, docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Callable


class AppendOnlyTriggers:
    def __init__(self, *, table: str, prefix: str, noun: str, flush_function: str) -> None:
        self.table = table
        self.flush_function = flush_function
        self.no_update = f"{prefix}_no_update"
        self.no_delete = f"{prefix}_no_delete"
        self.create = [
            f"""CREATE TRIGGER IF NOT EXISTS {self.no_update} BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, '{noun} are append-only (UPDATE refused)'); END""",
            f"""CREATE TRIGGER IF NOT EXISTS {self.no_delete} BEFORE DELETE ON {table}
WHEN NOT {flush_function}()
BEGIN SELECT RAISE(ABORT, '{noun} are append-only (DELETE refused)'); END""",
        ]
        self.drop = [
            f"DROP TRIGGER IF EXISTS {self.no_update}",
            f"DROP TRIGGER IF EXISTS {self.no_delete}",
        ]

    def install(self, cursor) -> None:
        for sql in self.create:
            cursor.execute(sql)

    def uninstall(self, cursor) -> None:
        for sql in self.drop:
            cursor.execute(sql)

    def register(self, connection, answer: Callable[[], int]) -> None:
        """On a new SQLite connection: define the flush function the DELETE trigger asks."""
        if connection.vendor == "sqlite":
            connection.connection.create_function(self.flush_function, 0, answer)

    def ensure(self, using: str = "default", *, migration: tuple[str, str] | None = None) -> None:
        """post_migrate: the triggers exist on a SQLite database that has the table (and,
        given `migration` (app label, name), only once that migration is applied, so a
        database migrated back before the triggers is left without them)."""
        from django.db import connections
        from django.db.migrations.recorder import MigrationRecorder

        connection = connections[using]
        if connection.vendor != "sqlite":
            return
        if self.table not in connection.introspection.table_names():
            return
        if (
            migration is not None
            and migration not in MigrationRecorder(connection).applied_migrations()
        ):
            return
        with connection.cursor() as cursor:
            self.install(cursor)
