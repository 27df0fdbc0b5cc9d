"""Every write of the prompt registry: prompts and owners, proposing versions, review
decisions (through the gates in gates.py), eval evidence, label moves and git sync.
One transaction per use case: permission via `can`, rules, rows, notifications, audit last."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.catalog.selectors import check_model_version, model_by_model_id
from llmops.common.errors import (
    InvalidInput,
    InvalidTransition,
    NotFound,
    NotPermitted,
    PolicyViolation,
)
from llmops.evals.models import EvalPolicy, EvalRun
from llmops.evals.services import policy_default, policy_evaluate, promptfoo_parse, run_create
from llmops.notify.services import notify, notify_admins
from llmops.tenancy import guardian
from llmops.tenancy.actor import Actor
from llmops.tenancy.models import Membership, Team
from llmops.tenancy.policy import can, role_allows
from llmops.tenancy.selectors import admins_of

from . import cache as resolve_cache
from .content import clean_content, content_hash, parse_prompt_file, validate_name
from .gates import GateContext, run_gates
from .models import (
    PROTECTED_ALWAYS,
    Approval,
    Deployment,
    Label,
    Prompt,
    PromptVersion,
    PromptVersionEvalRun,
)

User = get_user_model()
Status = PromptVersion.Status
OWNER_PERMS = ("approve_prompt", "deploy_prompt")
LABEL_NAME_MAX = 60
MAX_SYNC_FILES = 500


def _require(actor: Actor, action: str, obj=None) -> None:
    if not can(actor, action, obj):
        raise NotPermitted(f"You may not do '{action}' on this prompt.")


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


def _may_break_glass(actor: Actor, through: str, obj) -> bool:
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
    if not _may_break_glass(actor, through, obj):
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


# -- prompts and owners ---------------------------------------------------------------------


def _tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [t for t in (s.strip() for s in tags.split(",")) if t]
    if not isinstance(tags, list) or not all(isinstance(t, str) and len(t) <= 50 for t in tags):
        raise InvalidInput("tags must be a list of short strings.", field="tags")
    return sorted({t.strip().lower() for t in tags if t.strip()})


def _required_approvals(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise InvalidInput("required_approvals must be a whole number.", field="required_approvals")
    if isinstance(value, bool) or n < 1 or n > 10:
        raise InvalidInput(
            "required_approvals must be between 1 and 10.", field="required_approvals"
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
    _require(actor, "prompt.create")
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
    _require(actor, "prompt.manage", prompt)
    prompt = Prompt.objects.for_org(actor.org).select_for_update().get(pk=prompt.pk)
    before = {
        "description": prompt.description,
        "tags": prompt.tags,
        "required_approvals": prompt.required_approvals,
        "eval_policy": prompt.eval_policy_id,
    }
    if description is not None:
        prompt.description = str(description).strip()[:5000]
    if tags is not None:
        prompt.tags = _tags(tags)
    if required_approvals is not None:
        prompt.required_approvals = _required_approvals(required_approvals)
    if eval_policy != "unchanged":
        prompt.eval_policy = _eval_policy(actor, eval_policy)
    prompt.save()
    after = {
        "description": prompt.description,
        "tags": prompt.tags,
        "required_approvals": prompt.required_approvals,
        "eval_policy": prompt.eval_policy_id,
    }
    audit_record(
        actor=actor,
        action="prompt.updated",
        target=prompt,
        details={"before": before, "after": after},
    )
    return prompt


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


@transaction.atomic
def prompt_owner_grant(
    *, actor: Actor, prompt: Prompt, username: str = "", team_id: Any = None, perms: Any = None
) -> None:
    _require(actor, "prompt.manage", prompt)
    target, label = _owner_target(actor, username=username, team_id=team_id)
    perms = _perms(perms)
    for perm in perms:
        guardian.grant(perm, target, prompt)
    audit_record(
        actor=actor,
        action="prompt.owner_granted",
        target=prompt,
        details={"to": label, "perms": list(perms)},
    )


@transaction.atomic
def prompt_owner_revoke(
    *, actor: Actor, prompt: Prompt, username: str = "", team_id: Any = None, perms: Any = None
) -> None:
    _require(actor, "prompt.manage", prompt)
    target, label = _owner_target(actor, username=username, team_id=team_id)
    perms = _perms(perms)
    for perm in perms:
        guardian.revoke(perm, target, prompt)
    audit_record(
        actor=actor,
        action="prompt.owner_revoked",
        target=prompt,
        details={"from": label, "perms": list(perms)},
    )


# -- versions -------------------------------------------------------------------------------


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


def _reviewers(version: PromptVersion, author_ids: set[int]) -> list:
    prompt = version.prompt
    owners = {u.pk for u in guardian.users_with_grant(prompt, "approve_prompt")}
    owners = owners - author_ids
    if not owners:  # nobody else owns it: the admins hold every grant implicitly
        owners = set(admins_of(org=prompt.organization).values_list("pk", flat=True)) - author_ids
    return sorted(owners)


def _submit(actor: Actor, version: PromptVersion, author_ids: set[int]) -> list[int]:
    """draft -> in_review; older versions still in review are superseded."""
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
    reviewers = _reviewers(version, author_ids)
    notify(
        org=actor.org,
        recipients=reviewers,
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
    _require(actor, "prompt.propose", prompt)
    prompt = Prompt.objects.for_org(actor.org).select_for_update().get(pk=prompt.pk)
    content = clean_content(
        template=template, messages=messages, params=params, tools=tools, variables=variables
    )
    if not isinstance(model, str) or not model.strip():
        raise InvalidInput("model is required: a model id from the catalog.", field="model")
    pinned = model_by_model_id(org=actor.org, model_id=model.strip())
    if pinned is None:
        raise InvalidInput(f"Model '{model}' is not in the catalog.", field="model")
    if source not in PromptVersion.Source.values:
        raise InvalidInput("source must be ui, api or git.", field="source")
    if not isinstance(message, str) or len(message) > 5000:
        raise InvalidInput("message must be text of at most 5000 characters.", field="message")
    if len(source_path or "") > 500 or len(source_commit or "") > 64:
        raise InvalidInput("path or commit too long.", field="commit")
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
    author_ids, emails = _authors_for(actor, author_email)
    number = (PromptVersion.objects.filter(prompt=prompt).aggregate(n=Max("number"))["n"] or 0) + 1
    version = PromptVersion.objects.create(
        organization=actor.org,
        prompt=prompt,
        number=number,
        template=content.template or "",
        messages=content.messages,
        variables=content.variables,
        model=pinned,
        params=content.params,
        tools=content.tools,
        message=message.strip(),
        source=source,
        source_path=(source_path or "").strip(),
        source_commit=(source_commit or "").strip(),
        author_emails=emails,
        created_by_label=actor.label[:200],
        content_hash=digest,
        status=Status.DRAFT,
    )
    if author_ids:
        version.authors.set(author_ids)
    superseded: list[int] = []
    if submit:
        superseded = _submit(actor, version, author_ids)
    audit_record(
        actor=actor,
        action="prompt.version_proposed",
        target=version,
        details={
            "prompt": prompt.name,
            "number": number,
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


def _is_author(actor: Actor, version: PromptVersion) -> bool:
    return actor.user_id is not None and version.authors.filter(pk=actor.user_id).exists()


@transaction.atomic
def version_submit(*, actor: Actor, version: PromptVersion) -> PromptVersion:
    _require(actor, "prompt.propose", version.prompt)
    version = _lock_version(actor, version)
    if version.status != Status.DRAFT:
        raise InvalidTransition(f"Only a draft can be submitted; this version is {version.status}.")
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
    version = _lock_version(actor, version)
    if not (
        can(actor, "prompt.manage", version.prompt)
        or (can(actor, "prompt.propose", version.prompt) and _is_author(actor, version))
    ):
        raise NotPermitted("Only an author or an owner may withdraw a version.")
    if version.status not in (Status.DRAFT, Status.IN_REVIEW):
        raise InvalidTransition(
            f"Only a draft or a version in review can be withdrawn; this one is {version.status}."
        )
    before = version.status
    _set_status(version, Status.WITHDRAWN)
    audit_record(
        actor=actor,
        action="prompt.version_withdrawn",
        target=version,
        details={"from": before},
    )
    return version


# -- reviews --------------------------------------------------------------------------------


def _open_approvals(version: PromptVersion):
    return Approval.objects.filter(
        version=version, decision=Approval.Decision.APPROVE, retracted_at__isnull=True
    )


@transaction.atomic
def version_review(
    *,
    actor: Actor,
    version: PromptVersion,
    decision: str,
    comment: str = "",
    break_glass_reason: str = "",
) -> Approval:
    """Record a decision (approve / request_changes / reject). An approve passes every gate
    of gates.APPROVAL_GATES, or an admin overrides the overridable ones with break-glass.
    The version is approved once `required_approvals` distinct non-authors approved."""
    if decision not in Approval.Decision.values:
        raise InvalidInput("decision must be approve, request_changes or reject.", field="decision")
    _require(actor, "prompt.approve", version.prompt)
    if not actor.is_human:
        raise NotPermitted("Only a person may review a prompt version.")
    version = _lock_version(actor, version)
    if version.status != Status.IN_REVIEW:
        raise InvalidTransition(
            f"Only a version in review can be reviewed; v{version.number} is {version.status}."
        )
    comment = (comment or "").strip()
    if len(comment) > 10_000:
        raise InvalidInput("comment is at most 10,000 characters.", field="comment")
    if decision != Approval.Decision.APPROVE and not comment:
        raise InvalidInput("Say what should change: a comment is required.", field="comment")
    glass = _break_glass(actor, break_glass_reason, through="prompt.approve", obj=version.prompt)
    author_ids = set(version.authors.values_list("pk", flat=True))
    used_glass = ""
    overridden: list[str] = []
    if decision == Approval.Decision.APPROVE:
        blocks = run_gates(GateContext(actor=actor, version=version, author_ids=author_ids))
        hard = [b for b in blocks if not b.overridable]
        soft = [b for b in blocks if b.overridable]
        if hard:
            raise PolicyViolation(hard[0].message, code=hard[0].rule)
        if soft and not glass:
            hint = " An admin may proceed with a written break-glass reason."
            raise PolicyViolation(
                soft[0].message + hint,
                code=soft[0].rule,
                details={"rules": [b.rule for b in soft]},
            )
        if soft:
            used_glass = glass
            overridden = [b.rule for b in soft]
    elif actor.user_id in author_ids:
        raise PolicyViolation(
            "Four eyes: an author does not review their own version; withdraw it instead.",
            code="four_eyes",
        )
    # A new decision replaces the decider's previous open one.
    now = timezone.now()
    Approval.objects.filter(
        version=version, user_id=actor.user_id, retracted_at__isnull=True
    ).update(retracted_at=now)
    approval = Approval.objects.create(
        organization=actor.org,
        version=version,
        user=actor.user,
        decision=decision,
        comment=comment,
        break_glass_reason=used_glass,
    )
    before = version.status
    if decision == Approval.Decision.REJECT:
        _set_status(version, Status.REJECTED)
    elif decision == Approval.Decision.APPROVE:
        approvers = set(
            _open_approvals(version)
            .exclude(user_id__in=author_ids)
            .values_list("user_id", flat=True)
        )
        if used_glass or len(approvers) >= version.prompt.required_approvals:
            if used_glass:
                version.break_glass_reason = used_glass
                version.save(update_fields=["break_glass_reason"])
            _set_status(version, Status.APPROVED)
    link = _link_version(version)
    label = f"{version.prompt.name} v{version.number}"
    notify(
        org=actor.org,
        recipients=author_ids - {actor.user_id},
        kind=f"prompts.{decision}",
        subject=f"{label}: {Approval.Decision(decision).label.lower()} by {actor.label}"
        + (f" — now {version.status}" if version.status != before else ""),
        body=comment or f"{actor.label} approved {label}.",
        link=link,
        payload={
            "prompt": version.prompt.name,
            "version": version.number,
            "status": version.status,
        },
    )
    if used_glass:
        _announce_break_glass(
            actor,
            what=f"approved {label} past {', '.join(overridden)}",
            reason=used_glass,
            link=link,
        )
    audit_record(
        actor=actor,
        action="prompt.version_reviewed",
        target=version,
        details={
            "decision": decision,
            "comment": comment[:500],
            "status_before": before,
            "status": version.status,
            "break_glass_reason": used_glass,
            "overridden": overridden,
        },
    )
    return approval


@transaction.atomic
def approval_retract(*, actor: Actor, approval: Approval) -> Approval:
    """The decider takes back a decision. A retracted reject returns the version to review
    (when no other reject stands); approvals of an approved version stay."""
    approval = (
        Approval.objects.for_org(actor.org)
        .select_for_update()
        .select_related("version", "version__prompt")
        .filter(pk=approval.pk)
        .first()
    )
    if approval is None:
        raise NotFound("No such decision.")
    if actor.user_id is None or approval.user_id != actor.user_id:
        raise NotPermitted("Only the person who decided may retract a decision.")
    if approval.retracted_at is not None:
        raise InvalidTransition("This decision was already retracted.")
    version = _lock_version(actor, approval.version)
    if approval.decision == Approval.Decision.APPROVE and version.status != Status.IN_REVIEW:
        raise InvalidTransition(
            f"v{version.number} is {version.status}; an approval can be retracted only while "
            "the version is in review."
        )
    approval.retracted_at = timezone.now()
    approval.save(update_fields=["retracted_at"])
    before = version.status
    if (
        approval.decision == Approval.Decision.REJECT
        and version.status == Status.REJECTED
        and not Approval.objects.filter(
            version=version, decision=Approval.Decision.REJECT, retracted_at__isnull=True
        ).exists()
    ):
        newer = PromptVersion.objects.filter(
            prompt=version.prompt, number__gt=version.number, status=Status.IN_REVIEW
        ).exists()
        _set_status(version, Status.SUPERSEDED if newer else Status.IN_REVIEW)
    audit_record(
        actor=actor,
        action="prompt.review_retracted",
        target=version,
        details={"decision": approval.decision, "status_before": before, "status": version.status},
    )
    return approval


# -- eval evidence --------------------------------------------------------------------------


def _policy_for(prompt: Prompt) -> EvalPolicy:
    return prompt.eval_policy or policy_default(org=prompt.organization)


def run_judged_version(run: EvalRun, version: PromptVersion) -> bool:
    """Whether the run recorded judging exactly this version: its content hash and its
    pinned model. A run recorded before these facts were kept has neither."""
    return bool(run.subject_content_hash) and (
        run.subject_content_hash == version.content_hash and run.model_id == version.model.model_id
    )


def _check_run_subject(run: EvalRun, version: PromptVersion) -> None:
    label = f"{version.prompt.name} v{version.number}"
    if not run.subject_content_hash:
        raise InvalidInput(
            f"Run {run.pk} was not recorded for a prompt version, so it is not evidence for "
            f"{label}; upload a run of this version instead.",
            field="run",
        )
    if run.subject_content_hash != version.content_hash:
        raise InvalidInput(
            f"Run {run.pk} judged other prompt content (content hash "
            f"{run.subject_content_hash[:12]}), not {label} ({version.content_hash[:12]}).",
            field="run",
        )
    if run.model_id != version.model.model_id:
        raise InvalidInput(
            f"Run {run.pk} judged model '{run.model_id}', but {label} pins "
            f"'{version.model.model_id}'.",
            field="run",
        )


def _link_run(actor: Actor, version: PromptVersion, run: EvalRun) -> PromptVersionEvalRun:
    _check_run_subject(run, version)
    policy = _policy_for(version.prompt)
    verdict = policy_evaluate(policy=policy, run=run)
    link, created = PromptVersionEvalRun.objects.get_or_create(
        version=version,
        eval_run=run,
        defaults={
            "organization": actor.org,
            "policy": policy,
            "passed": verdict.passed,
            "verdict": verdict.as_dict(),
            "attached_by_label": actor.label[:200],
        },
    )
    if not created:
        raise InvalidInput(f"Run {run.pk} is already linked to this version.", field="run")
    return link


@transaction.atomic
def version_record_eval_run(
    *, actor: Actor, version: PromptVersion, data: Any, promptfoo: bool = False
) -> tuple[EvalRun, PromptVersionEvalRun]:
    """Record an eval run of exactly this version (JSON body or promptfoo's results file)
    through the evals service and link it, judged under the prompt's policy, in one
    transaction."""
    _require(actor, "eval.write")
    version = _lock_version(actor, version)
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object.", field="body")
    pinned = version.model.model_id
    if promptfoo:
        kwargs = promptfoo_parse(data, model=pinned)
        kwargs["model_id"] = kwargs.get("model_id") or pinned
    else:
        allowed = {"tool", "metrics", "results", "dataset", "model", "commit", "ci_url"}
        unknown = set(data) - allowed
        if unknown:
            raise InvalidInput(
                f"Unknown field(s): {', '.join(sorted(unknown))}.", field=sorted(unknown)[0]
            )
        if "tool" not in data:
            raise InvalidInput("tool is required.", field="tool")
        reported = data.get("model")
        if reported not in (None, "") and reported != pinned:
            raise InvalidInput(
                f"model: v{version.number} pins '{pinned}'; a run of another model is not "
                "evidence for this version.",
                field="model",
            )
        kwargs = {
            "tool": data.get("tool"),
            "metrics": data.get("metrics"),
            "results": data.get("results"),
            "dataset": data.get("dataset"),
            "model_id": pinned,
            "commit": data.get("commit") or version.source_commit or "",
            "ci_url": data.get("ci_url") or "",
        }
    run = run_create(actor=actor, subject_content_hash=version.content_hash, **kwargs)
    link = _link_run(actor, version, run)
    audit_record(
        actor=actor,
        action="prompt.eval_run_linked",
        target=version,
        details={"run": run.pk, "passed": link.passed, "policy": link.verdict.get("policy", {})},
    )
    return run, link


@transaction.atomic
def version_attach_eval_run(
    *, actor: Actor, version: PromptVersion, run_id: Any
) -> PromptVersionEvalRun:
    """Link an eval run already recorded in this organization to a version: only a run
    recorded for exactly this content on this model (see `run_judged_version`)."""
    _require(actor, "eval.write")
    version = _lock_version(actor, version)
    try:
        run = EvalRun.objects.for_org(actor.org).get(pk=int(run_id))
    except (EvalRun.DoesNotExist, TypeError, ValueError):
        raise InvalidInput("No such eval run in this organization.", field="run")
    link = _link_run(actor, version, run)
    audit_record(
        actor=actor,
        action="prompt.eval_run_linked",
        target=version,
        details={"run": run.pk, "passed": link.passed, "policy": link.verdict.get("policy", {})},
    )
    return link


# -- labels and deployments -----------------------------------------------------------------


def _label_name(name: Any) -> str:
    if not isinstance(name, str) or not name or len(name) > LABEL_NAME_MAX:
        raise InvalidInput("A label name is 1-60 characters.", field="label")
    from .content import NAME_RE

    if not NAME_RE.match(name):
        raise InvalidInput("A label name is lowercase letters, digits, '-' and '_'.", field="label")
    return name


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
    _require(actor, "prompt.deploy", prompt)
    name = _label_name(label)
    reason = (reason or "").strip()
    if len(reason) > 5000:
        raise InvalidInput("reason is at most 5000 characters.", field="reason")
    glass = _break_glass(actor, break_glass_reason, through="prompt.deploy", obj=prompt)
    prompt = Prompt.objects.for_org(actor.org).select_for_update().get(pk=prompt.pk)
    version = _lock_version(actor, version)
    if version.prompt_id != prompt.pk:
        raise NotFound("No such version of this prompt.")
    row = Label.objects.filter(prompt=prompt, name=name).select_for_update().first()
    protected = (row.is_protected if row else False) or name in PROTECTED_ALWAYS
    if row is not None and row.version_id == version.pk:
        return None
    used_glass = ""
    if protected:
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
        if not check.allowed:
            if not glass:
                raise PolicyViolation(
                    f"Protected label: '{name}' accepts only versions whose model is approved "
                    f"or deprecated in the catalog. {check.reason} An admin may proceed with a "
                    "written break-glass reason.",
                    code="protected_label_model",
                )
            used_glass = glass
    elif version.status in (Status.REJECTED, Status.WITHDRAWN):
        raise PolicyViolation(
            f"v{version.number} is {version.status}; a rejected or withdrawn version is never "
            "deployed.",
            code="version_not_deployable",
        )
    if row is None:
        row = Label.objects.create(
            organization=actor.org, prompt=prompt, name=name, protected=protected
        )
    previous = row.version
    is_rollback = previous is not None and version.number < previous.number
    row.version = version
    row.warnings_sent = []
    row.save(update_fields=["version", "warnings_sent", "updated_at"])
    deployment = Deployment.objects.create(
        organization=actor.org,
        prompt=prompt,
        label=row,
        from_version=previous,
        to_version=version,
        actor=actor.user if actor.is_human else None,
        actor_label=actor.label[:200],
        reason=reason,
        break_glass_reason=used_glass,
        is_rollback=is_rollback,
    )
    org_id, prompt_name = actor.org.pk, prompt.name
    transaction.on_commit(lambda: resolve_cache.bump(org_id, prompt_name))
    what = (
        f"{'rolled back' if is_rollback else 'deployed'} {prompt.name} '{name}' to "
        f"v{version.number}"
    )
    if used_glass:
        _announce_break_glass(actor, what=what, reason=used_glass, link=_link_prompt(prompt))
    audit_record(
        actor=actor,
        action="prompt.rolled_back" if is_rollback else "prompt.deployed",
        target=prompt,
        details={
            "label": name,
            "from": previous.number if previous else None,
            "to": version.number,
            "reason": reason,
            "protected": protected,
            "break_glass_reason": used_glass,
        },
    )
    return deployment


@transaction.atomic
def label_set_protected(*, actor: Actor, label: Label, protected: bool) -> Label:
    label = (
        Label.objects.for_org(actor.org)
        .select_for_update()
        .select_related("prompt")
        .get(pk=label.pk)
    )
    _require(actor, "prompt.manage", label.prompt)
    if label.name in PROTECTED_ALWAYS and not protected:
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


# -- prompts as code ------------------------------------------------------------------------


@transaction.atomic
def prompts_sync(*, actor: Actor, files: Any, commit: str = "", author: str = "") -> list[dict]:
    """Prompt files from git: create missing prompts, and a new version (in review) for each
    file whose content differs from every version of its prompt; a file identical to an
    existing version proposes nothing and its result names that version (`matches`).
    Idempotent. All or nothing: an invalid file is a 400 naming its path."""
    _require(actor, "prompt.propose")
    if not isinstance(files, list) or not files:
        raise InvalidInput('files must be a non-empty list of {"path", "content"}.', field="files")
    if len(files) > MAX_SYNC_FILES:
        raise InvalidInput(f"At most {MAX_SYNC_FILES} files per sync.", field="files")
    if not isinstance(commit, str) or len(commit) > 64:
        raise InvalidInput("commit must be a SHA of at most 64 characters.", field="commit")
    parsed = []
    seen: dict[str, str] = {}
    for i, item in enumerate(files):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("path"), str)
            or not isinstance(item.get("content"), str)
        ):
            raise InvalidInput(
                f'files[{i}] must be {{"path": str, "content": str}}.', field=f"files[{i}]"
            )
        path = item["path"]
        spec = parse_prompt_file(item["content"], path=path)
        try:
            validate_name(spec["name"])
        except InvalidInput as exc:
            raise InvalidInput(f"{path}: {exc.message}", field=path)
        if spec["name"] in seen:
            raise InvalidInput(
                f"{path}: prompt '{spec['name']}' is also defined in {seen[spec['name']]}.",
                field=path,
            )
        seen[spec["name"]] = path
        parsed.append((path, spec))
    results = []
    for path, spec in parsed:
        prompt = Prompt.objects.for_org(actor.org).filter(name=spec["name"]).first()
        created_prompt = False
        if prompt is None:
            prompt = prompt_create(
                actor=actor,
                name=spec["name"],
                description=spec["description"],
                tags=spec["tags"],
            )
            created_prompt = True
        try:
            version, created = version_create(
                actor=actor,
                prompt=prompt,
                model=spec["model"],
                template=spec["template"],
                messages=spec["messages"],
                params=spec["params"],
                tools=spec["tools"],
                variables=spec["variables"],
                message=spec["message"] or (f"Sync of {path} at {commit[:12]}" if commit else ""),
                submit=True,
                source=PromptVersion.Source.GIT,
                source_path=path,
                source_commit=commit,
                author_email=author,
            )
        except InvalidInput as exc:
            raise InvalidInput(f"{path}: {exc.message}", field=path, details=exc.details)
        results.append(
            {
                "path": path,
                "name": prompt.name,
                "prompt_created": created_prompt,
                "created": created,
                "number": version.number,
                "status": version.status,
                "content_hash": version.content_hash,
                "matches": None if created else version.number,
                "latest": latest_number(prompt),
            }
        )
    audit_record(
        actor=actor,
        action="prompt.synced",
        target=("prompts.sync", commit or "-", f"sync {commit[:12]}" if commit else "sync"),
        details={
            "commit": commit,
            "author": author,
            "files": len(results),
            "new_versions": [f"{r['name']} v{r['number']}" for r in results if r["created"]],
        },
    )
    return results


# -- model lifecycle warnings (daily) ----------------------------------------------------------


def _warning_key(model, reason_code: str) -> str:
    return f"{model.model_id}:{reason_code}"


@transaction.atomic
def labels_warn_model_risks(*, org, today=None) -> int:
    """Tell a prompt's owners when a version behind one of its labels pins a model that is
    deprecated, retiring within 30 or 7 days, suspended or retired. Each warning once per
    label and reason; returns the number of warnings sent."""
    from .selectors import model_risk

    actor = Actor.system_for(org)
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
        prompt = label.prompt
        owners = {u.pk for u in guardian.users_with_grant(prompt, "approve_prompt")} | {
            u.pk for u in guardian.users_with_grant(prompt, "deploy_prompt")
        }
        if not owners:
            owners = set(admins_of(org=org).values_list("pk", flat=True))
        notify(
            org=org,
            recipients=sorted(owners),
            kind="prompts.model_warning",
            subject=f"{prompt.name} '{label.name}': {risk['message']}",
            body=(
                f"The version behind label '{label.name}' of {prompt.name} "
                f"(v{label.version.number}) pins {label.version.model.model_id}: "
                f"{risk['message']} Propose a version on another model."
            ),
            link=_link_prompt(prompt),
            payload={"prompt": prompt.name, "label": label.name, "risk": risk["code"]},
        )
        label.warnings_sent = [*(label.warnings_sent or []), key]
        label.save(update_fields=["warnings_sent"])
        sent += 1
    if sent:
        audit_record(
            actor=actor,
            action="prompt.model_warnings_sent",
            target=("prompts.label", "-", "labels"),
            details={"warnings": sent},
        )
    return sent
