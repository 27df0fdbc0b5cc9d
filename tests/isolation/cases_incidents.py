"""Isolation cases for the incidents app: every HTML and API route, against acme's objects."""

from .registry import Case, register, world_builder


@world_builder
def build(acme, globex):
    from incidents import services

    for world in (acme, globex):
        slug = world.org.slug
        m = world.actor("maint1")
        version = services.runbook_create(
            actor=m,
            title=f"{slug} secret runbook",
            category="hallucination",
            steps=[{"text": f"{slug} step"}],
        )
        world.objects["runbook"] = version.runbook
        # Several incidents, so globex's numbers overlap acme's.
        world.objects["incident"] = services.incident_open(
            actor=m, title=f"{slug} secret incident", category="hallucination", severity="SEV2"
        )
        services.action_item_create(
            actor=m, incident=world.objects["incident"], title=f"{slug} secret action"
        )
    acme.objects["review_item"] = _queue_item(acme)
    acme.objects["eval_case"] = _eval_case(acme)
    # acme's incident number that globex lacks, so a leak cannot hide behind globex's own.
    for _ in range(3):
        services.incident_open(actor=acme.actor("maint1"), title="acme extra", category="other")
    acme.objects["only_acme_number"] = 4


def _queue_item(world):
    """A generation sampled into a queue, for the escalate-from-review page."""
    from django.utils import timezone

    from llmops.traces.models import Generation
    from reviews.models import QueueItem, ReviewQueue

    now = timezone.now()
    generation = Generation.objects.create(
        organization=world.org,
        external_id=f"{world.org.slug}-incident-gen",
        created_at=now,
        ingested_at=now,
        model_id="m-20250101",
        output="acme secret output",
    )
    queue = ReviewQueue.objects.create(organization=world.org, name="acme incident queue")
    return QueueItem.objects.create(organization=world.org, queue=queue, generation=generation)


def _eval_case(world):
    """An eval case of acme's, which globex may not link to any incident."""
    from llmops.evals.services import case_create, dataset_create

    dataset = dataset_create(actor=world.actor("admin"), name="acme secret dataset")
    return case_create(actor=world.actor("admin"), dataset=dataset, input={"q": "acme secret"})


def _incident_number(a):
    return {"number": a.objects["only_acme_number"]}


register(
    Case("incidents:list", kind="list", markers=lambda a: ["acme secret incident"]),
    Case("incidents:create", kind="list", markers=lambda a: ["acme secret"]),
    Case(
        "incidents:create",
        "post",
        kind="create",
        data=lambda a: {"title": "globex", "category": "other"},
    ),
    Case("incidents:from_review", kwargs=lambda a: {"item_id": a.review_item.pk}),
    Case(
        "incidents:from_review",
        "post",
        kwargs=lambda a: {"item_id": a.review_item.pk},
        data=lambda a: {"title": "x", "category": "other"},
    ),
    Case("incidents:detail", kwargs=_incident_number),
    Case(
        "incidents:detail",
        "post",
        kwargs=_incident_number,
        data=lambda a: {"op": "transition", "to": "investigating"},
    ),
    Case(
        "incidents:detail",
        "post",
        kwargs=_incident_number,
        data=lambda a: {"op": "note", "note": "globex was here"},
    ),
    Case("incidents:metrics", kind="list", markers=lambda a: ["acme secret"]),
    Case("incidents:runbooks", kind="list", markers=lambda a: ["acme secret runbook"]),
    Case(
        "incidents:runbooks",
        "post",
        kind="create",
        data=lambda a: {"title": "globex runbook"},
    ),
    Case("incidents:runbook_detail", kwargs=lambda a: {"runbook_id": a.runbook.pk}),
    Case(
        "incidents:runbook_detail",
        "post",
        kwargs=lambda a: {"runbook_id": a.runbook.pk},
        data=lambda a: {"op": "archive"},
    ),
    # API
    Case(
        "incidents_api:incidents",
        kind="list",
        markers=lambda a: ["acme secret incident"],
        scopes=("incidents:write",),
    ),
    Case(
        "incidents_api:incidents",
        "post",
        kind="create",
        data=lambda a: {"title": "globex", "category": "other"},
        scopes=("incidents:write",),
    ),
    Case("incidents_api:incident", kwargs=_incident_number, scopes=("incidents:write",)),
    Case(
        "incidents_api:transition",
        "post",
        kwargs=_incident_number,
        data=lambda a: {"to": "cancelled"},
        scopes=("incidents:write",),
    ),
    Case("incidents_api:timeline", kwargs=_incident_number, scopes=("incidents:write",)),
    Case(
        "incidents_api:eval_case_link",
        "post",
        kwargs=_incident_number,
        data=lambda a: {"case": a.objects["eval_case"].pk},
        scopes=("incidents:write",),
    ),
    # globex's own incident 1 with acme's case: the case is not found.
    Case(
        "incidents_api:eval_case_link",
        "post",
        kwargs=lambda a: {"number": 1},
        data=lambda a: {"case": a.objects["eval_case"].pk},
        scopes=("incidents:write",),
    ),
    Case(
        "incidents_api:timeline",
        "post",
        kwargs=_incident_number,
        data=lambda a: {"note": "globex was here"},
        scopes=("incidents:write",),
    ),
    Case(
        "incidents_api:alerts",
        "post",
        kind="create",
        data=lambda a: {"dedupe_key": "k", "title": "acme secret incident", "category": "other"},
        scopes=("incidents:write",),
    ),
    Case(
        "incidents_api:runbooks",
        kind="list",
        markers=lambda a: ["acme secret runbook"],
        scopes=("incidents:write",),
    ),
    Case(
        "incidents_api:runbooks",
        "post",
        kind="create",
        data=lambda a: {"title": "globex runbook"},
    ),
)
