from .registry import Case, register, world_builder


@world_builder
def build(acme, globex):
    from llmops.evals import services

    for world in (acme, globex):
        slug = world.org.slug
        actor = world.actor("maint1")
        dataset = services.dataset_create(actor=actor, name=f"{slug}-secret-dataset")
        case = services.case_create(
            actor=actor, dataset=dataset, input={"q": f"{slug}-secret-case"}
        )
        run = services.run_create(
            actor=actor,
            tool="custom",
            dataset=dataset,
            model_id=f"{slug}-secret-run-model",
            results=[{"case": case.pk, "passed": True, "output": f"{slug}-secret-output"}],
        )
        world.objects["dataset"] = dataset
        world.objects["case"] = case
        world.objects["run"] = run
        world.objects["policy"] = services.policy_default(org=world.org)


register(
    # HTML
    Case("evals:runs", kind="list", markers=lambda a: ["acme-secret-run-model"]),
    Case("evals:run_detail", kwargs=lambda a: {"pk": a.run.pk}),
    Case("evals:compare", kind="list", markers=lambda a: ["acme-secret-run-model"]),
    Case("evals:datasets", kind="list", markers=lambda a: ["acme-secret-dataset"]),
    Case(
        "evals:datasets",
        "post",
        kind="create",
        data=lambda a: {"name": "acme-secret-dataset"},
    ),
    Case("evals:dataset_detail", kwargs=lambda a: {"pk": a.dataset.pk}),
    Case(
        "evals:dataset_detail",
        "post",
        kwargs=lambda a: {"pk": a.dataset.pk},
        data=lambda a: {"op": "case", "input": "leak"},
    ),
    Case("evals:dataset_export", kwargs=lambda a: {"pk": a.dataset.pk}),
    Case("evals:policies", kind="list", markers=lambda a: []),
    Case(
        "evals:policies",
        "post",
        kind="create",
        data=lambda a: {
            "policy": a.policy.pk,
            "name": "hijacked",
            "thresholds": "pass_rate >= 0",
            "min_cases": 0,
        },
    ),
    # API
    Case("evals_api:datasets", kind="list", markers=lambda a: ["acme-secret-dataset"]),
    Case(
        "evals_api:datasets",
        "post",
        kind="create",
        data=lambda a: {"name": "acme-secret-dataset"},
    ),
    Case("evals_api:dataset_cases", kwargs=lambda a: {"pk": a.dataset.pk}),
    Case(
        "evals_api:dataset_cases",
        "post",
        kwargs=lambda a: {"pk": a.dataset.pk},
        data=lambda a: {"cases": [{"input": "leak"}]},
    ),
    Case("evals_api:runs", kind="list", markers=lambda a: ["acme-secret-run-model"]),
    Case(
        "evals_api:runs",
        "post",
        kind="create",
        data=lambda a: {"tool": "custom", "dataset": a.dataset.pk, "results": [{"passed": True}]},
    ),
    Case(
        "evals_api:runs_promptfoo",
        "post",
        kind="create",
        data=lambda a: {"results": {"results": [{"success": True}]}},
    ),
    Case("evals_api:run", kwargs=lambda a: {"pk": a.run.pk}),
)
