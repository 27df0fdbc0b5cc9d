"""On PostgreSQL, a trigger refuses UPDATE and DELETE of timeline entries (append-only),
like the audit log; the model's save() and delete() refuse them on every database."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION incidents_timeline_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'timeline entries are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS incidents_timeline_append_only ON incidents_timelineentry;
CREATE TRIGGER incidents_timeline_append_only BEFORE UPDATE OR DELETE ON incidents_timelineentry
  FOR EACH ROW EXECUTE FUNCTION incidents_timeline_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS incidents_timeline_append_only ON incidents_timelineentry;
DROP FUNCTION IF EXISTS incidents_timeline_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)  # no placeholders: the body has a literal %


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
