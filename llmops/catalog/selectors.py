"""Reads for the model catalog, scoped to one organization. `model_check` is the one
resolver that decides whether a model id may be used; the list's `allowed` filter and each
listed model's `allowed` field go through the same rule, so list and check never disagree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.db.models import Q, QuerySet
from django.utils import timezone

from llmops.common.errors import NotFound

from .models import DEPLOYABLE_STATUSES, ModelDecision, ModelEvidence, ModelVersion

_DATE_STAMP = re.compile(
    r"(?<!\d)(?:(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    r"|(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))(?!\d)"
)
_VERSION_SUFFIX = re.compile(r"(?:[-@]\d{3}|-v\d+)(?::\d+)?$", re.IGNORECASE)


def is_floating_model_id(model_id: str) -> bool:
    """docs/architecture.md: floating when it ends in `latest`, or carries neither a date stamp
    (`20250929`, `2024-08-06`) nor a version suffix (`-001`, `@001`, `-v2`)."""
    value = (model_id or "").strip()
    if value.lower().endswith("latest"):
        return True
    return not (_DATE_STAMP.search(value) or _VERSION_SUFFIX.search(value))


def _today() -> date:
    return timezone.localdate()


def allowed_q(today: date | None = None) -> Q:
    """The rule, as a query: deployable status and not past its retirement date."""
    today = today or _today()
    return Q(status__in=DEPLOYABLE_STATUSES) & (
        Q(retirement_date__isnull=True) | Q(retirement_date__gt=today)
    )


@dataclass(frozen=True)
class ModelCheck:
    allowed: bool
    status: str | None
    reason: str
    model: ModelVersion | None = None

    def as_dict(self) -> dict:
        return {"allowed": self.allowed, "status": self.status, "reason": self.reason}


def check_model_version(model: ModelVersion | None, model_id: str = "", today=None) -> ModelCheck:
    """The same rule as `allowed_q`, for one (already fetched) model version."""
    today = today or _today()
    if model is None:
        return ModelCheck(False, None, f"Model '{model_id}' is not in the catalog.", None)
    if model.status not in DEPLOYABLE_STATUSES:
        return ModelCheck(
            False, model.status, f"Model '{model.model_id}' is {model.status}.", model
        )
    if model.retirement_date is not None and model.retirement_date <= today:
        return ModelCheck(
            False,
            model.status,
            f"Model '{model.model_id}' retired on {model.retirement_date.isoformat()}.",
            model,
        )
    if model.status == "deprecated":
        when = f"; retires on {model.retirement_date.isoformat()}" if model.retirement_date else ""
        return ModelCheck(
            True, model.status, f"Model '{model.model_id}' is deprecated{when}.", model
        )
    return ModelCheck(True, model.status, f"Model '{model.model_id}' is approved.", model)


def model_list(
    *,
    org,
    status: str | None = None,
    provider: str | None = None,
    q: str = "",
    allowed: bool | None = None,
) -> QuerySet[ModelVersion]:
    qs = ModelVersion.objects.for_org(org).select_related("replacement")
    if status:
        statuses = [s for s in str(status).split(",") if s]
        qs = qs.filter(status__in=statuses)
    if provider:
        qs = qs.filter(provider=provider)
    if q:
        qs = qs.filter(
            Q(model_id__icontains=q) | Q(display_name__icontains=q) | Q(platform_id__icontains=q)
        )
    if allowed is True:
        qs = qs.filter(allowed_q())
    elif allowed is False:
        qs = qs.exclude(allowed_q())
    return qs.order_by("provider", "model_id")


def model_get(*, org, pk) -> ModelVersion:
    try:
        return (
            ModelVersion.objects.for_org(org)
            .select_related("replacement", "requested_by")
            .get(pk=int(pk))
        )
    except (ModelVersion.DoesNotExist, TypeError, ValueError):
        raise NotFound("No such model version.")


def model_by_model_id(*, org, model_id: str) -> ModelVersion | None:
    if not model_id:
        return None
    return ModelVersion.objects.for_org(org).filter(model_id=model_id).first()


def models_by_model_ids(*, org, model_ids) -> dict[str, ModelVersion]:
    """Many model ids in ONE query (ingest prices every batch with this, so the SQL is written
    out: compiling the ORM query cost more than running it)."""
    ids = sorted({m for m in model_ids if m})
    if not ids:
        return {}
    table = ModelVersion._meta.db_table
    marks = ", ".join(["%s"] * len(ids))
    query = f"SELECT * FROM {table} WHERE organization_id = %s AND model_id IN ({marks})"
    return {m.model_id: m for m in ModelVersion.objects.raw(query, [org.pk, *ids])}


def model_check(*, org, model_id: str) -> ModelCheck:
    """Whether `model_id` may be used in this organization, and why (not)."""
    return check_model_version(model_by_model_id(org=org, model_id=model_id), model_id)


def model_evidence(*, org, model: ModelVersion) -> QuerySet[ModelEvidence]:
    return (
        ModelEvidence.objects.for_org(org)
        .filter(model_version=model)
        .select_related("eval_run", "eval_run__dataset")
        .order_by("-created_at", "-id")
    )


def model_has_passing_evidence(*, model: ModelVersion) -> bool:
    return ModelEvidence.objects.filter(
        organization_id=model.organization_id, model_version=model, passed=True
    ).exists()


def model_decisions(*, org, model: ModelVersion) -> QuerySet[ModelDecision]:
    return ModelDecision.objects.for_org(org).filter(model_version=model).order_by("-at", "-id")


def models_with_lifecycle_dates(*, org=None) -> QuerySet[ModelVersion]:
    qs = ModelVersion.objects.filter(
        Q(deprecation_date__isnull=False) | Q(retirement_date__isnull=False)
    ).exclude(status__in=["rejected", "retired"])
    if org is not None:
        qs = qs.for_org(org)
    return qs.select_related("organization")


def days_until(day: date | None, today: date | None = None) -> int | None:
    if day is None:
        return None
    return (day - (today or _today())).days


def model_counts_by_status(*, org) -> dict[str, int]:
    from django.db.models import Count

    rows = ModelVersion.objects.for_org(org).values("status").annotate(n=Count("id"))
    return {r["status"]: r["n"] for r in rows}


def evidence_for_run(*, org, run) -> QuerySet[ModelEvidence]:
    """The model versions a run is evidence for (shown on the run page)."""
    return (
        ModelEvidence.objects.for_org(org)
        .filter(eval_run=run)
        .select_related("model_version")
        .order_by("model_version__model_id")
    )


def models_in_service(*, org, limit: int = 200) -> QuerySet[ModelVersion]:
    """Approved and deprecated models (what an incident can suspend), by model id."""
    return (
        ModelVersion.objects.for_org(org)
        .filter(status__in=("approved", "deprecated"))
        .order_by("model_id")[:limit]
    )
