"""Rollup selectors: percentiles within a few percent, summaries, series, retention."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from llmops.tenancy.actor import Actor
from llmops.traces import histogram, selectors
from llmops.traces.models import Generation, HourlyRollup
from llmops.traces.services import generation_pin, generations_ingest, generations_purge_expired

from .conftest import item

pytestmark = pytest.mark.django_db


def ingest(world, items):
    result = generations_ingest(
        actor=Actor.system_for(world.org), body=json.dumps({"generations": items}).encode()
    )
    assert result.rejected == 0, result.errors
    return result


def exact(values, q):
    values = sorted(values)
    import math

    return values[max(1, math.ceil(q * len(values))) - 1]


def test_histogram_percentiles_are_within_three_percent():
    rng = random.Random(7)
    values = [rng.lognormvariate(6, 0.8) for _ in range(5000)]
    hist: dict = {}
    for v in values:
        key = str(histogram.bucket_of(v))
        hist[key] = hist.get(key, 0) + 1
    for q, got in zip(
        (0.5, 0.95, 0.99), histogram.percentiles(hist, (0.5, 0.95, 0.99)), strict=True
    ):
        want = exact(values, q)
        assert abs(got - want) / want < 0.03, (q, got, want)
    assert histogram.percentiles({}, (0.5,)) == [None]
    assert histogram.bucket_of(0) == 0 and histogram.bucket_value(0) == 0.0


def test_rollup_summary_matches_raw_rows(acme):
    rng = random.Random(3)
    now = timezone.now() - timedelta(hours=1)
    items = [
        item(
            f"g{i}",
            created_at=(now - timedelta(minutes=rng.randint(0, 600))).isoformat(),
            latency_ms=int(rng.lognormvariate(6.5, 0.5)),
            status="error" if rng.random() < 0.1 else "ok",
            cost_usd=round(rng.random() / 100, 6),
            prompt={"name": "support-reply", "version": 1 + i % 2},
        )
        for i in range(600)
    ]
    ingest(acme, items)
    s = selectors.rollup_summary(org=acme.org, since=now - timedelta(days=1))
    raw = list(Generation.objects.filter(organization=acme.org))
    assert s["count"] == 600
    assert s["errors"] == sum(g.status == "error" for g in raw)
    assert s["cost_total"] == sum(g.cost_usd for g in raw)
    latencies = [g.latency_ms for g in raw]
    for key, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        assert abs(s[key] - exact(latencies, q)) / exact(latencies, q) < 0.03
    v1 = selectors.rollup_summary(
        org=acme.org, since=now - timedelta(days=1), prompt_name="support-reply", prompt_version=1
    )
    assert v1["count"] == 300
    assert (
        selectors.rollup_summary(org=acme.org, since=now - timedelta(days=1), model_id="nope")[
            "count"
        ]
        == 0
    )


def test_rollup_series_per_hour_and_day(acme):
    base = timezone.now().replace(minute=10, second=0, microsecond=0) - timedelta(hours=3)
    ingest(acme, [item(f"a{i}", created_at=base.isoformat()) for i in range(3)])
    ingest(
        acme, [item(f"b{i}", created_at=(base + timedelta(hours=2)).isoformat()) for i in range(2)]
    )
    series = selectors.rollup_series(org=acme.org, since=base - timedelta(hours=1), step="hour")
    counts = [s["count"] for s in series]
    assert counts[:4] == [0, 3, 0, 2]
    days = selectors.rollup_series(org=acme.org, since=base - timedelta(days=2), step="day")
    assert sum(s["count"] for s in days) == 5


def test_retention_deletes_old_rows_in_batches_and_keeps_evidence_and_rollups(acme, globex):
    old = timezone.now() - timedelta(days=100)
    ingest(
        acme,
        [item(f"old{i}", created_at=(old + timedelta(minutes=i)).isoformat()) for i in range(7)],
    )
    ingest(acme, [item("fresh")])
    ingest(globex, [item(f"gold{i}", created_at=old.isoformat()) for i in range(2)])
    pinned = Generation.objects.get(organization=acme.org, external_id="old3")
    assert generation_pin(org=acme.org, generation_ids=[pinned.pk], reason="reviewed") == 1
    # Pinning another organization's row does nothing.
    other = Generation.objects.get(organization=globex.org, external_id="gold0")
    assert generation_pin(org=acme.org, generation_ids=[other.pk], reason="x") == 0
    rollup_total = sum(
        HourlyRollup.objects.filter(organization=acme.org).values_list("count", flat=True)
    )
    deleted = generations_purge_expired(org=acme.org, batch_size=2)
    assert deleted == 6
    left = set(
        Generation.objects.filter(organization=acme.org).values_list("external_id", flat=True)
    )
    assert left == {"old3", "fresh"}
    assert Generation.objects.filter(organization=globex.org).count() == 2
    assert (
        sum(HourlyRollup.objects.filter(organization=acme.org).values_list("count", flat=True))
        == rollup_total
    )


def test_retention_task_uses_each_org_setting(acme, globex):
    from llmops.traces.tasks import purge_expired

    when = timezone.now() - timedelta(days=40)
    ingest(acme, [item("a", created_at=when.isoformat())])
    ingest(globex, [item("b", created_at=when.isoformat())])
    acme.org.retention_days = 30
    acme.org.save()
    assert purge_expired() == 1
    assert not Generation.objects.filter(organization=acme.org).exists()
    assert Generation.objects.filter(organization=globex.org).exists()
