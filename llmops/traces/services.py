"""Writes for traces: batch ingest (validate, dedupe, price, store, roll up, hand to receivers,
all in one transaction), pinning generations that are evidence, and retention.

Ingest writes no audit event: recording production traffic is not a governance decision, and
a per-batch event would serialise every batch on the audit chain lock."""

from __future__ import annotations

import math
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.base import ModelState
from django.utils import timezone

from llmops.catalog.selectors import models_by_model_ids
from llmops.common.errors import InvalidInput, NotPermitted, TooLarge
from llmops.tenancy.policy import can

from . import histogram, receivers
from .models import DailyRollup, DailyUserRollup, Generation, HourlyRollup
from .schema import GenerationIn, batch_decoder, item_decoder, json_encoder

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
    generations: list[Generation] = field(default_factory=list, repr=False)

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
    try:
        batch = batch_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f'The body must be {{"generations": [...]}}: {exc}', field="generations")
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"The body is not valid JSON: {exc}")
    if len(batch.generations) > MAX_ITEMS:
        raise TooLarge(
            f"The batch has {len(batch.generations)} items; at most {MAX_ITEMS} are allowed.",
            details={"limit_items": MAX_ITEMS},
        )
    items: list[GenerationIn] = []
    latest = now + FUTURE_SKEW
    for index, raw in enumerate(batch.generations):
        external_id = None
        try:
            if len(raw) > MAX_ITEM_BYTES:
                raise ValueError(
                    f"The item is {len(raw)} bytes; an item may be at most {MAX_ITEM_BYTES} bytes."
                )
            item = item_decoder.decode(raw)
            external_id = item.external_id
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
            result.rejected += 1
            result.errors.append({"index": index, "external_id": external_id, "message": str(exc)})
            continue
        items.append(item)
    return items


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
        if connection.vendor == "postgresql":
            ids = _insert_postgres(rows)
        else:
            ids = _insert_portable(org, rows)
        inserted = [row for row in rows if row["external_id"] in ids]
        result.accepted = len(inserted)
        result.duplicates += len(rows) - len(inserted)
        if inserted:
            rollups_add(org=org, rows=inserted)
            hooks = receivers.receivers()
            if hooks:
                generations = [_instance(row, ids[row["external_id"]]) for row in inserted]
                result.generations = generations
                for hook in hooks:
                    result.sampled += int(hook(org=org, generations=generations) or 0)
    return result


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


def _insert_postgres(rows: list[dict]) -> dict[str, int]:
    """COPY into a temporary table, then INSERT ... SELECT ... ON CONFLICT DO NOTHING
    RETURNING: COPY alone cannot skip rows that are already stored."""
    cols = ", ".join(COLUMNS)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        session = raw.connection
        if session not in _temp_table_sessions:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS traces_generation_in ON COMMIT DELETE ROWS AS "
                f"SELECT {cols} FROM traces_generation WITH NO DATA"
            )
            # Known to exist once this transaction commits (a rollback drops it again).
            transaction.on_commit(lambda: _temp_table_sessions.add(session))
        if connection.savepoint_ids:
            # ON COMMIT DELETE ROWS empties it at every commit; inside an outer transaction
            # (tests, a caller's atomic block) an earlier batch may still be there.
            cursor.execute("TRUNCATE traces_generation_in")
        with raw.copy(f"COPY traces_generation_in ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [_json_text(row[c]) if c in _JSON_COLUMNS else row[c] for c in COLUMNS]
                )
        cursor.execute(
            f"INSERT INTO traces_generation ({cols}) SELECT {cols} FROM traces_generation_in "
            "ON CONFLICT (organization_id, external_id) DO NOTHING RETURNING external_id, id"
        )
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


# Each upsert is one statement over the batch's keys sent as one JSON array (decoded by
# jsonb_to_recordset), so many keys cost no per-row SQL; ORDER BY ord keeps the fixed key
# order for row locks.
_ROLLUP_UPSERT = """
INSERT INTO {table} AS r (organization_id, prompt_name, prompt_version, model_id,
    {period}, count, errors, input_tokens, output_tokens, cost_usd, latency_count,
    latency_sum_ms, latency_hist)
SELECT %s, u.prompt_name, u.prompt_version, u.model_id, u.period, u.count, u.errors,
    u.input_tokens, u.output_tokens, u.cost_usd, u.latency_count, u.latency_sum_ms,
    u.latency_hist
FROM jsonb_to_recordset(%s::jsonb) AS u(ord integer, prompt_name text, prompt_version integer,
    model_id text, period {period_type}, count bigint, errors bigint, input_tokens bigint,
    output_tokens bigint, cost_usd numeric, latency_count bigint, latency_sum_ms bigint,
    latency_hist jsonb)
ORDER BY u.ord
ON CONFLICT (organization_id, prompt_name, prompt_version, model_id, {period}) DO UPDATE SET
    count = r.count + EXCLUDED.count,
    errors = r.errors + EXCLUDED.errors,
    input_tokens = r.input_tokens + EXCLUDED.input_tokens,
    output_tokens = r.output_tokens + EXCLUDED.output_tokens,
    cost_usd = r.cost_usd + EXCLUDED.cost_usd,
    latency_count = r.latency_count + EXCLUDED.latency_count,
    latency_sum_ms = r.latency_sum_ms + EXCLUDED.latency_sum_ms,
    latency_hist = (
        SELECT COALESCE(jsonb_object_agg(k, s), '{{}}'::jsonb)
        FROM (
            SELECT k, SUM(v::bigint) AS s
            FROM (
                SELECT key AS k, value AS v FROM jsonb_each_text(r.latency_hist)
                UNION ALL
                SELECT key, value FROM jsonb_each_text(EXCLUDED.latency_hist)
            ) AS both_hists
            GROUP BY k
        ) AS summed
    )
"""
_HOURLY_UPSERT = _ROLLUP_UPSERT.format(
    table="traces_hourlyrollup", period="hour", period_type="timestamptz"
)
_DAILY_UPSERT = _ROLLUP_UPSERT.format(table="traces_dailyrollup", period="day", period_type="date")

_USER_UPSERT = """
INSERT INTO traces_dailyuserrollup AS r (organization_id, user_ref, day, count, errors,
    input_tokens, output_tokens, cost_usd)
SELECT %s, u.user_ref, u.day, u.count, u.errors, u.input_tokens, u.output_tokens, u.cost_usd
FROM jsonb_to_recordset(%s::jsonb) AS u(ord integer, user_ref text, day date, count bigint,
    errors bigint, input_tokens bigint, output_tokens bigint, cost_usd numeric)
ORDER BY u.ord
ON CONFLICT (organization_id, user_ref, day) DO UPDATE SET
    count = r.count + EXCLUDED.count,
    errors = r.errors + EXCLUDED.errors,
    input_tokens = r.input_tokens + EXCLUDED.input_tokens,
    output_tokens = r.output_tokens + EXCLUDED.output_tokens,
    cost_usd = r.cost_usd + EXCLUDED.cost_usd
"""


def rollups_add(*, org, rows: list[dict]) -> None:
    """Add stored rows to the hourly, daily and per-user rollups: aggregated in memory first,
    each key upserted once, keys in a fixed order (tables too) so concurrent batches cannot
    deadlock. Must run inside the ingest transaction."""
    hourly, daily, users = _aggregate(rows)
    if connection.vendor != "postgresql":
        _rollups_add_portable(org, HourlyRollup, "hour", hourly)
        _rollups_add_portable(org, DailyRollup, "day", daily)
        _users_add_portable(org, users)
        return
    with connection.cursor() as cursor:
        for sql, aggs in ((_HOURLY_UPSERT, hourly), (_DAILY_UPSERT, daily)):
            keys = sorted(aggs, key=_key_order)
            if not keys:
                continue
            payload = []
            for ord_, key in enumerate(keys):
                a = aggs[key]
                payload.append(
                    {
                        "ord": ord_,
                        "prompt_name": key[0],
                        "prompt_version": key[1],
                        "model_id": key[2],
                        "period": key[3],
                        **{name: a[name] for name in _SUMS},
                        "latency_hist": a["latency_hist"],
                    }
                )
            cursor.execute(sql, [org.pk, _json_text(payload)])
        keys = sorted(users)
        if keys:
            payload = [
                {"ord": i, "user_ref": key[0], "day": key[1], **users[key]}
                for i, key in enumerate(keys)
            ]
            cursor.execute(_USER_UPSERT, [org.pk, _json_text(payload)])


def _rollups_add_portable(org, model, period: str, aggs: dict) -> None:
    """Backends without NULLS NOT DISTINCT upserts (SQLite: one writer at a time, so a
    read-merge-write inside the transaction is safe). One read, then bulk writes."""
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
    if not users:
        return
    keys = sorted(users)
    existing = {
        (r.user_ref, r.day): r
        for r in DailyUserRollup.objects.for_org(org).filter(
            day__in={key[1] for key in keys}, user_ref__in={key[0] for key in keys}
        )
    }
    new, changed = [], []
    for key in keys:
        a = users[key]
        row = existing.get(key)
        if row is None:
            row = DailyUserRollup(organization=org, user_ref=key[0], day=key[1], cost_usd=0)
            new.append(row)
        else:
            changed.append(row)
        row.count += a["count"]
        row.errors += a["errors"]
        row.input_tokens += a["input_tokens"]
        row.output_tokens += a["output_tokens"]
        row.cost_usd = Decimal(row.cost_usd) + a["cost_usd"]
    DailyUserRollup.objects.bulk_create(new, batch_size=500)
    DailyUserRollup.objects.bulk_update(changed, list(_USER_SUMS), batch_size=500)


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
