"""Writes for traces: batch ingest (validate, dedupe, price, store, roll up, hand to receivers,
all in one transaction), pinning generations that are evidence, and retention.

Ingest writes no audit event: recording production traffic is not a governance decision, and
a per-batch event would serialise every batch on the audit chain lock."""

from __future__ import annotations

import json
import math
import operator
import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.base import ModelState
from django.utils import timezone
from psycopg.types.json import set_json_dumps

from llmops.catalog.selectors import models_by_model_ids
from llmops.common.errors import InvalidInput, NotPermitted, TooLarge
from llmops.common.hygiene import json_problem, text_problem
from llmops.tenancy.policy import can

from . import histogram, receivers
from .models import DailyRollup, DailyUserRollup, Generation, HourlyRollup
from .schema import (
    GenerationIn,
    batch_decoder,
    item_decoder,
    json_encoder,
    whole_batch_decoder,
)

MAX_ITEMS = 1000
MAX_BODY_BYTES = getattr(settings, "API_MAX_BODY_BYTES", 5 * 1024 * 1024)
MAX_ITEM_BYTES = 512 * 1024
FUTURE_SKEW = timedelta(minutes=5)
_MTOK = Decimal(1_000_000)
_COST_Q = Decimal("0.00000001")

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
_JSON_COLUMNS = frozenset({"input", "context", "tool_calls", "metadata", "tags"})


@dataclass
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    sampled: int = 0
    errors: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "sampled": self.sampled,
            "errors": self.errors,
        }


def _json_text(value: Any) -> str | None:
    return None if value is None else json_encoder.encode(value).decode()


def _price(model, input_tokens: int | None, output_tokens: int | None) -> Decimal | None:
    if model is None:
        return None
    parts = []
    if input_tokens is not None and model.input_price_per_mtok is not None:
        parts.append(Decimal(input_tokens) * model.input_price_per_mtok)
    if output_tokens is not None and model.output_price_per_mtok is not None:
        parts.append(Decimal(output_tokens) * model.output_price_per_mtok)
    if not parts:
        return None
    return (sum(parts) / _MTOK).quantize(_COST_Q)


def _catalog_models(*, org, model_ids: set[str]) -> dict:
    """One query per batch: model id -> this organization's ModelVersion."""
    return models_by_model_ids(org=org, model_ids=sorted(model_ids))


def _row(item: GenerationIn, *, org_id: int, now: datetime, models: dict) -> dict:
    created_at = item.created_at or now
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    model = models.get(item.model)
    if item.cost_usd is not None:
        cost = Decimal(repr(item.cost_usd)).quantize(_COST_Q)
        cost_source = "reported"
    else:
        cost = _price(model, item.input_tokens, item.output_tokens)
        cost_source = "catalog" if cost is not None else ""
    output = item.output
    output_is_json = output is not None and not isinstance(output, str)
    return {
        "organization_id": org_id,
        "external_id": item.external_id,
        "trace_id": item.trace_id or "",
        "created_at": created_at,
        "ingested_at": now,
        "prompt_name": item.prompt.name if item.prompt else None,
        "prompt_version": item.prompt.version if item.prompt else None,
        "model_id": item.model,
        "model_version_id": model.pk if model is not None else None,
        "input": item.input,
        "output": _json_text(output) if output_is_json else (output or ""),
        "output_is_json": output_is_json,
        "context": item.context,
        "tool_calls": item.tool_calls,
        "metadata": item.metadata or {},
        "tags": item.tags or [],
        "user_ref": item.user_ref or "",
        "latency_ms": None if item.latency_ms is None else int(round(item.latency_ms)),
        "input_tokens": item.input_tokens,
        "output_tokens": item.output_tokens,
        "cost_usd": cost,
        "cost_source": cost_source,
        "status": item.status,
        "error": item.error or "",
        "pinned": False,
        "pinned_reason": "",
    }


def _parse(body: bytes, *, now: datetime, result: BatchResult) -> list[GenerationIn]:
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(
            f"The body is {len(body)} bytes; a batch may be at most {MAX_BODY_BYTES} bytes.",
            details={"limit_bytes": MAX_BODY_BYTES},
        )
    decoded = None
    if len(body) <= MAX_ITEM_BYTES:
        # No item can be over the item limit: decode the whole batch in one pass, and only
        # when something in it is invalid go item by item for per-item errors.
        try:
            decoded = whole_batch_decoder.decode(body).generations
        except (msgspec.ValidationError, msgspec.DecodeError):
            decoded = None
    if decoded is None:
        try:
            raws = batch_decoder.decode(body).generations
        except msgspec.ValidationError as exc:
            raise InvalidInput(
                f'The body must be {{"generations": [...]}}: {exc}', field="generations"
            )
        except msgspec.DecodeError as exc:
            raws = _lenient_items(body)
            if raws is None:
                raise InvalidInput(f"The body is not valid JSON: {exc}")
        count = len(raws)
    else:
        count = len(decoded)
    if count > MAX_ITEMS:
        raise TooLarge(
            f"The batch has {count} items; at most {MAX_ITEMS} are allowed.",
            details={"limit_items": MAX_ITEMS},
        )
    items: list[GenerationIn] = []
    latest = now + FUTURE_SKEW
    # A NUL can only arrive as the escape \u0000 (msgspec refuses unpaired surrogates and raw
    # control characters itself), so items are walked for it only when the body has one.
    maybe_nul = b"\\u0000" in body
    for index in range(count):
        external_id = None
        raw = None
        try:
            if decoded is not None:
                item = decoded[index]
            else:
                raw = raws[index]
                if len(raw) > MAX_ITEM_BYTES:
                    raise ValueError(
                        f"The item is {len(raw)} bytes; an item may be at most "
                        f"{MAX_ITEM_BYTES} bytes."
                    )
                item = item_decoder.decode(raw)
            external_id = item.external_id
            if maybe_nul:
                found = json_problem(msgspec.to_builtins(item))
                if found is not None:
                    raise ValueError(f"{found[0]} {found[1]}.")
            created = item.created_at
            if created is not None:
                if created.tzinfo is None:
                    created = created.replace(tzinfo=UTC)
                if created > latest:
                    raise ValueError(
                        f"created_at {created.isoformat()} is in the future (more than "
                        f"{int(FUTURE_SKEW.total_seconds() // 60)} minutes ahead of the server)."
                    )
            if item.latency_ms is not None and math.isnan(item.latency_ms):
                raise ValueError("latency_ms must be a number.")
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
            message = str(exc)
            if raw is not None and external_id is None:
                external_id, message = _explain_item(raw, message)
            result.rejected += 1
            result.errors.append({"index": index, "external_id": external_id, "message": message})
            continue
        items.append(item)
    return items


def _lenient_items(body: bytes) -> list[bytes] | None:
    """The items of a batch msgspec cannot decode as a whole because of something it refuses
    anywhere inside (an unpaired surrogate, a number out of range): Python's decoder accepts
    those, so each item is re-encoded on its own and gets its own error. None when the body
    is not JSON or not a batch."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("generations"), list):
        return None
    try:
        return [json.dumps(entry).encode() for entry in value["generations"]]
    except (ValueError, RecursionError):
        return None


def _explain_item(raw, message: str) -> tuple[str | None, str]:
    """An item msgspec refused: its external_id when it has a usable one (so the client can
    tell which item failed), and a clearer message for text msgspec does not name (an
    unpaired surrogate is reported as truncated input)."""
    try:
        value = json.loads(bytes(raw))
    except (ValueError, RecursionError):
        return None, message
    if not isinstance(value, dict):
        return None, message
    external_id = value.get("external_id")
    if not isinstance(external_id, str) or text_problem(external_id):
        external_id = None
    found = json_problem(value)
    if found is not None:
        message = f"{found[0]} {found[1]}."
    return external_id, message


def generations_ingest(*, actor, body: bytes) -> BatchResult:
    """`POST /api/v1/generations/batch`: store the valid items of a batch, once each.

    Per-item errors come back with their index; a repeated external id (already stored, or
    earlier in the same batch) is a duplicate, not an error, so a retried batch adds nothing."""
    if not can(actor, "generation.ingest"):
        raise NotPermitted("Your key or role does not allow sending generations.")
    org = actor.org
    now = timezone.now()
    result = BatchResult()
    items = _parse(body, now=now, result=result)
    seen: set[str] = set()
    unique: list[GenerationIn] = []
    for item in items:
        if item.external_id in seen:
            result.duplicates += 1
            continue
        seen.add(item.external_id)
        unique.append(item)
    if not unique:
        return result
    with transaction.atomic():
        models = _catalog_models(org=org, model_ids={item.model for item in unique})
        rows = [_row(item, org_id=org.pk, now=now, models=models) for item in unique]
        postgres = connection.vendor == "postgresql"
        ids = _insert_postgres(rows) if postgres else _insert_portable(org, rows)
        inserted = [row for row in rows if row["external_id"] in ids]
        result.accepted = len(inserted)
        result.duplicates += len(rows) - len(inserted)
        if inserted:
            hooks = receivers.receivers()
            if hooks:
                generations = StoredGenerations(inserted, ids)
                for hook in hooks:
                    result.sampled += int(hook(org=org, generations=generations) or 0)
            # Rollups last: their rows (one per prompt version, model and hour) are shared by
            # concurrent batches, so they stay locked only until the commit that follows.
            if postgres:
                _rollups_add_postgres(org, None if len(inserted) == len(rows) else list(ids))
            else:
                _rollups_add_portable(org, inserted)
    return result


class StoredGenerations(Sequence):
    """The generations a batch stored, as model instances made only when a receiver first
    reads them (a receiver with nothing to do for this organization only asks the length)."""

    def __init__(self, rows: list[dict], ids: dict[str, int]):
        self._rows = rows
        self._ids = ids
        self._items: list[Generation] | None = None

    def _load(self) -> list[Generation]:
        if self._items is None:
            self._items = [_instance(row, self._ids[row["external_id"]]) for row in self._rows]
        return self._items

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index):
        return self._load()[index]

    def __iter__(self):
        return iter(self._load())


# Database sessions (psycopg connections) that already hold the temporary table.
_temp_table_sessions: weakref.WeakSet = weakref.WeakSet()


def _instance(row: dict, pk: int) -> Generation:
    """A Generation as if loaded from the database, without Model.__init__ (which costs more
    than the rest of ingest for a batch of 500): the row holds every concrete field."""
    obj = Generation.__new__(Generation)
    obj.__dict__.update(row)
    obj.id = pk
    obj._state = ModelState()
    obj._state.adding = False
    obj._state.db = "default"
    return obj


_copy_values = operator.itemgetter(*COLUMNS)
_copy_oids: list[int] = []


def _copy_types(cursor) -> list[int]:
    """The column type OIDs a binary COPY needs, read once per process from the table."""
    if not _copy_oids:
        cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM traces_generation_in LIMIT 0")
        _copy_oids.extend(column.type_code for column in cursor.description)
    return _copy_oids


def _insert_postgres(rows: list[dict]) -> dict[str, int]:
    """COPY into a temporary table, then INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING
    (COPY alone cannot skip rows that are already stored). The temporary table keeps the batch
    until the commit, for the rollups. Returns external id -> id of the rows stored."""
    with connection.cursor() as cursor:
        raw = cursor.cursor
        session = raw.connection
        if session not in _temp_table_sessions:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS traces_generation_in ON COMMIT DELETE ROWS AS "
                f"SELECT {', '.join(COLUMNS)} FROM traces_generation WITH NO DATA"
            )
            # Known to exist once this transaction commits (a rollback drops it again).
            transaction.on_commit(lambda: _temp_table_sessions.add(session))
        cursor.execute("SET LOCAL synchronous_commit = off")
        if connection.savepoint_ids:
            # ON COMMIT DELETE ROWS empties it at every commit; inside an outer transaction
            # (tests, a caller's atomic block) an earlier batch may still be there.
            cursor.execute("TRUNCATE traces_generation_in")
        set_json_dumps(json_encoder.encode, context=raw)
        types = _copy_types(cursor)
        with raw.copy(
            f"COPY traces_generation_in ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(_copy_values(row))
        cursor.execute(_INSERT_SQL)
        return dict(cursor.fetchall())


def _insert_portable(org, rows: list[dict]) -> dict[str, int]:
    """SQLite (and any other backend): bulk_create ignoring conflicts, then re-select. The
    existing ids are read first so rows stored before this batch count as duplicates."""
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


# --- rollups -----------------------------------------------------------------------------

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
        is_error = row["status"] == "error"
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
    daily: dict[tuple, dict] = {}
    for (name, version, model_id, hour), agg in hourly.items():
        d = daily.get((name, version, model_id, hour.date()))
        if d is None:
            d = daily[(name, version, model_id, hour.date())] = _new_agg()
        for field_name in _SUMS:
            d[field_name] += agg[field_name]
        for bucket, n in agg["latency_hist"].items():
            d["latency_hist"][bucket] += n
    return hourly, daily, users


# Rollups on PostgreSQL: one statement over the batch rows still in the temporary table, so
# PostgreSQL does the batch's in-memory aggregation. The rows are summed per key (and per
# latency bucket for the histogram) first; each key is then upserted once, in a fixed order per
# table (the ORDER BY), tables always in the same order, so concurrent batches cannot deadlock.
# The bucket expression is histogram.bucket_of in SQL (same float operations, same bucket).
_BUCKET_SQL = (
    "CASE WHEN latency_ms IS NULL THEN NULL WHEN latency_ms < 1 THEN 0 "
    f"ELSE LEAST({histogram.MAX_BUCKET}, "
    f"1 + floor(ln(latency_ms::float8) / ln({histogram.GROWTH!r}::float8)))::integer END"
)

_ROLLUP_SET = """
    count = r.count + EXCLUDED.count,
    errors = r.errors + EXCLUDED.errors,
    input_tokens = r.input_tokens + EXCLUDED.input_tokens,
    output_tokens = r.output_tokens + EXCLUDED.output_tokens,
    cost_usd = r.cost_usd + EXCLUDED.cost_usd"""

_ROLLUP_UPSERT = """
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
        {set},
        latency_count = r.latency_count + EXCLUDED.latency_count,
        latency_sum_ms = r.latency_sum_ms + EXCLUDED.latency_sum_ms,
        latency_hist = r.latency_hist || COALESCE((
            SELECT jsonb_object_agg(
                e.key, e.value::bigint + COALESCE((r.latency_hist ->> e.key)::bigint, 0)
            )
            FROM jsonb_each_text(EXCLUDED.latency_hist) AS e
        ), '{{}}'::jsonb)
)"""


def _upsert(name: str, table: str, period: str, source: str) -> str:
    return _ROLLUP_UPSERT.format(
        name=name, table=table, period=period, source=source, set=_ROLLUP_SET
    )


_INSERT_SQL = f"""
INSERT INTO traces_generation ({", ".join(COLUMNS)})
SELECT {", ".join(COLUMNS)} FROM traces_generation_in ORDER BY external_id
ON CONFLICT (organization_id, external_id) DO NOTHING
RETURNING external_id, id"""

_ROLLUPS_SQL = (
    """
WITH stored AS (
    SELECT prompt_name, prompt_version, model_id, created_at, status, input_tokens,
        output_tokens, cost_usd, latency_ms, user_ref
    FROM traces_generation_in
    {where}
),
per_bucket AS (
    SELECT prompt_name, prompt_version, model_id, date_trunc('hour', created_at, 'UTC') AS hour,
        {bucket} AS bucket, COUNT(*) AS n, COUNT(*) FILTER (WHERE status = 'error') AS errors,
        COALESCE(SUM(input_tokens), 0) AS input_tokens,
        COALESCE(SUM(output_tokens), 0) AS output_tokens,
        COALESCE(SUM(cost_usd), 0) AS cost_usd, COUNT(latency_ms) AS latency_count,
        COALESCE(SUM(latency_ms), 0) AS latency_sum_ms
    FROM stored
    GROUP BY 1, 2, 3, 4, 5
),""".replace("{bucket}", _BUCKET_SQL)
    + _upsert("hourly", "traces_hourlyrollup", "hour", "per_bucket")
    + """,
per_bucket_day AS (
    SELECT prompt_name, prompt_version, model_id, (hour AT TIME ZONE 'UTC')::date AS day, bucket,
        SUM(n) AS n, SUM(errors) AS errors, SUM(input_tokens) AS input_tokens,
        SUM(output_tokens) AS output_tokens, SUM(cost_usd) AS cost_usd,
        SUM(latency_count) AS latency_count, SUM(latency_sum_ms) AS latency_sum_ms
    FROM per_bucket
    GROUP BY 1, 2, 3, 4, 5
),"""
    + _upsert("daily", "traces_dailyrollup", "day", "per_bucket_day")
    + """,
users AS (
    INSERT INTO traces_dailyuserrollup (organization_id, user_ref, day, count, errors,
        input_tokens, output_tokens, cost_usd)
    SELECT %(org)s, user_ref, (created_at AT TIME ZONE 'UTC')::date AS day, COUNT(*),
        COUNT(*) FILTER (WHERE status = 'error'), COALESCE(SUM(input_tokens), 0),
        COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost_usd), 0)
    FROM stored
    WHERE user_ref <> ''
    GROUP BY user_ref, (created_at AT TIME ZONE 'UTC')::date
)
SELECT COUNT(*) FROM stored"""
)
_ROLLUPS_ALL_SQL = _ROLLUPS_SQL.replace("{where}", "")
_ROLLUPS_SOME_SQL = _ROLLUPS_SQL.replace("{where}", "WHERE external_id = ANY(%(only)s)")


def _rollups_add_postgres(org, only: list[str] | None) -> None:
    """Add the batch in the temporary table (or the rows of it named in `only`) to the
    hourly, daily and per-user rollups, in one statement."""
    with connection.cursor() as cursor:
        if only is None:
            cursor.execute(_ROLLUPS_ALL_SQL, {"org": org.pk})
        else:
            cursor.execute(_ROLLUPS_SOME_SQL, {"org": org.pk, "only": only})


def _rollups_add_portable(org, rows: list[dict]) -> None:
    """Backends without NULLS NOT DISTINCT upserts (SQLite: one writer at a time, so a
    read-merge-write inside the transaction is safe): the batch is summed in Python, then
    each table gets one read and bulk writes."""
    hourly, daily, users = _aggregate(rows)
    _periods_add_portable(org, HourlyRollup, "hour", hourly)
    _periods_add_portable(org, DailyRollup, "day", daily)
    _users_add_portable(org, users)


def _periods_add_portable(org, model, period: str, aggs: dict) -> None:
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


def _users_add_portable(org, users: dict) -> None:
    DailyUserRollup.objects.bulk_create(
        [
            DailyUserRollup(organization=org, user_ref=user_ref, day=day, **users[user_ref, day])
            for user_ref, day in sorted(users)
        ],
        batch_size=500,
    )


# Per-user rows are appended, not upserted: an end user is a new key in most batches, and an
# upsert per user and batch cost more than the rest of the rollups. Readers sum a key's rows
# (top_spenders does); compaction folds a day's rows into one row per end user.
_COMPACT_DAY_SQL = """
WITH gone AS (
    DELETE FROM traces_dailyuserrollup
    WHERE organization_id = %(org)s AND day = %(day)s
    RETURNING user_ref, count, errors, input_tokens, output_tokens, cost_usd
)
INSERT INTO traces_dailyuserrollup (organization_id, user_ref, day, count, errors,
    input_tokens, output_tokens, cost_usd)
SELECT %(org)s, user_ref, %(day)s, SUM(count), SUM(errors), SUM(input_tokens),
    SUM(output_tokens), SUM(cost_usd)
FROM gone
GROUP BY user_ref
ORDER BY user_ref
"""


def user_rollups_compact(*, org, since: date | None = None) -> int:
    """Fold the per-user rollup rows of each day (from `since`, else all days) that has more
    than one row for an end user into one row per end user; returns how many days were folded.
    One transaction per day. Safe beside ingest and another compaction: only rows the DELETE
    took are summed (a concurrent one skips rows already gone), and rows appended meanwhile
    stay for the next run."""
    rows = DailyUserRollup.objects.for_org(org)
    if since is not None:
        rows = rows.filter(day__gte=since)
    days = list(
        rows.values("day")
        .annotate(rows=Count("id"), users=Count("user_ref", distinct=True))
        .filter(rows__gt=F("users"))
        .order_by("day")
        .values_list("day", flat=True)
    )
    for day in days:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(_COMPACT_DAY_SQL, {"org": org.pk, "day": day})
            else:
                _compact_day_portable(org, day)
    return len(days)


def _compact_day_portable(org, day: date) -> None:
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


# --- evidence and retention ---------------------------------------------------------------


def generation_pin(*, org, generation_ids, reason: str) -> int:
    """Mark generations as evidence (reviewed, an eval case, an incident) so retention keeps
    them. Other organizations' ids are ignored. Returns how many rows are now pinned."""
    with transaction.atomic():
        return (
            Generation.objects.for_org(org)
            .filter(pk__in=list(generation_ids))
            .update(pinned=True, pinned_reason=str(reason)[:200])
        )


def _evidence_conditions() -> list:
    """Any row of another app pointing at a generation makes it evidence, so retention need
    not know those apps: found through the model's reverse relations."""
    conditions = []
    for rel in Generation._meta.related_objects:
        if rel.related_model is Generation or rel.many_to_many:
            continue
        conditions.append(
            Exists(rel.related_model._base_manager.filter(**{rel.field.name: OuterRef("pk")}))
        )
    return conditions


def generations_purge_expired(*, org, now: datetime | None = None, batch_size: int = 2000) -> int:
    """Delete generations older than the organization's retention, in short transactions of
    `batch_size` rows; rollups stay, and so does every generation that is evidence."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=org.retention_days)
    deleted = 0
    evidence = _evidence_conditions()
    while True:
        qs = Generation.objects.for_org(org).filter(created_at__lt=cutoff, pinned=False)
        for condition in evidence:
            qs = qs.filter(~condition)
        with transaction.atomic():
            ids = list(qs.order_by("created_at", "id").values_list("id", flat=True)[:batch_size])
            if not ids:
                break
            Generation.objects.filter(Q(pk__in=ids), organization=org).delete()
        deleted += len(ids)
        if len(ids) < batch_size:
            break
    return deleted
