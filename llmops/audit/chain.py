"""The canonical encoding and hash of an audit event (shared by writer and verifier)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

GENESIS = "0" * 64
FIELDS = (
    "organization_id",
    "seq",
    "created_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "details",
    "ip",
    "prev_hash",
)
# Every column an event stores besides its id: the hashed fields, then the hash itself.
STORED = (*FIELDS, "hash")


def canonical_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(values: dict) -> bytes:
    doc = {name: values[name] for name in FIELDS}
    doc["created_at"] = canonical_time(values["created_at"])
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(values: dict) -> str:
    return hashlib.sha256(canonical_bytes(values)).hexdigest()
