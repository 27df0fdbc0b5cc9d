from .registry import Case, register, world_builder


@world_builder
def build(acme, globex):
    from django.db import transaction

    from llmops.notify.services import notify, webhook_create

    for world in (acme, globex):
        slug = world.org.slug
        with transaction.atomic():
            rows = notify(
                org=world.org,
                recipients=[world.users["admin"]],
                kind="test.isolation",
                subject=f"{slug} private notice",
                body=f"{slug} body",
                email=False,
                webhooks=False,
            )
        world.objects["notification"] = rows[0]
        world.objects["webhook"], _ = webhook_create(
            actor=world.actor(), name=f"{slug} hook", url=f"https://{slug}.example/hook"
        )


register(
    Case("notify:inbox", kind="list", markers=lambda a: ["acme private notice"]),
    Case("notify:inbox_read_all", "post", kind="create"),
    Case(
        "notify:inbox_read",
        "post",
        kwargs=lambda a: {"notification_id": a.notification.pk},
    ),
    Case("notify:webhooks", kind="list", markers=lambda a: ["acme hook"]),
    Case(
        "notify:webhooks",
        "post",
        kind="create",
        data=lambda a: {"name": "globex new", "url": "https://globex.example/new"},
    ),
    Case("notify:webhook_detail", kwargs=lambda a: {"endpoint_id": a.webhook.pk}),
    Case(
        "notify:webhook_detail",
        "post",
        kwargs=lambda a: {"endpoint_id": a.webhook.pk},
        data=lambda a: {"op": "delete"},
    ),
    *(
        Case(
            "notify:webhook_detail",
            "post",
            kwargs=lambda a: {"endpoint_id": a.webhook.pk},
            data=lambda a, op=op: {"op": op},
        )
        for op in ("rotate", "disable", "test", "retry_failed")
    ),
)
