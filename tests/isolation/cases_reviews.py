from .registry import Case, register, world_builder

QUEUE_NAME = "{slug} support answers"


@world_builder
def build(acme, globex):
    from django.utils import timezone

    from llmops.tenancy import guardian
    from llmops.traces.models import Generation
    from reviews import services
    from reviews.models import QueueItem

    for world in (acme, globex):
        queue = services.queue_create(
            actor=world.actor("maint1"),
            name=QUEUE_NAME.format(slug=world.org.slug),
            reviewers_per_item=2,
        )
        guardian.grant("review_queue", world.users["reviewer1"], queue)
        now = timezone.now()
        gens = [
            Generation.objects.create(
                organization=world.org,
                external_id=f"{world.org.slug}-review-{i}",
                created_at=now,
                ingested_at=now,
                model_id="gpt-4o-2024-08-06",
                input={"q": i},
                output=f"{world.org.slug} secret output {i}",
            )
            for i in range(3)
        ]
        items = [
            QueueItem.objects.create(
                organization=world.org, queue=queue, generation=g, reviews_needed=2
            )
            for g in gens
        ]
        # One item claimed by the admin (so review/release have a live claim to attack).
        services.item_claim(actor=world.actor("admin"), queue=queue)
        world.objects["queue"] = queue
        world.objects["queue_item"] = items[0]


def _q(a):
    return {"queue_id": a.queue.pk}


def _item(a):
    return {"queue_id": a.queue.pk, "item_id": a.queue_item.pk}


def _api_item(a):
    return {"item_id": a.queue_item.pk}


ANSWERS = {"answers": {"correct": True, "quality": 3}}

register(
    Case("reviews:list", kind="list", markers=lambda a: ["acme support answers"]),
    Case(
        "reviews:list",
        "post",
        kind="create",
        data=lambda a: {"name": "x", "reviewers_per_item": 1, "lease_minutes": 10},
    ),
    Case("reviews:settings", kwargs=_q),
    Case("reviews:settings", "post", kwargs=_q, data=lambda a: {"op": "rule_add", "rate": 1}),
    Case("reviews:stats", kwargs=_q),
    Case("reviews:adjudication", kwargs=_q),
    Case(
        "reviews:adjudication",
        "post",
        kwargs=_q,
        data=lambda a: {"item": a.queue_item.pk, "q_correct": "true", "q_quality": "3"},
    ),
    Case("reviews:export", kwargs=_q),
    Case("reviews:claim", "post", kwargs=_q),
    Case("reviews:item", kwargs=_item),
    Case(
        "reviews:item",
        "post",
        kwargs=_item,
        data=lambda a: {"op": "submit", "q_correct": "true", "q_quality": "3"},
    ),
    Case("reviews_api:queues", kind="list", markers=lambda a: ["acme support answers"]),
    Case("reviews_api:queues", "post", kind="create", data=lambda a: {"name": "x"}),
    Case("reviews_api:queue", kwargs=_q),
    Case("reviews_api:claim", "post", kwargs=_q),
    Case("reviews_api:stats", kwargs=_q),
    Case("reviews_api:export", kwargs=_q),
    Case("reviews_api:item_review", "post", kwargs=_api_item, data=lambda a: ANSWERS),
    Case("reviews_api:item_release", "post", kwargs=_api_item),
)
