"""Tenant-scoped reads for traces. Production figures come from the hourly rollups (never a
scan of raw rows); lists of generations read raw rows with keyset (cursor) pagination.

Rollup windows are whole hours: `since` is rounded down to the start of its hour."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Q, QuerySet, Sum

from llmops.common.errors import InvalidInput, NotFound

from . import histogram
from .models import DailyUserRollup, Generation, HourlyRollup
from .registry import unregistered_prompt_versions

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
_ROLLUP_FIELDS = (
    "prompt_name",
    "prompt_version",
    "model_id",
    "hour",
    "count",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_count",
    "latency_sum_ms",
    "latency_hist",
)


def _floor_hour(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def rollup_rows(
    *,
    org,
    since: datetime,
    until: datetime | None = None,
    prompt_name: str | None = None,
    prompt_version: int | None = None,
    model_id: str | None = None,
) -> list[dict]:
    """The hourly rollup rows of a window, one query."""
    qs = HourlyRollup.objects.for_org(org).filter(hour__gte=_floor_hour(since))
    if until is not None:
        qs = qs.filter(hour__lt=until)
    if prompt_name is not None:
        qs = qs.filter(prompt_name=prompt_name)
    if prompt_version is not None:
        qs = qs.filter(prompt_version=prompt_version)
    if model_id is not None:
        qs = qs.filter(model_id=model_id)
    rows = list(qs.order_by().values_list(*_ROLLUP_FIELDS))
    out = []
    for r in rows:
        d = dict(zip(_ROLLUP_FIELDS, r, strict=True))
        if isinstance(d["latency_hist"], str):  # some backends hand back JSON text
            d["latency_hist"] = json.loads(d["latency_hist"])
        out.append(d)
    return out


def summarize(rows: list[dict]) -> dict:
    """Sums and latency percentiles over rollup rows."""
    count = sum(r["count"] for r in rows)
    errors = sum(r["errors"] for r in rows)
    cost = sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0))
    latency_count = sum(r["latency_count"] for r in rows)
    latency_sum = sum(r["latency_sum_ms"] for r in rows)
    hist = histogram.merge_all(r["latency_hist"] for r in rows)
    p50, p95, p99 = histogram.percentiles(hist, (0.5, 0.95, 0.99))
    return {
        "count": count,
        "errors": errors,
        "error_rate": (errors / count) if count else None,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "mean_ms": (latency_sum / latency_count) if latency_count else None,
        "cost_total": cost,
        "cost_per_request": (cost / count) if count else None,
        "input_tokens": sum(r["input_tokens"] for r in rows),
        "output_tokens": sum(r["output_tokens"] for r in rows),
    }


def rollup_summary(
    *,
    org,
    since: datetime,
    until: datetime | None = None,
    prompt_name: str | None = None,
    prompt_version: int | None = None,
    model_id: str | None = None,
) -> dict:
    """Production figures of a window (optionally one prompt name/version and/or model):
    count, errors, error_rate, p50_ms, p95_ms, p99_ms, mean_ms, cost_total, cost_per_request,
    input_tokens, output_tokens. Percentiles are read from log-spaced buckets (within ~3%)."""
    return summarize(
        rollup_rows(
            org=org,
            since=since,
            until=until,
            prompt_name=prompt_name,
            prompt_version=prompt_version,
            model_id=model_id,
        )
    )


def _bucket_start(ts: datetime, step: str) -> datetime:
    ts = _floor_hour(ts)
    return ts.replace(hour=0) if step == "day" else ts


def series_from_rows(
    rows: list[dict], *, since: datetime, until: datetime, step: str
) -> list[dict]:
    delta = timedelta(days=1) if step == "day" else timedelta(hours=1)
    groups: dict[datetime, list[dict]] = {}
    for r in rows:
        groups.setdefault(_bucket_start(r["hour"], step), []).append(r)
    out = []
    start = _bucket_start(since, step)
    while start < until:
        s = summarize(groups.get(start, []))
        s["start"] = start
        out.append(s)
        start += delta
    return out


def rollup_series(
    *,
    org,
    since: datetime,
    until: datetime | None = None,
    step: str = "hour",
    prompt_name: str | None = None,
    prompt_version: int | None = None,
    model_id: str | None = None,
) -> list[dict]:
    """`rollup_summary` per hour or per day (`step`), empty buckets included, oldest first."""
    if step not in ("hour", "day"):
        raise InvalidInput("step must be 'hour' or 'day'.", field="step")
    from django.utils import timezone

    until = until or timezone.now()
    rows = rollup_rows(
        org=org,
        since=since,
        until=until,
        prompt_name=prompt_name,
        prompt_version=prompt_version,
        model_id=model_id,
    )
    return series_from_rows(rows, since=since, until=until, step=step)


def _group(rows: list[dict], key) -> list[dict]:
    groups: dict = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    out = []
    for k, members in groups.items():
        s = summarize(members)
        s["key"] = k
        out.append(s)
    out.sort(key=lambda s: -s["count"])
    return out


def top_spenders(*, org, since: datetime, limit: int = 10) -> list[dict]:
    """End users (pseudonymous `user_ref`) by cost since a day, from the daily user rollup."""
    day: date = since.astimezone(UTC).date()
    return list(
        DailyUserRollup.objects.for_org(org)
        .filter(day__gte=day)
        .values("user_ref")
        .annotate(
            count=Sum("count"),
            errors=Sum("errors"),
            cost_total=Sum("cost_usd"),
            tokens=Sum("input_tokens") + Sum("output_tokens"),
        )
        .order_by("-cost_total", "-count", "user_ref")[:limit]
    )


def dashboard(*, org, window: str, now: datetime) -> dict:
    """Everything the production dashboard shows, from one rollup query (plus top spenders)."""
    if window not in WINDOWS:
        raise InvalidInput("window must be one of 24h, 7d, 30d.", field="window")
    since = now - WINDOWS[window]
    rows = rollup_rows(org=org, since=since, until=now + timedelta(hours=1))
    step = "hour" if window == "24h" else "day"
    by_version = _group(
        [r for r in rows if r["prompt_name"] is not None],
        lambda r: (r["prompt_name"], r["prompt_version"]),
    )
    pairs = {s["key"] for s in by_version}
    unknown = unregistered_prompt_versions(org=org, pairs=pairs)
    for s in by_version:
        s["unregistered"] = unknown is not None and s["key"] in unknown
    return {
        "since": since,
        "window": window,
        "step": step,
        "summary": summarize(rows),
        "series": series_from_rows(rows, since=since, until=now, step=step),
        "by_version": by_version,
        "by_model": _group(rows, lambda r: r["model_id"]),
        "unregistered": sorted(unknown) if unknown else [],
        "resolver_known": unknown is not None,
        "unversioned_count": sum(r["count"] for r in rows if r["prompt_name"] is None),
        "top_spenders": top_spenders(org=org, since=since),
    }


def prompt_versions_seen(*, org, since: datetime) -> list[tuple[str, int]]:
    return sorted(
        set(
            HourlyRollup.objects.for_org(org)
            .filter(hour__gte=_floor_hour(since), prompt_name__isnull=False)
            .values_list("prompt_name", "prompt_version")
        )
    )


# --- raw generations ----------------------------------------------------------------------

LIST_FIELDS = (
    "id",
    "organization_id",
    "external_id",
    "created_at",
    "prompt_name",
    "prompt_version",
    "model_id",
    "status",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "user_ref",
    "tags",
)


def generation_list(
    *,
    org,
    prompt_name: str | None = None,
    prompt_version: int | None = None,
    model_id: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: str | None = None,
    user_ref: str | None = None,
) -> QuerySet[Generation]:
    """Generations of the organization, newest first, filtered; `q` searches the output."""
    qs = Generation.objects.for_org(org)
    if prompt_name:
        qs = qs.filter(prompt_name=prompt_name)
    if prompt_version is not None:
        qs = qs.filter(prompt_version=prompt_version)
    if model_id:
        qs = qs.filter(model_id=model_id)
    if status:
        qs = qs.filter(status=status)
    if user_ref:
        qs = qs.filter(user_ref=user_ref)
    if tag:
        if connection.vendor == "postgresql":
            qs = qs.filter(tags__contains=[tag])
        else:  # SQLite has no JSON containment: match the encoded string
            qs = qs.filter(tags__icontains=json.dumps(tag))
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    if q:
        qs = qs.filter(output__icontains=q)
    return qs.order_by("-created_at", "-id")


def encode_cursor(generation) -> str:
    raw = f"{generation.created_at.isoformat()}|{generation.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        ts, pk = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        return datetime.fromisoformat(ts), int(pk)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("The cursor is not valid; start from the first page.", field="cursor")


def generation_page(
    qs: QuerySet[Generation], *, cursor: str | None = None, limit: int = 50
) -> tuple[list[Generation], str | None]:
    """Keyset pagination over (created_at, id) descending: (rows, next cursor or None)."""
    if cursor:
        ts, pk = _decode_cursor(cursor)
        qs = qs.filter(Q(created_at__lt=ts) | Q(created_at=ts, pk__lt=pk))
    rows = list(qs.only(*LIST_FIELDS)[: limit + 1])
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def generation_get(*, org, pk: int) -> Generation:
    found = Generation.objects.for_org(org).filter(pk=pk).select_related("model_version").first()
    if found is None:
        raise NotFound("No such generation.")
    return found


def generation_by_external_id(*, org, external_id: str) -> Generation:
    found = Generation.objects.for_org(org).filter(external_id=external_id).first()
    if found is None:
        raise NotFound("No such generation.")
    return found


def filter_choices(*, org, since: datetime) -> dict:
    """Prompt names and model ids seen in the rollups (for filter menus), one query."""
    pairs = list(
        HourlyRollup.objects.for_org(org)
        .filter(hour__gte=_floor_hour(since))
        .order_by()
        .values_list("prompt_name", "model_id")
        .distinct()
    )
    return {
        "prompt_names": sorted({p for p, _ in pairs if p}),
        "model_ids": sorted({m for _, m in pairs}),
    }
