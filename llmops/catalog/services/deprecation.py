"""Deprecation and retirement warnings: each organization's admins hear at 30, 7 and 0
days before a model's vendor date, once per (date, threshold)."""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.utils import timezone

from llmops.audit.services import audit_record
from llmops.tenancy.actor import Actor

from ..models import ModelVersion
from ..selectors import days_until, models_with_lifecycle_dates
from ._common import _notify_admins, model_link

WARN_DAYS = (30, 7, 0)


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
