"""On SQLite, triggers refuse UPDATE and DELETE of timeline entries too (PostgreSQL has its
own since 0002); Django's flush may still empty the table (the DELETE trigger asks the
`incidents_timeline_flushing()` function incidents/appendonly.py registers)."""

from django.db import migrations

CREATE = [
    """CREATE TRIGGER IF NOT EXISTS incidents_timeline_no_update
BEFORE UPDATE ON incidents_timelineentry
BEGIN SELECT RAISE(ABORT, 'timeline entries are append-only (UPDATE refused)'); END""",
    """CREATE TRIGGER IF NOT EXISTS incidents_timeline_no_delete
BEFORE DELETE ON incidents_timelineentry
WHEN NOT incidents_timeline_flushing()
BEGIN SELECT RAISE(ABORT, 'timeline entries are append-only (DELETE refused)'); END""",
]
DROP = [
    "DROP TRIGGER IF EXISTS incidents_timeline_no_update",
    "DROP TRIGGER IF EXISTS incidents_timeline_no_delete",
]


def _run(schema_editor, statements):
    if schema_editor.connection.vendor == "sqlite":
        for sql in statements:
            schema_editor.execute(sql, params=None)


def forwards(apps, schema_editor):
    _run(schema_editor, CREATE)


def backwards(apps, schema_editor):
    _run(schema_editor, DROP)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0003_incident_peak_severity_eval_case_link")]
    operations = [migrations.RunPython(forwards, backwards)]
