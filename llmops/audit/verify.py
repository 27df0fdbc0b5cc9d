"""Proving the chain: recompute every hash from the stored values, in sequence order."""

from __future__ import annotations

from dataclasses import dataclass

from .chain import GENESIS, event_hash
from .models import AuditEvent, ChainHead

COLUMNS = (
    "id",
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
    "hash",
)


@dataclass
class ChainReport:
    organization_id: int
    events: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None and not self.problem


def verify_org(organization_id: int, *, chunk: int = 5000) -> ChainReport:
    expected_prev = GENESIS
    expected_seq = 1
    count = 0
    last_hash = GENESIS
    qs = (
        AuditEvent.objects.filter(organization_id=organization_id)
        .order_by("seq")
        .values_list(*COLUMNS)
    )
    for row in qs.iterator(chunk_size=chunk):
        values = dict(zip(COLUMNS, row, strict=True))
        seq = values["seq"]
        if seq != expected_seq:
            what = "missing" if seq > expected_seq else "out of order"
            return ChainReport(
                organization_id, count, seq, "", expected_seq, f"event #{expected_seq} is {what}"
            )
        if values["prev_hash"] != expected_prev:
            return ChainReport(
                organization_id, count, seq, "", seq, f"event #{seq} does not link to #{seq - 1}"
            )
        if event_hash(values) != values["hash"]:
            return ChainReport(
                organization_id, count, seq, "", seq, f"event #{seq} was edited (hash mismatch)"
            )
        expected_prev = last_hash = values["hash"]
        expected_seq += 1
        count += 1
    head = ChainHead.objects.filter(organization_id=organization_id).first()
    if head is not None and (head.seq != count or (head.hash or GENESIS) != last_hash):
        return ChainReport(
            organization_id,
            count,
            count,
            last_hash,
            count + 1 if head.seq > count else count,
            f"chain head says #{head.seq} but the table ends at #{count}: events were deleted",
        )
    return ChainReport(organization_id, count, count, last_hash if count else "")
