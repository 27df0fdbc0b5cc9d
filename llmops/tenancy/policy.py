"""The one permission policy: `can(actor, action, obj)`.

Role says what kind of action is possible at all; a guardian object grant says on which
objects (a codename in the matrix). Admins hold every object grant of their organization
implicitly. API keys narrow further by scope; machine keys never do human-only actions.
Generic on purpose: it knows action names, not the apps that use them. Rules about an
object's state belong to the owning app's services."""

from __future__ import annotations

from llmops.common.errors import NotPermitted

from .actor import Actor
from .models import Role

A, M, R, V = Role.ADMIN, Role.MAINTAINER, Role.REVIEWER, Role.VIEWER
ALL = (A, M, R, V)
STAFF = (A, M)

# action -> {role: True | "guardian_codename"}; roles not listed are denied.
MATRIX: dict[str, dict[str, bool | str]] = {}


def _allow(action: str, roles, grant: str | None = None, grant_roles=()) -> None:
    rule: dict[str, bool | str] = {role: True for role in roles}
    for role in grant_roles:
        rule[role] = grant  # type: ignore[assignment]
    MATRIX[action] = rule


# organization
_allow("org.view", ALL)
_allow("org.manage", (A,))
_allow("member.view", ALL)
_allow("member.manage", (A,))
_allow("team.manage", (A,))
_allow("api_key.manage", (A,))
_allow("audit.view", (A, M, V))
_allow("webhook.manage", (A,))
_allow("break_glass", (A,))
# evals and catalog
_allow("eval.view", ALL)
_allow("eval.write", STAFF)
_allow("model.view", ALL)
_allow("model.propose", STAFF)
_allow("model.decide", (A,))
# traces
_allow("generation.view", ALL)
_allow("generation.ingest", STAFF)
# prompts: maintainers act on the prompts they own (guardian grants)
_allow("prompt.view", ALL)
_allow("prompt.create", STAFF)
_allow("prompt.propose", STAFF)
_allow("prompt.manage", (A,), "approve_prompt", (M,))
_allow("prompt.approve", (A,), "approve_prompt", (M,))
_allow("prompt.deploy", (A,), "deploy_prompt", (M,))
# reviews: reviewers see and work only the queues granted to them
_allow("queue.view", (A, M, V), "review_queue", (R,))
_allow("queue.manage", STAFF)
_allow("queue.review", (A,), "review_queue", (M, R))
_allow("queue.adjudicate", STAFF)
# incidents
_allow("incident.view", ALL)
_allow("incident.open", (A, M, R))
_allow("incident.manage", STAFF)
_allow("runbook.view", ALL)
_allow("runbook.manage", STAFF)

ACTIONS = frozenset(MATRIX)

# API key scopes (README.md, "HTTP API"); a scope that writes also reads.
SCOPES: dict[str, frozenset[str]] = {
    "ingest": frozenset({"generation.ingest", "generation.view"}),
    "prompts:read": frozenset({"prompt.view"}),
    "prompts:write": frozenset({"prompt.view", "prompt.create", "prompt.propose"}),
    "prompts:approve": frozenset({"prompt.view", "prompt.approve"}),
    "prompts:deploy": frozenset({"prompt.view", "prompt.deploy"}),
    "evals:write": frozenset({"eval.view", "eval.write"}),
    "models:read": frozenset({"model.view"}),
    "models:write": frozenset({"model.view", "model.propose"}),
    "models:approve": frozenset({"model.view", "model.decide"}),
    "reviews:write": frozenset({"queue.view", "queue.review"}),
    "reviews:manage": frozenset({"queue.view", "queue.manage"}),
    "incidents:write": frozenset(
        {"incident.view", "incident.open", "incident.manage", "runbook.view"}
    ),
    "runbooks:write": frozenset({"runbook.view", "runbook.manage"}),
    "audit:read": frozenset({"audit.view"}),
}
HUMAN_ONLY_SCOPES = frozenset({"prompts:approve", "models:approve", "reviews:write"})
HUMAN_ONLY_ACTIONS = frozenset(
    {
        "prompt.approve",
        "model.decide",
        "queue.review",
        "queue.adjudicate",
        "break_glass",
        "member.manage",
        "team.manage",
        "api_key.manage",
        "webhook.manage",
        "org.manage",
        "prompt.manage",
    }
)


# Every key may see which organization it belongs to (`GET /api/v1/me`, the home page).
BASE_KEY_ACTIONS = frozenset({"org.view"})


def scope_actions(scopes) -> frozenset[str]:
    actions: set[str] = set(BASE_KEY_ACTIONS)
    for scope in scopes:
        actions |= SCOPES.get(scope, frozenset())
    return frozenset(actions)


def role_allows(role: str | None, action: str) -> bool:
    """Whether the role permits this kind of action on at least some objects."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    return bool(MATRIX[action].get(role or "", False))


def role_rule(role: str | None, action: str) -> bool | str:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    return MATRIX[action].get(role or "", False)


def scopes_beyond_role(role: str | None, scopes) -> list[str]:
    """Scopes a personal key of this role may not carry: an action of it the role denies."""
    return [s for s in scopes if any(not role_allows(role, action) for action in SCOPES[s])]


def can(actor: Actor | None, action: str, obj=None) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if actor is None:
        return False
    if obj is not None:
        org_id = getattr(obj, "organization_id", None)
        if org_id is not None and org_id != actor.org.pk:
            return False
    if actor.system:
        return True
    if actor.key is not None:
        if actor.key.revoked or action not in scope_actions(actor.key.scopes):
            return False
        if actor.is_machine:
            return action not in HUMAN_ONLY_ACTIONS
    rule = MATRIX[action].get(actor.role or "", False)
    if rule is True or rule is False:
        return rule
    if obj is None:
        return False
    from .guardian import has_grant

    return has_grant(actor.user, rule, obj, cache=actor._cache)


def can_any(actor: Actor | None, action: str) -> bool:
    """Whether the actor may do this kind of action on some object (for menus and buttons)."""
    if actor is None:
        return False
    if actor.system:
        return True
    if actor.key is not None:
        if actor.key.revoked or action not in scope_actions(actor.key.scopes):
            return False
        if actor.is_machine:
            return action not in HUMAN_ONLY_ACTIONS
    return role_allows(actor.role, action)


def require(actor: Actor | None, action: str, obj=None) -> None:
    """`can`, or `NotPermitted` naming the action: the services' permission check. An object
    of another organization is refused too; a service that must answer "no such object"
    there (not revealing it exists) checks the organization first and raises `NotFound`."""
    if not can(actor, action, obj):
        raise NotPermitted(f"You may not do '{action}' here.")


def restrict(actor: Actor | None, action: str, queryset):
    """The objects of `queryset` (a tenant-owned model's) the actor may do `action` on, as a
    queryset (NetBox's `restrict`): the same answer as `can(actor, action, obj)` for each
    object, so selectors narrow lists without knowing roles or grants. Narrowed to the
    actor's organization here too; an object-grant action keeps the objects the person holds
    the grant on (directly or through a team), a role-only action all or none."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not can_any(actor, action):
        return queryset.none()
    queryset = queryset.filter(organization_id=actor.org.pk)
    if actor.system or actor.is_machine:
        return queryset
    rule = MATRIX[action].get(actor.role or "", False)
    if rule is True:
        return queryset
    if rule is False or actor.user is None:
        return queryset.none()
    from .guardian import objects_with_grant

    return objects_with_grant(actor.user, rule, queryset)
