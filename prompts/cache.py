"""The resolve cache. Keys carry a schema number and a per-prompt generation; a deploy
bumps the generation after commit, so a reader that raced the deploy can only have
filled a key nobody reads any more (no stale label survives a deploy)."""

from __future__ import annotations

import time

from django.core.cache import cache

SCHEMA = 1  # bump when the cached payload's shape changes
TTL_SECONDS = 24 * 3600
# Entries under a generation never change, so each process also keeps the ones it has
# read: a warm resolve then costs one shared-cache read (the generation), not two.
LOCAL_MAX = 4096
_local: dict[str, tuple] = {}


def _gen_key(org_id: int, name: str) -> str:
    return f"prompts:resolve:{SCHEMA}:gen:{org_id}:{name}"


def generation(org_id: int, name: str) -> int:
    key = _gen_key(org_id, name)
    gen = cache.get(key)
    if gen is None:
        # Start from the clock, never from 0: an evicted counter must not reuse old keys.
        gen = time.time_ns()
        if not cache.add(key, gen, None):
            gen = cache.get(key) or gen
    return gen


def bump(org_id: int, name: str) -> None:
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
