import json

from .registry import Case, register, world_builder


@world_builder
def build(acme, globex):
    from llmops.tenancy.actor import Actor
    from llmops.traces.services import generations_ingest

    for world in (acme, globex):
        slug = world.org.slug
        body = {
            "generations": [
                {
                    "external_id": f"{slug}-gen-1",
                    "model": f"{slug}-model-2025-01-01",
                    "prompt": {"name": f"{slug}-secret-prompt", "version": 1},
                    "input": [{"role": "user", "content": f"{slug} input"}],
                    "output": f"{slug} private output",
                    "user_ref": f"{slug}-end-user",
                    "latency_ms": 100,
                    "cost_usd": 0.01,
                }
            ]
        }
        generations_ingest(actor=Actor.system_for(world.org), body=json.dumps(body).encode())
        from llmops.traces.models import Generation

        world.objects["generation"] = Generation.objects.get(
            organization=world.org, external_id=f"{slug}-gen-1"
        )


def _markers(a):
    return ["acme-secret-prompt", "acme-model-2025-01-01", "acme-end-user", "acme-gen-1"]


register(
    Case("traces:dashboard", kind="list", markers=_markers),
    Case("traces:generations", kind="list", markers=_markers),
    Case("traces:generation", kwargs=lambda a: {"pk": a.generation.pk}),
    Case(
        "traces_api:generation_detail",
        kwargs=lambda a: {"external_id": a.generation.external_id},
        scopes=("ingest",),
    ),
    Case(
        "traces_api:generation_batch",
        "post",
        kind="create",
        data=lambda a: {
            "generations": [
                {"external_id": "acme-gen-1", "model": "m", "input": 1, "output": "overwrite?"}
            ]
        },
        scopes=("ingest",),
    ),
)
