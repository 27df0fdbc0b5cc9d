"""Prompt versions: propose (content-addressed, so identical content proposes nothing),
submit for review, withdraw; and the rules of what may be done with a version right now,
which the service enforces and the pages render (`version_allowed_actions`)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.catalog.selectors import model_by_model_id
from llmops.common import clean
from llmops.common.errors import GovernanceError, InvalidInput, InvalidTransition, NotPermitted
from llmops.notify.services import notify
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Membership
from llmops.tenancy.policy import can

from ..content import clean_content, content_hash
from ..models import Prompt, PromptVersion
from ._common import (
    Status,
    _grant_holders,
    _link_version,
    _lock_version,
    _open_prompt,
    _refusal,
    _set_status,
)

VERSION_OPS = ("submit", "withdraw", "review")


# -- what may be done with a version now ------------------------------------------------------


def _is_author(actor: Actor, version: PromptVersion) -> bool:
    return actor.user_id is not None and version.authors.filter(pk=actor.user_id).exists()


def version_blocker(actor: Actor, version: PromptVersion, op: str) -> GovernanceError | None:
    """Why `actor` may not `op` (submit, withdraw, review) `version` now: the error the
    service raises (403 for who, 409 for the version's state), or None when allowed."""
    prompt = version.prompt
    if op == "submit":
        if refused := _refusal(actor, "prompt.propose", prompt):
            return refused
        if version.status != Status.DRAFT:
            return InvalidTransition(
                f"Only a draft can be submitted; this version is {version.status}."
            )
    elif op == "withdraw":
        if not (
            can(actor, "prompt.manage", prompt)
            or (can(actor, "prompt.propose", prompt) and _is_author(actor, version))
        ):
            return NotPermitted("Only an author or an owner may withdraw a version.")
        if version.status not in (Status.DRAFT, Status.IN_REVIEW):
            return InvalidTransition(
                "Only a draft or a version in review can be withdrawn; this one is "
                f"{version.status}."
            )
    elif op == "review":
        if refused := _refusal(actor, "prompt.approve", prompt):
            return refused
        if not actor.is_human:
            return NotPermitted("Only a person may review a prompt version.")
        if version.status != Status.IN_REVIEW:
            return InvalidTransition(
                f"Only a version in review can be reviewed; v{version.number} is {version.status}."
            )
    else:
        raise ValueError(f"unknown version op {op!r}")
    return None


def version_allowed_actions(actor: Actor, version: PromptVersion) -> dict[str, bool]:
    """{op: allowed now} for each of VERSION_OPS, from the rules the services enforce."""
    return {op: version_blocker(actor, version, op) is None for op in VERSION_OPS}


def _open_version(actor: Actor, version: PromptVersion, op: str) -> PromptVersion:
    """The opening of a version's state change: the version locked in this organization,
    and `op` allowed on it now (else its 403 or 409)."""
    version = _lock_version(actor, version)
    error = version_blocker(actor, version, op)
    if error is not None:
        raise error
    return version


# -- proposing --------------------------------------------------------------------------------


def _authors_for(actor: Actor, author_email: str) -> tuple[set[int], list[str]]:
    ids = set(actor.author_user_ids())
    emails: list[str] = []
    email = (author_email or "").strip()
    if email:
        if len(email) > 254 or "@" not in email:
            raise InvalidInput("author must be an e-mail address.", field="author")
        emails.append(email.lower())
        ids |= set(
            Membership.objects.for_org(actor.org)
            .filter(user__email__iexact=email)
            .values_list("user_id", flat=True)
        )
    return ids, emails


def _submit(actor: Actor, version: PromptVersion, author_ids: set[int]) -> list[int]:
    """draft -> in_review; older versions still in review are superseded; the owners (not
    the authors) are asked to review."""
    superseded = list(
        PromptVersion.objects.select_for_update()
        .filter(prompt=version.prompt, status=Status.IN_REVIEW, number__lt=version.number)
        .values_list("number", flat=True)
    )
    if superseded:
        PromptVersion.objects.filter(prompt=version.prompt, number__in=superseded).update(
            status=Status.SUPERSEDED, status_changed_at=timezone.now()
        )
    _set_status(version, Status.IN_REVIEW)
    notify(
        org=actor.org,
        recipients=_grant_holders(version.prompt, ["approve_prompt"], exclude=author_ids),
        kind="prompts.review_requested",
        subject=f"Review requested: {version.prompt.name} v{version.number}",
        body=(
            f"{actor.label} proposed {version.prompt.name} v{version.number}."
            + (f"\n\n{version.message}" if version.message else "")
        ),
        link=_link_version(version),
        payload={"prompt": version.prompt.name, "version": version.number},
    )
    return superseded


def _clean_version_input(
    actor: Actor, *, model: Any, source: str, source_path: str, source_commit: str
):
    """The pinned catalog model of a proposal, after checking its other plain fields."""
    if not isinstance(model, str) or not model.strip():
        raise InvalidInput("model is required: a model id from the catalog.", field="model")
    pinned = model_by_model_id(org=actor.org, model_id=model.strip())
    if pinned is None:
        raise InvalidInput(f"Model '{model}' is not in the catalog.", field="model")
    if source not in PromptVersion.Source.values:
        raise InvalidInput("source must be ui, api or git.", field="source")
    if len(source_path or "") > 500 or len(source_commit or "") > 64:
        raise InvalidInput("path or commit too long.", field="commit")
    return pinned


def _new_draft(
    actor: Actor, prompt: Prompt, content, *, pinned, digest: str, author_email: str, **fields
) -> tuple[PromptVersion, set[int]]:
    """The next version of the prompt, a draft, with its authors (the actor's author users
    and the members with `author_email`); returns it and the author ids."""
    author_ids, emails = _authors_for(actor, author_email)
    version = PromptVersion.objects.create(
        organization=actor.org,
        prompt=prompt,
        number=(latest_number(prompt) or 0) + 1,
        template=content.template or "",
        messages=content.messages,
        variables=content.variables,
        model=pinned,
        params=content.params,
        tools=content.tools,
        author_emails=emails,
        created_by_label=actor.label[:200],
        content_hash=digest,
        status=Status.DRAFT,
        **fields,
    )
    if author_ids:
        version.authors.set(author_ids)
    return version, author_ids


@transaction.atomic
def version_create(
    *,
    actor: Actor,
    prompt: Prompt,
    model: str,
    template: Any = None,
    messages: Any = None,
    params: Any = None,
    tools: Any = None,
    variables: Any = None,
    message: str = "",
    submit: bool = True,
    source: str = PromptVersion.Source.UI,
    source_path: str = "",
    source_commit: str = "",
    author_email: str = "",
) -> tuple[PromptVersion, bool]:
    """Propose a version. Content identical to any existing version of the prompt (its
    content hash) creates nothing and returns (that version, False); with several such
    versions (older data), the newest of them."""
    prompt = _open_prompt(actor, prompt, "prompt.propose")
    content = clean_content(
        template=template, messages=messages, params=params, tools=tools, variables=variables
    )
    pinned = _clean_version_input(
        actor,
        model=model,
        source=source,
        source_path=source_path,
        source_commit=source_commit,
    )
    message = clean.text(message, field="message", max_length=5000)
    digest = content_hash(
        template=content.template,
        messages=content.messages,
        model_id=pinned.model_id,
        params=content.params,
        tools=content.tools,
    )
    same = (
        PromptVersion.objects.filter(prompt=prompt, content_hash=digest).order_by("-number").first()
    )
    if same is not None:
        return same, False
    version, author_ids = _new_draft(
        actor,
        prompt,
        content,
        pinned=pinned,
        digest=digest,
        author_email=author_email,
        message=message,
        source=source,
        source_path=(source_path or "").strip(),
        source_commit=(source_commit or "").strip(),
    )
    superseded = _submit(actor, version, author_ids) if submit else []
    audit_record(
        actor=actor,
        action="prompt.version_proposed",
        target=version,
        details={
            "prompt": prompt.name,
            "number": version.number,
            "content_hash": digest,
            "model": pinned.model_id,
            "source": source,
            "commit": version.source_commit,
            "status": version.status,
            "superseded": superseded,
        },
    )
    return version, True


def latest_number(prompt: Prompt) -> int | None:
    return PromptVersion.objects.filter(prompt=prompt).aggregate(n=Max("number"))["n"]


def identical_note(version: PromptVersion, latest: int | None) -> str:
    """Why nothing was proposed: the content is that of an existing version."""
    note = f"Identical to v{version.number} ({version.status}); no new version."
    if latest is not None and latest != version.number:
        note += f" The latest version is v{latest}."
    return note


# -- submit and withdraw ----------------------------------------------------------------------


@transaction.atomic
def version_submit(*, actor: Actor, version: PromptVersion) -> PromptVersion:
    version = _open_version(actor, version, "submit")
    superseded = _submit(actor, version, set(version.authors.values_list("pk", flat=True)))
    audit_record(
        actor=actor,
        action="prompt.version_submitted",
        target=version,
        details={"superseded": superseded},
    )
    return version


@transaction.atomic
def version_withdraw(*, actor: Actor, version: PromptVersion) -> PromptVersion:
    version = _open_version(actor, version, "withdraw")
    before = version.status
    _set_status(version, Status.WITHDRAWN)
    audit_record(
        actor=actor,
        action="prompt.version_withdrawn",
        target=version,
        details={"from": before},
    )
    return version
