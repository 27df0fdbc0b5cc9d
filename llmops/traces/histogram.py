"""Fixed log-spaced latency buckets: bucket 0 holds latencies under 1 ms, bucket i >= 1 holds
[GROWTH**(i-1), GROWTH**i) ms. With 5% growth a percentile read at the bucket's geometric
middle is within 2.5% of the exact value. Histograms are sparse {str(index): count} dicts so
they stay small in JSON and merge by key."""

from __future__ import annotations

import math
from collections.abc import Iterable

GROWTH = 1.05
_LOG_GROWTH = math.log(GROWTH)
MAX_BUCKET = 400  # 1.05**399 ms is about 93 days: anything slower lands here


def bucket_of(latency_ms: float) -> int:
    if latency_ms < 1:
        return 0
    return min(MAX_BUCKET, 1 + int(math.log(latency_ms) / _LOG_GROWTH))


def bucket_value(index: int) -> float:
    """The representative latency of a bucket: its geometric middle."""
    if index <= 0:
        return 0.0
    return GROWTH ** (index - 0.5)


def merge(into: dict[str, int], other: dict | None) -> dict[str, int]:
    for key, value in (other or {}).items():
        into[key] = into.get(key, 0) + int(value)
    return into


def merge_all(hists: Iterable[dict | None]) -> dict[str, int]:
    out: dict[str, int] = {}
    for hist in hists:
        merge(out, hist)
    return out


def percentiles(hist: dict, qs: Iterable[float]) -> list[float | None]:
    """Nearest-rank percentiles (q in 0..1) read from a histogram; None when it is empty."""
    items = sorted((int(k), int(v)) for k, v in hist.items() if int(v) > 0)
    total = sum(v for _, v in items)
    out: list[float | None] = []
    for q in qs:
        if total == 0:
            out.append(None)
            continue
        rank = max(1, math.ceil(q * total))
        seen = 0
        for index, count in items:
            seen += count
            if seen >= rank:
                out.append(bucket_value(index))
                break
    return out
