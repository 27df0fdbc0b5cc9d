"""PostgreSQL claims under real concurrency: FOR UPDATE SKIP LOCKED over the partial index,
no item over-assigned or reviewed twice by one reviewer, every item finished."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from llmops.tenancy import guardian
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Membership
from reviews import services
from reviews.models import Assignment, QueueItem, Review
from tests.factories import UserFactory

from .conftest import GOOD, fill, make_generations, make_queue

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _reviewers(world, queue, n):
    actors = []
    for i in range(n):
        user = UserFactory(username=f"{world.org.slug}-crowd{i}")
        Membership.objects.create(user=user, organization=world.org, role="reviewer")
        guardian.grant("review_queue", user, queue)
        actors.append(Actor(org=world.org, user=user, role="reviewer"))
    return actors


def _run(actors, work):
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(actors))

    def target(actor):
        try:
            barrier.wait()
            work(actor)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(a,)) for a in actors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_claim_plan_uses_the_partial_index(acme):
    queue = make_queue(acme)
    fill(queue, make_generations(acme, 50))
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'queueitem_claimable'")
        (indexdef,) = cursor.fetchone()
    assert "WHERE" in indexdef and "'open'" in indexdef


def test_concurrent_overlap_claims_never_over_assign(acme):
    queue = make_queue(acme, overlap=3, reviewers=())
    fill(queue, make_generations(acme, 40))
    actors = _reviewers(acme, queue, 12)
    claims = Counter()

    def work(actor):
        while True:
            assignment = services.item_claim(actor=actor, queue=queue)
            if assignment is None:
                return
            item = QueueItem.objects.get(pk=assignment.item_id)
            # While held: never more live claims than reviews still needed.
            assert item.active_claims + item.reviews_done <= item.reviews_needed
            claims[(assignment.item_id, actor.user.pk)] += 1
            services.review_submit(actor=actor, item=item, answers=GOOD)

    _run(actors, work)
    assert max(claims.values()) == 1
    per_item = Counter(Review.objects.filter(queue=queue).values_list("item_id", flat=True))
    assert len(per_item) == 40 and set(per_item.values()) == {3}
    pairs = Counter(Review.objects.filter(queue=queue).values_list("item_id", "reviewer_id"))
    assert max(pairs.values()) == 1
    assert not QueueItem.objects.filter(queue=queue).exclude(state="done").exists()
    assert not QueueItem.objects.filter(queue=queue, active_claims__gt=0).exists()


def test_simultaneous_first_claims_get_distinct_items(acme):
    queue = make_queue(acme, reviewers=())
    fill(queue, make_generations(acme, 16))
    actors = _reviewers(acme, queue, 16)
    _run(actors, lambda actor: services.item_claim(actor=actor, queue=queue))
    held = list(
        Assignment.objects.filter(queue=queue, state="active").values_list("item_id", flat=True)
    )
    assert len(held) == 16 and len(set(held)) == 16


def test_twenty_parallel_claims_by_one_reviewer_hold_one_lease(acme):
    """One reviewer claiming twenty times at once (double clicks, retries, several tabs):
    the database allows one active lease per queue and reviewer, and every claim answers
    with that lease's item."""
    queue = make_queue(acme, reviewers=("reviewer1",))
    fill(queue, make_generations(acme, 30))
    user = acme.users["reviewer1"]
    got = []

    def work(actor):
        assignment = services.item_claim(actor=actor, queue=queue)
        got.append(assignment.item_id if assignment is not None else None)

    _run([Actor(org=acme.org, user=user, role="reviewer") for _ in range(20)], work)
    active = list(
        Assignment.objects.filter(queue=queue, reviewer=user, state="active").values_list(
            "item_id", flat=True
        )
    )
    assert len(active) == 1
    assert got == active * 20
    claimed = QueueItem.objects.filter(queue=queue, active_claims__gt=0)
    assert list(claimed.values_list("id", "active_claims")) == [(active[0], 1)]
