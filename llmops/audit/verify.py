"""Proving the chain: recompute every hash from the stored values, in sequence order."""

from __future__ import annotations

from dataclasses import dataclass

from .chain import GENESIS, STORED, event_hash
from .models import AuditEvent, ChainHead

COLUMNS = ("id", *STORED)


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


# --- heads kept outside the database --------------------------------------------------
# `audit_verify --heads-out FILE` writes, and `--against FILE` reads, this JSON document:
# {"format": "llmops-audit-heads/1", "created_at": ISO time,
#  "heads": {"<org slug>": {"organization_id": n, "seq": n, "hash": "<hex>"}}}

HEADS_FORMAT = "llmops-audit-heads/1"


def heads_document(reports: dict[str, ChainReport], created_at: str) -> dict:
    return {
        "format": HEADS_FORMAT,
        "created_at": created_at,
        "heads": {
            slug: {"organization_id": r.organization_id, "seq": r.head_seq, "hash": r.head_hash}
            for slug, r in sorted(reports.items())
        },
    }


def parse_heads(document) -> dict[str, dict]:
    """The heads of a document written by `heads_document`; ValueError naming what is wrong."""
    if not isinstance(document, dict) or document.get("format") != HEADS_FORMAT:
        raise ValueError(f"not an audit heads file (expected format {HEADS_FORMAT!r})")
    heads = document.get("heads")
    if not isinstance(heads, dict):
        raise ValueError("'heads' must be an object of organization slug -> head")
    for slug, head in heads.items():
        if (
            not isinstance(head, dict)
            or not isinstance(head.get("seq"), int)
            or isinstance(head.get("seq"), bool)
            or head["seq"] < 0
            or not isinstance(head.get("hash"), str)
        ):
            raise ValueError(f"head of '{slug}' needs an integer 'seq' >= 0 and a 'hash'")
    return heads


def check_against(organization_id: int, report: ChainReport, recorded: dict) -> str:
    """'' when the chain still contains the recorded head; else what changed: a head below
    the recorded sequence (events deleted and the head rewound), or another event at the
    recorded sequence (the chain was rewritten from there on)."""
    seq, recorded_hash = recorded["seq"], recorded["hash"]
    if seq == 0:
        return ""
    if report.head_seq < seq:
        return (
            f"chain rewound: the head is #{report.head_seq}, but #{seq} was recorded "
            f"(events deleted)"
        )
    stored = (
        AuditEvent.objects.filter(organization_id=organization_id, seq=seq)
        .values_list("hash", flat=True)
        .first()
    )
    if stored != recorded_hash:
        return f"event #{seq} has another hash than recorded (the chain was rewritten)"
    return ""
