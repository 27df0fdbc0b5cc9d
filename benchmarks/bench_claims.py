"""Review claims on PostgreSQL: 16 concurrent reviewers (processes, each its own connection)
claiming and submitting on a queue of >= 100k items, overlap 2.

Figures: claims/s and p95 claim latency of the services (`item_claim` + `review_submit`)
and of a bare `SELECT ... FOR UPDATE SKIP LOCKED` claim loop on the same table in the same
run (same writes, raw SQL), and their ratios (goal service >= 0.5 of bare); over-assigned
items and items given twice to one reviewer, counted from the rows afterwards (goal 0);
service claim p95 with ~100k pending against ~1k pending (goal <= 1.5).

Knobs: BENCH_CLAIMS_ITEMS (default 120000), BENCH_CLAIMS_SECONDS (per loop, default 8),
BENCH_CLAIMS_REVIEWERS (default 16)."""

from __future__ import annotations

import os
import statistics
import time

ITEMS = int(os.environ.get("BENCH_CLAIMS_ITEMS", "120000"))
SECONDS = float(os.environ.get("BENCH_CLAIMS_SECONDS", "8"))
REVIEWERS = int(os.environ.get("BENCH_CLAIMS_REVIEWERS", "16"))
SMALL = 1000
FIXED_CYCLES = 25  # per reviewer, for the 100k vs 1k comparison
ANSWERS = {"correct": True, "quality": 4}

BARE_CLAIM = """
SELECT i.id FROM reviews_queueitem i
WHERE i.queue_id = %s AND i.state = 'open' AND i.reviews_done + i.active_claims < i.reviews_needed
  AND NOT EXISTS (SELECT 1 FROM reviews_assignment a WHERE a.item_id = i.id AND a.reviewer_id = %s)
ORDER BY i.priority DESC, i.created_at, i.id
LIMIT 1
FOR UPDATE OF i SKIP LOCKED
"""


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100)[94]


def _seed_items(org, queue, n: int, prefix: str) -> None:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO traces_generation (organization_id, external_id, trace_id, created_at,
                ingested_at, model_id, output, output_is_json, metadata, tags, user_ref,
                cost_source, status, error, pinned, pinned_reason, input)
            SELECT %s, %s || g, '', now() - g * interval '1 second', now(), 'gpt-4o-2024-08-06',
                'answer ' || g, false, '{}', '[]', '', '', 'ok', '', false, '',
                jsonb_build_object('q', g)
            FROM generate_series(1, %s) AS g
            """,
            [org.pk, prefix, n],
        )
        cursor.execute(
            """
            INSERT INTO reviews_queueitem (organization_id, queue_id, generation_id, state,
                priority, created_at, reviews_needed, reviews_done, active_claims, skips,
                needs_adjudication)
            SELECT %s, %s, id, 'open', 0, created_at, %s, 0, 0, 0, false
            FROM traces_generation WHERE organization_id = %s AND external_id LIKE %s
            """,
            [org.pk, queue.pk, queue.reviewers_per_item, org.pk, prefix + "%"],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE traces_generation")
        cursor.execute("ANALYZE reviews_queueitem")
        cursor.execute("ANALYZE reviews_assignment")


def _run(workers, body, *, seconds: float | None = None, cycles: int | None = None):
    """Run body(index) -> claim latency (None when the queue is empty) in one process per
    reviewer (forked, each its own connection), as web workers would: claims/s, latencies."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # children must not share the parent's socket
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(workers) + 1)
    results = ctx.Queue()

    def child(index: int) -> None:
        latencies: list[float] = []
        error = None
        try:
            barrier.wait()
            deadline = time.perf_counter() + (seconds or 0)
            while True:
                if seconds is not None and time.perf_counter() >= deadline:
                    break
                if cycles is not None and len(latencies) >= cycles:
                    break
                latency = body(index)
                if latency is None:
                    break
                latencies.append(latency)
        except BaseException as exc:  # noqa: BLE001 - reported by the parent
            error = repr(exc)
        finally:
            connections.close_all()
        results.put((index, latencies, error))

    procs = [ctx.Process(target=child, args=(i,)) for i in range(len(workers))]
    for proc in procs:
        proc.start()
    barrier.wait()
    began = time.perf_counter()
    collected = [results.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - began
    for proc in procs:
        proc.join()
    errors = [e for _, _, e in collected if e]
    if errors:
        raise RuntimeError(errors[0])
    flat = [x for _, lat, _ in collected for x in lat]
    return len(flat), elapsed, flat


def _service_body(actors, queue):
    from reviews import services

    def body(index: int):
        actor = actors[index]
        started = time.perf_counter()
        assignment = services.item_claim(actor=actor, queue=queue)
        latency = time.perf_counter() - started
        if assignment is None:
            return None
        services.review_submit(actor=actor, item=assignment.item, answers=ANSWERS)
        return latency

    return body


def _bare_body(users, queue):
    from django.db import connection, transaction

    def body(index: int):
        user_id = users[index].pk
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(BARE_CLAIM, [queue.pk, user_id])
            row = cursor.fetchone()
            if row is None:
                return None
            item_id = row[0]
            cursor.execute(
                "UPDATE reviews_queueitem SET active_claims = active_claims + 1 WHERE id = %s",
                [item_id],
            )
            cursor.execute(
                """INSERT INTO reviews_assignment (organization_id, queue_id, item_id,
                    reviewer_id, state, claimed_at, lease_expires_at, skip_reason)
                   VALUES (%s, %s, %s, %s, 'active', now(), now() + interval '10 minutes', '')
                   RETURNING id""",
                [queue.organization_id, queue.pk, item_id, user_id],
            )
            assignment_id = cursor.fetchone()[0]
        latency = time.perf_counter() - started
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE reviews_assignment SET state = 'submitted', finished_at = now() "
                "WHERE id = %s",
                [assignment_id],
            )
            cursor.execute(
                """UPDATE reviews_queueitem SET reviews_done = reviews_done + 1,
                    active_claims = active_claims - 1,
                    state = CASE WHEN reviews_done + 1 >= reviews_needed THEN 'done' ELSE state END
                   WHERE id = %s""",
                [item_id],
            )
            cursor.execute(
                """INSERT INTO reviews_review (organization_id, queue_id, item_id, assignment_id,
                    reviewer_id, answers, corrected_output, comment, time_spent_ms, created_at)
                   VALUES (%s, %s, %s, %s, %s, %s, '', '', 0, now())""",
                [
                    queue.organization_id,
                    queue.pk,
                    item_id,
                    assignment_id,
                    user_id,
                    '{"correct": true}',
                ],
            )
        return latency

    return body


def _violations(queue_ids) -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM reviews_queueitem i
               WHERE i.queue_id = ANY(%s) AND (
                 (SELECT count(*) FROM reviews_assignment a
                  WHERE a.item_id = i.id AND a.state IN ('active', 'submitted')) > i.reviews_needed
                 OR (SELECT count(*) FROM reviews_review r WHERE r.item_id = i.id) > i.reviews_needed
                 OR i.reviews_done > i.reviews_needed)""",
            [list(queue_ids)],
        )
        over = cursor.fetchone()[0]
        cursor.execute(
            """SELECT count(*) FROM (SELECT item_id, reviewer_id FROM reviews_assignment
               WHERE queue_id = ANY(%s) GROUP BY item_id, reviewer_id HAVING count(*) > 1) d""",
            [list(queue_ids)],
        )
        twice = cursor.fetchone()[0]
    return over, twice


def main(report) -> None:
    from django.contrib.auth import get_user_model

    from benchmarks.common import make_org
    from llmops.tenancy import guardian
    from llmops.tenancy.actor import Actor
    from llmops.tenancy.models import Membership
    from reviews import services

    org = make_org("bench-claims")
    admin = Membership.objects.get(organization=org, role="admin").user
    owner = Actor(org=org, user=admin, role="admin")
    rubric = {
        "questions": [
            {"key": "correct", "label": "Correct?", "type": "boolean", "required": True},
            {
                "key": "quality",
                "label": "Quality",
                "type": "scale",
                "required": True,
                "min": 1,
                "max": 5,
            },
        ]
    }
    big = services.queue_create(actor=owner, name="big", rubric=rubric, reviewers_per_item=2)
    bare = services.queue_create(actor=owner, name="bare", rubric=rubric, reviewers_per_item=2)
    small = services.queue_create(actor=owner, name="small", rubric=rubric, reviewers_per_item=2)
    users, actors = [], []
    for i in range(REVIEWERS):
        user = get_user_model().objects.create(username=f"bench-reviewer-{i}")
        Membership.objects.create(user=user, organization=org, role="reviewer")
        for queue in (big, bare, small):
            guardian.grant("review_queue", user, queue)
        users.append(user)
        actors.append(Actor(org=org, user=user, role="reviewer"))
    started = time.perf_counter()
    _seed_items(org, big, ITEMS, "big-")
    _seed_items(org, bare, ITEMS, "bare-")
    _seed_items(org, small, SMALL, "small-")
    report("items_in_queue", ITEMS, "items")
    report("seed_seconds", time.perf_counter() - started, "s")

    # Each reviewer's permission checks are cached before the processes fork (not measured),
    # as a web worker's would be after its first request.
    from llmops.tenancy.policy import can

    for actor in actors:
        for queue in (big, small):
            assert can(actor, "queue.view", queue) and can(actor, "queue.review", queue)

    s_count, s_elapsed, s_lat = _run(actors, _service_body(actors, big), seconds=SECONDS)
    b_count, b_elapsed, b_lat = _run(users, _bare_body(users, bare), seconds=SECONDS)
    s_rate, b_rate = s_count / s_elapsed, b_count / b_elapsed
    s_p95, b_p95 = _p95(s_lat) * 1000, _p95(b_lat) * 1000
    report("reviewers", REVIEWERS, "processes")
    report("service_claims_per_second", s_rate, "claims/s", "(claim + submit cycles)")
    report("bare_claims_per_second", b_rate, "claims/s")
    report("throughput_ratio", s_rate / b_rate, "x", "goal >= 0.5")
    report("service_claim_p95", s_p95, "ms")
    report("bare_claim_p95", b_p95, "ms")
    report("p95_latency_ratio_bare_over_service", b_p95 / s_p95, "x", "goal >= 0.5")

    # Same work on a 1k queue and on the (still ~100k) big queue: p95 should not grow.
    _, _, large_lat = _run(actors, _service_body(actors, big), cycles=FIXED_CYCLES)
    _, _, small_lat = _run(actors, _service_body(actors, small), cycles=FIXED_CYCLES)
    from reviews.models import QueueItem

    pending_big = QueueItem.objects.filter(queue=big, state="open").count()
    report("pending_large_queue", pending_big, "items")
    report("claim_p95_large_queue", _p95(large_lat) * 1000, "ms")
    report("claim_p95_1k_queue", _p95(small_lat) * 1000, "ms")
    report("p95_large_over_1k", _p95(large_lat) / _p95(small_lat), "x", "goal <= 1.5")

    over, twice = _violations([big.pk, bare.pk, small.pk])
    report("items_over_assigned", over, "items", "goal 0")
    report("items_assigned_twice_to_one_reviewer", twice, "items", "goal 0")
