"""Tenant-scoped reads for traces. Production figures come from the hourly rollups (never a
scan of raw rows); lists of generations read raw rows with keyset (cursor) pagination.

Rollup windows are whole hours: `since` is rounded down to the start of its hour."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import msgspec
from django.db import connection
from django.db.models import Q, QuerySet, Sum

from llmops.common.errors import InvalidInput, NotFound

from . import histogram
from .models import DailyRollup, DailyUserRollup, Generation, HourlyRollup
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


def _floor_day(ts: datetime) -> datetime:
    return _floor_hour(ts).replace(hour=0)


DAILY_AFTER = timedelta(days=2)
_hist_decoder = msgspec.json.Decoder(dict[str, int])


def grain_for(since: datetime, until: datetime | None = None) -> str:
    """Windows over two days read the daily rollups (whole UTC days), shorter ones hourly."""
    from django.utils import timezone

    return "day" if (until or timezone.now()) - since > DAILY_AFTER else "hour"


def rollup_rows(
    *,
    org,
    since: datetime,
    until: datetime | None = None,
    prompt_name: str | None = None,
    prompt_version: int | None = None,
    model_id: str | None = None,
    grain: str = "hour",
) -> list[dict]:
    """Rollup rows of a window, one query. Hourly rows start at the hour of `since`, daily
    rows at its UTC day; each row's period start is under "hour" either way."""
    if grain == "day":
        qs = DailyRollup.objects.for_org(org).filter(day__gte=_floor_day(since).date())
        if until is not None:
            qs = qs.filter(day__lt=(_floor_day(until) + timedelta(days=1)).date())
        period = "day"
    else:
        qs = HourlyRollup.objects.for_org(org).filter(hour__gte=_floor_hour(since))
        if until is not None:
            qs = qs.filter(hour__lt=until)
        period = "hour"
    if prompt_name is not None:
        qs = qs.filter(prompt_name=prompt_name)
    if prompt_version is not None:
        qs = qs.filter(prompt_version=prompt_version)
    if model_id is not None:
        qs = qs.filter(model_id=model_id)
    fields = [f if f != "hour" else period for f in _ROLLUP_FIELDS]
    # The ORM builds the query; rows are read with a plain cursor and the histograms decoded
    # with msgspec, several times faster than model field converters for thousands of rows.
    sql, params = qs.order_by().values_list(*fields).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        raw_rows = cursor.fetchall()
    out = []
    for r in raw_rows:
        d = dict(zip(_ROLLUP_FIELDS, r, strict=True))
        if period == "day":
            d["hour"] = datetime.combine(d["hour"], datetime.min.time(), tzinfo=UTC)
        elif d["hour"].tzinfo is None:  # SQLite hands back naive UTC datetimes
            d["hour"] = d["hour"].replace(tzinfo=UTC)
        if isinstance(d["latency_hist"], str | bytes):
            d["latency_hist"] = _hist_decoder.decode(d["latency_hist"])
        if not isinstance(d["cost_usd"], Decimal):
            d["cost_usd"] = Decimal(str(d["cost_usd"]))
        out.append(d)
    return out


class _Acc:
    """Running sums of rollup rows (one pass, histogram merged as it goes)."""

    __slots__ = ("count", "errors", "cost", "lat_n", "lat_sum", "tin", "tout", "hist")

    def __init__(self):
        self.count = self.errors = self.lat_n = self.lat_sum = self.tin = self.tout = 0
        self.cost = Decimal(0)
        self.hist: dict[str, int] = {}

    def add(self, r: dict) -> None:
        self.count += r["count"]
        self.errors += r["errors"]
        self.cost += Decimal(r["cost_usd"])
        self.lat_n += r["latency_count"]
        self.lat_sum += r["latency_sum_ms"]
        self.tin += r["input_tokens"]
        self.tout += r["output_tokens"]
        hist = self.hist
        for k, v in r["latency_hist"].items():
            hist[k] = hist.get(k, 0) + v

    def merge(self, other: _Acc) -> None:
        self.count += other.count
        self.errors += other.errors
        self.cost += other.cost
        self.lat_n += other.lat_n
        self.lat_sum += other.lat_sum
        self.tin += other.tin
        self.tout += other.tout
        hist = self.hist
        for k, v in other.hist.items():
            hist[k] = hist.get(k, 0) + v

    def result(self) -> dict:
        p50, p95, p99 = histogram.percentiles(self.hist, (0.5, 0.95, 0.99))
        count = self.count
        return {
            "count": count,
            "errors": self.errors,
            "error_rate": (self.errors / count) if count else None,
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
            "mean_ms": (self.lat_sum / self.lat_n) if self.lat_n else None,
            "cost_total": self.cost,
            "cost_per_request": (self.cost / count) if count else None,
            "input_tokens": self.tin,
            "output_tokens": self.tout,
        }


def summarize(rows: list[dict]) -> dict:
    """Sums and latency percentiles over rollup rows."""
    acc = _Acc()
    for r in rows:
        acc.add(r)
    return acc.result()


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
    input_tokens, output_tokens. Percentiles are read from log-spaced buckets (within ~3%).
    Windows over two days count whole UTC days (daily rollups), shorter ones whole hours."""
    return summarize(
        rollup_rows(
            org=org,
            since=since,
            until=until,
            prompt_name=prompt_name,
            prompt_version=prompt_version,
            model_id=model_id,
            grain=grain_for(since, until),
        )
    )


def _bucket_start(ts: datetime, step: str) -> datetime:
    ts = _floor_hour(ts)
    return ts.replace(hour=0) if step == "day" else ts


def series_from_rows(
    rows: list[dict], *, since: datetime, until: datetime, step: str
) -> list[dict]:
    delta = timedelta(days=1) if step == "day" else timedelta(hours=1)
    groups: dict[datetime, _Acc] = {}
    for r in rows:
        start = _bucket_start(r["hour"], step)
        acc = groups.get(start)
        if acc is None:
            acc = groups[start] = _Acc()
        acc.add(r)
    out = []
    start = _bucket_start(since, step)
    while start < until:
        acc = groups.get(start)
        s = acc.result() if acc is not None else _Acc().result()
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
        grain=step,
    )
    return series_from_rows(rows, since=since, until=until, step=step)


def _accumulate(rows: list[dict], key) -> dict:
    groups: dict = {}
    for r in rows:
        k = key(r)
        acc = groups.get(k)
        if acc is None:
            acc = groups[k] = _Acc()
        acc.add(r)
    return groups


def _regroup(accs: dict, key) -> dict:
    """Merge accumulators under a coarser key (30 merges instead of a pass over rows)."""
    groups: dict = {}
    for k, acc in accs.items():
        g = key(k)
        target = groups.get(g)
        if target is None:
            target = groups[g] = _Acc()
        target.merge(acc)
    return groups


def _results(accs: dict) -> list[dict]:
    out = []
    for k, acc in accs.items():
        s = acc.result()
        s["key"] = k
        out.append(s)
    out.sort(key=lambda s: -s["count"])
    return out


def _group(rows: list[dict], key) -> list[dict]:
    return _results(_accumulate(rows, key))


def figures_by_key(rows: list[dict]) -> dict:
    """One pass over rollup rows: totals, by prompt version and by model."""
    by_key = _accumulate(rows, lambda r: (r["prompt_name"], r["prompt_version"], r["model_id"]))
    total = _Acc()
    for acc in by_key.values():
        total.merge(acc)
    versions = {k: a for k, a in by_key.items() if k[0] is not None}
    return {
        "summary": total.result(),
        "by_version": _results(_regroup(versions, lambda k: (k[0], k[1]))),
        "by_model": _results(_regroup(by_key, lambda k: k[2])),
    }


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


def window_since(window: str, now: datetime) -> datetime:
    """Start of a dashboard window: 24 h from the hour, 7 d and 30 d from whole UTC days."""
    if window not in WINDOWS:
        raise InvalidInput("window must be one of 24h, 7d, 30d.", field="window")
    since = now - WINDOWS[window]
    return since if window == "24h" else _floor_day(since)


def dashboard(*, org, window: str, now: datetime, with_spenders: bool = True) -> dict:
    """Everything the production dashboard shows, from one rollup query (plus top spenders,
    a second query the page loads after the figures)."""
    since = window_since(window, now)
    step = "hour" if window == "24h" else "day"
    rows = rollup_rows(org=org, since=since, until=now, grain=step)
    figures = figures_by_key(rows)
    by_version = figures["by_version"]
    pairs = {s["key"] for s in by_version}
    unknown = unregistered_prompt_versions(org=org, pairs=pairs)
    for s in by_version:
        s["unregistered"] = unknown is not None and s["key"] in unknown
    return {
        "since": since,
        "window": window,
        "step": step,
        "summary": figures["summary"],
        "series": series_from_rows(rows, since=since, until=now, step=step),
        "by_version": by_version,
        "by_model": figures["by_model"],
        "unregistered": sorted(unknown) if unknown else [],
        "resolver_known": unknown is not None,
        "unversioned_count": sum(r["count"] for r in rows if r["prompt_name"] is None),
        "top_spenders": top_spenders(org=org, since=since) if with_spenders else None,
    }


def prompt_versions_seen(*, org, since: datetime) -> list[tuple[str, int]]:
    return sorted(
        set(
            DailyRollup.objects.for_org(org)
            .filter(day__gte=_floor_day(since).date(), prompt_name__isnull=False)
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
        DailyRollup.objects.for_org(org)
        .filter(day__gte=_floor_day(since).date())
        .order_by()
        .values_list("prompt_name", "model_id")
        .distinct()
    )
    return {
        "prompt_names": sorted({p for p, _ in pairs if p}),
        "model_ids": sorted({m for _, m in pairs}),
    }
