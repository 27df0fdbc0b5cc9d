"""SQLite (`make run`, the default test database): triggers keep the incident timeline
append-only, as on PostgreSQL; Django's flush (test teardown, `demo --reset`) still empties it."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from incidents import appendonly, services
from incidents.models import Incident, TimelineEntry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sqlite_only():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite triggers; PostgreSQL has its own (tests/incidents/test_postgres.py)")


@pytest.fixture
def incident(acme):
    return services.incident_open(actor=acme.actor("maint1"), title="x", category="other")


def test_update_of_a_timeline_entry_is_refused(incident):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        TimelineEntry.objects.filter(incident=incident).update(body="rewritten")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE incidents_timelineentry SET body = 'x'")
    assert TimelineEntry.objects.get(incident=incident).body.startswith("Opened")


def test_delete_of_a_timeline_entry_is_refused(incident):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        TimelineEntry.objects.filter(incident=incident).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM incidents_timelineentry")
    # Deleting the incident (or its organization) cascades to the timeline: refused too, as
    # on PostgreSQL.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Incident.objects.filter(pk=incident.pk).delete()
    assert TimelineEntry.objects.filter(incident=incident).count() == 1


def test_flush_still_empties_the_timeline(incident):
    assert appendonly.flushing() == 0
    call_command("flush", interactive=False, verbosity=0)
    assert not TimelineEntry.objects.exists() and not Incident.objects.exists()


def test_triggers_come_back_after_migrate(incident):
    with connection.cursor() as cursor:
        appendonly.uninstall(cursor)
    TimelineEntry.objects.filter(incident=incident).update(body="unguarded")
    appendonly.ensure_triggers(using=connection.alias)
    with pytest.raises(DatabaseError), transaction.atomic():
        TimelineEntry.objects.filter(incident=incident).update(body="guarded")


@pytest.mark.django_db(transaction=True)
def test_transactional_test_teardown_flushes_a_timeline(acme):
    """pytest-django empties the database after this test with Django's flush; a refused
    DELETE would fail the teardown."""
    services.incident_open(actor=acme.actor("maint1"), title="x", category="other")
    assert TimelineEntry.objects.exists()
