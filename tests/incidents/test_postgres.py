"""PostgreSQL: a flood of concurrent alerts with one dedupe key makes one incident (advisory
lock per organization and key); concurrent openings get distinct sequential numbers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from rest_framework.test import APIClient

from incidents.models import Incident, TimelineEntry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

POSTS = 240
THREADS = 24


def _post(raw, body):
    try:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        response = client.post("/api/v1/incidents/alerts", body, format="json")
        return response.status_code, response.json().get("number")
    finally:
        connection.close()


def test_alert_flood_makes_one_incident(acme, api_key):
    raw = api_key(acme, ["incidents:write"])
    body = {"dedupe_key": "flood", "title": "Flood", "category": "outage", "severity": "SEV2"}
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda _: _post(raw, body), range(POSTS)))
    statuses = [s for s, _ in results]
    assert statuses.count(201) == 1 and statuses.count(200) == POSTS - 1, set(statuses)
    assert {n for _, n in results} == {1}
    incident = Incident.objects.get(organization=acme.org)
    assert incident.alert_count == POSTS
    assert TimelineEntry.objects.filter(incident=incident, kind="alert").count() == POSTS - 1


def test_concurrent_keys_get_distinct_sequential_numbers(acme, api_key):
    raw = api_key(acme, ["incidents:write"])
    with ThreadPoolExecutor(16) as pool:
        results = list(
            pool.map(
                lambda i: _post(
                    raw, {"dedupe_key": f"k{i % 40}", "title": "t", "category": "other"}
                ),
                range(160),
            )
        )
    assert [s for s, _ in results].count(201) == 40
    numbers = sorted(
        Incident.objects.filter(organization=acme.org).values_list("number", flat=True)
    )
    assert numbers == list(range(1, 41))


def test_timeline_update_refused_by_trigger(acme):
    from django.db import DatabaseError, transaction

    from incidents import services

    incident = services.incident_open(actor=acme.actor("maint1"), title="x", category="other")
    with pytest.raises(DatabaseError), transaction.atomic():
        TimelineEntry.objects.filter(incident=incident).update(body="rewritten")
