"""Writing the audit trail: called by every service that changes governance state, as the
last step inside its transaction, so the chain lock is held only briefly."""

from __future__ import annotations

import json
import math
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from llmops.tenancy.actor import Actor

from .chain import GENESIS, event_hash
from .models import AuditEvent, ChainHead


def _stable(value):
    """A JSON value that reads back identically from every database: PostgreSQL's jsonb
    keeps numbers as numerics, so a float like 1e+20 comes back as the integer
    100000000000000000000 (its hash would no longer match); it refuses NaN, infinities
    and NUL characters."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value.is_integer() and abs(value) >= 1e16:
            return int(value)
        return value
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, dict):
        return {_stable(k): _stable(v) for k, v in value.items()}
    return value


def _normalise(details: dict | None) -> dict:
    # Store exactly what will be hashed: JSON-native values only.
    return _stable(json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder, sort_keys=True)))


def _target(target: Any) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    if isinstance(target, tuple):
        kind, ident, label = target
        return str(kind), str(ident), str(label)[:300]
    meta = target._meta
    return f"{meta.app_label}.{meta.model_name}", str(target.pk), str(target)[:300]


def audit_record(
    *, actor: Actor, action: str, target: Any = None, details: dict | None = None, org=None
) -> AuditEvent:
    """Append one event to the organization's chain. Must run inside the caller's transaction."""
    org = org or actor.org
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        raise RuntimeError("audit_record must be called inside the service's transaction")
    # Lock the chain head (one query on the usual path); the first event of an
    # organization creates it, race-safe, then locks it.
    head = ChainHead.objects.select_for_update().filter(organization_id=org.pk).first()
    if head is None:
        ChainHead.objects.get_or_create(organization_id=org.pk)
        head = ChainHead.objects.select_for_update().get(organization_id=org.pk)
    target_type, target_id, target_label = _target(target)
    values = {
        "organization_id": org.pk,
        "seq": head.seq + 1,
        "created_at": timezone.now(),
        "actor_type": actor.kind,
        "actor_id": actor.ref_id,
        "actor_label": actor.label[:200],
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "target_label": target_label,
        "details": _normalise(details),
        "ip": (actor.ip or "")[:45],
        "prev_hash": head.hash or GENESIS,
    }
    values["hash"] = event_hash(values)
    event = AuditEvent.objects.create(**values)
    ChainHead.objects.filter(pk=head.pk).update(seq=values["seq"], hash=values["hash"])
    return event
