"""Audit chain: (a) appends/second with 4 concurrent writers on one organization's chain
(each thread its own connection, `audit_record` inside `transaction.atomic()`), chain
verified afterwards; (b) `audit_verify` over 1,000,000 events against hashing the same
canonical bytes with hashlib alone (rows inserted with COPY, the real chain computed here).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from datetime import UTC, datetime, timedelta

WRITERS = 4
APPEND_SECONDS = float(os.environ.get("BENCH_AUDIT_APPEND_SECONDS", "10"))
VERIFY_EVENTS = int(os.environ.get("BENCH_AUDIT_EVENTS", "1000000"))
SAMPLE_EVENTS = 100_000  # kept in memory to time encoding+hashing without the database
ACTIONS = ("prompt.version_approved", "member.role_changed", "label.deployed", "api_key.created")


def _appends(report, writers: int) -> None:
    from django.db import connection, transaction

    from benchmarks.common import make_org
    from llmops.audit.services import audit_record
    from llmops.audit.verify import verify_org
    from llmops.tenancy.actor import Actor

    org = make_org(f"bench-append-{writers}")
    actor = Actor.system_for(org)
    counts = [0] * writers
    errors: list[BaseException] = []
    start_line = threading.Barrier(writers + 1)
    deadline = [0.0]

    def writer(index: int) -> None:
        try:
            start_line.wait()
            n = 0
            while time.perf_counter() < deadline[0]:
                with transaction.atomic():
                    audit_record(
                        actor=actor,
                        action="bench.append",
                        target=("bench.item", f"{index}-{n}", f"item {index}-{n}"),
                        details={"writer": index, "n": n},
                    )
                n += 1
            counts[index] = n
        except BaseException as exc:  # noqa: BLE001 - surfaced after join
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + APPEND_SECONDS
    began = time.perf_counter()
    start_line.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    total = sum(counts)
    label = f"{writers}_writer{'s' if writers > 1 else ''}"
    report(
        f"appends_per_second_{label}", total / elapsed, "events/s", f"{total:,} in {elapsed:.1f} s"
    )
    result = verify_org(org.pk)
    report(f"chain_intact_after_{label}", result.ok, "", "must be yes")
    if not result.ok:
        raise AssertionError(result.problem)


def _rows(
    org_id: int, first_seq: int, prev: str, count: int, blobs: list[bytes], sample: list[dict]
):
    """Yield COPY rows of a real chain continuing after `prev`; keep each event's
    canonical bytes in `blobs` for the hashlib-only baseline."""
    import json

    from llmops.audit.chain import STORED, canonical_bytes

    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(count):
        seq = first_seq + i
        values = {
            "organization_id": org_id,
            "seq": seq,
            "created_at": base + timedelta(microseconds=seq * 1_000_003),
            "actor_type": "user",
            "actor_id": str(1 + seq % 7),
            "actor_label": f"user{seq % 7}",
            "action": ACTIONS[seq % len(ACTIONS)],
            "target_type": "prompts.promptversion",
            "target_id": str(seq // 3),
            "target_label": f"support-answer v{seq // 3}",
            "details": {"comment": "looks good", "version": seq // 3},
            "ip": "10.0.0.1",
            "prev_hash": prev,
        }
        blob = canonical_bytes(values)
        digest = hashlib.sha256(blob).hexdigest()
        blobs.append(blob)
        if len(sample) < SAMPLE_EVENTS:
            sample.append(values)
        row = {**values, "details": json.dumps(values["details"], sort_keys=True), "hash": digest}
        yield tuple(row[name] for name in STORED)
        prev = digest


def _verify(report) -> None:
    from django.db import connection, transaction

    from benchmarks.common import make_org, timer
    from llmops.audit.chain import GENESIS, STORED, event_hash
    from llmops.audit.models import ChainHead
    from llmops.audit.verify import verify_org

    org = make_org("bench-verify")
    head = ChainHead.objects.get(organization_id=org.pk)
    blobs: list[bytes] = []
    sample: list[dict] = []
    with timer() as t_insert, transaction.atomic():
        with connection.cursor() as cursor:
            copy_sql = f"COPY audit_auditevent ({', '.join(STORED)}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                last = head.hash or GENESIS
                for row in _rows(org.pk, head.seq + 1, last, VERIFY_EVENTS, blobs, sample):
                    copy.write_row(row)
                    last = row[-1]
        ChainHead.objects.filter(pk=head.pk).update(seq=head.seq + VERIFY_EVENTS, hash=last)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")
    report("events_inserted_with_copy", VERIFY_EVENTS, "events")
    report("chain_build_and_copy", VERIFY_EVENTS / t_insert["seconds"], "events/s")

    with timer() as t_verify:
        result = verify_org(org.pk)
    if not result.ok or result.events != VERIFY_EVENTS + head.seq:
        raise AssertionError(f"verify failed: {result}")
    with timer() as t_hash:
        for blob in blobs:
            hashlib.sha256(blob).hexdigest()
    with timer() as t_encode:
        for values in sample:
            event_hash(values)
    per_event = 1e6 / result.events
    report(f"audit_verify_{result.events}_events_seconds", t_verify["seconds"], "s")
    report("audit_verify_rate", result.events / t_verify["seconds"], "events/s")
    report("hashlib_only_seconds", t_hash["seconds"], "s")
    report(
        "verify_to_hashlib_ratio", t_verify["seconds"] / t_hash["seconds"], "x", "lower is better"
    )
    # Where verify's time goes, per event: fetching rows vs encoding + hashing them.
    report("verify_per_event_us", t_verify["seconds"] * per_event, "us")
    report("hashlib_per_event_us", t_hash["seconds"] * per_event, "us")
    report(
        "canonical_encode_and_hash_per_event_us",
        t_encode["seconds"] * 1e6 / max(len(sample), 1),
        "us",
        "in memory, no database",
    )


def main(report) -> None:
    _appends(report, 1)
    _appends(report, WRITERS)
    _verify(report)
