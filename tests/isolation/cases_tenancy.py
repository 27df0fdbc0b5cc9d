from llmops.tenancy.models import Membership

from .registry import Case, register, world_builder


@world_builder
def build(acme, globex):
    from llmops.tenancy.services import api_key_create, team_create

    for world in (acme, globex):
        world.objects["team"] = team_create(actor=world.actor(), name=f"{world.org.slug} owners")
        world.objects["membership"] = Membership.objects.get(
            organization=world.org, user=world.users["viewer"]
        )
        world.objects["key"], _ = api_key_create(
            actor=world.actor(), name=f"{world.org.slug}-ci", scopes=["ingest"]
        )


register(
    Case("tenancy:home", kind="list", markers=lambda a: [a.org.name]),
    Case("tenancy:members", kind="list", markers=lambda a: ["acme-viewer"]),
    Case(
        "tenancy:members",
        "post",
        kind="create",
        data=lambda a: {"op": "invite", "role": "admin", "email": ""},
    ),
    Case("tenancy:member_detail", kwargs=lambda a: {"membership_id": a.membership.pk}),
    Case(
        "tenancy:member_detail",
        "post",
        kwargs=lambda a: {"membership_id": a.membership.pk},
        data=lambda a: {"op": "role", "role": "admin"},
    ),
    Case("tenancy:teams", kind="list", markers=lambda a: ["acme owners"]),
    Case("tenancy:team_detail", kwargs=lambda a: {"team_id": a.team.pk}),
    Case(
        "tenancy:team_detail",
        "post",
        kwargs=lambda a: {"team_id": a.team.pk},
        data=lambda a: {"op": "delete"},
    ),
    Case("tenancy:api_keys", kind="list", markers=lambda a: ["acme-ci"]),
    Case(
        "tenancy:api_keys", "post", kind="create", data=lambda a: {"op": "revoke", "key": a.key.pk}
    ),
    Case("tenancy:settings", kind="list", markers=lambda a: []),
    Case(
        "tenancy:settings",
        "post",
        kind="create",
        data=lambda a: {"allow_floating_models": "on", "retention_days": 7},
    ),
    Case("tenancy_api:me", kind="list", markers=lambda a: [a.org.slug, a.org.name]),
)
