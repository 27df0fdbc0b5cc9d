"""The hot writes of traces behind one interface: store a batch of generations once each, add
it to the rollups, fold a day's per-user rollup rows.

`current()` picks the implementation for the connection. `PostgresBackend` copies the batch
into a temporary table, inserts from it with ON CONFLICT DO NOTHING and upserts the rollups
in one statement (PostgreSQL aggregates the batch). `PortableBackend` (SQLite, one writer at a
time) does the same with the ORM: bulk_create ignoring conflicts, the batch summed in Python,
one read and bulk writes per rollup table. Both must leave the same rows behind: the
equivalence tests (tests/traces/test_rollups.py, test_ingest.py, test_postgres.py) check that
the rollups equal aggregates of the raw rows on each database.

Table names come from the models' `_meta.db_table` and the error state from
`Generation.Status` (passed as a query parameter); every statement is composed once, at
import, from those constants (no input goes into them), so a batch only executes them."""

from __future__ import annotations

import operator
import weakref
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import connection, transaction
from psycopg.types.json import set_json_dumps

from . import histogram
from .models import DailyRollup, DailyUserRollup, Generation, HourlyRollup
from .schema import json_encoder

GENERATION_TABLE = Generation._meta.db_table
# The batch being stored: a temporary table of the same columns, one per database session.
STAGING_TABLE = f"{GENERATION_TABLE}_in"
HOURLY_TABLE = HourlyRollup._meta.db_table
DAILY_TABLE = DailyRollup._meta.db_table
USER_TABLE = DailyUserRollup._meta.db_table
ERROR = Generation.Status.ERROR.value

# Columns ingest writes, in COPY order.
COLUMNS = (
    "organization_id",
    "external_id",
    "trace_id",
    "created_at",
    "ingested_at",
    "prompt_name",
    "prompt_version",
    "model_id",
    "model_version_id",
    "input",
    "output",
    "output_is_json",
    "context",
    "tool_calls",
    "metadata",
    "tags",
    "user_ref",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cost_source",
    "status",
    "error",
    "pinned",
    "pinned_reason",
)
_COLUMN_LIST = ", ".join(COLUMNS)

# Sums a rollup row holds (the per-user rollup has no latency).
_SUMS = (
    "count",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_count",
    "latency_sum_ms",
)
_USER_SUMS = ("count", "errors", "input_tokens", "output_tokens", "cost_usd")


# --- PostgreSQL statements ----------------------------------------------------------------

_CREATE_STAGING_SQL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} ON COMMIT DELETE ROWS AS "
    f"SELECT {_COLUMN_LIST} FROM {GENERATION_TABLE} WITH NO DATA"
)
_STAGING_TYPES_SQL = f"SELECT {_COLUMN_LIST} FROM {STAGING_TABLE} LIMIT 0"
_TRUNCATE_STAGING_SQL = f"TRUNCATE {STAGING_TABLE}"
_COPY_SQL = f"COPY {STAGING_TABLE} ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
_INSERT_SQL = f"""
INSERT INTO {GENERATION_TABLE} ({_COLUMN_LIST})
SELECT {_COLUMN_LIST} FROM {STAGING_TABLE} ORDER BY external_id
ON CONFLICT (organization_id, external_id) DO NOTHING
RETURNING external_id, id"""

# Rollups: one statement over the batch rows still in the temporary table, so PostgreSQL does
# the batch's in-memory aggregation. The rows are summed per key (and per latency bucket for
# the histogram) first; each key is then upserted once, in a fixed order per table (the ORDER
# BY), tables always in the same order, so concurrent batches cannot deadlock. The bucket
# expression is histogram.bucket_of in SQL (same float operations, same bucket).
_BUCKET_SQL = (
    "CASE WHEN latency_ms IS NULL THEN NULL WHEN latency_ms < 1 THEN 0 "
    f"ELSE LEAST({histogram.MAX_BUCKET}, "
    f"1 + floor(ln(latency_ms::float8) / ln({histogram.GROWTH!r}::float8)))::integer END"
)


def _upsert_sql(name: str, table: str, period: str, source: str) -> str:
    """The CTE adding the per-key sums in `source` to rollup `table` (period column
    `period`); called at import only."""
    return f"""
{name} AS (
    INSERT INTO {table} AS r (organization_id, prompt_name, prompt_version, model_id, {period},
        count, errors, input_tokens, output_tokens, cost_usd, latency_count, latency_sum_ms,
        latency_hist)
    SELECT %(org)s, prompt_name, prompt_version, model_id, {period}, SUM(n), SUM(errors),
        SUM(input_tokens), SUM(output_tokens), SUM(cost_usd), SUM(latency_count),
        SUM(latency_sum_ms),
        COALESCE(jsonb_object_agg(bucket::text, n) FILTER (WHERE bucket IS NOT NULL), '{{}}')
    FROM {source}
    GROUP BY prompt_name, prompt_version, model_id, {period}
    ORDER BY prompt_name NULLS LAST, prompt_version NULLS FIRST, model_id, {period}
    ON CONFLICT (organization_id, prompt_name, prompt_version, model_id, {period}) DO UPDATE SET
        count = r.count + EXCLUDED.count,
        errors = r.errors + EXCLUDED.errors,
        input_tokens = r.input_tokens + EXCLUDED.input_tokens,
        output_tokens = r.output_tokens + EXCLUDED.output_tokens,
        cost_usd = r.cost_usd + EXCLUDED.cost_usd,
        latency_count = r.latency_count + EXCLUDED.latency_count,
        latency_sum_ms = r.latency_sum_ms + EXCLUDED.latency_sum_ms,
        latency_hist = r.latency_hist || COALESCE((
            SELECT jsonb_object_agg(
                e.key, e.value::bigint + COALESCE((r.latency_hist ->> e.key)::bigint, 0)
            )
            FROM jsonb_each_text(EXCLUDED.latency_hist) AS e
        ), '{{}}'::jsonb)
)"""


def _rollups_sql(where: str) -> str:
    """The statement adding the staged rows (those `where` keeps) to the three rollups;
    called at import only."""
    return f"""
WITH stored AS (
    SELECT prompt_name, prompt_version, model_id, created_at, status, input_tokens,
        output_tokens, cost_usd, latency_ms, user_ref
    FROM {STAGING_TABLE}
    {where}
),
per_bucket AS (
    SELECT prompt_name, prompt_version, model_id, date_trunc('hour', created_at, 'UTC') AS hour,
        {_BUCKET_SQL} AS bucket, COUNT(*) AS n,
        COUNT(*) FILTER (WHERE status = %(error)s) AS errors,
        COALESCE(SUM(input_tokens), 0) AS input_tokens,
        COALESCE(SUM(output_tokens), 0) AS output_tokens,
        COALESCE(SUM(cost_usd), 0) AS cost_usd, COUNT(latency_ms) AS latency_count,
        COALESCE(SUM(latency_ms), 0) AS latency_sum_ms
    FROM stored
    GROUP BY 1, 2, 3, 4, 5
),{_upsert_sql("hourly", HOURLY_TABLE, "hour", "per_bucket")},
per_bucket_day AS (
    SELECT prompt_name, prompt_version, model_id, (hour AT TIME ZONE 'UTC')::date AS day, bucket,
        SUM(n) AS n, SUM(errors) AS errors, SUM(input_tokens) AS input_tokens,
        SUM(output_tokens) AS output_tokens, SUM(cost_usd) AS cost_usd,
        SUM(latency_count) AS latency_count, SUM(latency_sum_ms) AS latency_sum_ms
    FROM per_bucket
    GROUP BY 1, 2, 3, 4, 5
),{_upsert_sql("daily", DAILY_TABLE, "day", "per_bucket_day")},
users AS (
    INSERT INTO {USER_TABLE} (organization_id, user_ref, day, count, errors,
        input_tokens, output_tokens, cost_usd)
    SELECT %(org)s, user_ref, (created_at AT TIME ZONE 'UTC')::date AS day, COUNT(*),
        COUNT(*) FILTER (WHERE status = %(error)s), COALESCE(SUM(input_tokens), 0),
        COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost_usd), 0)
    FROM stored
    WHERE user_ref <> ''
    GROUP BY user_ref, (created_at AT TIME ZONE 'UTC')::date
)
SELECT COUNT(*) FROM stored"""


_ROLLUPS_ALL_SQL = _rollups_sql("")
_ROLLUPS_SOME_SQL = _rollups_sql("WHERE external_id = ANY(%(only)s)")

# Per-user rows are appended, not upserted: an end user is a new key in most batches, and an
# upsert per user and batch cost more than the rest of the rollups. Readers sum a key's rows
# (top_spenders does); compaction folds a day's rows into one row per end user.
_COMPACT_DAY_SQL = f"""
WITH gone AS (
    DELETE FROM {USER_TABLE}
    WHERE organization_id = %(org)s AND day = %(day)s
    RETURNING user_ref, count, errors, input_tokens, output_tokens, cost_usd
)
INSERT INTO {USER_TABLE} (organization_id, user_ref, day, count, errors,
    input_tokens, output_tokens, cost_usd)
SELECT %(org)s, user_ref, %(day)s, SUM(count), SUM(errors), SUM(input_tokens),
    SUM(output_tokens), SUM(cost_usd)
FROM gone
GROUP BY user_ref
ORDER BY user_ref
"""


# --- portable: the batch summed in Python ---------------------------------------------------


def _hour(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _key_order(key: tuple) -> tuple:
    prompt_name, prompt_version, model_id, period = key
    return (prompt_name is None, prompt_name or "", prompt_version or 0, model_id, period)


def _new_agg() -> dict:
    return {
        "count": 0,
        "errors": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": Decimal(0),
        "latency_count": 0,
        "latency_sum_ms": 0,
        "latency_hist": defaultdict(int),
    }


def _aggregate(rows: list[dict]) -> tuple[dict, dict, dict]:
    """In-memory sums of a batch: per hour key, per day key, per (user_ref, day)."""
    hourly: dict[tuple, dict] = {}
    users: dict[tuple, dict] = {}
    for row in rows:
        key = (row["prompt_name"], row["prompt_version"], row["model_id"], _hour(row["created_at"]))
        agg = hourly.get(key)
        if agg is None:
            agg = hourly[key] = _new_agg()
        is_error = row["status"] == ERROR
        agg["count"] += 1
        agg["errors"] += is_error
        agg["input_tokens"] += row["input_tokens"] or 0
        agg["output_tokens"] += row["output_tokens"] or 0
        if row["cost_usd"] is not None:
            agg["cost_usd"] += row["cost_usd"]
        if row["latency_ms"] is not None:
            agg["latency_count"] += 1
            agg["latency_sum_ms"] += row["latency_ms"]
            agg["latency_hist"][str(histogram.bucket_of(row["latency_ms"]))] += 1
        if row["user_ref"]:
            ukey = (row["user_ref"], key[3].date())
            u = users.get(ukey)
            if u is None:
                u = users[ukey] = dict.fromkeys(_USER_SUMS, 0)
                u["cost_usd"] = Decimal(0)
            u["count"] += 1
            u["errors"] += is_error
            u["input_tokens"] += row["input_tokens"] or 0
            u["output_tokens"] += row["output_tokens"] or 0
            if row["cost_usd"] is not None:
                u["cost_usd"] += row["cost_usd"]
    return hourly, _days(hourly), users


def _days(hourly: dict) -> dict:
    """The per-hour sums folded into per-day sums."""
    daily: dict[tuple, dict] = {}
    for (name, version, model_id, hour), agg in hourly.items():
        d = daily.get((name, version, model_id, hour.date()))
        if d is None:
            d = daily[(name, version, model_id, hour.date())] = _new_agg()
        for field_name in _SUMS:
            d[field_name] += agg[field_name]
        for bucket, n in agg["latency_hist"].items():
            d["latency_hist"][bucket] += n
    return daily


def _periods_add(org, model, period: str, aggs: dict) -> None:
    if not aggs:
        return
    keys = sorted(aggs, key=_key_order)
    existing = {
        (r.prompt_name, r.prompt_version, r.model_id, getattr(r, period)): r
        for r in model.objects.for_org(org).filter(
            **{f"{period}__in": {key[3] for key in keys}},
            model_id__in={key[2] for key in keys},
        )
    }
    new, changed = [], []
    for key in keys:
        a = aggs[key]
        row = existing.get(key)
        if row is None:
            row = model(
                organization=org,
                prompt_name=key[0],
                prompt_version=key[1],
                model_id=key[2],
                cost_usd=Decimal(0),
                latency_hist={},
                **{period: key[3]},
            )
            new.append(row)
        else:
            changed.append(row)
        for name in _SUMS:
            if name == "cost_usd":
                row.cost_usd = Decimal(row.cost_usd) + a["cost_usd"]
            else:
                setattr(row, name, getattr(row, name) + a[name])
        row.latency_hist = histogram.merge(dict(row.latency_hist or {}), a["latency_hist"])
    model.objects.bulk_create(new, batch_size=500)
    model.objects.bulk_update(changed, [*_SUMS, "latency_hist"], batch_size=500)


def _users_add(org, users: dict) -> None:
    DailyUserRollup.objects.bulk_create(
        [
            DailyUserRollup(organization=org, user_ref=user_ref, day=day, **users[user_ref, day])
            for user_ref, day in sorted(users)
        ],
        batch_size=500,
    )


class PortableBackend:
    """SQLite (and any other backend): the ORM, with the batch summed in Python."""

    def insert(self, org, rows: list[dict]) -> dict[str, int]:
        """Store the rows not stored yet (bulk_create ignoring conflicts, then re-select);
        returns external id -> id of the rows this call stored. The existing ids are read
        first so rows stored before this batch count as duplicates."""
        external_ids = [row["external_id"] for row in rows]
        existing = set(
            Generation.objects.for_org(org)
            .filter(external_id__in=external_ids)
            .values_list("external_id", flat=True)
        )
        new_rows = [row for row in rows if row["external_id"] not in existing]
        Generation.objects.bulk_create(
            [Generation(**row) for row in new_rows], ignore_conflicts=True, batch_size=500
        )
        return dict(
            Generation.objects.for_org(org)
            .filter(external_id__in=[row["external_id"] for row in new_rows])
            .values_list("external_id", "id")
        )

    def rollups_add(self, org, stored: list[dict], ids: dict[str, int], *, whole: bool) -> None:
        """Add the stored rows of the batch (`whole`: every row `insert` was given) to the
        hourly, daily and per-user rollups. Without NULLS NOT DISTINCT upserts (SQLite: one
        writer at a time, so a read-merge-write inside the transaction is safe) each table
        gets one read and bulk writes."""
        hourly, daily, users = _aggregate(stored)
        _periods_add(org, HourlyRollup, "hour", hourly)
        _periods_add(org, DailyRollup, "day", daily)
        _users_add(org, users)

    def compact_day(self, org, day: date) -> None:
        """Fold the organization's per-user rollup rows of `day` into one per end user."""
        taken = list(DailyUserRollup.objects.for_org(org).filter(day=day))
        sums: dict[str, dict] = {}
        for row in taken:
            s = sums.setdefault(row.user_ref, dict.fromkeys(_USER_SUMS, 0))
            for name in _USER_SUMS:
                s[name] += getattr(row, name)
        DailyUserRollup.objects.filter(pk__in=[row.pk for row in taken]).delete()
        DailyUserRollup.objects.bulk_create(
            [
                DailyUserRollup(organization=org, user_ref=user_ref, day=day, **s)
                for user_ref, s in sorted(sums.items())
            ],
            batch_size=500,
        )


# Database sessions (psycopg connections) that already hold the temporary table.
_temp_table_sessions: weakref.WeakSet = weakref.WeakSet()
_copy_values = operator.itemgetter(*COLUMNS)
_copy_oids: list[int] = []


def _copy_types(cursor) -> list[int]:
    """The column type OIDs a binary COPY needs, read once per process from the table."""
    if not _copy_oids:
        cursor.execute(_STAGING_TYPES_SQL)
        _copy_oids.extend(column.type_code for column in cursor.description)
    return _copy_oids


class PostgresBackend(PortableBackend):
    """PostgreSQL: COPY and ON CONFLICT for the batch, the rollups in one statement."""

    def insert(self, org, rows: list[dict]) -> dict[str, int]:
        """COPY into a temporary table, then INSERT ... SELECT ... ON CONFLICT DO NOTHING
        RETURNING (COPY alone cannot skip rows that are already stored). The temporary table
        keeps the batch until the commit, for the rollups."""
        with connection.cursor() as cursor:
            raw = cursor.cursor
            session = raw.connection
            if session not in _temp_table_sessions:
                cursor.execute(_CREATE_STAGING_SQL)
                # Known to exist once this transaction commits (a rollback drops it again).
                transaction.on_commit(lambda: _temp_table_sessions.add(session))
            cursor.execute("SET LOCAL synchronous_commit = off")
            if connection.savepoint_ids:
                # ON COMMIT DELETE ROWS empties it at every commit; inside an outer
                # transaction (tests, a caller's atomic block) an earlier batch may be there.
                cursor.execute(_TRUNCATE_STAGING_SQL)
            set_json_dumps(json_encoder.encode, context=raw)
            types = _copy_types(cursor)
            with raw.copy(_COPY_SQL) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(_copy_values(row))
            cursor.execute(_INSERT_SQL)
            return dict(cursor.fetchall())

    def rollups_add(self, org, stored: list[dict], ids: dict[str, int], *, whole: bool) -> None:
        """Add the batch in the temporary table (only the rows stored, by external id, when
        some were duplicates) to the three rollups, in one statement."""
        with connection.cursor() as cursor:
            if whole:
                cursor.execute(_ROLLUPS_ALL_SQL, {"org": org.pk, "error": ERROR})
            else:
                params = {"org": org.pk, "error": ERROR, "only": list(ids)}
                cursor.execute(_ROLLUPS_SOME_SQL, params)

    def compact_day(self, org, day: date) -> None:
        with connection.cursor() as cursor:
            cursor.execute(_COMPACT_DAY_SQL, {"org": org.pk, "day": day})


_PORTABLE, _POSTGRES = PortableBackend(), PostgresBackend()


def current() -> PortableBackend:
    """The hot-write implementation for the default connection's database."""
    return _POSTGRES if connection.vendor == "postgresql" else _PORTABLE
