"""Proposing a model version and correcting its details."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.common.errors import InvalidInput
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import require

from ..models import ModelDecision, ModelVersion
from ..selectors import is_floating_model_id
from ._common import Status, _log_decision, _open_model
from .fields import PROPOSE_FIELDS, UPDATE_FIELDS, clean_fields


def _already(model_id: str) -> InvalidInput:
    return InvalidInput(f"Model '{model_id}' is already in the catalog.", field="model_id")


@transaction.atomic
def model_propose(*, actor: Actor, **fields) -> ModelVersion:
    """Maintainers, admins and machine keys with models:write propose a model version."""
    require(actor, "model.propose")
    for required in ("provider", "model_id"):
        if not fields.get(required):
            raise InvalidInput(f"{required} is required.", field=required)
    clean = clean_fields(actor, fields, allowed=PROPOSE_FIELDS)
    if ModelVersion.objects.for_org(actor.org).filter(model_id=clean["model_id"]).exists():
        raise _already(clean["model_id"])
    authors = actor.author_user_ids()
    try:
        with transaction.atomic():  # a concurrent proposal of the same id loses cleanly
            model = ModelVersion.objects.create(
                organization=actor.org,
                requested_by_id=next(iter(authors)) if authors else None,
                requested_by_label=actor.label[:200],
                status=Status.PROPOSED,
                status_changed_at=timezone.now(),
                is_floating=is_floating_model_id(clean["model_id"]),
                **clean,
            )
    except IntegrityError:
        raise _already(clean["model_id"])
    _log_decision(
        actor,
        model,
        ModelDecision.Kind.PROPOSAL,
        to_status=Status.PROPOSED,
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


def _ref(value):
    return value.pk if isinstance(value, ModelVersion) else value


@transaction.atomic
def model_update(*, actor: Actor, model: ModelVersion, **fields) -> ModelVersion:
    """Admins correct prices, dates, replacement, notes (not the id or the provider)."""
    model = _open_model(actor, model)
    clean = clean_fields(actor, fields, allowed=UPDATE_FIELDS, model=model)
    before = {}
    for name, value in clean.items():
        old = getattr(model, name)
        if old != value:
            before[name] = _ref(old)
            setattr(model, name, value)
    if not before:
        return model
    if {"deprecation_date", "retirement_date"} & set(before):
        model.warnings_sent = []  # new dates, new warnings
    model.save()
    after = {name: _ref(getattr(model, name)) for name in before}
    audit_record(
        actor=actor,
        action="model.updated",
        target=model,
        details={"before": before, "after": after},
    )
    return model
