"""On SQLite (`make run`), triggers refuse UPDATE and DELETE on audit events, as on
PostgreSQL (llmops/audit/appendonly.py: the test flush is the one DELETE let through)."""

from django.db import migrations

from llmops.audit.appendonly import DROP, TRIGGERS


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in TRIGGERS:
            schema_editor.execute(sql, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in DROP:
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_truncate_only_in_a_test_database")]
    operations = [migrations.RunPython(forwards, backwards)]
