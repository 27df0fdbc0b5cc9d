from .registry import Case, register, world_builder


@world_builder
def build(acme, globex):
    from llmops.catalog import services
    from llmops.evals.services import run_create

    for world in (acme, globex):
        slug = world.org.slug
        model = services.model_propose(
            actor=world.actor("maint1"),
            provider="anthropic",
            model_id=f"{slug}-secret-model-20250929",
            display_name=f"{slug} secret model",
        )
        run = run_create(
            actor=world.actor("maint1"),
            tool="custom",
            results=[{"passed": True}],
            model_id=model.model_id,
        )
        services.model_attach_evidence(actor=world.actor("maint1"), model=model, run=run)
        world.objects["model"] = model
        world.objects["model_run"] = run


register(
    # HTML
    Case("catalog:list", kind="list", markers=lambda a: ["acme-secret-model"]),
    Case("catalog:propose", kind="list", markers=lambda a: []),
    Case(
        "catalog:propose",
        "post",
        kind="create",
        data=lambda a: {"provider": "openai", "model_id": "acme-secret-model-20250929"},
    ),
    Case("catalog:detail", kwargs=lambda a: {"pk": a.model.pk}),
    Case(
        "catalog:detail",
        "post",
        kwargs=lambda a: {"pk": a.model.pk},
        data=lambda a: {"op": "decide", "decision": "reject"},
    ),
    # API
    Case("catalog_api:models", kind="list", markers=lambda a: ["acme-secret-model"]),
    Case(
        "catalog_api:models",
        "post",
        kind="create",
        data=lambda a: {"provider": "openai", "model_id": "acme-secret-model-20250929"},
    ),
    Case(
        "catalog_api:model_check",
        kind="list",
        data=lambda a: {"model": a.model.model_id},  # a query string for GET
        markers=lambda a: ["is proposed", '"status":"proposed"'],
    ),
    Case("catalog_api:model", kwargs=lambda a: {"pk": a.model.pk}),
    Case("catalog_api:model_by_id", kwargs=lambda a: {"model_id": a.model.model_id}),
    Case(
        "catalog_api:model_decision",
        "post",
        kwargs=lambda a: {"pk": a.model.pk},
        data=lambda a: {"decision": "reject", "comment": "x"},
    ),
    Case(
        "catalog_api:model_transition",
        "post",
        kwargs=lambda a: {"pk": a.model.pk},
        data=lambda a: {"to": "suspended", "reason": "x"},
    ),
    Case(
        "catalog_api:model_evidence",
        "post",
        kwargs=lambda a: {"pk": a.model.pk},
        data=lambda a: {"run": a.model_run.pk},
    ),
)
