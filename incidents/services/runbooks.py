"""Runbooks: versioned, immutable once written; incidents attach the version that matched."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput, TooLarge
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import require

from ..models import Runbook, RunbookVersion
from ._common import (
    MAX_POSTMORTEM,
    MAX_STEP_TEXT,
    MAX_STEPS,
    MAX_TITLE,
    _same_org,
    _text,
    clean_category,
    clean_severity,
)


def _clean_steps(steps: Any) -> list[dict]:
    if isinstance(steps, str):
        steps = [line for line in steps.splitlines() if line.strip()]
    if not isinstance(steps, list | tuple):
        raise InvalidInput("steps must be a list.", field="steps")
    if len(steps) > MAX_STEPS:
        raise TooLarge(f"A runbook has at most {MAX_STEPS} steps.", details={"field": "steps"})
    cleaned = []
    for index, step in enumerate(steps):
        if isinstance(step, str):
            # "Text | role | action" in the editor's textarea.
            parts = [p.strip() for p in step.split("|")]
            step = {
                "text": parts[0],
                "role": parts[1] if len(parts) > 1 else "",
                "action": parts[2] if len(parts) > 2 else "",
            }
        if not isinstance(step, dict):
            raise InvalidInput(f"steps[{index}] must be text or an object.", field="steps")
        text = _text(step.get("text"), field=f"steps[{index}].text", limit=MAX_STEP_TEXT)
        if not text:
            raise InvalidInput(f"steps[{index}] needs text.", field="steps")
        role = _text(step.get("role"), field=f"steps[{index}].role", limit=50)
        action = _text(step.get("action"), field=f"steps[{index}].action", limit=50)
        cleaned.append({"text": text, "role": role, "action": action})
    return cleaned


def _clean_conditions(category: str, min_severity: str, model_id: str, prompt_name: str) -> dict:
    if category:
        clean_category(category)
    if min_severity:
        clean_severity(min_severity, allow_pending=False)
    return {
        "category": category or "",
        "min_severity": min_severity or "",
        "model_id": _text(model_id, field="model_id", limit=200),
        "prompt_name": _text(prompt_name, field="prompt_name", limit=200),
    }


def _new_version(actor: Actor, runbook: Runbook, number: int, **fields) -> RunbookVersion:
    return RunbookVersion.objects.create(
        organization_id=runbook.organization_id,
        runbook=runbook,
        number=number,
        created_by=actor.user if actor.is_human else None,
        created_by_label=actor.label[:200],
        **fields,
    )


def _version_fields(
    *, title, body, steps, category, min_severity, model_id, prompt_name, change_note=""
) -> dict:
    return {
        "title": _text(title, field="title", limit=MAX_TITLE, required=True),
        "body": _text(body, field="body", limit=MAX_POSTMORTEM),
        "steps": _clean_steps(steps),
        "change_note": _text(change_note, field="change_note", limit=500),
        **_clean_conditions(category, min_severity, model_id, prompt_name),
    }


def _free_slug(org, wanted: str) -> str:
    slug = slugify(wanted)[:80] or "runbook"
    base, n = slug, 2
    while Runbook.objects.for_org(org).filter(slug=slug).exists():
        slug = f"{base[:74]}-{n}"
        n += 1
    return slug


def _reviewed_now(actor: Actor, runbook: Runbook) -> None:
    runbook.reviewed_at = timezone.now()
    runbook.reviewed_by_label = actor.label[:200]
    runbook.save(update_fields=["reviewed_at", "reviewed_by_label"])


def _runbook_write(actor: Actor, runbook: Runbook | None, *, slug: str = "", **given) -> tuple:
    """The one implementation behind `runbook_create` (`runbook` None: a new runbook, version
    1) and `runbook_version_create` (the next version). Writing a version is a review of the
    runbook. Returns (runbook, version)."""
    if runbook is None:
        require(actor, "runbook.manage")
    else:
        _same_org(actor, runbook)
        require(actor, "runbook.manage", runbook)
        runbook = Runbook.objects.select_for_update().get(pk=runbook.pk)
    steps = given.pop("steps", ())
    fields = _version_fields(steps=list(steps) if isinstance(steps, tuple) else steps, **given)
    if runbook is None:
        runbook = Runbook.objects.create(
            organization=actor.org,
            slug=_free_slug(actor.org, slug or fields["title"]),
            reviewed_at=timezone.now(),
            reviewed_by_label=actor.label[:200],
        )
        return runbook, _new_version(actor, runbook, 1, **fields)
    latest = runbook.versions.order_by("-number").first()
    version = _new_version(actor, runbook, (latest.number if latest else 0) + 1, **fields)
    _reviewed_now(actor, runbook)
    return runbook, version


@transaction.atomic
def runbook_create(
    *,
    actor: Actor,
    title: str,
    body: str = "",
    steps: Any = (),
    category: str = "",
    min_severity: str = "",
    model_id: str = "",
    prompt_name: str = "",
    slug: str = "",
) -> RunbookVersion:
    runbook, version = _runbook_write(
        actor,
        None,
        slug=slug,
        title=title,
        body=body,
        steps=steps,
        category=category,
        min_severity=min_severity,
        model_id=model_id,
        prompt_name=prompt_name,
    )
    audit_record(
        actor=actor,
        action="runbook.create",
        target=runbook,
        details={"title": version.title, "conditions": version.conditions_label},
    )
    return version


@transaction.atomic
def runbook_version_create(
    *,
    actor: Actor,
    runbook: Runbook,
    title: str,
    body: str = "",
    steps: Any = (),
    category: str = "",
    min_severity: str = "",
    model_id: str = "",
    prompt_name: str = "",
    change_note: str = "",
) -> RunbookVersion:
    """An edit: a new immutable version. Incidents keep the version they attached."""
    runbook, version = _runbook_write(
        actor,
        runbook,
        title=title,
        body=body,
        steps=steps,
        category=category,
        min_severity=min_severity,
        model_id=model_id,
        prompt_name=prompt_name,
        change_note=change_note,
    )
    audit_record(
        actor=actor,
        action="runbook.version",
        target=runbook,
        details={"version": version.number, "change_note": version.change_note},
    )
    return version


@transaction.atomic
def runbook_mark_reviewed(*, actor: Actor, runbook: Runbook) -> Runbook:
    _same_org(actor, runbook)
    require(actor, "runbook.manage", runbook)
    _reviewed_now(actor, runbook)
    audit_record(actor=actor, action="runbook.reviewed", target=runbook)
    return runbook


@transaction.atomic
def runbook_set_archived(*, actor: Actor, runbook: Runbook, archived: bool) -> Runbook:
    _same_org(actor, runbook)
    require(actor, "runbook.manage", runbook)
    runbook.archived = archived
    runbook.save(update_fields=["archived"])
    audit_record(
        actor=actor, action="runbook.archive" if archived else "runbook.unarchive", target=runbook
    )
    return runbook
