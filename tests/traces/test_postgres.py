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
from llmops.traces import backends
from llmops.traces.models import DailyRollup, DailyUserRollup, Generation, HourlyRollup
from llmops.traces.services import generations_ingest, user_rollups_compact

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


def _rollup_rows(org):
    """Every rollup row of the organization, without ids, in a fixed order."""
    period_fields = ("prompt_name", "prompt_version", "model_id", "count", "errors")
    sums = ("input_tokens", "output_tokens", "cost_usd", "latency_count", "latency_sum_ms")
    out = {}
    for model, period in ((HourlyRollup, "hour"), (DailyRollup, "day")):
        out[model.__name__] = sorted(
            model.objects.filter(organization=org).values_list(
                *period_fields, period, *sums, "latency_hist"
            ),
            key=repr,
        )
    out["users"] = sorted(
        DailyUserRollup.objects.filter(organization=org).values_list(
            "user_ref", "day", "count", "errors", "input_tokens", "output_tokens", "cost_usd"
        ),
        key=repr,
    )
    return out


@pytest.mark.django_db
def test_postgres_and_portable_backends_leave_the_same_rows(acme, globex, monkeypatch):
    """The same batches through each implementation of the hot writes (the portable one forced
    for globex) give equal rollups, per-user rows before and after compaction, and equal
    accepted/duplicate counts, including a retried batch that is half duplicates."""
    now = timezone.now() - timedelta(hours=1)
    batches = [
        [
            item(
                f"e{i}",
                created_at=(now - timedelta(minutes=37 * i)).isoformat(),
                prompt=None if i % 5 == 0 else {"name": "support-reply", "version": 1 + i % 2},
                model="gpt-4o-2024-08-06" if i % 3 else "claude-sonnet-4-5-20250929",
                status="error" if i % 7 == 0 else "ok",
                latency_ms=None if i % 11 == 0 else 0.5 + 13 * i,
                cost_usd=None if i % 4 == 0 else i / 1000,
                user_ref=f"u{i % 6}" if i % 3 else "",
            )
            for i in range(start, start + 60)
        ]
        for start in (0, 30, 90)
    ]
    portable = backends.PortableBackend()
    assert isinstance(backends.current(), backends.PostgresBackend)
    results = {}
    for world in (acme, globex):
        if world is globex:
            monkeypatch.setattr(backends, "current", lambda: portable)
        results[world.org.pk] = [
            generations_ingest(
                actor=Actor.system_for(world.org),
                body=json.dumps({"generations": batch}).encode(),
            ).as_dict()
            for batch in batches
        ]
    assert results[acme.org.pk] == results[globex.org.pk]
    assert [r["duplicates"] for r in results[acme.org.pk]] == [0, 30, 0]
    before = _rollup_rows(acme.org)
    assert before["HourlyRollup"] and before["DailyRollup"] and before["users"]
    assert before == _rollup_rows(globex.org)
    monkeypatch.undo()
    assert user_rollups_compact(org=acme.org) > 0
    monkeypatch.setattr(backends, "current", lambda: portable)
    assert user_rollups_compact(org=globex.org) > 0
    assert _rollup_rows(acme.org) == _rollup_rows(globex.org)
