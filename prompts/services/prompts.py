"""Prompts and their owners: create a prompt, change its settings, grant or revoke the
owner grants (approve_prompt, deploy_prompt) to a member or a team."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from llmops.audit.services import audit_record
from llmops.common import clean
from llmops.common.errors import InvalidInput
from llmops.evals.models import EvalPolicy
from llmops.tenancy import guardian
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Team
from llmops.tenancy.policy import require

from ..content import validate_name
from ..models import Prompt
from ._common import OWNER_PERMS, User, _open_prompt


def _tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [t for t in (s.strip() for s in tags.split(",")) if t]
    if not isinstance(tags, list) or not all(isinstance(t, str) and len(t) <= 50 for t in tags):
        raise InvalidInput("tags must be a list of short strings.", field="tags")
    return sorted({t.strip().lower() for t in tags if t.strip()})


def _required_approvals(value: Any) -> int:
    n = clean.count(value, field="required_approvals", min_value=1, max_value=10)
    if n is None:
        raise InvalidInput(
            "required_approvals is required: a whole number from 1 to 10.",
            field="required_approvals",
        )
    return n


def _eval_policy(actor: Actor, policy: Any) -> EvalPolicy | None:
    if policy in (None, ""):
        return None
    if isinstance(policy, EvalPolicy):
        policy_id = policy.pk
    else:
        try:
            policy_id = int(policy)
        except (TypeError, ValueError):
            raise InvalidInput("eval_policy must be a policy id.", field="eval_policy")
    found = EvalPolicy.objects.for_org(actor.org).filter(pk=policy_id).first()
    if found is None:
        raise InvalidInput("No such eval policy in this organization.", field="eval_policy")
    return found


@transaction.atomic
def prompt_create(
    *,
    actor: Actor,
    name: str,
    description: str = "",
    tags: Any = None,
    required_approvals: Any = 1,
    eval_policy: Any = None,
) -> Prompt:
    """Create a prompt; its creator (a key's creator for a machine key) becomes its first
    owner, holding both grants."""
    require(actor, "prompt.create")
    name = validate_name(name)
    if not isinstance(description, str) or len(description) > 5000:
        raise InvalidInput(
            "description must be text of at most 5000 characters.", field="description"
        )
    if Prompt.objects.for_org(actor.org).filter(name=name).exists():
        raise InvalidInput(f"A prompt named '{name}' already exists.", field="name")
    creator_id = next(iter(actor.author_user_ids()), None)
    prompt = Prompt.objects.create(
        organization=actor.org,
        name=name,
        description=description.strip(),
        tags=_tags(tags),
        required_approvals=_required_approvals(required_approvals),
        eval_policy=_eval_policy(actor, eval_policy),
        created_by_id=creator_id,
    )
    if creator_id is not None:
        creator = User.objects.get(pk=creator_id)
        for perm in OWNER_PERMS:
            guardian.grant(perm, creator, prompt)
    audit_record(
        actor=actor,
        action="prompt.created",
        target=prompt,
        details={"required_approvals": prompt.required_approvals, "tags": prompt.tags},
    )
    return prompt


def _settings(prompt: Prompt) -> dict:
    return {
        "description": prompt.description,
        "tags": prompt.tags,
        "required_approvals": prompt.required_approvals,
        "eval_policy": prompt.eval_policy_id,
    }


@transaction.atomic
def prompt_update(
    *,
    actor: Actor,
    prompt: Prompt,
    description: str | None = None,
    tags: Any = None,
    required_approvals: Any = None,
    eval_policy: Any = "unchanged",
) -> Prompt:
    prompt = _open_prompt(actor, prompt, "prompt.manage")
    before = _settings(prompt)
    if description is not None:
        prompt.description = str(description).strip()[:5000]
    if tags is not None:
        prompt.tags = _tags(tags)
    if required_approvals is not None:
        prompt.required_approvals = _required_approvals(required_approvals)
    if eval_policy != "unchanged":
        prompt.eval_policy = _eval_policy(actor, eval_policy)
    prompt.save()
    audit_record(
        actor=actor,
        action="prompt.updated",
        target=prompt,
        details={"before": before, "after": _settings(prompt)},
    )
    return prompt


# -- owners ---------------------------------------------------------------------------------


def _owner_target(actor: Actor, *, username: str = "", team_id: Any = None):
    if username:
        user = User.objects.filter(
            username=username, memberships__organization=actor.org, is_active=True
        ).first()
        if user is None:
            raise InvalidInput(
                f"'{username}' is not a member of this organization.", field="username"
            )
        return user, f"user {user.username}"
    if team_id not in (None, ""):
        try:
            team = Team.objects.for_org(actor.org).select_related("group").get(pk=int(team_id))
        except (Team.DoesNotExist, TypeError, ValueError):
            raise InvalidInput("No such team in this organization.", field="team")
        return team.group, f"team {team.name}"
    raise InvalidInput("Name a member or a team.", field="username")


def _perms(perms: Any) -> tuple[str, ...]:
    perms = tuple(perms or OWNER_PERMS)
    bad = [p for p in perms if p not in OWNER_PERMS]
    if bad:
        raise InvalidInput(
            f"Unknown permission {bad[0]}; use approve_prompt or deploy_prompt.", field="perms"
        )
    return perms


def _owners_change(
    *, actor: Actor, prompt: Prompt, username: str, team_id: Any, perms: Any, grant: bool
) -> None:
    """Grant (or revoke) owner grants of a prompt to (from) a member or a team."""
    require(actor, "prompt.manage", prompt)
    target, label = _owner_target(actor, username=username, team_id=team_id)
    perms = _perms(perms)
    change = guardian.grant if grant else guardian.revoke
    for perm in perms:
        change(perm, target, prompt)
    audit_record(
        actor=actor,
        action="prompt.owner_granted" if grant else "prompt.owner_revoked",
        target=prompt,
        details={"to" if grant else "from": label, "perms": list(perms)},
    )


@transaction.atomic
def prompt_owner_grant(
    *, actor: Actor, prompt: Prompt, username: str = "", team_id: Any = None, perms: Any = None
) -> None:
    _owners_change(
        actor=actor, prompt=prompt, username=username, team_id=team_id, perms=perms, grant=True
    )


@transaction.atomic
def prompt_owner_revoke(
    *, actor: Actor, prompt: Prompt, username: str = "", team_id: Any = None, perms: Any = None
) -> None:
    _owners_change(
        actor=actor, prompt=prompt, username=username, team_id=team_id, perms=perms, grant=False
    )
