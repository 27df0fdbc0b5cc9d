import json
from datetime import timedelta

import pytest
from django.utils import timezone

from llmops.traces.services import generations_ingest
from reviews import sampling, selectors, services
from reviews.models import BackfillJob, QueueItem

from .conftest import make_generations, make_queue


def _batch(world, ids, **extra):
    return json.dumps(
        {
            "generations": [
                {
                    "external_id": i,
                    "model": "gpt-4o-2024-08-06",
                    "input": {"q": i},
                    "output": "a",
                    **extra,
                }
                for i in ids
            ]
        }
    ).encode()


def test_draw_is_deterministic_per_queue():
    assert sampling.draw("abc", 1) == sampling.draw("abc", 1)
    assert sampling.draw("abc", 1) != sampling.draw("abc", 2)
    values = [sampling.draw(f"id-{i}", 7) for i in range(20000)]
    assert 0.48 < sum(v < 0.5 for v in values) / len(values) < 0.52


def test_ingest_samples_deterministically_and_a_retry_adds_nothing(acme, globex):
    queue = make_queue(acme)
    services.rule_create(actor=acme.actor("maint1"), queue=queue, rate=0.3)
    ids = [f"ext-{i}" for i in range(400)]
    expected = {i for i in ids if sampling.draw(i, queue.pk) < 0.3}
    result = generations_ingest(actor=acme.actor("admin"), body=_batch(acme, ids))
    assert result.sampled == len(expected) > 0
    got = set(
        QueueItem.objects.filter(queue=queue).values_list("generation__external_id", flat=True)
    )
    assert got == expected
    again = generations_ingest(actor=acme.actor("admin"), body=_batch(acme, ids))
    assert again.duplicates == 400 and again.sampled == 0
    assert QueueItem.objects.filter(queue=queue).count() == len(expected)
    # Another organization's ingest never lands in acme's queue.
    generations_ingest(actor=globex.actor("admin"), body=_batch(globex, ["g-1", "g-2"]))
    assert not QueueItem.objects.filter(queue=queue, generation__organization=globex.org).exists()


def test_strata_all_errors_plus_share_of_rest_with_priority(acme):
    queue = make_queue(acme)
    maint = acme.actor("maint1")
    services.rule_create(
        actor=maint, queue=queue, rate=1.0, filters={"errors_only": True}, priority=10
    )
    services.rule_create(actor=maint, queue=queue, rate=0.0)
    generations_ingest(actor=acme.actor("admin"), body=_batch(acme, ["ok-1", "ok-2"]))
    generations_ingest(
        actor=acme.actor("admin"), body=_batch(acme, ["bad-1"], status="error", error="boom")
    )
    items = list(QueueItem.objects.filter(queue=queue))
    assert [(i.generation.external_id, i.priority) for i in items] == [("bad-1", 10)]


@pytest.mark.parametrize(
    "filters, hit, miss",
    [
        ({"model": "m1"}, {"model_id": "m1"}, {"model_id": "m2"}),
        (
            {"prompt": "faq", "version": 2},
            {"prompt_name": "faq", "prompt_version": 2},
            {"prompt_name": "faq", "prompt_version": 1},
        ),
        ({"tags": ["vip", "eu"]}, {"tags": ["eu", "vip", "x"]}, {"tags": ["eu"]}),
        (
            {"metadata": {"tier": "gold"}},
            {"metadata": {"tier": "gold"}},
            {"metadata": {"tier": "free"}},
        ),
        ({"latency_above": 1000}, {"latency_ms": 1500}, {"latency_ms": 900}),
        ({"cost_above": 0.01}, {"cost_usd": 0.02}, {"cost_usd": None}),
        ({"errors_only": True}, {"status": "error"}, {"status": "ok"}),
    ],
)
def test_filters(filters, hit, miss):
    _, clean = sampling.validate_rule(rate=1, filters=filters)
    assert sampling.matches(clean, hit)
    assert not sampling.matches(clean, miss)


def test_rule_validation(acme):
    queue = make_queue(acme)
    for rate, filters in ((1.5, {}), ("x", {}), (0.5, {"colour": "red"})):
        with pytest.raises(Exception) as exc:
            services.rule_create(
                actor=acme.actor("maint1"), queue=queue, rate=rate, filters=filters
            )
        assert getattr(exc.value, "status", None) == 400


def test_backfill_applies_rules_to_a_window_with_progress(acme, django_capture_on_commit_callbacks):
    queue = make_queue(acme)
    gens = make_generations(acme, 30)
    make_generations(acme, 5, prefix="old", created_at=timezone.now() - timedelta(days=10))
    services.rule_create(actor=acme.actor("maint1"), queue=queue, rate=0.5)
    expected = {g.pk for g in gens if sampling.draw(g.external_id, queue.pk) < 0.5}
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        job = services.backfill_start(
            actor=acme.actor("maint1"),
            queue=queue,
            since=now - timedelta(days=1),
            until=now + timedelta(minutes=1),
        )
    job.refresh_from_db()  # eager Celery ran it on commit
    assert job.state == BackfillJob.State.DONE and job.total == 30 and job.processed == 30
    assert job.sampled == len(expected) and job.percent == 100
    assert (
        set(QueueItem.objects.filter(queue=queue).values_list("generation_id", flat=True))
        == expected
    )
    # Running it again adds nothing.
    with django_capture_on_commit_callbacks(execute=True):
        job2 = services.backfill_start(
            actor=acme.actor("maint1"),
            queue=queue,
            since=now - timedelta(days=1),
            until=now + timedelta(minutes=1),
        )
    job2.refresh_from_db()
    assert job2.sampled == 0


def test_preview_counts_last_24h(acme):
    queue = make_queue(acme)
    make_generations(acme, 40)
    make_generations(acme, 10, prefix="old", created_at=timezone.now() - timedelta(days=3))
    rule = services.rule_create(actor=acme.actor("maint1"), queue=queue, rate=1.0)
    preview = selectors.sampling_preview(queue=queue)
    assert (
        preview["scanned"] == 40
        and preview["sampled"] == 40
        and preview["per_rule"] == {rule.pk: 40}
    )
