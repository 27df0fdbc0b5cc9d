"""Labels and deployments: point a label at a version (protected labels take only approved
versions on a model the catalog allows, never from a machine key), protect a label, and
the daily warnings about models at risk behind labels."""

from __future__ import annotations

from django.db import transaction

from llmops.audit.services import audit_record
from llmops.catalog.selectors import check_model_version
from llmops.common import clean
from llmops.common.errors import InvalidInput, NotFound, PolicyViolation
from llmops.notify.services import notify
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import require

from .. import cache as resolve_cache
from ..content import NAME_RE
from ..models import PROTECTED_ALWAYS, Deployment, Label, Prompt, PromptVersion
from ..selectors import model_risk
from ._common import (
    OWNER_PERMS,
    Status,
    _announce_break_glass,
    _break_glass,
    _grant_holders,
    _link_prompt,
    _lock_version,
    _open_prompt,
)

LABEL_NAME_MAX = 60
# A version in one of these states is never deployed, to any label.
NEVER_DEPLOYED = (Status.REJECTED, Status.WITHDRAWN)


def _label_name(name) -> str:
    if not isinstance(name, str) or not name or len(name) > LABEL_NAME_MAX:
        raise InvalidInput("A label name is 1-60 characters.", field="label")
    if not NAME_RE.match(name):
        raise InvalidInput("A label name is lowercase letters, digits, '-' and '_'.", field="label")
    return name


def _deploy_rules(
    actor: Actor, name: str, version: PromptVersion, *, protected: bool, glass: str
) -> str:
    """Refuse a move the label's rules forbid (PolicyViolation); returns the break-glass
    reason used to pass the model rule ("" when none was needed)."""
    if not protected:
        if version.status in NEVER_DEPLOYED:
            raise PolicyViolation(
                f"v{version.number} is {version.status}; a rejected or withdrawn version is "
                "never deployed.",
                code="version_not_deployable",
            )
        return ""
    if actor.is_machine:
        raise PolicyViolation(
            f"Protected label: '{name}' is protected, and machine keys may move only "
            "unprotected labels (a person deploys to it).",
            code="protected_label_machine",
        )
    if version.status != Status.APPROVED:
        raise PolicyViolation(
            f"Protected label: '{name}' accepts only approved versions; v{version.number} "
            f"is {version.status}.",
            code="protected_label_unapproved",
        )
    check = check_model_version(version.model, version.model.model_id)
    if check.allowed:
        return ""
    if not glass:
        raise PolicyViolation(
            f"Protected label: '{name}' accepts only versions whose model is approved "
            f"or deprecated in the catalog. {check.reason} An admin may proceed with a "
            "written break-glass reason.",
            code="protected_label_model",
        )
    return glass


def _move_label(
    actor: Actor,
    prompt: Prompt,
    row: Label | None,
    *,
    name: str,
    protected: bool,
    version: PromptVersion,
    reason: str,
    used_glass: str,
) -> Deployment:
    """Point the label (created when missing) at the version; the Deployment row records
    the move (a rollback when it goes to an earlier version)."""
    if row is None:
        row = Label.objects.create(
            organization=actor.org, prompt=prompt, name=name, protected=protected
        )
    previous = row.version
    row.version = version
    row.warnings_sent = []
    row.save(update_fields=["version", "warnings_sent", "updated_at"])
    return Deployment.objects.create(
        organization=actor.org,
        prompt=prompt,
        label=row,
        from_version=previous,
        to_version=version,
        actor=actor.user if actor.is_human else None,
        actor_label=actor.label[:200],
        reason=reason,
        break_glass_reason=used_glass,
        is_rollback=previous is not None and version.number < previous.number,
    )


def _close_deploy(actor: Actor, deployment: Deployment, *, protected: bool) -> None:
    """After the move: the resolve cache bumped on commit, the admins told of a
    break-glass, the move audited (last)."""
    prompt, version, previous = deployment.prompt, deployment.to_version, deployment.from_version
    name, used_glass = deployment.label.name, deployment.break_glass_reason
    org_id, prompt_name = actor.org.pk, prompt.name
    transaction.on_commit(lambda: resolve_cache.bump(org_id, prompt_name))
    if used_glass:
        what = (
            f"{'rolled back' if deployment.is_rollback else 'deployed'} {prompt.name} '{name}' "
            f"to v{version.number}"
        )
        _announce_break_glass(actor, what=what, reason=used_glass, link=_link_prompt(prompt))
    audit_record(
        actor=actor,
        action="prompt.rolled_back" if deployment.is_rollback else "prompt.deployed",
        target=prompt,
        details={
            "label": name,
            "from": previous.number if previous else None,
            "to": version.number,
            "reason": deployment.reason,
            "protected": protected,
            "break_glass_reason": used_glass,
        },
    )


@transaction.atomic
def label_deploy(
    *,
    actor: Actor,
    prompt: Prompt,
    label: str,
    version: PromptVersion,
    reason: str = "",
    break_glass_reason: str = "",
) -> Deployment | None:
    """Point a label at a version (creating the label when missing). Protected labels take
    only approved versions whose pinned model the catalog allows, and never a machine key.
    Returns None when the label already points there (nothing changes)."""
    prompt = _open_prompt(actor, prompt, "prompt.deploy")
    name = _label_name(label)
    reason = clean.text(reason, field="reason", max_length=5000)
    glass = _break_glass(actor, break_glass_reason, through="prompt.deploy", obj=prompt)
    version = _lock_version(actor, version)
    if version.prompt_id != prompt.pk:
        raise NotFound("No such version of this prompt.")
    row = Label.objects.filter(prompt=prompt, name=name).select_for_update().first()
    if row is not None and row.version_id == version.pk:
        return None
    protected = (row.is_protected if row else False) or name in PROTECTED_ALWAYS
    used_glass = _deploy_rules(actor, name, version, protected=protected, glass=glass)
    deployment = _move_label(
        actor,
        prompt,
        row,
        name=name,
        protected=protected,
        version=version,
        reason=reason,
        used_glass=used_glass,
    )
    _close_deploy(actor, deployment, protected=protected)
    return deployment


@transaction.atomic
def label_set_protected(*, actor: Actor, label: Label, protected: bool) -> Label:
    label = (
        Label.objects.for_org(actor.org)
        .select_for_update()
        .select_related("prompt")
        .get(pk=label.pk)
    )
    require(actor, "prompt.manage", label.prompt)
    if label.always_protected and not protected:
        raise PolicyViolation(f"'{label.name}' is always protected.", code="protected_label")
    if label.protected == bool(protected):
        return label
    label.protected = bool(protected)
    label.save(update_fields=["protected", "updated_at"])
    audit_record(
        actor=actor,
        action="prompt.label_protection_changed",
        target=label.prompt,
        details={"label": label.name, "protected": label.protected},
    )
    return label


# -- model lifecycle warnings (daily) ----------------------------------------------------------


def _warning_key(model, reason_code: str) -> str:
    return f"{model.model_id}:{reason_code}"


def _warn_owners(label: Label, risk: dict) -> None:
    prompt, version = label.prompt, label.version
    notify(
        org=prompt.organization,
        recipients=_grant_holders(prompt, OWNER_PERMS),
        kind="prompts.model_warning",
        subject=f"{prompt.name} '{label.name}': {risk['message']}",
        body=(
            f"The version behind label '{label.name}' of {prompt.name} "
            f"(v{version.number}) pins {version.model.model_id}: "
            f"{risk['message']} Propose a version on another model."
        ),
        link=_link_prompt(prompt),
        payload={"prompt": prompt.name, "label": label.name, "risk": risk["code"]},
    )


@transaction.atomic
def labels_warn_model_risks(*, org, today=None) -> int:
    """Tell a prompt's owners when a version behind one of its labels pins a model that is
    deprecated, retiring within 30 or 7 days, suspended or retired. Each warning once per
    label and reason; returns the number of warnings sent."""
    sent = 0
    labels = (
        Label.objects.for_org(org)
        .filter(version__isnull=False)
        .select_related("prompt", "prompt__organization", "version", "version__model")
        .select_for_update(of=("self",))
    )
    for label in labels:
        risk = model_risk(label.version.model, today=today)
        if risk is None:
            continue
        key = _warning_key(label.version.model, risk["code"])
        if key in (label.warnings_sent or []):
            continue
        _warn_owners(label, risk)
        label.warnings_sent = [*(label.warnings_sent or []), key]
        label.save(update_fields=["warnings_sent"])
        sent += 1
    if sent:
        audit_record(
            actor=Actor.system_for(org),
            action="prompt.model_warnings_sent",
            target=("prompts.label", "-", "labels"),
            details={"warnings": sent},
        )
    return sent
