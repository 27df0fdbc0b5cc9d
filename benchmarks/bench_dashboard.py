"""Production dashboard over 1,000,000 generations (30 days, 3 prompts x 3 versions, 3 models,
5,000 end users): p95 render time of the dashboard page (24 h, 7 d, 30 d windows, Django test
client in-process, logged in), and the time of the rollup read behind the 30-day page as a
ratio to the same figures computed by scanning the raw rows (goal <= 0.05).

Setup is SQL (generate_series for the raw rows; the rollups aggregated from them with the same
log-spaced buckets as `llmops.traces.histogram`) so the 1M rows load in seconds; the ingest
path that maintains rollups is measured by bench_ingest.

Knobs: BENCH_DASHBOARD_ROWS (default 1000000), BENCH_DASHBOARD_RENDERS (per window, default 20).
"""

from __future__ import annotations

import os
import statistics
import time

ROWS = int(os.environ.get("BENCH_DASHBOARD_ROWS", "1000000"))
RENDERS = int(os.environ.get("BENCH_DASHBOARD_RENDERS", "20"))
SPAN_SECONDS = 30 * 86400

RAW_INSERT = """
INSERT INTO traces_generation (organization_id, external_id, trace_id, created_at, ingested_at,
    prompt_name, prompt_version, model_id, model_version_id, input, output, output_is_json,
    context, tool_calls, metadata, tags, user_ref, latency_ms, input_tokens, output_tokens,
    cost_usd, cost_source, status, error, pinned, pinned_reason)
SELECT %(org)s, 'd-' || g, '', now() - interval '5 minutes' - g * %(step)s * interval '1 second',
    now(),
    CASE WHEN g %% 10 = 0 THEN NULL
         ELSE (ARRAY['support-reply', 'summarize-ticket', 'classify-intent'])[1 + g %% 3] END,
    CASE WHEN g %% 10 = 0 THEN NULL ELSE 1 + (g / 7) %% 3 END,
    (ARRAY['claude-sonnet-4-5-20250929', 'gpt-4o-2024-08-06',
           'claude-3-5-haiku-20241022'])[1 + (g / 3) %% 3],
    NULL,
    '[{"role": "user", "content": "Where is my parcel? It was due on Monday."}]'::jsonb,
    'Your parcel left the warehouse on Tuesday and arrives within two business days.',
    false, NULL, NULL, '{}'::jsonb, '["web"]'::jsonb,
    'u-' || (g %% 5000),
    (150 + 4000 * power(random(), 3))::int,
    300 + g %% 1700, 40 + g %% 360,
    ((300 + g %% 1700) * 3 + (40 + g %% 360) * 15) / 1000000.0,
    'catalog',
    CASE WHEN random() < 0.03 THEN 'error' ELSE 'ok' END, '', false, ''
FROM generate_series(1, %(rows)s) AS g
"""

ROLLUP_FROM_RAW = """
INSERT INTO {table} (organization_id, prompt_name, prompt_version, model_id, {period},
    count, errors, input_tokens, output_tokens, cost_usd, latency_count, latency_sum_ms,
    latency_hist)
SELECT organization_id, prompt_name, prompt_version, model_id, period, sum(n), sum(e),
    sum(it), sum(ot), sum(c), sum(lc), sum(ls),
    COALESCE(jsonb_object_agg(b::text, lc) FILTER (WHERE lc > 0), '{{}}'::jsonb)
FROM (
    SELECT organization_id, prompt_name, prompt_version, model_id,
        {period_expr} AS period,
        CASE WHEN latency_ms < 1 THEN 0
             ELSE LEAST(400, 1 + floor(ln(latency_ms) / ln(1.05))::int) END AS b,
        count(*) AS n, count(*) FILTER (WHERE status = 'error') AS e,
        sum(input_tokens) AS it, sum(output_tokens) AS ot, sum(cost_usd) AS c,
        count(latency_ms) AS lc, sum(latency_ms) AS ls
    FROM traces_generation WHERE organization_id = %(org)s
    GROUP BY 1, 2, 3, 4, 5, 6
) AS per_bucket
GROUP BY 1, 2, 3, 4, 5
"""
HOURLY_FROM_RAW = ROLLUP_FROM_RAW.format(
    table="traces_hourlyrollup", period="hour", period_expr="date_trunc('hour', created_at)"
)
DAILY_ROLLUP_FROM_RAW = ROLLUP_FROM_RAW.format(
    table="traces_dailyrollup",
    period="day",
    period_expr="(created_at AT TIME ZONE 'UTC')::date",
)

DAILY_FROM_RAW = """
INSERT INTO traces_dailyuserrollup (organization_id, user_ref, day, count, errors,
    input_tokens, output_tokens, cost_usd)
SELECT organization_id, user_ref, (created_at AT TIME ZONE 'UTC')::date, count(*),
    count(*) FILTER (WHERE status = 'error'), sum(input_tokens), sum(output_tokens),
    sum(cost_usd)
FROM traces_generation WHERE organization_id = %(org)s AND user_ref <> ''
GROUP BY 1, 2, 3
"""

# The same figures the 30-day dashboard shows, straight from raw rows.
RAW_SCAN = """
SELECT prompt_name, prompt_version, model_id, count(*),
    count(*) FILTER (WHERE status = 'error'), sum(cost_usd),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
    percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms),
    percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)
FROM traces_generation
WHERE organization_id = %(org)s AND created_at >= %(since)s
GROUP BY 1, 2, 3
"""


def _p95(samples: list[float]) -> float:
    samples = sorted(samples)
    return samples[max(0, int(round(0.95 * len(samples))) - 1)]


def main(report) -> None:
    from datetime import timedelta

    from django.conf import settings
    from django.db import connection, transaction
    from django.test import Client, override_settings
    from django.utils import timezone

    from benchmarks.common import make_org, timer
    from llmops.traces import selectors
    from llmops.traces.models import DailyRollup, HourlyRollup

    org = make_org("bench-dashboard")
    admin = org.memberships.get().user
    params = {"org": org.pk, "rows": ROWS, "step": SPAN_SECONDS / ROWS}
    with timer() as t, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(RAW_INSERT, params)
        cursor.execute(HOURLY_FROM_RAW, params)
        cursor.execute(DAILY_ROLLUP_FROM_RAW, params)
        cursor.execute(DAILY_FROM_RAW, params)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE traces_generation")
        cursor.execute("ANALYZE traces_hourlyrollup")
        cursor.execute("ANALYZE traces_dailyrollup")
        cursor.execute("ANALYZE traces_dailyuserrollup")
    report("setup_seconds", t["seconds"], "s", f"{ROWS:,} generations + rollups")
    report("hourly_rollup_rows", HourlyRollup.objects.filter(organization=org).count(), "rows")
    report("daily_rollup_rows", DailyRollup.objects.filter(organization=org).count(), "rows")

    client = Client()
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    # Rendering in-process needs no collectstatic manifest (gunicorn would serve the same).
    plain_static = override_settings(
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    )
    plain_static.enable()
    for window in ("24h", "7d", "30d"):
        url = f"/o/{org.slug}/dashboard/?window={window}"
        samples = []
        for i in range(RENDERS + 2):
            start = time.perf_counter()
            response = client.get(url, secure=True, HTTP_HOST="localhost")
            elapsed = time.perf_counter() - start
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")
            if i >= 2:  # two warm-up renders
                samples.append(elapsed * 1000)
        report(
            f"render_p95_{window}",
            _p95(samples),
            "ms",
            f"median {statistics.median(samples):.0f} ms",
        )

    now = timezone.now()
    # The 30-day page counts whole UTC days (daily rollups): scan the same span.
    since = (now - timedelta(days=30)).replace(hour=0, minute=0, second=0, microsecond=0)
    rollup_times, page_times = [], []
    for _ in range(7):
        # The figures the raw scan computes: by prompt version and by model, plus totals.
        start = time.perf_counter()
        rows = selectors.rollup_rows(org=org, since=since, until=now, grain="day")
        figures = selectors.figures_by_key(rows)
        rollup_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        selectors.dashboard(org=org, window="30d", now=now)
        page_times.append(time.perf_counter() - start)
    raw_times = []
    for _ in range(3):
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(RAW_SCAN, {"org": org.pk, "since": since})
            raw = cursor.fetchall()
        raw_times.append(time.perf_counter() - start)
    rollup_s, raw_s = statistics.median(rollup_times), statistics.median(raw_times)
    report("rollup_read_30d", rollup_s * 1000, "ms", f"{len(rows)} daily rollup rows")
    report(
        "dashboard_data_30d",
        statistics.median(page_times) * 1000,
        "ms",
        "all of selectors.dashboard (incl. top spenders)",
    )
    report("raw_scan_30d", raw_s * 1000, "ms", "same figures from raw rows")
    report("rollup_to_raw_ratio", rollup_s / raw_s, "x", "goal <= 0.05")
    raw_count = sum(r[3] for r in raw)
    report("rollup_count_matches_raw", figures["summary"]["count"] == raw_count, "", "goal yes")
