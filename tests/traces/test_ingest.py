"""Batch ingest: dedupe, per-item errors, pricing, rollups, receivers."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from llmops.traces import histogram, receivers, selectors, services, tasks
from llmops.traces.models import DailyRollup, DailyUserRollup, Generation, HourlyRollup

from .conftest import item

pytestmark = pytest.mark.django_db


def test_batch_stores_items_and_answers_counts(acme, ingest_key, post_batch):
    r = post_batch(ingest_key, [item("a"), item("b", status="error", error="timeout")])
    assert r.status_code == 200, r.content
    assert r.json() == {"accepted": 2, "duplicates": 0, "rejected": 0, "sampled": 0, "errors": []}
    g = Generation.objects.get(organization=acme.org, external_id="b")
    assert g.status == "error" and g.error == "timeout"
    assert g.prompt_name == "support-reply" and g.prompt_version == 2
    assert g.input == [{"role": "user", "content": "Where is my parcel?"}]


def test_retry_is_idempotent_and_duplicates_are_counted(acme, ingest_key, post_batch):
    batch = [item("a"), item("b")]
    assert post_batch(ingest_key, batch).json()["accepted"] == 2
    again = post_batch(ingest_key, batch + [item("c"), item("c")]).json()
    assert again["accepted"] == 1
    assert again["duplicates"] == 3
    assert again["errors"] == []
    assert Generation.objects.filter(organization=acme.org).count() == 3
    # Rollups count each stored generation once.
    assert (
        sum(HourlyRollup.objects.filter(organization=acme.org).values_list("count", flat=True)) == 3
    )


def test_same_external_id_in_two_organizations(acme, globex, api_key, post_batch):
    post_batch(api_key(acme, ["ingest"]), [item("same")])
    r = post_batch(api_key(globex, ["ingest"]), [item("same")]).json()
    assert r["accepted"] == 1
    assert Generation.objects.filter(external_id="same").count() == 2


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ({"model": "m", "input": 1, "output": "x"}, "external_id"),
        ({"external_id": "x", "input": 1, "output": "x"}, "model"),
        ({"external_id": "x", "model": "m", "output": "x"}, "input"),
        ({"external_id": "x", "model": "m", "input": 1}, "output"),
        (item("x", input_tokens="12"), "input_tokens"),
        (item("x", input_tokens=-5), "input_tokens"),
        (item("x", output_tokens=-1), "output_tokens"),
        (item("x", latency_ms=-1), "latency_ms"),
        (item("x", cost_usd=-0.5), "cost_usd"),
        (item("x", prompt={"name": "support-reply"}), "version"),
        (item("x", prompt={"name": "support-reply", "version": "two"}), "prompt.version"),
        (item("x", status="weird"), "status"),
        (item("x", tags="not-a-list"), "tags"),
        (item("x", created_at="yesterday"), "created_at"),
        ("just a string", "object"),
    ],
)
def test_bad_items_are_rejected_with_index(acme, ingest_key, post_batch, bad, fragment):
    r = post_batch(ingest_key, [item("ok-1"), bad, item("ok-2")])
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 2 and body["rejected"] == 1
    (error,) = body["errors"]
    assert error["index"] == 1
    assert fragment in error["message"]
    assert Generation.objects.filter(organization=acme.org).count() == 2


def test_future_timestamp_beyond_skew_is_rejected(acme, ingest_key, post_batch):
    soon = (timezone.now() + timedelta(minutes=2)).isoformat()
    later = (timezone.now() + timedelta(hours=2)).isoformat()
    body = post_batch(ingest_key, [item("a", created_at=soon), item("b", created_at=later)]).json()
    assert body["accepted"] == 1
    assert body["errors"][0]["index"] == 1
    assert body["errors"][0]["external_id"] == "b"
    assert "future" in body["errors"][0]["message"]


def test_oversize_item_is_rejected(acme, ingest_key, post_batch):
    huge = item("big", output="x" * (600 * 1024))
    body = post_batch(ingest_key, [huge, item("small")]).json()
    assert body["accepted"] == 1 and body["rejected"] == 1
    assert "at most" in body["errors"][0]["message"]


def test_malformed_json_is_400_with_error_format(ingest_key, post_batch):
    r = post_batch(ingest_key, b'{"generations": [ {"external_id": "a",')
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid"
    assert "JSON" in r.json()["error"]["message"]


def test_wrong_envelope_is_400(ingest_key, post_batch):
    r = post_batch(ingest_key, b'{"items": []}')
    assert r.status_code == 400
    assert "generations" in r.json()["error"]["message"]


def test_too_many_items_is_413_and_stores_nothing(acme, ingest_key, post_batch):
    r = post_batch(ingest_key, [item(f"i{i}") for i in range(1001)])
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"
    assert not Generation.objects.filter(organization=acme.org).exists()


def test_body_over_5_mb_is_413(ingest_key, post_batch):
    items = [item(f"i{i}", output="y" * 400_000) for i in range(14)]
    r = post_batch(ingest_key, items)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"


def test_body_between_2_5_and_5_mb_is_accepted(acme, ingest_key, post_batch):
    items = [item(f"i{i}", output="y" * 400_000) for i in range(9)]  # ~3.6 MB
    r = post_batch(ingest_key, items)
    assert r.status_code == 200, r.content[:300]
    assert r.json()["accepted"] == 9


def test_key_without_ingest_scope_is_403(acme, api_key, post_batch):
    r = post_batch(api_key(acme, ["prompts:read"]), [item("a")])
    assert r.status_code == 403
    assert not Generation.objects.exists()


def test_no_key_is_401(post_batch):
    r = post_batch(None, [item("a")])
    assert r.status_code == 401


def test_cost_from_catalog_prices_when_not_sent(acme, ingest_key, post_batch):
    from llmops.catalog.models import ModelVersion

    mv = ModelVersion.objects.create(
        organization=acme.org,
        provider="anthropic",
        model_id="claude-sonnet-4-5-20250929",
        input_price_per_mtok=Decimal("3"),
        output_price_per_mtok=Decimal("15"),
        status="approved",
    )
    post_batch(
        ingest_key,
        [
            item("priced"),
            item("reported", cost_usd=0.5),
            item("unknown-model", model="some-other-model"),
        ],
    )
    priced = Generation.objects.get(external_id="priced")
    # 1000 * 3 / 1e6 + 200 * 15 / 1e6 = 0.003 + 0.003
    assert priced.cost_usd == Decimal("0.006")
    assert priced.cost_source == "catalog"
    assert priced.model_version_id == mv.pk
    reported = Generation.objects.get(external_id="reported")
    assert reported.cost_usd == Decimal("0.5") and reported.cost_source == "reported"
    unknown = Generation.objects.get(external_id="unknown-model")
    assert unknown.cost_usd is None and unknown.model_version_id is None


def test_another_orgs_catalog_does_not_price(acme, globex, ingest_key, post_batch):
    from llmops.catalog.models import ModelVersion

    ModelVersion.objects.create(
        organization=globex.org,
        provider="anthropic",
        model_id="claude-sonnet-4-5-20250929",
        input_price_per_mtok=Decimal("3"),
        output_price_per_mtok=Decimal("15"),
    )
    post_batch(ingest_key, [item("a")])
    g = Generation.objects.get(external_id="a")
    assert g.cost_usd is None and g.model_version_id is None


def test_rollups_equal_aggregates_of_raw_rows(acme, ingest_key, post_batch):
    now = timezone.now() - timedelta(hours=1)
    items = []
    for i in range(120):
        items.append(
            item(
                f"g{i}",
                created_at=(now - timedelta(hours=i % 5)).isoformat(),
                prompt={"name": "support-reply", "version": 1 + i % 3} if i % 7 else None,
                model="gpt-4o-2024-08-06" if i % 2 else "claude-sonnet-4-5-20250929",
                status="error" if i % 11 == 0 else "ok",
                latency_ms=50 + (i * 37) % 3000,
                input_tokens=100 + i,
                output_tokens=10 + i,
                cost_usd=0.001 * (i % 4),
                user_ref=f"user-{i % 6}",
            )
        )
    items = [{k: v for k, v in it.items() if v is not None} for it in items]
    for chunk in (items[:50], items[50:]):
        assert post_batch(ingest_key, chunk).json()["rejected"] == 0
    raw = Generation.objects.filter(organization=acme.org)
    rollups = HourlyRollup.objects.filter(organization=acme.org)
    keys = {(g.prompt_name, g.prompt_version, g.model_id) for g in raw}
    assert len(keys) == 8  # 3 versions + no prompt, times 2 models
    for name, version, model in keys:
        rows = [
            g
            for g in raw
            if (g.prompt_name, g.prompt_version, g.model_id) == (name, version, model)
        ]
        rs = [
            r
            for r in rollups
            if (r.prompt_name, r.prompt_version, r.model_id) == (name, version, model)
        ]
        assert sum(r.count for r in rs) == len(rows)
        assert sum(r.errors for r in rs) == sum(g.status == "error" for g in rows)
        assert sum(r.input_tokens for r in rs) == sum(g.input_tokens for g in rows)
        assert sum(r.output_tokens for r in rs) == sum(g.output_tokens for g in rows)
        assert sum(r.cost_usd for r in rs) == sum(g.cost_usd for g in rows)
        assert sum(r.latency_sum_ms for r in rs) == sum(g.latency_ms for g in rows)
        assert sum(sum(r.latency_hist.values()) for r in rs) == len(rows)
    # Daily rollups hold the same sums, histograms included.
    days = DailyRollup.objects.filter(organization=acme.org)
    assert sum(d.count for d in days) == 120
    assert sum(d.cost_usd for d in days) == sum(g.cost_usd for g in raw)
    for key in {(d.prompt_name, d.prompt_version, d.model_id, d.day) for d in days}:
        hours = [
            r
            for r in rollups
            if (r.prompt_name, r.prompt_version, r.model_id, r.hour.date()) == key
        ]
        (day,) = [d for d in days if (d.prompt_name, d.prompt_version, d.model_id, d.day) == key]
        merged: dict = {}
        for r in hours:
            for k, v in r.latency_hist.items():
                merged[k] = merged.get(k, 0) + v
        assert day.latency_hist == merged
        assert day.count == sum(r.count for r in hours)
    # The unique key treats "no prompt" as one key per model and hour.
    none_rows = rollups.filter(prompt_name__isnull=True)
    assert none_rows.count() == len({(r.model_id, r.hour) for r in none_rows})
    # Per user and day.
    users = DailyUserRollup.objects.filter(organization=acme.org)
    assert sum(u.count for u in users) == 120
    assert sum(u.cost_usd for u in users) == sum(g.cost_usd for g in raw)


def test_rollup_histograms_hold_each_rows_bucket(acme, ingest_key, post_batch):
    """The bucket the database computes (PostgreSQL) is histogram.bucket_of of each row."""
    now = timezone.now() - timedelta(minutes=30)
    latencies = [0, 0.4, 1, 1.04, 1.05, 2, 19, 20, 21, 99, 1000, 1050, 12345, 86_400_000, None]
    items = []
    for i, latency in enumerate(latencies):
        it = item(f"h{i}", created_at=now.isoformat(), latency_ms=latency)
        if latency is None:
            del it["latency_ms"]
        items.append(it)
    # Split so the second batch merges into histograms the first one wrote.
    assert post_batch(ingest_key, items[:7]).json()["accepted"] == 7
    assert post_batch(ingest_key, items[7:]).json()["accepted"] == 8
    expected: dict[str, int] = {}
    for g in Generation.objects.filter(organization=acme.org):
        if g.latency_ms is not None:
            key = str(histogram.bucket_of(g.latency_ms))
            expected[key] = expected.get(key, 0) + 1
    (hour,) = HourlyRollup.objects.filter(organization=acme.org)
    (day,) = DailyRollup.objects.filter(organization=acme.org)
    assert hour.latency_hist == expected == day.latency_hist
    assert hour.count == 15 and hour.latency_count == 14
    assert hour.latency_sum_ms == sum(
        Generation.objects.filter(organization=acme.org)
        .values_list("latency_ms", flat=True)
        .exclude(latency_ms=None)
    )


def test_partly_duplicate_batch_rolls_up_only_new_rows(acme, ingest_key, post_batch):
    post_batch(ingest_key, [item("a", input_tokens=10), item("b", input_tokens=20)])
    r = post_batch(ingest_key, [item("b", input_tokens=999), item("c", input_tokens=30)]).json()
    assert (r["accepted"], r["duplicates"]) == (1, 1)
    (hour,) = HourlyRollup.objects.filter(organization=acme.org)
    assert (hour.count, hour.input_tokens) == (3, 60)


def test_json_fields_are_stored_as_sent(acme, ingest_key, post_batch):
    context = [{"source": "kb/a.md", "text": 'tab\there, newline\n, quote " and \\ é ✓'}]
    tool_calls = [{"name": "lookup", "arguments": {"order": 1, "nested": [1.5, None, True]}}]
    post_batch(
        ingest_key,
        [
            item(
                "j",
                context=context,
                tool_calls=tool_calls,
                metadata={"region": "eu", "n": 3},
                tags=["web", "beta"],
                output="line one\nline\ttwo \\N",
            )
        ],
    )
    g = Generation.objects.get(organization=acme.org, external_id="j")
    assert g.context == context and g.tool_calls == tool_calls
    assert g.metadata == {"region": "eu", "n": 3} and g.tags == ["web", "beta"]
    assert g.output == "line one\nline\ttwo \\N"
    assert g.trace_id == "" and g.pinned is False


def test_per_user_rows_are_appended_summed_by_readers_and_compacted(
    acme, globex, ingest_key, api_key, post_batch
):
    now = timezone.now() - timedelta(minutes=5)
    for n in range(3):
        post_batch(
            ingest_key,
            [
                item(f"u{n}-a", user_ref="alice", cost_usd=0.5, created_at=now.isoformat()),
                item(f"u{n}-b", user_ref="bob", cost_usd=0.25, created_at=now.isoformat()),
            ],
        )
    post_batch(api_key(globex, ["ingest"]), [item("g", user_ref="alice", cost_usd=9)])
    rows = DailyUserRollup.objects.filter(organization=acme.org)
    assert rows.count() == 6  # one row per user, day and batch
    spenders = selectors.top_spenders(org=acme.org, since=now - timedelta(days=1))
    assert [(s["user_ref"], s["count"], s["cost_total"]) for s in spenders] == [
        ("alice", 3, Decimal("1.5")),
        ("bob", 3, Decimal("0.75")),
    ]
    assert services.user_rollups_compact(org=acme.org) == 1  # one day folded
    assert rows.count() == 2
    assert selectors.top_spenders(org=acme.org, since=now - timedelta(days=1)) == spenders
    assert services.user_rollups_compact(org=acme.org) == 0
    # Another organization's rows are neither folded nor read.
    assert DailyUserRollup.objects.filter(organization=globex.org).count() == 1


def test_compaction_task_folds_every_organization(acme, globex, ingest_key, api_key, post_batch):
    for n in range(2):
        post_batch(ingest_key, [item(f"a{n}", user_ref="alice")])
        post_batch(api_key(globex, ["ingest"]), [item(f"g{n}", user_ref="gina")])
    assert tasks.compact_user_rollups.delay().get() == 2  # a day in each organization
    assert DailyUserRollup.objects.count() == 2
    # A late event for an old day is left to the nightly run over all days.
    old = (timezone.now() - timedelta(days=5)).isoformat()
    post_batch(ingest_key, [item("late1", user_ref="alice", created_at=old)])
    post_batch(ingest_key, [item("late2", user_ref="alice", created_at=old)])
    assert tasks.compact_user_rollups.delay().get() == 0
    assert tasks.compact_user_rollups.delay(recent_days=None).get() == 1
    assert DailyUserRollup.objects.filter(organization=acme.org).count() == 2


def test_receivers_get_new_rows_only_and_sampled_is_their_sum(acme, ingest_key, post_batch):
    seen = []

    def sampler(*, org, generations):
        assert org == acme.org
        assert all(g.pk for g in generations)
        seen.append(sorted(g.external_id for g in generations))
        return len(generations) // 2

    def other(*, org, generations):
        return 1

    receivers.register(sampler)
    receivers.register(other)
    try:
        first = post_batch(ingest_key, [item("a"), item("b"), item("c"), item("d")]).json()
        second = post_batch(ingest_key, [item("a"), item("e")]).json()
    finally:
        receivers.unregister(sampler)
        receivers.unregister(other)
    assert first["sampled"] == 3
    assert second["sampled"] == 1
    assert seen == [["a", "b", "c", "d"], ["e"]]


def test_a_failing_receiver_rolls_back_the_batch(acme, ingest_key, api):
    def broken(*, org, generations):
        raise RuntimeError("sampler bug")

    receivers.register(broken)
    client = api(ingest_key)
    client.raise_request_exception = False
    try:
        r = client.generic(
            "POST",
            "/api/v1/generations/batch",
            json.dumps({"generations": [item("a")]}),
            content_type="application/json",
        )
    finally:
        receivers.unregister(broken)
    assert r.status_code == 500
    assert not Generation.objects.filter(organization=acme.org).exists()
    assert not HourlyRollup.objects.filter(organization=acme.org).exists()


def test_get_generation_by_external_id(acme, globex, ingest_key, api_key, api, post_batch):
    post_batch(ingest_key, [item("req/1?x", output={"answer": 42}, tags=["beta"])])
    post_batch(ingest_key, [item("plain")])
    r = api(ingest_key).get("/api/v1/generations/plain")
    assert r.status_code == 200
    body = r.json()
    assert body["external_id"] == "plain"
    assert body["prompt"] == {"name": "support-reply", "version": 2}
    assert body["output"] == "It ships today."
    other = api(api_key(globex, ["ingest"])).get("/api/v1/generations/plain")
    assert other.status_code == 404
    assert api(ingest_key).get("/api/v1/generations/nope").status_code == 404
    # External ids with "/" are served, sent as is or percent-encoded.
    post_batch(ingest_key, [item("tenant/42/req-7")])
    for url in ("/api/v1/generations/tenant/42/req-7", "/api/v1/generations/tenant%2F42%2Freq-7"):
        r = api(ingest_key).get(url)
        assert r.status_code == 200, url
        assert r.json()["external_id"] == "tenant/42/req-7"
    assert api(api_key(globex, ["ingest"])).get(url).status_code == 404


def test_json_output_round_trips(acme, ingest_key, api, post_batch):
    post_batch(ingest_key, [item("j", output={"answer": 42})])
    assert api(ingest_key).get("/api/v1/generations/j").json()["output"] == {"answer": 42}


def test_batch_from_another_org_never_touches_acme(acme, globex, api_key, post_batch):
    post_batch(api_key(acme, ["ingest"]), [item("shared-id", output="acme original")])
    post_batch(api_key(globex, ["ingest"]), [item("shared-id", output="globex copy")])
    assert Generation.objects.get(organization=acme.org).output == "acme original"
    assert Generation.objects.get(organization=globex.org).output == "globex copy"
