"""Helpers every family of prompt services shares: the permission check, loading a row of
this organization under a lock, status moves, links for notifications, who to tell, and
break-glass."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from llmops.common.errors import InvalidInput, NotFound, NotPermitted
from llmops.notify.services import notify_admins
from llmops.tenancy import guardian
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import can, require, role_allows
from llmops.tenancy.selectors import admins_of

from ..models import Prompt, PromptVersion

User = get_user_model()
Status = PromptVersion.Status
OWNER_PERMS = ("approve_prompt", "deploy_prompt")


def _refusal(actor: Actor, action: str, obj=None) -> NotPermitted | None:
    """`policy.require`'s refusal as a value (for the *_blocker rules), or None."""
    try:
        require(actor, action, obj)
    except NotPermitted as exc:
        return exc
    return None


def _open_prompt(actor: Actor, prompt: Prompt, action: str) -> Prompt:
    """The opening of a write to a prompt: `action` allowed on it, its row locked."""
    require(actor, action, prompt)
    return Prompt.objects.for_org(actor.org).select_for_update().get(pk=prompt.pk)


def _lock_version(actor: Actor, version: PromptVersion) -> PromptVersion:
    locked = (
        PromptVersion.objects.for_org(actor.org)
        .select_for_update()
        .filter(pk=version.pk)
        .select_related("prompt", "prompt__organization", "model")
        .first()
    )
    if locked is None:
        raise NotFound("No such prompt version.")
    return locked


def _set_status(version: PromptVersion, status: str) -> None:
    version.status = status
    version.status_changed_at = timezone.now()
    version.save(update_fields=["status", "status_changed_at"])


def _link_prompt(prompt: Prompt) -> str:
    return reverse(
        "prompts:detail", kwargs={"org_slug": prompt.organization.slug, "name": prompt.name}
    )


def _link_version(version: PromptVersion) -> str:
    return reverse(
        "prompts:version",
        kwargs={
            "org_slug": version.prompt.organization.slug,
            "name": version.prompt.name,
            "number": version.number,
        },
    )


def _grant_holders(prompt: Prompt, perms, *, exclude=frozenset()) -> list[int]:
    """Users holding any of `perms` on the prompt (directly or through a team), less
    `exclude`; when that leaves nobody, the organization's admins (who hold every grant
    implicitly), less `exclude`."""
    holders: set[int] = set()
    for perm in perms:
        holders |= {u.pk for u in guardian.users_with_grant(prompt, perm)}
    holders -= set(exclude)
    if not holders:
        holders = set(admins_of(org=prompt.organization).values_list("pk", flat=True))
        holders -= set(exclude)
    return sorted(holders)


# -- break-glass ----------------------------------------------------------------------------


def may_break_glass(actor: Actor, through: str, obj) -> bool:
    """An admin in person, or an admin's personal key that may do the action at hand
    (`prompt.approve` for a review, `prompt.deploy` for a label move): no scope carries
    break_glass, so through the API it comes from the key holder's role. Never a machine
    key, never another role."""
    if actor.is_machine or not actor.is_human:
        return False
    if can(actor, "break_glass"):
        return True
    return (
        actor.key is not None
        and role_allows(actor.role, "break_glass")
        and can(actor, through, obj)
    )


def _break_glass(actor: Actor, reason: Any, *, through: str, obj) -> str:
    """The break-glass reason to use when a rule blocks ("" when none was given); a reason
    from anyone who may not break glass is refused (403), whether or not a rule blocks."""
    if reason is None or reason == "":
        return ""
    if not isinstance(reason, str):
        raise InvalidInput("break_glass_reason must be text.", field="break_glass_reason")
    reason = reason.strip()
    if not reason:
        return ""
    if not may_break_glass(actor, through, obj):
        raise NotPermitted(
            "Only an admin may use break-glass: in person or with their own personal key, "
            "never a machine key."
        )
    if len(reason) > 5000:
        raise InvalidInput(
            "break_glass_reason is at most 5000 characters.", field="break_glass_reason"
        )
    return reason


def _announce_break_glass(actor: Actor, *, what: str, reason: str, link: str) -> None:
    notify_admins(
        org=actor.org,
        kind="prompts.break_glass",
        subject=f"Break-glass: {what}",
        body=f"{actor.label} used break-glass: {what}.\n\nReason: {reason}",
        link=link,
        payload={"what": what, "reason": reason, "by": actor.label},
    )
