"""Only a test database's flush may TRUNCATE the audit table.

Migration 0003 let any session that sets `llmops.allow_audit_truncate=on` truncate: a
custom setting that any role may SET, so anyone with the TRUNCATE privilege could empty
the log. The trigger now also requires the database to be a test database, named
`test_...` (the name Django's test runner gives it), which a session cannot change: a role
that may TRUNCATE a production database named anything else cannot satisfy it. (Renaming a
database needs its owner, with nobody connected; an owner could also drop the trigger,
which is what `audit_verify --against` catches.) Do not name a production database
`test_...`.

On SQLite the same rule is kept by triggers too (append-only; the test flush there is a
DELETE, allowed only while the test settings mark the connection)."""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'TRUNCATE'
     AND current_setting('llmops.allow_audit_truncate', true) = 'on'
     AND current_database() LIKE 'test\_%' THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""
PREVIOUS = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' AND current_setting('llmops.allow_audit_truncate', true) = 'on' THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PREVIOUS, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_truncate_only_in_test_flush")]
    operations = [migrations.RunPython(forwards, backwards)]
