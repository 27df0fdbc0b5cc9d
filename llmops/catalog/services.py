"""Writes for the model catalog: propose, decide (four eyes, eval gate, floating ids),
lifecycle transitions, evidence links, flag corrections and deprecation warnings.
Every write checks permission, validates, records a ModelDecision row where the lifecycle
moves, and audits last, in one transaction. Break-glass is marked on the model forever,
audited and notified to every admin."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date

from llmops.audit.services import audit_record
from llmops.common.errors import (
    InvalidInput,
    InvalidTransition,
    NotFound,
    NotPermitted,
    PolicyViolation,
)
from llmops.evals.models import EvalRun
from llmops.evals.services import policy_default, policy_evaluate
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import can, role_allows

from .models import DataClass, ModelDecision, ModelEvidence, ModelVersion, Provider
from .selectors import days_until, is_floating_model_id, models_with_lifecycle_dates

Status = ModelVersion.Status

# to -> the statuses it may be reached from (docs/architecture.md, "Governance rules").
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.SUSPENDED: frozenset({Status.APPROVED}),
    Status.APPROVED: frozenset({Status.SUSPENDED}),  # reinstate
    Status.DEPRECATED: frozenset({Status.APPROVED}),
    Status.RETIRED: frozenset({Status.DEPRECATED}),
}
TRANSITION_VERBS = {
    Status.SUSPENDED: "suspended",
    Status.APPROVED: "reinstated",
    Status.DEPRECATED: "deprecated",
    Status.RETIRED: "retired",
}
LIFECYCLE_RULE = (
    "model lifecycle: proposed -> approved | rejected (a decision); approved <-> suspended; "
    "approved -> deprecated -> retired"
)
WARN_DAYS = (30, 7, 0)

PROPOSE_FIELDS = {
    "provider",
    "model_id",
    "display_name",
    "platform_id",
    "context_window",
    "input_price_per_mtok",
    "output_price_per_mtok",
    "use_cases",
    "data_classes",
    "notes",
    "deprecation_date",
    "retirement_date",
    "lifecycle_source_url",
    "replacement",
}
UPDATE_FIELDS = PROPOSE_FIELDS - {"model_id", "provider"}


def _require(actor: Actor, action: str, obj=None) -> None:
    if not can(actor, action, obj):
        raise NotPermitted(f"You may not do '{action}' here.")


def _own(actor: Actor, model: ModelVersion) -> None:
    if model is None or model.organization_id != actor.org.pk:
        raise NotFound("No such model version.")


def model_link(model: ModelVersion) -> str:
    try:
        return reverse(
            "catalog:detail", kwargs={"org_slug": model.organization.slug, "pk": model.pk}
        )
    except NoReverseMatch:  # pragma: no cover - only before the URLs exist
        return ""


def _notify_admins(*, org, kind: str, subject: str, body: str, link: str) -> None:
    from llmops.notify.services import notify_admins

    notify_admins(org=org, kind=kind, subject=subject, body=body, link=link)


# ---------------------------------------------------------------- field cleaning


def _date(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    parsed = parse_date(str(value)) if isinstance(value, str) else None
    if parsed is None:
        raise InvalidInput(f"{name} must be a date like 2026-12-31.", field=name)
    return parsed


def _price(value: Any, name: str) -> Decimal | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a number (USD per million tokens).", field=name)
    try:
        price = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{name} must be a number (USD per million tokens).", field=name)
    if not price.is_finite() or price < 0 or price >= Decimal("100000000"):
        raise InvalidInput(f"{name} must be between 0 and 100,000,000.", field=name)
    return price.quantize(Decimal("0.0001"))


def _str_list(value: Any, name: str, choices=None) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{name} must be a list of strings.", field=name)
    items = list(dict.fromkeys(v.strip() for v in value if v and v.strip()))
    if choices is not None:
        bad = [v for v in items if v not in choices]
        if bad:
            raise InvalidInput(f"Unknown {name} '{bad[0]}'; use {', '.join(choices)}.", field=name)
    return [v[:100] for v in items]


def _clean(actor: Actor, fields: dict, *, allowed: set[str], model=None) -> dict:
    unknown = set(fields) - allowed
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"Unknown field '{name}'.", field=name)
    out: dict[str, Any] = {}
    if "provider" in fields:
        if fields["provider"] not in Provider.values:
            raise InvalidInput(
                f"Unknown provider '{fields['provider']}'; use one of {', '.join(Provider.values)}.",
                field="provider",
            )
        out["provider"] = fields["provider"]
    if "model_id" in fields:
        model_id = fields["model_id"]
        if not isinstance(model_id, str) or not model_id.strip():
            raise InvalidInput("A model id is required.", field="model_id")
        model_id = model_id.strip()
        if len(model_id) > 200 or any(c.isspace() for c in model_id):
            raise InvalidInput(
                "A model id is one word of at most 200 characters.", field="model_id"
            )
        out["model_id"] = model_id
    for name, limit in (("display_name", 200), ("platform_id", 300), ("notes", 20000)):
        if name in fields:
            value = fields[name] or ""
            if not isinstance(value, str) or len(value) > limit:
                raise InvalidInput(
                    f"{name} must be text of at most {limit} characters.", field=name
                )
            out[name] = value.strip()
    if "lifecycle_source_url" in fields:
        url = fields["lifecycle_source_url"] or ""
        if not isinstance(url, str) or (url and not url.startswith(("https://", "http://"))):
            raise InvalidInput(
                "The source link must be an http(s) URL.", field="lifecycle_source_url"
            )
        out["lifecycle_source_url"] = url[:500]
    if "context_window" in fields:
        value = fields["context_window"]
        if value in (None, ""):
            out["context_window"] = None
        else:
            try:
                window = int(value)
            except (TypeError, ValueError):
                window = -1
            if isinstance(value, bool) or window <= 0 or window > 100_000_000:
                raise InvalidInput(
                    "context_window must be a positive whole number of tokens.",
                    field="context_window",
                )
            out["context_window"] = window
    for name in ("input_price_per_mtok", "output_price_per_mtok"):
        if name in fields:
            out[name] = _price(fields[name], name)
    for name in ("deprecation_date", "retirement_date"):
        if name in fields:
            out[name] = _date(fields[name], name)
    dep = out.get("deprecation_date", getattr(model, "deprecation_date", None))
    ret = out.get("retirement_date", getattr(model, "retirement_date", None))
    if dep and ret and ret < dep:
        raise InvalidInput(
            "The retirement date cannot be before the deprecation date.", field="retirement_date"
        )
    if "use_cases" in fields:
        out["use_cases"] = _str_list(fields["use_cases"], "use_cases")
    if "data_classes" in fields:
        out["data_classes"] = _str_list(fields["data_classes"], "data_classes", DataClass.values)
    if "replacement" in fields:
        value = fields["replacement"]
        if value in (None, ""):
            out["replacement"] = None
        else:
            pk = value.pk if isinstance(value, ModelVersion) else value
            try:
                replacement = ModelVersion.objects.for_org(actor.org).get(pk=int(pk))
            except (ModelVersion.DoesNotExist, TypeError, ValueError):
                raise InvalidInput("Unknown replacement model.", field="replacement")
            if model is not None and replacement.pk == model.pk:
                raise InvalidInput("A model cannot replace itself.", field="replacement")
            out["replacement"] = replacement
    return out


# ---------------------------------------------------------------- propose and edit


@transaction.atomic
def model_propose(*, actor: Actor, **fields) -> ModelVersion:
    """Maintainers, admins and machine keys with models:write propose a model version."""
    _require(actor, "model.propose")
    for required in ("provider", "model_id"):
        if not fields.get(required):
            raise InvalidInput(f"{required} is required.", field=required)
    clean = _clean(actor, fields, allowed=PROPOSE_FIELDS)
    if ModelVersion.objects.for_org(actor.org).filter(model_id=clean["model_id"]).exists():
        raise InvalidInput(
            f"Model '{clean['model_id']}' is already in the catalog.", field="model_id"
        )
    authors = actor.author_user_ids()
    requested_by_id = next(iter(authors)) if authors else None
    try:
        with transaction.atomic():  # a concurrent proposal of the same id loses cleanly
            model = ModelVersion.objects.create(
                organization=actor.org,
                requested_by_id=requested_by_id,
                requested_by_label=actor.label[:200],
                status=Status.PROPOSED,
                status_changed_at=timezone.now(),
                is_floating=is_floating_model_id(clean["model_id"]),
                **clean,
            )
    except IntegrityError:
        raise InvalidInput(
            f"Model '{clean['model_id']}' is already in the catalog.", field="model_id"
        )
    ModelDecision.objects.create(
        organization=actor.org,
        model_version=model,
        kind=ModelDecision.Kind.PROPOSAL,
        to_status=Status.PROPOSED,
        actor=actor.user if actor.is_human else None,
        actor_label=actor.label[:200],
        comment=clean.get("notes", "")[:2000],
    )
    audit_record(
        actor=actor,
        action="model.proposed",
        target=model,
        details={
            "model_id": model.model_id,
            "provider": model.provider,
            "floating": model.is_floating,
        },
    )
    return model


@transaction.atomic
def model_update(*, actor: Actor, model: ModelVersion, **fields) -> ModelVersion:
    """Admins correct prices, dates, replacement, notes (not the id or the provider)."""
    _own(actor, model)
    _require(actor, "model.decide", model)
    model = ModelVersion.objects.select_for_update().get(pk=model.pk)
    clean = _clean(actor, fields, allowed=UPDATE_FIELDS, model=model)
    before = {}
    for name, value in clean.items():
        old = getattr(model, name)
        if old != value:
            before[name] = old.pk if isinstance(old, ModelVersion) else old
            setattr(model, name, value)
    if not before:
        return model
    if {"deprecation_date", "retirement_date"} & set(before):
        model.warnings_sent = []  # new dates, new warnings
    model.save()
    after = {
        name: (
            getattr(model, name).pk
            if isinstance(getattr(model, name), ModelVersion)
            else getattr(model, name)
        )
        for name in before
    }
    audit_record(
        actor=actor,
        action="model.updated",
        target=model,
        details={"before": before, "after": after},
    )
    return model


# ---------------------------------------------------------------- break-glass


def _may_break_glass(actor: Actor) -> bool:
    # The API's decision endpoint (README.md) takes `break_glass_reason`, so an admin's personal key
    # with `models:approve` (a human-only scope) may use it on a model decision: the key
    # may decide, and the person behind it holds break_glass by role.
    if can(actor, "break_glass"):
        return True
    return (
        actor.key is not None
        and not actor.is_machine
        and can(actor, "model.decide")
        and role_allows(actor.role, "break_glass")
    )


def _break_glass(actor: Actor, reason: str | None, blocked_by: list[str]) -> str:
    """Return the reason when break-glass overrides `blocked_by`; raise when it may not."""
    if not blocked_by:
        return ""
    if not reason or not str(reason).strip():
        raise PolicyViolation(
            "; ".join(blocked_by) + ". An admin may proceed with break-glass and a written reason.",
            code="policy_violation",
            details={"rules": blocked_by},
        )
    if actor.is_machine or not actor.is_human or not _may_break_glass(actor):
        raise NotPermitted("Only an admin, in person, may use break-glass.")
    reason = str(reason).strip()
    if len(reason) < 10:
        raise InvalidInput(
            "Write a reason for break-glass (at least 10 characters).", field="break_glass_reason"
        )
    return reason[:5000]


def _announce_break_glass(*, actor: Actor, model: ModelVersion, what: str, reason: str) -> None:
    _notify_admins(
        org=actor.org,
        kind="model.break_glass",
        subject=f"Break-glass on model {model.model_id}: {what}",
        body=f"{actor.label} used break-glass to {what} {model.model_id}.\n\nReason: {reason}",
        link=model_link(model),
    )


# ---------------------------------------------------------------- decisions


def _evidence_summary(model: ModelVersion) -> list[dict]:
    return [
        {"run": e.eval_run_id, "passed": e.passed}
        for e in ModelEvidence.objects.filter(model_version=model).order_by("-id")[:20]
    ]


@transaction.atomic
def model_decide(
    *,
    actor: Actor,
    model: ModelVersion,
    decision: str,
    comment: str = "",
    break_glass_reason: str | None = None,
) -> ModelVersion:
    """An admin approves or rejects a proposed model version. Never the proposer (four
    eyes) and, to approve, only with passing eval evidence — unless break-glass. Floating
    ids are approved only where the organization allows them."""
    _own(actor, model)
    if decision not in ("approve", "reject"):
        raise InvalidInput("decision must be 'approve' or 'reject'.", field="decision")
    _require(actor, "model.decide", model)
    if not actor.is_human:
        raise NotPermitted("A person decides on model versions, not a machine key.")
    model = ModelVersion.objects.select_for_update().get(pk=model.pk)
    if model.status != Status.PROPOSED:
        raise InvalidTransition(
            f"Only a proposed model version can be decided; this one is {model.status} "
            f"({LIFECYCLE_RULE}).",
            details={"status": model.status},
        )
    if not isinstance(comment, str):
        raise InvalidInput("comment must be text.", field="comment")
    blocked_by = []
    if model.requested_by_id is not None and model.requested_by_id == actor.user_id:
        blocked_by.append("Four eyes: nobody decides on a model version they proposed")
    evidence = _evidence_summary(model)
    if decision == "approve":
        if model.is_floating and not actor.org.allow_floating_models:
            raise PolicyViolation(
                f"Floating model ids: '{model.model_id}' is not pinned to a dated version, and "
                "this organization does not allow approving floating ids (an admin can correct "
                "a wrong flag, or allow floating ids in the settings).",
                details={"rules": ["floating_model_id"]},
            )
        if not any(e["passed"] for e in evidence):
            blocked_by.append(
                "Eval gate: approval needs at least one passing eval run linked as evidence"
            )
    used = _break_glass(actor, break_glass_reason, blocked_by)
    before = model.status
    model.status = Status.APPROVED if decision == "approve" else Status.REJECTED
    model.status_changed_at = timezone.now()
    if used:
        model.break_glass_used = True
    model.save(update_fields=["status", "status_changed_at", "break_glass_used"])
    ModelDecision.objects.create(
        organization=actor.org,
        model_version=model,
        kind=ModelDecision.Kind.DECISION,
        decision=decision,
        from_status=before,
        to_status=model.status,
        actor=actor.user,
        actor_label=actor.label[:200],
        comment=comment or "",
        break_glass_reason=used,
        evidence=evidence,
    )
    if used:
        _announce_break_glass(actor=actor, model=model, what=decision, reason=used)
    audit_record(
        actor=actor,
        action="model.approved" if decision == "approve" else "model.rejected",
        target=model,
        details={
            "from": before,
            "to": model.status,
            "comment": comment or "",
            "evidence": evidence,
            "break_glass": bool(used),
            "break_glass_reason": used,
            "rules_overridden": blocked_by if used else [],
        },
    )
    return model


@transaction.atomic
def model_transition(
    *,
    actor: Actor,
    model: ModelVersion,
    to: str,
    reason: str,
    break_glass_reason: str | None = None,
) -> ModelVersion:
    """Suspend, reinstate, deprecate or retire (with a reason). Incidents call this to
    suspend a model; the system actor may too."""
    _own(actor, model)
    if to not in TRANSITIONS:
        raise InvalidInput(
            "to must be one of suspended, approved, deprecated, retired.", field="to"
        )
    _require(actor, "model.decide", model)
    if actor.is_machine:
        raise NotPermitted("A person decides on model versions, not a machine key.")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("Give a reason for the change.", field="reason")
    model = ModelVersion.objects.select_for_update().get(pk=model.pk)
    before = model.status
    if before not in TRANSITIONS[to]:
        raise InvalidTransition(
            f"Cannot move a model version from {before} to {to} ({LIFECYCLE_RULE}).",
            details={"from": before, "to": to},
        )
    blocked_by = []
    if to == Status.APPROVED and model.is_floating and not actor.org.allow_floating_models:
        blocked_by.append(
            f"Floating model ids: '{model.model_id}' is floating and this organization does "
            "not allow floating ids"
        )
    used = _break_glass(actor, break_glass_reason, blocked_by) if blocked_by else ""
    model.status = to
    model.status_changed_at = timezone.now()
    if used:
        model.break_glass_used = True
    if to == Status.DEPRECATED and model.deprecation_date is None:
        model.deprecation_date = timezone.localdate()
    if to == Status.RETIRED and model.retirement_date is None:
        model.retirement_date = timezone.localdate()
    model.save(
        update_fields=[
            "status",
            "status_changed_at",
            "break_glass_used",
            "deprecation_date",
            "retirement_date",
        ]
    )
    ModelDecision.objects.create(
        organization=actor.org,
        model_version=model,
        kind=ModelDecision.Kind.TRANSITION,
        from_status=before,
        to_status=to,
        actor=actor.user if actor.is_human else None,
        actor_label=actor.label[:200],
        comment=reason.strip(),
        break_glass_reason=used,
    )
    if used:
        _announce_break_glass(actor=actor, model=model, what=f"move to {to}", reason=used)
    if to == Status.SUSPENDED:
        _notify_admins(
            org=actor.org,
            kind="model.suspended",
            subject=f"Model {model.model_id} suspended",
            body=f"{actor.label} suspended {model.model_id}: {reason.strip()}",
            link=model_link(model),
        )
    audit_record(
        actor=actor,
        action=f"model.{TRANSITION_VERBS[to]}",
        target=model,
        details={
            "from": before,
            "to": to,
            "reason": reason.strip(),
            "break_glass": bool(used),
            "break_glass_reason": used,
        },
    )
    return model


@transaction.atomic
def model_set_floating(
    *, actor: Actor, model: ModelVersion, is_floating: bool, reason: str
) -> ModelVersion:
    """An admin corrects a wrong floating flag (the id rule is a heuristic)."""
    _own(actor, model)
    _require(actor, "model.decide", model)
    if not actor.is_human:
        raise NotPermitted("A person corrects the floating flag, not a machine key.")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("Say why the flag is wrong.", field="reason")
    model = ModelVersion.objects.select_for_update().get(pk=model.pk)
    before = model.is_floating
    if before == bool(is_floating):
        return model
    model.is_floating = bool(is_floating)
    model.floating_flag_overridden = model.is_floating != is_floating_model_id(model.model_id)
    model.save(update_fields=["is_floating", "floating_flag_overridden"])
    ModelDecision.objects.create(
        organization=actor.org,
        model_version=model,
        kind=ModelDecision.Kind.FLAG,
        from_status=model.status,
        to_status=model.status,
        actor=actor.user,
        actor_label=actor.label[:200],
        comment=f"floating: {before} -> {model.is_floating}. {reason.strip()}",
    )
    audit_record(
        actor=actor,
        action="model.floating_flag_changed",
        target=model,
        details={"from": before, "to": model.is_floating, "reason": reason.strip()},
    )
    return model


# ---------------------------------------------------------------- evidence


@transaction.atomic
def model_attach_evidence(*, actor: Actor, model: ModelVersion, run: EvalRun) -> ModelEvidence:
    """Link an eval run as evidence on a model version, with its verdict under the
    organization's default policy (stored on the link). Attaching again re-evaluates."""
    _own(actor, model)
    if run is None or run.organization_id != actor.org.pk:
        raise NotFound("No such eval run.")
    if not (can(actor, "eval.write") or can(actor, "model.propose", model)):
        raise NotPermitted("You may not attach evidence to model versions.")
    if model.status in (Status.REJECTED, Status.RETIRED):
        raise InvalidTransition(
            f"Model '{model.model_id}' is {model.status}; evidence can no longer be attached."
        )
    verdict = policy_evaluate(policy=policy_default(org=actor.org), run=run)
    evidence, created = ModelEvidence.objects.update_or_create(
        organization=actor.org,
        model_version=model,
        eval_run=run,
        defaults={
            "passed": verdict.passed,
            "verdict": verdict.as_dict(),
            "attached_by_label": actor.label[:200],
        },
    )
    audit_record(
        actor=actor,
        action="model.evidence_attached",
        target=model,
        details={"run": run.pk, "passed": verdict.passed, "new": created},
    )
    return evidence


# ---------------------------------------------------------------- deprecation warnings


def _warn_marker(kind: str, day: date, threshold: int) -> str:
    return f"{kind}:{day.isoformat()}:{threshold}"


def deprecation_warnings_send(*, today: date | None = None, org=None) -> int:
    """Warn each organization's admins at 30, 7 and 0 days before a model's deprecation or
    retirement date; each (date, threshold) warns once. Returns the number sent."""
    today = today or timezone.localdate()
    sent = 0
    for model in models_with_lifecycle_dates(org=org).iterator():
        for kind, day in (
            ("deprecation", model.deprecation_date),
            ("retirement", model.retirement_date),
        ):
            left = days_until(day, today)
            if left is None or left < 0 or left > WARN_DAYS[0]:
                continue
            # The tightest threshold reached: 0 on the day, else 7, else 30.
            threshold = next(t for t in reversed(WARN_DAYS) if left <= t)
            marker = _warn_marker(kind, day, threshold)
            if marker in (model.warnings_sent or []):
                continue
            if _send_one_warning(model=model, kind=kind, day=day, left=left, marker=marker):
                sent += 1
    return sent


@transaction.atomic
def _send_one_warning(*, model: ModelVersion, kind: str, day: date, left: int, marker: str) -> bool:
    model = ModelVersion.objects.select_for_update().select_related("organization").get(pk=model.pk)
    if marker in (model.warnings_sent or []):
        return False
    model.warnings_sent = [*(model.warnings_sent or []), marker]
    model.save(update_fields=["warnings_sent"])
    when = "today" if left == 0 else f"in {left} day{'s' if left != 1 else ''}"
    replacement = f" Replacement: {model.replacement.model_id}." if model.replacement_id else ""
    _notify_admins(
        org=model.organization,
        kind=f"model.{kind}_warning",
        subject=f"Model {model.model_id}: {kind} {when} ({day.isoformat()})",
        body=(
            f"{model} ({model.provider}) reaches its vendor {kind} date {day.isoformat()} "
            f"{when}.{replacement} Move what still uses it."
        ),
        link=model_link(model),
    )
    audit_record(
        actor=Actor.system_for(model.organization),
        action=f"model.{kind}_warning_sent",
        target=model,
        details={"date": day.isoformat(), "days_left": left},
    )
    return True


def model_ref_resolve(*, actor: Actor, ref: Any) -> tuple[ModelVersion | None, str]:
    """A run's `model`: a catalog id (a number: must be this organization's, else 404) or
    a model id string (evidence when the catalog has it, else just recorded)."""
    if ref in (None, ""):
        return None, ""
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        raise InvalidInput("model must be a model id or a catalog id.", field="model")
    if isinstance(ref, int) or ref.strip().isdigit():
        model = ModelVersion.objects.for_org(actor.org).filter(pk=int(ref)).first()
        if model is None:
            raise NotFound("No such model version.")
        return model, model.model_id
    model_id = ref.strip()
    model = ModelVersion.objects.for_org(actor.org).filter(model_id=model_id).first()
    return model, model_id


@transaction.atomic
def model_run_record(
    *, actor: Actor, model: ModelVersion | None, run_kwargs: dict
) -> tuple[EvalRun, ModelEvidence | None]:
    """Record an eval run and, when it is about a catalog model, link it as evidence —
    one transaction, so nothing is half-written."""
    from llmops.evals.services import run_create

    if model is not None:
        _own(actor, model)
        run_kwargs = {**run_kwargs, "model_id": model.model_id}
    run = run_create(actor=actor, **run_kwargs)
    evidence = (
        model_attach_evidence(actor=actor, model=model, run=run) if model is not None else None
    )
    return run, evidence
