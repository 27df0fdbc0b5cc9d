from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from llmops.common.errors import NotFound, NotPermitted, PolicyViolation
from llmops.traces.models import Generation
from reviews import backends, selectors, services
from reviews.models import Assignment, QueueItem, Review

from .conftest import GOOD, fill, make_generations, make_queue


def test_claim_orders_by_priority_then_age_and_returns_held_lease_first(acme):
    queue = make_queue(acme)
    gens = make_generations(acme, 3)
    old, new = fill(queue, gens[:2])
    QueueItem.objects.filter(pk=new.pk).update(created_at=timezone.now() - timedelta(hours=1))
    urgent = fill(queue, gens[2:], priority=5)[0]
    actor = acme.actor("reviewer1")
    first = services.item_claim(actor=actor, queue=queue)
    assert first.item_id == urgent.pk
    again = services.item_claim(actor=actor, queue=queue)
    assert again.pk == first.pk  # the unexpired lease comes back first
    services.review_submit(actor=actor, item=urgent, answers=GOOD)
    assert services.item_claim(actor=actor, queue=queue).item_id == new.pk  # older first
    item = QueueItem.objects.get(pk=urgent.pk)
    assert item.state == "done" and item.reviews_done == 1 and item.active_claims == 0
    assert Generation.objects.get(pk=urgent.generation_id).pinned


def test_overlap_never_more_claims_than_needed_nor_twice_to_one_reviewer(acme):
    queue = make_queue(acme, overlap=2, reviewers=("reviewer1", "reviewer2", "maint2"))
    (item,) = fill(queue, make_generations(acme, 1))
    r1, r2, m2 = acme.actor("reviewer1"), acme.actor("reviewer2"), acme.actor("maint2")
    assert services.item_claim(actor=r1, queue=queue).item_id == item.pk
    assert services.item_claim(actor=r2, queue=queue).item_id == item.pk
    assert services.item_claim(actor=m2, queue=queue) is None  # two leases already held
    services.review_submit(actor=r1, item=item, answers=GOOD)
    assert services.item_claim(actor=r1, queue=queue) is None  # never twice to r1
    services.item_release(actor=r2, item=item)
    assert services.item_claim(actor=r2, queue=queue) is None  # released: not back to r2
    assert services.item_claim(actor=m2, queue=queue).item_id == item.pk


def test_expired_lease_is_swept_and_taken_then_late_review_is_409(acme):
    queue = make_queue(acme, reviewers=("reviewer1", "reviewer2"))
    (item,) = fill(queue, make_generations(acme, 1))
    r1, r2 = acme.actor("reviewer1"), acme.actor("reviewer2")
    services.item_claim(actor=r1, queue=queue)
    assert services.item_claim(actor=r2, queue=queue) is None
    Assignment.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    # r2's claim finds nothing, sweeps the expired lease, and takes the item.
    assert services.item_claim(actor=r2, queue=queue).item_id == item.pk
    with pytest.raises(PolicyViolation) as exc:
        services.review_submit(actor=r1, item=item, answers=GOOD)
    assert exc.value.code == "claim_expired" and exc.value.status == 409
    services.review_submit(actor=r2, item=item, answers=GOOD)
    assert Review.objects.count() == 1


def test_expired_but_free_lease_still_accepts_the_review(acme):
    queue = make_queue(acme)
    (item,) = fill(queue, make_generations(acme, 1))
    r1 = acme.actor("reviewer1")
    services.item_claim(actor=r1, queue=queue)
    Assignment.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.leases_sweep() == 1
    assert QueueItem.objects.get().active_claims == 0
    services.review_submit(actor=r1, item=item, answers=GOOD)
    assert QueueItem.objects.get().state == "done"


def test_own_lapsed_lease_is_renewed_on_claim(acme):
    queue = make_queue(acme)
    (item,) = fill(queue, make_generations(acme, 1))
    r1 = acme.actor("reviewer1")
    a = services.item_claim(actor=r1, queue=queue)
    Assignment.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    b = services.item_claim(actor=r1, queue=queue)
    assert b.pk == a.pk and b.lease_expires_at > timezone.now()


def test_skip_needs_a_reason_and_counts(acme, queue):
    r1 = acme.actor("reviewer1")
    a = services.item_claim(actor=r1, queue=queue)
    with pytest.raises(Exception, match="why"):
        services.item_skip(actor=r1, item=a.item, reason="  ")
    services.item_skip(actor=r1, item=a.item, reason="Not enough context")
    item = QueueItem.objects.get(pk=a.item_id)
    assert item.skips == 1 and item.active_claims == 0
    assert services.item_claim(actor=r1, queue=queue).item_id != item.pk


def test_review_without_claim_is_409_and_without_grant_is_404(acme, queue):
    item = QueueItem.objects.filter(queue=queue).first()
    with pytest.raises(PolicyViolation) as exc:
        services.review_submit(actor=acme.actor("reviewer1"), item=item, answers=GOOD)
    assert exc.value.code == "no_claim"
    from llmops.tenancy.models import Membership
    from tests.factories import UserFactory

    other = UserFactory(username="acme-reviewer3")
    Membership.objects.create(user=other, organization=acme.org, role="reviewer")
    acme.users["reviewer3"] = other
    with pytest.raises(NotFound):
        services.item_claim(actor=acme.actor("reviewer3"), queue=queue)
    with pytest.raises(NotPermitted):  # a viewer sees the queue but may not review
        services.item_claim(actor=acme.actor("viewer"), queue=queue)


def test_team_grant_lets_members_review(acme):
    from llmops.tenancy.services import team_add_member, team_create

    queue = make_queue(acme, reviewers=())
    fill(queue, make_generations(acme, 1))
    team = team_create(actor=acme.actor("admin"), name="Labellers")
    team_add_member(actor=acme.actor("admin"), team=team, username="acme-reviewer2")
    with pytest.raises(NotFound):
        services.item_claim(actor=acme.actor("reviewer2"), queue=queue)
    services.reviewer_grant(actor=acme.actor("maint1"), queue=queue, team_id=team.pk)
    assert services.item_claim(actor=acme.actor("reviewer2"), queue=queue) is not None
    assert [q.pk for q in selectors.queue_list(actor=acme.actor("reviewer2"))] == [queue.pk]
    assert list(selectors.queue_list(actor=acme.actor("reviewer1"))) == []


def test_blind_review_until_own_submitted(acme):
    queue = make_queue(acme, overlap=2, reviewers=("reviewer1", "reviewer2"))
    (item,) = fill(queue, make_generations(acme, 1))
    r1, r2 = acme.actor("reviewer1"), acme.actor("reviewer2")
    services.item_claim(actor=r1, queue=queue)
    services.item_claim(actor=r2, queue=queue)
    services.review_submit(actor=r1, item=item, answers=GOOD)
    assert selectors.visible_reviews(actor=r2, item=item) == []
    assert [r.reviewer_id for r in selectors.visible_reviews(actor=r1, item=item)] == [r1.user.pk]
    # An adjudicator who did not review it also waits until all reviews are in.
    assert selectors.visible_reviews(actor=acme.actor("maint2"), item=item) == []
    services.review_submit(actor=r2, item=item, answers={**GOOD, "correct": False})
    item.refresh_from_db()
    assert len(selectors.visible_reviews(actor=r2, item=item)) == 2
    assert len(selectors.visible_reviews(actor=acme.actor("maint2"), item=item)) == 2


def test_disagreement_goes_to_adjudication_and_maintainer_records_final(acme):
    queue = make_queue(acme, overlap=2, reviewers=("reviewer1", "reviewer2"))
    a, b = fill(queue, make_generations(acme, 2))
    r1, r2 = acme.actor("reviewer1"), acme.actor("reviewer2")
    for item, second in ((a, {**GOOD, "tone": "rude"}), (b, {**GOOD, "notes": "fine"})):
        services.item_claim(actor=r1, queue=queue)
        services.item_claim(actor=r2, queue=queue)
        services.review_submit(actor=r1, item=item, answers=GOOD)
        services.review_submit(actor=r2, item=item, answers=second)
    assert [i.pk for i in selectors.adjudication_list(queue=queue)] == [a.pk]
    with pytest.raises(NotPermitted):
        services.item_adjudicate(actor=r1, item=a, answers=GOOD)
    services.item_adjudicate(actor=acme.actor("maint2"), item=a, answers={**GOOD, "tone": "rude"})
    assert list(selectors.adjudication_list(queue=queue)) == []
    from llmops.audit.models import AuditEvent

    assert AuditEvent.objects.filter(
        organization=acme.org, action="queue.item_adjudicated"
    ).exists()


def test_add_to_evals_uses_corrected_output(acme):
    from llmops.evals.models import EvalCase
    from llmops.evals.services import dataset_create

    dataset = dataset_create(actor=acme.actor("maint1"), name="from reviews")
    queue = make_queue(acme, eval_dataset=dataset)
    (item,) = fill(queue, make_generations(acme, 1))
    r1 = acme.actor("reviewer1")
    services.item_claim(actor=r1, queue=queue)
    services.review_submit(actor=r1, item=item, answers=GOOD, corrected_output="better answer")
    case = services.item_add_to_evals(actor=r1, item=item)
    assert EvalCase.objects.get(pk=case.pk).expected == "better answer"
    assert case.source_kind == "review"


def test_overdue_notified_once(acme):
    from llmops.notify.models import Notification

    queue = make_queue(acme, sla_hours=1)
    fill(queue, make_generations(acme, 3))
    QueueItem.objects.update(due_at=timezone.now() - timedelta(minutes=5))
    assert services.overdue_notify() == 3
    assert services.overdue_notify() == 0
    recipients = set(
        Notification.objects.filter(kind="review.overdue").values_list(
            "recipient__username", flat=True
        )
    )
    assert recipients == {"acme-maint1"}
    assert selectors.overdue_items(queue=queue).count() == 3


def test_the_database_refuses_a_second_active_lease_in_one_queue(acme):
    queue = make_queue(acme)
    first, second = fill(queue, make_generations(acme, 2))
    user = acme.users["reviewer1"]
    now = timezone.now()
    lease = {"claimed_at": now, "lease_expires_at": now + timedelta(minutes=10)}
    names = {c.name for c in Assignment._meta.constraints}
    assert "assignment_one_active_per_queue" in names
    Assignment.objects.create(
        organization=acme.org, queue=queue, item=first, reviewer=user, **lease
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            organization=acme.org, queue=queue, item=second, reviewer=user, **lease
        )
    # Finished leases do not count: a submitted one and an active one live side by side.
    Assignment.objects.filter(item=first).update(state="submitted")
    Assignment.objects.create(
        organization=acme.org, queue=queue, item=second, reviewer=user, **lease
    )
    # Another reviewer, or the same reviewer in another queue, is not affected.
    Assignment.objects.create(
        organization=acme.org, queue=queue, item=first, reviewer=acme.users["reviewer2"], **lease
    )
    other = make_queue(acme, name="Other queue")
    (elsewhere,) = fill(other, make_generations(acme, 1, prefix="other"))
    Assignment.objects.create(
        organization=acme.org, queue=other, item=elsewhere, reviewer=user, **lease
    )


def test_a_claim_that_loses_the_race_returns_the_winning_lease(acme, monkeypatch):
    """A parallel claim of the same reviewer committed between the lease check and the
    insert: the unique index refuses the insert, and the claim answers with that lease
    (no 500, no second lease, the slot it counted given back)."""
    queue = make_queue(acme)
    first, second = fill(queue, make_generations(acme, 2))
    actor = acme.actor("reviewer1")
    winner = services.item_claim(actor=actor, queue=queue)
    real_held = backends.PortableBackend.held  # the PostgreSQL backend inherits it
    calls = []

    def held_missed_once(self, queue, user):
        calls.append(1)
        return None if len(calls) == 1 else real_held(self, queue, user)

    monkeypatch.setattr(backends.PortableBackend, "held", held_missed_once)
    again = services.item_claim(actor=actor, queue=queue)
    assert again.pk == winner.pk and again.item_id == winner.item_id
    assert len(calls) == 2
    assert Assignment.objects.filter(reviewer=actor.user, state="active").count() == 1
    assert QueueItem.objects.get(pk=second.pk).active_claims == 0
    assert QueueItem.objects.get(pk=winner.item_id).active_claims == 1


@pytest.mark.postgres
def test_both_claim_backends_pick_the_same_items_and_leave_the_same_rows(acme):
    """The one-statement PostgreSQL claim and the portable ORM claim are two implementations
    of one interface: over identical queues they pick the same items in the same order and
    leave the same counts and leases behind."""
    now = timezone.now()
    lease = now + timedelta(minutes=10)
    users = [acme.users[u] for u in ("reviewer1", "reviewer2", "maint1", "maint2", "admin")]
    seen = []
    for index, backend in enumerate((backends.PortableBackend(), backends.PostgresBackend())):
        queue = make_queue(acme, name=f"Twin {index}", overlap=2)
        gens = make_generations(acme, 3, prefix=f"twin{index}")
        items = fill(queue, gens[:1]) + fill(queue, gens[1:2], priority=5) + fill(queue, gens[2:])
        position = {item.pk: n for n, item in enumerate(items)}
        picks = []
        for user in users:
            assignment = backend.claim(queue, user, now, lease)
            picks.append(position[assignment.item_id])
            assert assignment.reviewer_id == user.pk and assignment.state == "active"
        counts = sorted(
            (position[pk], claims)
            for pk, claims in QueueItem.objects.filter(queue=queue).values_list(
                "id", "active_claims"
            )
        )
        leases = sorted(
            Assignment.objects.filter(queue=queue).values_list(
                "reviewer_id", "state", "claimed_at", "lease_expires_at"
            )
        )
        seen.append((picks, counts, leases))
    assert seen[0] == seen[1]
    assert seen[0][0] == [1, 1, 0, 0, 2]
