"""The PostgreSQL ingest path: COPY + ON CONFLICT, NULLS NOT DISTINCT rollup key,
concurrent batches (no deadlock, nothing counted twice)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from llmops.tenancy.actor import Actor
from llmops.traces.models import Generation, HourlyRollup
from llmops.traces.services import generations_ingest

from .conftest import item

pytestmark = pytest.mark.postgres


@pytest.mark.django_db
def test_rollup_key_is_nulls_not_distinct():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'hourlyrollup_unique_key'"
        )
        (indexdef,) = cursor.fetchone()
    assert "NULLS NOT DISTINCT" in indexdef


@pytest.mark.django_db
def test_prompt_less_rows_share_one_rollup_row(acme):
    when = (timezone.now() - timedelta(hours=1)).isoformat()
    for n in range(3):
        body = {"generations": [item(f"n{n}", prompt=None, created_at=when)]}
        generations_ingest(actor=Actor.system_for(acme.org), body=json.dumps(body).encode())
    rows = HourlyRollup.objects.filter(organization=acme.org, prompt_name__isnull=True)
    assert rows.count() == 1
    assert rows.get().count == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_store_each_generation_once(acme):
    when = timezone.now() - timedelta(hours=2)
    batches = []
    for b in range(6):
        # Each batch overlaps its neighbour by half and touches the same rollup keys.
        ids = range(b * 50, b * 50 + 100)
        batches.append(
            [
                item(
                    f"c{i}",
                    created_at=(when + timedelta(minutes=i % 90)).isoformat(),
                    prompt={"name": "support-reply", "version": 1 + i % 3},
                    model="gpt-4o-2024-08-06" if i % 2 else "claude-sonnet-4-5-20250929",
                    latency_ms=100 + i,
                )
                for i in ids
            ]
        )
    results, errors = [], []

    def send(batch):
        try:
            r = generations_ingest(
                actor=Actor.system_for(acme.org),
                body=json.dumps({"generations": batch}).encode(),
            )
            results.append(r)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    stored = Generation.objects.filter(organization=acme.org).count()
    assert stored == 350
    assert sum(r.accepted for r in results) == 350
    assert sum(r.duplicates for r in results) == 600 - 350
    total = sum(HourlyRollup.objects.filter(organization=acme.org).values_list("count", flat=True))
    assert total == 350
