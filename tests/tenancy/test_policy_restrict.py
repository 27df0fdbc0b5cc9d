"""`policy.require` (the services' check) and `policy.restrict` (the selectors' narrowing):
roles x real guardian grants (direct and through a team) x machine, personal and revoked
keys, on real prompts and review queues of two organizations."""

from __future__ import annotations

import pytest

from llmops.common.errors import NotPermitted
from llmops.tenancy import guardian
from llmops.tenancy.actor import Actor, KeyInfo
from llmops.tenancy.policy import ACTIONS, MATRIX, can, require, restrict
from llmops.tenancy.services import team_add_member, team_create
from prompts.models import Prompt
from reviews.models import ReviewQueue

PROMPT_GRANTS = {"approve_prompt", "deploy_prompt"}
QUEUE_GRANTS = {"review_queue"}


def _codenames(action):
    return {rule for rule in MATRIX[action].values() if isinstance(rule, str)}


# Actions whose object grants (if any) are permissions of the model, per queryset.
PROMPT_ACTIONS = sorted(a for a in ACTIONS if _codenames(a) <= PROMPT_GRANTS)
QUEUE_ACTIONS = sorted(a for a in ACTIONS if _codenames(a) <= QUEUE_GRANTS)
PEOPLE = ("admin", "maint1", "maint2", "reviewer1", "reviewer2", "viewer")


class World:
    """acme: prompts p1 p2 p3, queues q1 q2; globex: prompt g1, queue gq. Grants: maint1
    approves p1 and deploys p3, maint2 approves p2 through a team, reviewer1 reviews q1,
    maint1 reviews q2, the viewer holds approve_prompt on p1 (a viewer's role never uses it)."""

    def __init__(self, acme, globex):
        self.acme, self.globex = acme, globex
        org = acme.org
        self.p = {n: Prompt.objects.create(organization=org, name=f"p{n}") for n in (1, 2, 3)}
        self.q = {n: ReviewQueue.objects.create(organization=org, name=f"q{n}") for n in (1, 2)}
        self.g1 = Prompt.objects.create(organization=globex.org, name="p1")
        self.gq = ReviewQueue.objects.create(organization=globex.org, name="q1")
        for prompt in (*self.p.values(), self.g1):
            for codename in PROMPT_GRANTS:
                for user in (*acme.users.values(), *globex.users.values()):
                    guardian.revoke(codename, user, prompt)
        users = acme.users
        guardian.grant("approve_prompt", users["maint1"], self.p[1])
        guardian.grant("deploy_prompt", users["maint1"], self.p[3])
        team = team_create(actor=acme.actor(), name="owners")
        team_add_member(actor=acme.actor(), team=team, username=users["maint2"].username)
        guardian.grant("approve_prompt", team.group, self.p[2])
        guardian.grant("review_queue", users["reviewer1"], self.q[1])
        guardian.grant("review_queue", users["maint1"], self.q[2])
        guardian.grant("approve_prompt", users["viewer"], self.p[1])
        # The same grants on globex's objects must never widen an acme actor's list.
        for user in users.values():
            guardian.grant("approve_prompt", user, self.g1)
            guardian.grant("deploy_prompt", user, self.g1)
            guardian.grant("review_queue", user, self.gq)

    def prompts(self, *numbers):
        return {self.p[n] for n in numbers}

    def queues(self, *numbers):
        return {self.q[n] for n in numbers}


@pytest.fixture
def world(acme, globex):
    return World(acme, globex)


def key_actor(world, scopes, *, who=None, revoked=False):
    user = world.acme.users[who] if who else None
    person = world.acme.actor(who) if who else None
    info = KeyInfo(
        id=1,
        organization_id=world.acme.org.pk,
        name="k",
        public_id="abcdefghijkl",
        scopes=tuple(scopes),
        user_id=user.pk if user else None,
        created_by_id=world.acme.users["admin"].pk,
        revoked=revoked,
    )
    return Actor(org=world.acme.org, user=user, role=person.role if person else None, key=info)


def allowed(actor, action, qs):
    return set(restrict(actor, action, qs))


ALL_PROMPTS = Prompt.objects.all
ALL_QUEUES = ReviewQueue.objects.all


def test_people_see_what_their_role_and_grants_allow(world):
    a = world.acme
    every_prompt, every_queue = world.prompts(1, 2, 3), world.queues(1, 2)
    table = {
        # who: {action: expected objects}; every queryset starts with both organizations.
        "admin": {
            "prompt.approve": every_prompt,
            "prompt.deploy": every_prompt,
            "prompt.view": every_prompt,
            "queue.review": every_queue,
        },
        "maint1": {
            "prompt.approve": world.prompts(1),
            "prompt.deploy": world.prompts(3),
            "prompt.manage": world.prompts(1),
            "prompt.view": every_prompt,
            "queue.view": every_queue,
            "queue.review": world.queues(2),
            "model.decide": set(),
        },
        "maint2": {
            "prompt.approve": world.prompts(2),  # through the team
            "prompt.deploy": set(),
            "queue.review": set(),
        },
        "reviewer1": {
            "prompt.approve": set(),
            "prompt.view": every_prompt,
            "queue.view": world.queues(1),
            "queue.review": world.queues(1),
            "queue.manage": set(),
        },
        "reviewer2": {"queue.view": set(), "queue.review": set()},
        "viewer": {
            "prompt.approve": set(),  # holds the grant, but a viewer never approves
            "queue.view": every_queue,
            "queue.review": set(),
        },
    }
    wrong = []
    for who, rows in table.items():
        for action, want in rows.items():
            qs = ALL_QUEUES() if action.startswith("queue.") else ALL_PROMPTS()
            got = allowed(a.actor(who), action, qs)
            if got != want:
                wrong.append(f"restrict({who}, {action}) = {sorted(o.name for o in got)}")
    assert not wrong, wrong


@pytest.mark.parametrize("who", PEOPLE)
def test_restrict_agrees_with_can_for_every_action(world, who):
    actor = world.acme.actor(who)
    wrong = []
    for actions, qs in ((PROMPT_ACTIONS, ALL_PROMPTS), (QUEUE_ACTIONS, ALL_QUEUES)):
        for action in actions:
            want = {obj for obj in qs() if can(actor, action, obj)}
            if allowed(actor, action, qs()) != want:
                wrong.append(action)
    assert not wrong, f"{who}: restrict differs from can for {wrong}"


def test_machine_keys_follow_their_scopes_never_human_only_actions(world):
    every_prompt, every_queue = world.prompts(1, 2, 3), world.queues(1, 2)
    reader = key_actor(world, ["prompts:read"])
    assert allowed(reader, "prompt.view", ALL_PROMPTS()) == every_prompt
    assert allowed(reader, "prompt.deploy", ALL_PROMPTS()) == set()  # not in its scope
    deployer = key_actor(world, ["prompts:deploy"])
    assert allowed(deployer, "prompt.deploy", ALL_PROMPTS()) == every_prompt  # no grant needed
    manager = key_actor(world, ["reviews:manage"])
    assert allowed(manager, "queue.view", ALL_QUEUES()) == every_queue
    assert allowed(manager, "queue.review", ALL_QUEUES()) == set()
    everything = key_actor(world, ["prompts:approve", "reviews:write", "models:approve"])
    for action in ("prompt.approve", "prompt.manage", "queue.review", "model.decide"):
        qs = ALL_QUEUES() if action.startswith("queue.") else ALL_PROMPTS()
        assert allowed(everything, action, qs) == set(), action
    ingest = key_actor(world, ["ingest"])
    assert allowed(ingest, "prompt.view", ALL_PROMPTS()) == set()


def test_personal_keys_are_role_and_grants_within_scope(world):
    approver = key_actor(world, ["prompts:approve"], who="maint1")
    assert allowed(approver, "prompt.approve", ALL_PROMPTS()) == world.prompts(1)
    assert allowed(approver, "prompt.deploy", ALL_PROMPTS()) == set()
    deployer = key_actor(world, ["prompts:deploy"], who="maint1")
    assert allowed(deployer, "prompt.deploy", ALL_PROMPTS()) == world.prompts(3)
    reviewer = key_actor(world, ["reviews:write"], who="reviewer1")
    assert allowed(reviewer, "queue.review", ALL_QUEUES()) == world.queues(1)
    assert allowed(reviewer, "prompt.view", ALL_PROMPTS()) == set()


def test_revoked_keys_nobody_system_and_unknown_actions(world):
    for revoked in (
        key_actor(world, ["prompts:read", "prompts:deploy"], revoked=True),
        key_actor(world, ["prompts:read"], who="admin", revoked=True),
    ):
        assert allowed(revoked, "prompt.view", ALL_PROMPTS()) == set()
    assert allowed(None, "prompt.view", ALL_PROMPTS()) == set()
    system = Actor.system_for(world.acme.org)
    assert allowed(system, "prompt.approve", ALL_PROMPTS()) == world.prompts(1, 2, 3)
    assert allowed(system, "queue.review", ALL_QUEUES()) == world.queues(1, 2)
    with pytest.raises(ValueError):
        restrict(system, "prompt.teleport", ALL_PROMPTS())


def test_restrict_keeps_the_callers_filters_and_stays_a_queryset(world):
    actor = world.acme.actor("maint1")
    narrowed = restrict(actor, "prompt.approve", ALL_PROMPTS().filter(name__in=["p1", "p2"]))
    assert set(narrowed) == world.prompts(1)
    assert narrowed.filter(name="p2").count() == 0
    assert set(restrict(actor, "prompt.view", ALL_PROMPTS().filter(name="p1"))) == {world.p[1]}
    # globex's admin never sees acme's objects, whatever the queryset holds.
    assert allowed(world.globex.actor("admin"), "prompt.view", ALL_PROMPTS()) == {world.g1}


def test_require_raises_not_permitted_naming_the_action(world):
    a = world.acme
    require(a.actor("maint1"), "prompt.approve", world.p[1])  # allowed: returns quietly
    require(a.actor("admin"), "member.manage")
    refusals = [
        (a.actor("maint1"), "prompt.approve", world.p[2]),  # no grant on this one
        (a.actor("viewer"), "prompt.approve", world.p[1]),  # role never approves
        (a.actor("reviewer1"), "member.manage", None),
        (a.actor("admin"), "prompt.view", world.g1),  # another organization's object
        (key_actor(world, ["prompts:approve"]), "prompt.approve", world.p[1]),  # machine key
        (key_actor(world, ["prompts:read"], who="admin"), "prompt.deploy", world.p[1]),
        (None, "org.view", None),
    ]
    for actor, action, obj in refusals:
        with pytest.raises(NotPermitted) as exc:
            require(actor, action, obj)
        assert exc.value.message == f"You may not do '{action}' here."
    with pytest.raises(ValueError):
        require(a.actor("admin"), "prompt.teleport")
