"""Isolation cases for the prompt registry: every page and API route, acme's objects asked
for by globex members and keys."""

from .registry import Case, register, world_builder


@world_builder
def build(acme, globex):
    from llmops.catalog.models import ModelVersion
    from prompts import services

    for world in (acme, globex):
        slug = world.org.slug
        ModelVersion.objects.create(
            organization=world.org,
            provider="anthropic",
            model_id="claude-sonnet-4-5-20250929",
            status="approved",
        )
        prompt = services.prompt_create(
            actor=world.actor("maint1"), name=f"{slug}-reply", description=f"{slug} secret prompt"
        )
        version, _ = services.version_create(
            actor=world.actor("maint1"),
            prompt=prompt,
            model="claude-sonnet-4-5-20250929",
            template=f"{slug} template {{{{ name }}}}",
        )
        services.label_deploy(
            actor=world.actor("maint1"), prompt=prompt, label="staging", version=version
        )
        world.objects["prompt"] = prompt
        world.objects["prompt_version"] = version


def _p(a):
    return {"name": a.prompt.name}


def _v(a):
    return {"name": a.prompt.name, "number": a.prompt_version.number}


register(
    # pages
    Case("prompts:list", kind="list", markers=lambda a: ["acme-reply", "acme secret prompt"]),
    Case("prompts:create", kind="list", markers=lambda a: []),
    Case("prompts:create", "post", kind="create", data=lambda a: {"name": "acme-reply"}),
    Case("prompts:detail", kwargs=_p),
    Case(
        "prompts:detail",
        "post",
        kwargs=_p,
        data=lambda a: {"op": "settings", "required_approvals": 2},
    ),
    Case("prompts:propose", kwargs=_p),
    Case(
        "prompts:propose", "post", kwargs=_p, data=lambda a: {"kind": "template", "template": "x"}
    ),
    Case("prompts:deploy", kwargs=_p),
    Case("prompts:deploy", "post", kwargs=_p, data=lambda a: {"label": "production", "version": 1}),
    Case("prompts:diff", kwargs=_p),
    Case("prompts:version", kwargs=_v),
    Case("prompts:version", "post", kwargs=_v, data=lambda a: {"op": "withdraw"}),
    Case("prompts:review", kwargs=_v),
    Case("prompts:review", "post", kwargs=_v, data=lambda a: {"decision": "approve"}),
    # API
    Case(
        "prompts_api:prompts",
        kind="list",
        markers=lambda a: ["acme-reply", "acme secret prompt"],
        scopes=("prompts:read",),
    ),
    Case(
        "prompts_api:prompts",
        "post",
        kind="create",
        data=lambda a: {"name": "acme-reply"},
        scopes=("prompts:write",),
    ),
    Case(
        "prompts_api:sync",
        "post",
        kind="create",
        data=lambda a: {
            "files": [
                {
                    "path": "a.yaml",
                    "content": "name: acme-reply\nmodel: claude-sonnet-4-5-20250929\n"
                    "template: hi\n",
                }
            ],
            "commit": "abc",
        },
        scopes=("prompts:write",),
    ),
    Case("prompts_api:prompt", kwargs=_p, scopes=("prompts:read",)),
    Case("prompts_api:resolve", kwargs=_p, scopes=("prompts:read",)),
    Case("prompts_api:versions", kwargs=_p, scopes=("prompts:read",)),
    Case(
        "prompts_api:versions",
        "post",
        kwargs=_p,
        data=lambda a: {"template": "x", "model": "claude-sonnet-4-5-20250929"},
        scopes=("prompts:write",),
    ),
    Case("prompts_api:version", kwargs=_v, scopes=("prompts:read",)),
    Case("prompts_api:reviews", "post", kwargs=_v, data=lambda a: {"decision": "approve"}),
    Case(
        "prompts_api:eval_runs",
        "post",
        kwargs=_v,
        data=lambda a: {"tool": "custom", "results": [{"passed": True}]},
        scopes=("evals:write",),
    ),
    Case(
        "prompts_api:eval_runs_promptfoo",
        "post",
        kwargs=_v,
        data=lambda a: {"results": {"results": [{"success": True}]}},
        scopes=("evals:write",),
    ),
    Case(
        "prompts_api:label",
        "post",
        kwargs=lambda a: {"name": a.prompt.name, "label": "staging"},
        data=lambda a: {"version": 1},
        scopes=("prompts:deploy",),
    ),
)
