"""The migration that introduces one active lease per (queue, reviewer) first releases the
extra leases a reviewer already holds (keeping the oldest) and gives their slots back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from .conftest import fill, make_generations, make_queue

BEFORE = [("reviews", "0001_queues_items_reviews")]
AFTER = [("reviews", "0003_one_active_lease_per_queue")]


@pytest.mark.django_db(transaction=True)
def test_duplicate_active_leases_are_released_before_the_constraint(acme):
    queue = make_queue(acme)
    items = fill(queue, make_generations(acme, 3))
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        Assignment = old.get_model("reviews", "Assignment")
        QueueItem = old.get_model("reviews", "QueueItem")
        now = timezone.now()
        user_id = acme.users["reviewer1"].pk
        for n, item in enumerate(items):
            Assignment.objects.create(
                organization_id=acme.org.pk,
                queue_id=queue.pk,
                item_id=item.pk,
                reviewer_id=user_id,
                state="active",
                claimed_at=now + timedelta(seconds=n),
                lease_expires_at=now + timedelta(minutes=10),
            )
            QueueItem.objects.filter(pk=item.pk).update(active_claims=1)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    Assignment = new.get_model("reviews", "Assignment")
    QueueItem = new.get_model("reviews", "QueueItem")
    states = dict(Assignment.objects.values_list("item_id", "state"))
    assert states == {items[0].pk: "active", items[1].pk: "released", items[2].pk: "released"}
    claims = dict(QueueItem.objects.values_list("id", "active_claims"))
    assert claims == {items[0].pk: 1, items[1].pk: 0, items[2].pk: 0}
