"""Generation ingest: (1) raw psycopg COPY of N prepared generation rows straight into the
table, against (2) the same N generations sent through `POST /api/v1/generations/batch` under
gunicorn (batches of 500, several concurrent clients, a machine key with the `ingest` scope):
validation, dedupe, catalog pricing, COPY + INSERT ... ON CONFLICT, rollups and receivers,
plus the compaction of the per-user rollup rows that ingest appends (a beat task's work).

Figures: rows/s of each and their ratio (goal >= 0.5), a retried batch adding nothing, and the
peak RSS of the web workers after half and after all of the batches (must not grow with N).

Knobs: BENCH_INGEST_N (default 100000), BENCH_INGEST_CLIENTS (default 4),
BENCH_INGEST_WORKERS (gunicorn workers, default CPU count)."""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

N = int(os.environ.get("BENCH_INGEST_N", "100000"))
BATCH = 500
CLIENTS = int(os.environ.get("BENCH_INGEST_CLIENTS", "4"))
WORKERS = int(os.environ.get("BENCH_INGEST_WORKERS", str(os.cpu_count() or 2)))
HOST = "127.0.0.1"
MODELS = ("claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06", "claude-3-5-haiku-20241022")
PROMPTS = (("support-reply", 1), ("support-reply", 2), ("summarize-ticket", 1), None)


def _items(prefix: str, n: int) -> list[dict]:
    rng = random.Random(prefix)
    now = datetime.now(UTC) - timedelta(minutes=5)
    out = []
    for i in range(n):
        prompt = PROMPTS[i % len(PROMPTS)]
        item = {
            "external_id": f"{prefix}-{i:07d}",
            # Production apps send recent events in time order (about two per second here).
            "created_at": (now - timedelta(seconds=(n - i) / 2 + rng.random())).isoformat(),
            "model": MODELS[i % len(MODELS)],
            "input": [
                {"role": "system", "content": "You are the support assistant of Acme."},
                {"role": "user", "content": f"Where is my parcel {i}? It was due on Monday."},
            ],
            "output": "Your parcel left the warehouse on Tuesday and arrives within two days. " * 3,
            "latency_ms": int(rng.lognormvariate(6.6, 0.5)),
            "input_tokens": rng.randint(300, 2000),
            "output_tokens": rng.randint(40, 400),
            "status": "error" if rng.random() < 0.02 else "ok",
            "user_ref": f"u-{rng.randint(1, 5000)}",
            "tags": ["web"],
            "metadata": {"region": "eu"},
        }
        if prompt:
            item["prompt"] = {"name": prompt[0], "version": prompt[1]}
        out.append(item)
    return out


# -- (1) raw COPY ---------------------------------------------------------------------------


def _raw_copy(org, items: list[dict]) -> float:
    """rows/s of COPY of prepared rows (the Python tuples are built before the clock starts)."""
    from django.db import connection

    from llmops.traces.services import COLUMNS

    now = datetime.now(UTC)
    rows = []
    for it in items:
        p = it.get("prompt")
        rows.append(
            (
                org.pk,
                it["external_id"],
                "",
                it["created_at"],
                now,
                p["name"] if p else None,
                p["version"] if p else None,
                it["model"],
                None,
                json.dumps(it["input"]),
                it["output"],
                False,
                None,
                None,
                json.dumps(it["metadata"]),
                json.dumps(it["tags"]),
                it["user_ref"],
                it["latency_ms"],
                it["input_tokens"],
                it["output_tokens"],
                None,
                "",
                it["status"],
                "",
                False,
                "",
            )
        )
    cols = ", ".join(COLUMNS)
    connection.ensure_connection()
    raw = connection.connection
    start = time.perf_counter()
    with raw.cursor() as cur:
        with cur.copy(f"COPY traces_generation ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    raw.commit()
    return len(rows) / (time.perf_counter() - start)


# -- (2) HTTP under gunicorn ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _start_gunicorn(port: int) -> subprocess.Popen:
    from benchmarks.common import ROOT

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
        "SECURE_SSL_REDIRECT": "0",
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [
            str(gunicorn),
            "llmops.wsgi:application",
            "--bind",
            f"{HOST}:{port}",
            "--workers",
            str(WORKERS),
            "--worker-class",
            "sync",
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ],
        cwd=str(ROOT),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", "/healthz", headers={"Host": "localhost"})
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited at start")
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("gunicorn did not answer /healthz within 30 s")


def _worker_pids(master: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True
    ).stdout
    return [int(x) for x in out.split()]


def _peak_rss_mb(pids: list[int]) -> float:
    peak = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak / 1024


def _post(port: int, key: str, body: bytes) -> dict:
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    conn.request(
        "POST",
        "/api/v1/generations/batch",
        body=body,
        headers={
            "Host": "localhost",
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "X-Forwarded-Proto": "https",
        },
    )
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"batch answered {response.status}: {data[:300]!r}")
    return json.loads(data)


def _send_all(port: int, key: str, bodies: list[bytes]) -> tuple[float, dict]:
    queue = list(reversed(bodies))
    lock = threading.Lock()
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    errors: list[BaseException] = []

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            try:
                answer = _post(port, key, body)
            except BaseException as exc:  # noqa: BLE001 - reported after join
                errors.append(exc)
                return
            with lock:
                for k in totals:
                    totals[k] += answer[k]

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed, totals


def main(report) -> None:
    from benchmarks.common import make_org
    from llmops.tenancy.actor import Actor
    from llmops.tenancy.services import api_key_create
    from llmops.traces.services import user_rollups_compact

    raw_org = make_org("bench-ingest-raw")
    api_org = make_org("bench-ingest-api")
    _, key = api_key_create(actor=Actor.system_for(api_org), name="bench", scopes=["ingest"])

    copy_rate = _raw_copy(raw_org, _items("raw", N))
    report("raw_copy_rows_per_second", copy_rate, "rows/s", f"N={N:,}")

    items = _items("api", N)
    bodies = [
        json.dumps({"generations": items[i : i + BATCH]}).encode() for i in range(0, N, BATCH)
    ]
    del items
    port = _free_port()
    proc = _start_gunicorn(port)
    try:
        pids = _worker_pids(proc.pid)
        half = len(bodies) // 2
        t1, first = _send_all(port, key, bodies[:half])
        rss_half = _peak_rss_mb(pids)
        t2, second = _send_all(port, key, bodies[half:])
        rss_all = _peak_rss_mb(pids)
        # The per-user rows ingest appended are folded by a beat task; that deferred work is
        # part of the cost of ingest, so it counts in the API's time.
        start = time.perf_counter()
        folded = user_rollups_compact(org=api_org)
        t3 = time.perf_counter() - start
        accepted = first["accepted"] + second["accepted"]
        api_rate = accepted / (t1 + t2 + t3)
        report(
            "api_rows_per_second",
            api_rate,
            "rows/s",
            f"{CLIENTS} clients, batches of {BATCH}, {WORKERS} workers",
        )
        report("user_rollup_compaction", t3, "s", f"{folded:,} days folded, counted above")
        report("api_to_copy_ratio", api_rate / copy_rate, "x", "goal >= 0.5")
        report("api_accepted", accepted, "rows", f"expected {N:,}")
        retry = _post(port, key, bodies[0])
        report("retried_batch_accepted", retry["accepted"], "rows", "goal 0 (all duplicates)")
        report("worker_peak_rss_half", rss_half, "MB", f"after {half * BATCH:,} rows")
        report("worker_peak_rss_all", rss_all, "MB", "must not grow with N")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    from llmops.traces.models import DailyUserRollup, HourlyRollup

    total = sum(HourlyRollup.objects.filter(organization=api_org).values_list("count", flat=True))
    report("rollup_count_matches", total == accepted, "", "goal yes")
    users = DailyUserRollup.objects.filter(organization=api_org)
    report(
        "user_rollup_count_matches",
        sum(users.values_list("count", flat=True)) == accepted
        and users.count() == len(set(users.values_list("user_ref", "day"))),
        "",
        "goal yes (one row per end user and day after compaction)",
    )
