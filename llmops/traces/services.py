"""Writes for traces: batch ingest (validate, dedupe, price, store, roll up, hand to receivers,
all in one transaction), pinning generations that are evidence, and retention. The hot
statements (store the batch, add it to the rollups, fold per-user rows) are in `backends`,
one implementation for PostgreSQL and one portable.

Ingest writes no audit event: recording production traffic is not a governance decision, and
a per-batch event would serialise every batch on the audit chain lock."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.base import ModelState
from django.utils import timezone

from llmops.catalog.selectors import models_by_model_ids
from llmops.common.errors import InvalidInput, NotPermitted, TooLarge
from llmops.common.hygiene import json_problem, text_problem
from llmops.tenancy.policy import can

from . import backends, receivers
from .backends import COLUMNS  # noqa: F401  (re-exported: benchmarks/bench_ingest.py)
from .models import DailyUserRollup, Generation
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
        backend = backends.current()
        ids = backend.insert(org, rows)
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
            backend.rollups_add(org, inserted, ids, whole=len(inserted) == len(rows))
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
    backend = backends.current()
    for day in days:
        with transaction.atomic():
            backend.compact_day(org, day)
    return len(days)


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
