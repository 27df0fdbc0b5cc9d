"""The review inbox narrows prompts through the policy (`policy.restrict`), never by
comparing role strings: it lists exactly the prompts `can(actor, "prompt.approve", p)`
allows, for grants held directly or through a team."""

from __future__ import annotations

import pytest

from llmops.tenancy.actor import Actor, KeyInfo
from llmops.tenancy.policy import can, restrict
from llmops.tenancy.services import team_add_member, team_create
from prompts import selectors, services
from prompts.models import Prompt

from .conftest import make_prompt, propose


def _key_actor(world, who, scopes, *, machine=False):
    user = world.users[who]
    base = world.actor(who)
    key = KeyInfo(
        id=1,
        organization_id=world.org.pk,
        name="k",
        public_id="abc",
        scopes=tuple(scopes),
        user_id=None if machine else user.pk,
        created_by_id=user.pk,
    )
    return Actor(org=world.org, user=None if machine else user, role=base.role, key=key)


@pytest.fixture
def prompts(acme, model):
    owned = make_prompt(acme, name="owned", owners=("maint1",))
    by_team = make_prompt(acme, name="by-team", owners=("admin",))
    admins_only = make_prompt(acme, name="admins-only", owners=("admin",))
    team = team_create(actor=acme.actor("admin"), name="reviewers of by-team")
    team_add_member(actor=acme.actor("admin"), team=team, username=acme.users["maint2"].username)
    services.prompt_owner_grant(
        actor=acme.actor("admin"), prompt=by_team, team_id=team.pk, perms=["approve_prompt"]
    )
    return owned, by_team, admins_only


def _actors(acme):
    people = {who: acme.actor(who) for who in ("admin", "maint1", "maint2", "reviewer1", "viewer")}
    return {
        **people,
        "maint1 key (approve scope)": _key_actor(acme, "maint1", ["prompts:approve"]),
        "admin key (read scope)": _key_actor(acme, "admin", ["prompts:read"]),
        "machine key": _key_actor(acme, "maint1", ["prompts:approve"], machine=True),
        "system": Actor.system_for(acme.org),
    }


def test_restrict_answers_like_can_for_every_object(acme, prompts):
    qs = Prompt.objects.for_org(acme.org)
    for label, actor in _actors(acme).items():
        for action in ("prompt.approve", "prompt.deploy", "prompt.manage", "prompt.view"):
            expected = {p.name for p in qs if can(actor, action, p)}
            got = set(restrict(actor, action, qs).values_list("name", flat=True))
            assert got == expected, (label, action)
    assert set(
        restrict(acme.actor("maint2"), "prompt.approve", qs).values_list("name", flat=True)
    ) == {"by-team"}


def test_review_inbox_lists_prompts_the_reviewer_may_approve(acme, prompts):
    owned, by_team, admins_only = prompts
    for prompt in prompts:
        propose(acme, prompt, who="admin")

    def inbox(who):
        return {v.prompt.name for v in selectors.versions_needing_review(actor=acme.actor(who))}

    assert inbox("maint1") == {"owned"}
    assert inbox("maint2") == {"by-team"}  # through the team's grant
    assert inbox("admin") == set()  # the admin authored all three
    assert inbox("reviewer1") == set() and inbox("viewer") == set()
    propose(acme, owned, who="maint1", template="Other {{ x }}")
    assert inbox("admin") == {"owned"}
