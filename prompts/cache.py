"""The resolve cache. Keys carry a schema number and a per-prompt generation; a deploy
bumps the generation after commit, so a reader that raced the deploy can only have
filled a key nobody reads any more (no stale label survives a deploy).

With a shared cache over the network (Redis), each process also remembers a prompt's
generation for GENERATION_MEMO_SECONDS, saving a round trip per request: a deploy made in
another process is then visible within that time (the issue asks for within a second); in
the deploying process at once. The local-memory cache is read directly (no memo)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

SCHEMA = 1  # bump when the cached payload's shape changes
TTL_SECONDS = 24 * 3600
# Entries under a generation never change, so each process also keeps the ones it has
# read: a warm resolve then costs one shared-cache read (the generation), not two.
LOCAL_MAX = 4096
_local: dict[str, tuple] = {}


def _gen_key(org_id: int, name: str) -> str:
    return f"prompts:resolve:{SCHEMA}:gen:{org_id}:{name}"


GENERATION_MEMO_SECONDS = 0.5
_generations: dict[tuple[int, str], tuple[float, int]] = {}
_memo_seconds: float | None = None


def memo_seconds() -> float:
    global _memo_seconds
    if _memo_seconds is None:
        backend = settings.CACHES["default"]["BACKEND"]
        _memo_seconds = 0.0 if backend.endswith("LocMemCache") else GENERATION_MEMO_SECONDS
    return _memo_seconds


def generation(org_id: int, name: str) -> int:
    memo = memo_seconds()
    now = time.monotonic()
    if memo:
        seen = _generations.get((org_id, name))
        if seen is not None and now - seen[0] < memo:
            return seen[1]
    key = _gen_key(org_id, name)
    gen = cache.get(key)
    if gen is None:
        # Start from the clock, never from 0: an evicted counter must not reuse old keys.
        gen = time.time_ns()
        if not cache.add(key, gen, None):
            gen = cache.get(key) or gen
    if memo:
        if len(_generations) >= LOCAL_MAX:
            _generations.clear()
        _generations[(org_id, name)] = (now, gen)
    return gen


def bump(org_id: int, name: str) -> None:
    _generations.pop((org_id, name), None)
    key = _gen_key(org_id, name)
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, time.time_ns(), None)


def entry_key(org_id: int, name: str, gen: int, selector: str) -> str:
    return f"prompts:resolve:{SCHEMA}:{org_id}:{name}:{gen}:{selector}"


def _remember(key: str, value) -> None:
    if len(_local) >= LOCAL_MAX:
        _local.clear()
    _local[key] = value


def get(org_id: int, name: str, selector: str):
    gen = generation(org_id, name)
    key = entry_key(org_id, name, gen, selector)
    value = _local.get(key)
    if value is None:
        value = cache.get(key)
        if value is not None:
            _remember(key, value)
    return key, value


def put(key: str, value) -> None:
    cache.set(key, value, TTL_SECONDS)
    _remember(key, value)
