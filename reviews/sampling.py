"""Sampling rules: which generations a rule matches, and the deterministic draw (a hash of
the external id and the queue), so a retried batch or a backfill samples the same way."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from llmops.common.errors import InvalidInput

FILTER_KEYS = (
    "prompt",
    "version",
    "model",
    "tags",
    "metadata",
    "errors_only",
    "latency_above",
    "cost_above",
)


def draw(external_id: str, queue_id: int) -> float:
    """A number in [0, 1) fixed by (external id, queue): sampled when below the rate."""
    digest = hashlib.blake2b(f"{queue_id}:{external_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def validate_rule(*, rate: Any, filters: Any) -> tuple[float, dict]:
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise InvalidInput("The rate is a number from 0 to 1.", field="rate")
    if not 0 <= rate <= 1:
        raise InvalidInput("The rate is a number from 0 to 1.", field="rate")
    if filters in (None, ""):
        filters = {}
    if not isinstance(filters, dict):
        raise InvalidInput("Filters are an object.", field="filters")
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise InvalidInput(
            f"Unknown filter '{unknown[0]}'; use {', '.join(FILTER_KEYS)}.", field="filters"
        )
    clean: dict[str, Any] = {}
    for key in ("prompt", "model"):
        if filters.get(key):
            clean[key] = str(filters[key]).strip()[:200]
    if filters.get("version") not in (None, ""):
        try:
            clean["version"] = int(filters["version"])
        except (TypeError, ValueError, OverflowError):
            raise InvalidInput("The version filter is a number.", field="filters")
        if not 1 <= clean["version"] <= 2**31 - 1:
            raise InvalidInput("The version filter is a version number.", field="filters")
    tags = filters.get("tags")
    if tags:
        if isinstance(tags, str):
            tags = [t.strip() for t in tags.split(",")]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidInput("The tags filter is a list of strings.", field="filters")
        clean["tags"] = [t for t in tags if t]
    metadata = filters.get("metadata")
    if metadata:
        if not isinstance(metadata, dict):
            raise InvalidInput("The metadata filter is {key: value}.", field="filters")
        clean["metadata"] = {str(k): v for k, v in metadata.items()}
    if filters.get("errors_only"):
        clean["errors_only"] = True
    for key in ("latency_above", "cost_above"):
        if filters.get(key) not in (None, ""):
            try:
                clean[key] = float(filters[key])
            except (TypeError, ValueError, OverflowError):
                raise InvalidInput(f"The {key} filter is a number.", field="filters")
            if not math.isfinite(clean[key]) or abs(clean[key]) > 10**9:
                raise InvalidInput(f"The {key} filter is a number up to 10^9.", field="filters")
    return rate, clean


def _get(gen, name):
    return gen.get(name) if isinstance(gen, dict) else getattr(gen, name, None)


def matches(filters: dict, gen) -> bool:
    """Whether a generation (model instance or values() dict) passes a rule's filters."""
    if "prompt" in filters and _get(gen, "prompt_name") != filters["prompt"]:
        return False
    if "version" in filters and _get(gen, "prompt_version") != filters["version"]:
        return False
    if "model" in filters and _get(gen, "model_id") != filters["model"]:
        return False
    if filters.get("errors_only") and _get(gen, "status") != "error":
        return False
    if "latency_above" in filters:
        latency = _get(gen, "latency_ms")
        if latency is None or latency <= filters["latency_above"]:
            return False
    if "cost_above" in filters:
        cost = _get(gen, "cost_usd")
        if cost is None or float(cost) <= filters["cost_above"]:
            return False
    if filters.get("tags"):
        tags = _get(gen, "tags") or []
        if not isinstance(tags, list) or not all(t in tags for t in filters["tags"]):
            return False
    if filters.get("metadata"):
        metadata = _get(gen, "metadata") or {}
        if not isinstance(metadata, dict):
            return False
        for key, value in filters["metadata"].items():
            if str(metadata.get(key)) != str(value):
                return False
    return True


def db_filter(filters: dict) -> dict:
    """The part of the filters a database narrows cheaply; `matches` checks the rest."""
    lookup: dict[str, Any] = {}
    if "prompt" in filters:
        lookup["prompt_name"] = filters["prompt"]
    if "version" in filters:
        lookup["prompt_version"] = filters["version"]
    if "model" in filters:
        lookup["model_id"] = filters["model"]
    if filters.get("errors_only"):
        lookup["status"] = "error"
    if "latency_above" in filters:
        lookup["latency_ms__gt"] = filters["latency_above"]
    if "cost_above" in filters:
        lookup["cost_usd__gt"] = filters["cost_above"]
    return lookup


def decide(rules, gen, queue_id: int):
    """The rule that samples this generation into the queue (highest priority), or None."""
    chosen = None
    value = None
    for rule in rules:
        if not matches(rule.filters or {}, gen):
            continue
        if value is None:
            value = draw(_get(gen, "external_id"), queue_id)
        if value < rule.rate and (chosen is None or rule.priority > chosen.priority):
            chosen = rule
    return chosen


def describe(filters: dict) -> str:
    parts = []
    for key in FILTER_KEYS:
        if key in filters:
            value = filters[key]
            if key == "metadata":
                parts.extend(f"metadata.{k} = {v}" for k, v in value.items())
            elif key == "tags":
                parts.append("tags ⊇ " + ", ".join(value))
            elif key == "errors_only":
                parts.append("errors only")
            else:
                parts.append(f"{key.replace('_', ' ')} {value}")
    return "; ".join(parts) or "all generations"
