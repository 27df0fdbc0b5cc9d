"""Prompt resolve under gunicorn: `GET /api/v1/prompts/<name>/resolve?label=production` with a
machine key, warm cache, many concurrent clients on loopback — against a no-op Django view
served by the same gunicorn, same settings and middleware, in the same run. The no-op view
is mounted as an API route (`/api/v1/noop`, after every app's API routes) so both pay the
same URL resolution; a copy at the front of the URLconf (`/bench/noop`) is reported too.

Figures: requests/second of each and their ratio (goal >= 0.8), p50/p99 latency, and
database queries per request counted inside the server (goal 0 on a warm cache, key
authentication included). The 304 path (If-None-Match) is measured too. When Redis answers
on REDIS_URL (default redis://127.0.0.1:6379/0), the resolve figures are repeated with the
Redis cache (shared by the workers), as production runs it.

The targets are measured in alternating slices (noop, resolve, front noop, 304, repeated)
so the machine's load drifts over all of them alike.

Knobs: BENCH_RESOLVE_SECONDS (per target, default 10), BENCH_RESOLVE_SLICES (default 5), BENCH_RESOLVE_CLIENTS (default
16 connections in flight), BENCH_RESOLVE_WORKERS (gunicorn workers, default CPU count)."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

SECONDS = float(os.environ.get("BENCH_RESOLVE_SECONDS", "10"))  # per target, in slices
SLICES = int(os.environ.get("BENCH_RESOLVE_SLICES", "5"))
CLIENTS = int(os.environ.get("BENCH_RESOLVE_CLIENTS", "16"))
WORKERS = int(os.environ.get("BENCH_RESOLVE_WORKERS", str(os.cpu_count() or 2)))
CLIENT_PROCESSES = max(1, min(4, (os.cpu_count() or 2) // 2))
HOST = "127.0.0.1"
MODEL_ID = "claude-sonnet-4-5-20250929"

SETTINGS_MODULE = """
from llmops.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench_resolve_urls"
MIDDLEWARE = ["bench_resolve_urls.QueryCountMiddleware", *MIDDLEWARE]  # noqa: F405
"""

URLS_MODULE = """
from django.db import connections
from django.http import HttpResponse
from django.urls import path

from llmops import urls as base


def noop(request):
    return HttpResponse(b'{"ok":true}', content_type="application/json")


# The baseline is served like an API route: mounted under /api/v1/ after every app's API
# routes (resolve is one of them), so both pay the same URL resolution. A second copy at
# the very front of the URLconf shows what that resolution costs.
base.api_patterns.append(path("v1/noop", noop, name="bench-noop"))
urlpatterns = [path("bench/noop", noop), *base.urlpatterns]


class QueryCountMiddleware:
    # Counts every query of the request (authentication included) into X-Queries.
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        count = [0]

        def wrapper(execute, sql, params, many, context):
            count[0] += 1
            return execute(sql, params, many, context)

        with connections["default"].execute_wrapper(wrapper):
            response = self.get_response(request)
        response["X-Queries"] = str(count[0])
        return response
"""


# -- data -----------------------------------------------------------------------------------


def _seed() -> tuple[str, str]:
    """An organization with an approved prompt version in production; a read-only machine
    key. Returns (raw key, prompt name)."""
    from django.contrib.auth import get_user_model

    from benchmarks.common import make_org
    from llmops.catalog.models import ModelVersion
    from llmops.tenancy.actor import Actor
    from llmops.tenancy.models import Membership, Role
    from llmops.tenancy.services import api_key_create
    from prompts import services

    org = make_org("bench-resolve")
    user_model = get_user_model()
    admin = user_model.objects.get(username="bench-resolve-admin")
    maint, _ = user_model.objects.get_or_create(username="bench-resolve-maint")
    Membership.objects.get_or_create(
        user=maint, organization=org, defaults={"role": Role.MAINTAINER}
    )
    ModelVersion.objects.create(
        organization=org, provider="anthropic", model_id=MODEL_ID, status="approved"
    )
    as_maint = Actor(org=org, user=maint, role=Role.MAINTAINER)
    as_admin = Actor(org=org, user=admin, role=Role.ADMIN)
    prompt = services.prompt_create(actor=as_maint, name="support-reply")
    version, _ = services.version_create(
        actor=as_maint,
        prompt=prompt,
        model=MODEL_ID,
        template="You are the support assistant of {{ company }}.\n" * 20
        + "Reply to {{ customer_name }} about: {{ ticket_body }}",
        params={"temperature": 0.2, "max_tokens": 600},
    )
    services.version_record_eval_run(
        actor=as_maint, version=version, data={"tool": "custom", "results": [{"passed": True}]}
    )
    services.version_review(actor=as_admin, version=version, decision="approve", comment="ok")
    services.label_deploy(actor=as_admin, prompt=prompt, label="production", version=version)
    _, raw = api_key_create(actor=Actor.system_for(org), name="bench", scopes=["prompts:read"])
    return raw, prompt.name


# -- server ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _start_gunicorn(tmp: Path, port: int, extra_env: dict) -> subprocess.Popen:
    from benchmarks.common import ROOT

    env = {
        **os.environ,
        **extra_env,
        "DJANGO_SETTINGS_MODULE": "bench_resolve_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp), str(ROOT)]),
        "LOG_LEVEL": "WARNING",
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
            "--backlog",
            "2048",
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
            status, _, _ = _request(port, "/healthz", {})
            if status == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited at start")
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("gunicorn did not answer /healthz within 30 s")


# -- client ---------------------------------------------------------------------------------


def _request(port: int, path: str, headers: dict) -> tuple[int, int, str]:
    """One request on a fresh connection (gunicorn's sync workers close after each).
    Returns (status, X-Queries, ETag)."""
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection((HOST, port), timeout=30) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    queries, etag = -1, ""
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "x-queries":
            queries = int(value.strip())
        elif name.lower() == "etag":
            etag = value.strip()
    return status, queries, etag


def _client_process(port, path, headers, seconds, threads, out):
    latencies: list[float] = []
    queries: list[int] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def loop():
        mine_l, mine_q, bad = [], [], 0
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                status, q, _ = _request(port, path, headers)
            except OSError:
                bad += 1
                continue
            mine_l.append(time.perf_counter() - t0)
            mine_q.append(q)
            if status not in (200, 304):
                bad += 1
        with lock:
            latencies.extend(mine_l)
            queries.extend(mine_q)
            errors[0] += bad

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((latencies, queries, errors[0]))


def _load(port: int, path: str, headers: dict, seconds: float) -> dict:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    per_process = max(1, CLIENTS // CLIENT_PROCESSES)
    procs = [
        ctx.Process(target=_client_process, args=(port, path, headers, seconds, per_process, out))
        for _ in range(CLIENT_PROCESSES)
    ]
    start = time.perf_counter()
    for p in procs:
        p.start()
    latencies, queries, errors = [], [], 0
    for _ in procs:
        lat, q, err = out.get()
        latencies += lat
        queries += q
        errors += err
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0
        )

    return {
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "errors": errors,
        "latencies": latencies,
        "query_counts": queries,
        "elapsed": elapsed,
    }


def _merge(runs: list[dict]) -> dict:
    """Totals over several slices: requests over summed time, pooled latencies."""
    latencies = sorted(x for r in runs for x in r["latencies"])
    queries = [q for r in runs for q in r["query_counts"]]
    elapsed = sum(r["elapsed"] for r in runs)

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0
        )

    return {
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "queries": (sum(queries) / len(queries)) if queries else -1,
        "max_queries": max(queries) if queries else -1,
        "errors": sum(r["errors"] for r in runs),
    }


def _interleaved(port, targets: dict, slices: int = SLICES) -> dict:
    """Measure the targets in alternating short slices, so a load change on a shared
    machine hits all of them alike; returns the merged figures per target."""
    runs: dict[str, list] = {name: [] for name in targets}
    for _ in range(slices):
        for name, (path, headers) in targets.items():
            runs[name].append(_load(port, path, headers, SECONDS / slices))
    return {name: _merge(r) for name, r in runs.items()}


def _measure(report, tmp: Path, raw: str, name: str, prefix: str, extra_env: dict) -> None:
    port = _free_port()
    proc = _start_gunicorn(tmp, port, extra_env)
    try:
        auth = {"Authorization": f"Bearer {raw}", "X-Forwarded-Proto": "https"}
        resolve = f"/api/v1/prompts/{name}/resolve?label=production"
        noop = "/api/v1/noop"
        status, _, etag = _request(port, resolve, auth)
        if status != 200:
            raise RuntimeError(f"resolve answered {status}")
        # Warm every worker: the key cache, the organization cache and the payload.
        _load(port, resolve, auth, 1.5)
        _load(port, noop, {"X-Forwarded-Proto": "https"}, 1.0)
        plain = {"X-Forwarded-Proto": "https"}
        figures = _interleaved(
            port,
            {
                "noop": (noop, plain),
                "resolve": (resolve, auth),
                "front": ("/bench/noop", plain),
                "304": (resolve, {**auth, "If-None-Match": etag}),
            },
        )
        base, hot, front, not_modified = (figures[k] for k in ("noop", "resolve", "front", "304"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if prefix == "":
        report("noop.requests_per_second", round(base["rps"], 1), "req/s")
        report("noop.p99_ms", round(base["p99"], 2), "ms")
        report("noop_first_route.requests_per_second", round(front["rps"], 1), "req/s")
    report(f"{prefix}resolve.requests_per_second", round(hot["rps"], 1), "req/s")
    report(
        f"{prefix}resolve.ratio_to_noop",
        round(hot["rps"] / base["rps"], 3) if base["rps"] else 0.0,
        "x",
        "goal >= 0.8",
    )
    if prefix == "":
        report(
            "resolve.ratio_to_noop_first_route",
            round(hot["rps"] / front["rps"], 3) if front["rps"] else 0.0,
            "x",
        )
    report(f"{prefix}resolve.p50_ms", round(hot["p50"], 2), "ms")
    report(f"{prefix}resolve.p99_ms", round(hot["p99"], 2), "ms")
    report(f"{prefix}resolve.queries_per_request", round(hot["queries"], 3), "queries", "goal 0")
    report(f"{prefix}resolve.max_queries_in_a_request", hot["max_queries"], "queries")
    report(f"{prefix}resolve_304.requests_per_second", round(not_modified["rps"], 1), "req/s")
    report(f"{prefix}resolve.errors", hot["errors"] + not_modified["errors"], "requests")


def _redis_url() -> str | None:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception:  # noqa: BLE001 - no Redis here: skip that pass
        return None
    return url


def main(report) -> None:
    from django.db import connections

    raw, name = _seed()
    connections.close_all()  # the client processes are forked from here
    print(
        f"gunicorn {WORKERS} sync workers, {CLIENTS} concurrent clients in "
        f"{CLIENT_PROCESSES} process(es), {SECONDS:g} s per target in {SLICES} interleaved slices",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-resolve-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "bench_resolve_settings.py").write_text(textwrap.dedent(SETTINGS_MODULE))
        (tmp_path / "bench_resolve_urls.py").write_text(textwrap.dedent(URLS_MODULE))
        # Local-memory cache (each worker warms its own); then Redis, shared, as in production.
        _measure(report, tmp_path, raw, name, "", {"REDIS_URL": ""})
        url = _redis_url()
        if url:
            _measure(report, tmp_path, raw, name, "redis.", {"REDIS_URL": url})
        else:
            print("(no Redis answering: the redis.* figures are skipped)", flush=True)
