"""The role matrix: every role x every action of the policy, from an explicit table written
here (not derived from MATRIX), plus scopes, machine keys, personal keys, revoked keys,
another organization's object, and one real guardian grant."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llmops.tenancy import guardian, policy
from llmops.tenancy.actor import Actor, KeyInfo
from llmops.tenancy.policy import ACTIONS, MATRIX, SCOPES, can, can_any, scopes_beyond_role

ROLES = ("admin", "maintainer", "reviewer", "viewer")

# Y: allowed; N: denied; G: allowed only on objects the actor holds a guardian grant on.
# Columns: admin, maintainer, reviewer, viewer. A new action in policy.MATRIX needs a row.
EXPECTED = {
    "org.view": "YYYY",
    "org.manage": "YNNN",
    "member.view": "YYYY",
    "member.manage": "YNNN",
    "team.manage": "YNNN",
    "api_key.manage": "YNNN",
    "audit.view": "YYNY",
    "webhook.manage": "YNNN",
    "break_glass": "YNNN",
    "eval.view": "YYYY",
    "eval.write": "YYNN",
    "model.view": "YYYY",
    "model.propose": "YYNN",
    "model.decide": "YNNN",
    "generation.view": "YYYY",
    "generation.ingest": "YYNN",
    "prompt.view": "YYYY",
    "prompt.create": "YYNN",
    "prompt.propose": "YYNN",
    "prompt.manage": "YGNN",
    "prompt.approve": "YGNN",
    "prompt.deploy": "YGNN",
    "queue.view": "YYGY",
    "queue.manage": "YYNN",
    "queue.review": "YGGN",
    "queue.adjudicate": "YYNN",
    "incident.view": "YYYY",
    "incident.open": "YYYN",
    "incident.manage": "YYNN",
    "runbook.view": "YYYY",
    "runbook.manage": "YYNN",
}

# What each scope lets a key do (besides seeing its own organization: org.view).
SCOPE_EXPECTED = {
    "ingest": {"generation.ingest", "generation.view"},
    "prompts:read": {"prompt.view"},
    "prompts:write": {"prompt.view", "prompt.create", "prompt.propose"},
    "prompts:approve": {"prompt.view", "prompt.approve"},
    "prompts:deploy": {"prompt.view", "prompt.deploy"},
    "evals:write": {"eval.view", "eval.write"},
    "models:read": {"model.view"},
    "models:write": {"model.view", "model.propose"},
    "models:approve": {"model.view", "model.decide"},
    "reviews:write": {"queue.view", "queue.review"},
    "reviews:manage": {"queue.view", "queue.manage"},
    "incidents:write": {"incident.view", "incident.open", "incident.manage", "runbook.view"},
    "runbooks:write": {"runbook.view", "runbook.manage"},
    "audit:read": {"audit.view"},
}

# Never for a machine key, whatever its scopes: a human does these.
HUMAN_ONLY = {
    "prompt.approve",
    "prompt.manage",
    "model.decide",
    "queue.review",
    "queue.adjudicate",
    "break_glass",
    "member.manage",
    "team.manage",
    "api_key.manage",
    "webhook.manage",
    "org.manage",
}

# Scopes a personal key of each role may carry (minting others is refused).
PERSONAL_SCOPES = {
    "admin": set(SCOPE_EXPECTED),
    "maintainer": set(SCOPE_EXPECTED) - {"models:approve"},
    "reviewer": {"prompts:read", "models:read", "reviews:write"},
    "viewer": {"prompts:read", "models:read", "audit:read"},
}


def expected(role: str, action: str) -> str:
    return EXPECTED[action][ROLES.index(role)]


@dataclass
class Stub:
    """An object of some app: the policy needs only its organization."""

    organization_id: int
    pk: int = 1


@pytest.fixture
def grants(monkeypatch):
    """Controls guardian's answer: grants.value = True/False; grants.calls records them."""

    class Grants:
        value = False
        calls: list = []

    def fake(user, codename, obj, *, cache=None):
        Grants.calls.append((user, codename, obj))
        return Grants.value

    monkeypatch.setattr(guardian, "has_grant", fake)
    Grants.calls = []
    return Grants


def human(world, role):
    who = {"admin": "admin", "maintainer": "maint1", "reviewer": "reviewer1", "viewer": "viewer"}
    return world.actor(who[role])


def key_actor(world, scopes, *, user=None, role=None, revoked=False):
    info = KeyInfo(
        id=1,
        organization_id=world.org.pk,
        name="k",
        public_id="abcdefghijkl",
        scopes=tuple(scopes),
        user_id=user.pk if user else None,
        created_by_id=world.users["admin"].pk,
        revoked=revoked,
    )
    return Actor(org=world.org, user=user, role=role, key=info)


def test_the_table_covers_exactly_the_policy():
    missing = sorted(ACTIONS - EXPECTED.keys())
    assert not missing, (
        f"policy.MATRIX has actions without a row in tests/tenancy/test_policy.py EXPECTED: {missing}"
    )
    assert not EXPECTED.keys() - ACTIONS, "EXPECTED names actions the policy no longer has"
    missing_scopes = sorted(set(SCOPES) - set(SCOPE_EXPECTED))
    assert not missing_scopes, f"scopes without a row in SCOPE_EXPECTED: {missing_scopes}"


def _scope_exists(scope):
    if scope not in SCOPES:
        pytest.skip(f"scope {scope} is not in policy.SCOPES (yet)")


# One test per role (not per role x action: each test builds both organizations), each
# collecting every mismatch so a failure names all the cells that differ from the table.


@pytest.mark.parametrize("role", ROLES)
def test_role_without_object(role, acme, globex, grants):
    actor = human(acme, role)
    wrong = []
    for action in sorted(EXPECTED):
        want = expected(role, action)
        if can(actor, action) is not (want == "Y"):
            wrong.append(f"can({role}, {action}) should be {want == 'Y'}")
        # can_any answers "on some object": a grant-based action shows its button.
        if can_any(actor, action) is not (want in "YG"):
            wrong.append(f"can_any({role}, {action}) should be {want in 'YG'}")
        if policy.role_allows(role, action) is not (want in "YG"):
            wrong.append(f"role_allows({role}, {action}) should be {want in 'YG'}")
    assert not wrong, wrong


@pytest.mark.parametrize("role", ROLES)
def test_role_on_own_object_with_and_without_grant(role, acme, globex, grants):
    actor = human(acme, role)
    obj = Stub(organization_id=acme.org.pk)
    wrong = []
    for action in sorted(EXPECTED):
        want = expected(role, action)
        grants.calls = []
        for granted in (False, True):
            grants.value = granted
            allowed = want == "Y" or (want == "G" and granted)
            if can(actor, action, obj) is not allowed:
                wrong.append(f"can({role}, {action}, obj) with grant={granted} should be {allowed}")
        if want == "G":
            assert grants.calls and all(c[0] == actor.user for c in grants.calls)
            assert {c[1] for c in grants.calls} == {MATRIX[action][role]}
        elif grants.calls:
            wrong.append(f"{role} {action}: a role rule must not consult guardian")
    assert not wrong, wrong


@pytest.mark.parametrize("role", ROLES)
def test_another_organizations_object_is_never_allowed(role, acme, globex, grants):
    grants.value = True
    obj = Stub(organization_id=globex.org.pk)
    for action in sorted(EXPECTED):
        assert can(human(acme, role), action, obj) is False, action
        assert can(key_actor(acme, list(SCOPES)), action, obj) is False, action
        assert can(Actor.system_for(acme.org), action, obj) is False, action


@pytest.mark.parametrize("scope", sorted(SCOPE_EXPECTED))
def test_machine_key_is_limited_to_its_scope_and_never_human_only(scope, acme, globex, grants):
    _scope_exists(scope)
    grants.value = False  # machine keys hold no grants; scope decides
    actor = key_actor(acme, [scope])
    assert actor.is_machine and not actor.is_human
    obj = Stub(organization_id=acme.org.pk)
    for action in sorted(EXPECTED):
        allowed = (action in SCOPE_EXPECTED[scope] or action == "org.view") and (
            action not in HUMAN_ONLY
        )
        assert can(actor, action, obj) is allowed, f"machine [{scope}] {action}"
        assert can_any(actor, action) is allowed, f"machine [{scope}] {action} (any)"


def test_machine_key_with_every_scope_still_never_does_human_only_actions(acme, globex, grants):
    actor = key_actor(acme, list(SCOPES))
    for action in HUMAN_ONLY:
        assert not can(actor, action, Stub(organization_id=acme.org.pk))
        assert not can_any(actor, action)


@pytest.mark.parametrize("role", ROLES)
def test_personal_key_is_the_intersection_of_role_and_scope(role, acme, globex, grants):
    base = human(acme, role)
    obj = Stub(organization_id=acme.org.pk)
    wrong = []
    for scope in sorted(set(SCOPE_EXPECTED) & set(SCOPES)):
        actor = key_actor(acme, [scope], user=base.user, role=role)
        assert not actor.is_machine and actor.is_human
        for action in sorted(EXPECTED):
            in_scope = action in SCOPE_EXPECTED[scope] or action == "org.view"
            want = expected(role, action)
            for granted in (False, True):
                grants.value = granted
                allowed = in_scope and (want == "Y" or (want == "G" and granted))
                if can(actor, action, obj) is not allowed:
                    wrong.append(f"{role} [{scope}] {action} grant={granted}: expected {allowed}")
            if can_any(actor, action) is not (in_scope and want in "YG"):
                wrong.append(
                    f"{role} [{scope}] {action} (any): expected {in_scope and want in 'YG'}"
                )
    assert not wrong, wrong


@pytest.mark.parametrize("role", ROLES)
def test_personal_key_scopes_a_role_may_mint(role):
    refused = set(scopes_beyond_role(role, list(SCOPES)))
    assert set(SCOPES) - refused == PERSONAL_SCOPES[role] & set(SCOPES)


def test_revoked_key_may_do_nothing(acme, globex, grants):
    grants.value = True
    machine = key_actor(acme, list(SCOPES), revoked=True)
    personal = key_actor(acme, list(SCOPES), user=acme.users["admin"], role="admin", revoked=True)
    for actor in (machine, personal):
        for action in EXPECTED:
            assert not can(actor, action, Stub(organization_id=acme.org.pk))
            assert not can(actor, action)
            assert not can_any(actor, action)


def test_system_actor_nobody_and_unknown_action(acme, globex):
    system = Actor.system_for(acme.org)
    assert all(can(system, a) for a in EXPECTED)
    assert all(not can(None, a) for a in EXPECTED)
    assert all(not can_any(None, a) for a in EXPECTED)
    with pytest.raises(ValueError):
        can(system, "prompt.teleport")
    with pytest.raises(ValueError):
        policy.role_allows("admin", "prompt.teleport")


def test_a_user_without_membership_has_no_role(acme, globex):
    stranger = Actor(org=acme.org, user=globex.users["admin"], role=None)
    assert not any(can(stranger, a) for a in EXPECTED)
    assert not any(can_any(stranger, a) for a in EXPECTED)


def test_real_guardian_grant_on_a_prompt_direct_and_through_a_team(acme, globex):
    """One real guardian check (direct-FK permission tables), once the prompts app has them."""
    try:
        from prompts.models import Prompt
    except ImportError:
        pytest.skip("prompts.models.Prompt does not exist yet")
    from django.contrib.auth.models import Permission

    if not Permission.objects.filter(
        codename="approve_prompt", content_type__app_label="prompts"
    ).exists():
        pytest.skip("prompts has no approve_prompt permission yet")
    from llmops.tenancy.services import team_add_member, team_create

    try:
        prompt = _make_prompt(Prompt, acme)
        other = _make_prompt(Prompt, acme, name="other-prompt")
    except Exception as exc:  # noqa: BLE001 - the prompts app's required fields may differ
        pytest.skip(f"cannot create a Prompt with the minimal fields: {exc}")
    maint1, maint2 = acme.actor("maint1"), acme.actor("maint2")
    guardian.revoke("approve_prompt", maint1.user, prompt)
    guardian.revoke("approve_prompt", maint2.user, prompt)
    assert not can(acme.actor("maint1"), "prompt.approve", prompt)
    guardian.grant("approve_prompt", maint1.user, prompt)
    assert can(acme.actor("maint1"), "prompt.approve", prompt)
    assert not can(acme.actor("maint1"), "prompt.approve", other)
    # Through a team: maint2 joins a team that holds the grant.
    team = team_create(actor=acme.actor(), name="owners")
    guardian.grant("approve_prompt", team.group, prompt)
    assert not can(acme.actor("maint2"), "prompt.approve", prompt)
    team_add_member(actor=acme.actor(), team=team, username=maint2.user.username)
    assert can(acme.actor("maint2"), "prompt.approve", prompt)
    # Viewers and reviewers never approve, grant or not; admins always may.
    guardian.grant("approve_prompt", acme.users["viewer"], prompt)
    assert not can(acme.actor("viewer"), "prompt.approve", prompt)
    assert can(acme.actor("admin"), "prompt.approve", prompt)
    # globex's admin with the same object: 404-level no.
    assert not can(globex.actor("admin"), "prompt.approve", prompt)
    # Leaving the organization drops direct grants (a re-invitation starts clean).
    from llmops.tenancy.models import Membership
    from llmops.tenancy.services import member_remove

    member_remove(
        actor=acme.actor(),
        membership=Membership.objects.get(organization=acme.org, user=maint1.user),
    )
    assert not guardian.users_with_grant(prompt, "approve_prompt").filter(pk=maint1.user.pk)


def _make_prompt(model, world, name="summarise"):
    return model.objects.create(organization=world.org, name=name)
