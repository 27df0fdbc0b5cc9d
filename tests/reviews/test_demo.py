from io import StringIO

from llmops.tenancy import guardian
from reviews.models import QueueItem, ReviewQueue


def test_demo_seeds_two_queues_with_pending_items_and_disagreements(acme):
    from llmops.traces import demo as traces_demo
    from reviews import demo

    out = StringIO()
    traces_demo.seed(org=acme.org, users=acme.users, stdout=out)
    demo.seed(org=acme.org, users=acme.users, stdout=out)
    queues = list(ReviewQueue.objects.for_org(acme.org).order_by("reviewers_per_item"))
    assert [q.reviewers_per_item for q in queues] == [1, 2]
    for queue in queues:
        assert QueueItem.objects.filter(queue=queue, state="open").count() >= 50
        for who in ("reviewer1", "reviewer2"):
            assert guardian.has_grant(acme.users[who], "review_queue", queue)
    overlap = queues[1]
    waiting = QueueItem.objects.filter(queue=overlap, needs_adjudication=True).count()
    assert 0 < waiting < overlap.reviews.count() // 2
