"""API rate limits: per key and per organization, on the shared cache (README "Limits").

Only writes are limited; reads (resolve above all) pass without a cache round trip. A view
names its bucket with `throttle_scope = "ingest"` (default `writes`). Each bucket has two
limits, one per API key (or per person for a session) and one for the whole organization,
both from `settings.API_LIMITS`, overridden per organization by `Organization.api_limits`
(`{"ingest": {"key": "600/min", "org": "2000/min"}}`). The organization comes from the
request's actor, which key authentication already holds in memory: no database query.
An exceeded limit answers 429 with `Retry-After` and the API's JSON error body.
"""

from __future__ import annotations

import math
import re

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LEVELS = ("key", "org")
PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600}
PERIODS |= {"hour": 3600, "d": 86400, "day": 86400}
RATE_RE = re.compile(r"^\s*(\d{1,9})\s*/\s*([a-z]+)\s*$")


def parse_rate(rate: str) -> tuple[int, int]:
    """`"600/min"` -> (600, 60). Raises ValueError for anything else."""
    match = RATE_RE.match(rate) if isinstance(rate, str) else None
    if match is None or match.group(2) not in PERIODS:
        raise ValueError(f"{rate!r} is not a rate like '600/min' (per s, min, hour or day)")
    return int(match.group(1)), PERIODS[match.group(2)]


def validate_limits(value) -> None:
    """The shape `Organization.api_limits` accepts: known buckets, levels and rates."""
    from django.core.exceptions import ValidationError

    if not isinstance(value, dict):
        raise ValidationError("API limits must be an object of buckets.")
    for bucket, levels in value.items():
        if bucket not in settings.API_LIMITS:
            known = ", ".join(sorted(settings.API_LIMITS))
            raise ValidationError(f"Unknown API limit bucket {bucket!r} (known: {known}).")
        if not isinstance(levels, dict):
            raise ValidationError(f"API limits for {bucket!r} must be an object.")
        for level, rate in levels.items():
            if level not in LEVELS:
                raise ValidationError(f"API limit level {level!r} must be 'key' or 'org'.")
            try:
                parse_rate(rate)
            except ValueError as exc:
                raise ValidationError(str(exc))


def limit_for(org, bucket: str, level: str) -> tuple[int, int]:
    """(requests, seconds) of a bucket for an organization: its override, else the default,
    times `API_LIMITS_SCALE` (raised in tests and fuzzing runs)."""
    overrides = getattr(org, "api_limits", None)
    levels = overrides.get(bucket) if isinstance(overrides, dict) else None
    rate = levels.get(level) if isinstance(levels, dict) else None
    try:
        num, seconds = parse_rate(rate)
    except ValueError:  # none, or one that skipped validation: the default
        defaults = settings.API_LIMITS.get(bucket) or settings.API_LIMITS["writes"]
        num, seconds = parse_rate(defaults[level])
    return max(1, int(num * settings.API_LIMITS_SCALE)), seconds


class _ApiThrottle(SimpleRateThrottle):
    level = "key"
    cache = cache
    rate = "1/s"  # replaced per request by the organization's limit

    def __init__(self, bucket: str):  # the rate is known only with the actor
        self.bucket = bucket
        self.history = []

    def allows(self, actor) -> bool:
        """Whether one more request fits in the window (nothing is recorded yet)."""
        self.num_requests, self.duration = limit_for(actor.org, self.bucket, self.level)
        self.key = self.cache_key(actor)
        if self.key is None:
            return True
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return len(self.history) < self.num_requests

    def record(self) -> None:
        if self.key is not None:
            self.throttle_success()

    def cache_key(self, actor) -> str | None:
        raise NotImplementedError

    def wait(self) -> float:
        """Seconds until the oldest request in the window leaves it (at least one)."""
        if not self.history:
            return float(self.duration)
        return float(max(1, math.ceil(self.duration - (self.now - self.history[-1]))))


class KeyThrottle(_ApiThrottle):
    """One API key (a session: one person in one organization)."""

    level = "key"

    def cache_key(self, actor) -> str | None:
        if actor.key is not None:
            ident = f"k{actor.key.id}"
        elif actor.user is not None:
            ident = f"u{actor.user.pk}.o{actor.org.pk}"
        else:
            return None
        return f"throttle:{self.bucket}:{ident}"


class OrgThrottle(_ApiThrottle):
    """The whole organization: all its keys and people together."""

    level = "org"

    def cache_key(self, actor) -> str | None:
        return f"throttle:{self.bucket}:o{actor.org.pk}"


class Throttled(exceptions.Throttled):
    """429 naming the limit that was reached; `wait` becomes the Retry-After header."""

    def __init__(self, throttle: _ApiThrottle):
        wait = throttle.wait()
        per = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}.get(throttle.duration)
        window = f"{throttle.duration} seconds" if per is None else f"a {per}"
        whose = "this API key" if throttle.level == "key" else "this organization"
        super().__init__(wait=wait)
        self.detail = exceptions.ErrorDetail(
            f"Rate limit reached: {throttle.num_requests} '{throttle.bucket}' requests in "
            f"{window} for {whose}. Retry in {int(wait)} seconds.",
            code="throttled",
        )
        self.bucket = throttle.bucket
        self.level = throttle.level


def check_actor(actor, bucket: str = "writes") -> None:
    """Count one request of `bucket` against the actor's key and organization; raise
    `Throttled` (429) when either limit is reached. HTML views that send (a webhook
    test-send) call it directly; the API calls it through `ApiThrottle`."""
    if actor is None or actor.org is None:
        return
    throttles = [KeyThrottle(bucket), OrgThrottle(bucket)]
    for throttle in throttles:
        if not throttle.allows(actor):
            raise Throttled(throttle)
    # Counted only when both allow it: a refused request uses up neither limit.
    for throttle in throttles:
        throttle.record()


class ApiThrottle:
    """The one entry in `DEFAULT_THROTTLE_CLASSES`: writes only, both limits."""

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        from .permissions import request_actor

        try:
            actor = request_actor(request)
        except exceptions.APIException:
            return True  # the view answers the missing organization itself
        check_actor(actor, getattr(view, "throttle_scope", None) or "writes")
        return True

    def wait(self):  # never asked: check_actor raises with its own wait
        return None
