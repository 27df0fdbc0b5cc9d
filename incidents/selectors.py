"""Tenant-scoped reads for incidents: lists with filters, one incident by number, runbooks,
overdue action items and the figures of the metrics page."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import (
    Case,
    Count,
    IntegerField,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from llmops.common.errors import NotFound

from .models import (
    OPEN_STATUSES,
    SEVERITY_RANK,
    ActionItem,
    ChecklistRun,
    ChecklistStep,
    Incident,
    Postmortem,
    Runbook,
    RunbookVersion,
)


def incident_list(
    *,
    org,
    status: str = "",
    severity: str = "",
    category: str = "",
    commander: str = "",
    q: str = "",
) -> QuerySet[Incident]:
    """Open incidents first (most severe, newest), then the rest newest first."""
    qs = Incident.objects.for_org(org).select_related("commander")
    if status == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    if severity:
        qs = qs.filter(severity=severity)
    if category:
        qs = qs.filter(category=category)
    if commander == "none":
        qs = qs.filter(commander__isnull=True)
    elif commander:
        qs = qs.filter(commander__username=commander)
    if q:
        number = q.upper().removeprefix("INC-")
        cond = Q(title__icontains=q) | Q(dedupe_key=q)
        if number.isascii() and number.isdigit():  # not "²": str.isdigit() accepts it
            cond |= Q(number=int(number))
        qs = qs.filter(cond)
    return qs.annotate(
        open_rank=Case(
            When(status__in=OPEN_STATUSES, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        ),
        overdue_items=Count(
            "action_items",
            filter=Q(action_items__done=False, action_items__due__lt=timezone.localdate()),
        ),
        # Open incidents most severe first (pending after SEV4); ended ones by number only.
        open_severity=Case(
            *[
                When(status__in=OPEN_STATUSES, severity=severity, then=Value(rank))
                for severity, rank in SEVERITY_RANK.items()
            ],
            default=Value(0),
            output_field=IntegerField(),
        ),
    ).order_by("open_rank", "open_severity", "-number")


def incident_get(*, org, number: int) -> Incident:
    incident = (
        Incident.objects.for_org(org)
        .select_related("commander", "reporter", "duplicate_of", "organization")
        .filter(number=number)
        .first()
    )
    if incident is None:
        raise NotFound(f"No incident INC-{number}.")
    return incident


def eval_case_get(*, org, case_id) -> Any:
    """An eval case of the organization by id (to link to an incident), or NotFound."""
    from llmops.evals.models import EvalCase

    pk = None
    if isinstance(case_id, int) and not isinstance(case_id, bool):
        pk = case_id
    elif isinstance(case_id, str) and case_id.strip().isascii() and case_id.strip().isdigit():
        pk = int(case_id.strip())
    case = (
        EvalCase.objects.for_org(org).select_related("dataset").filter(pk=pk).first()
        if pk is not None and 0 < pk < 2**63
        else None
    )
    if case is None:
        raise NotFound("No such eval case.")
    return case


def incident_timeline(*, incident: Incident):
    return incident.timeline.select_related("actor").order_by("created_at", "id")


def incident_checklists(*, incident: Incident) -> list[ChecklistRun]:
    return list(
        ChecklistRun.objects.filter(incident=incident)
        .select_related("runbook_version", "runbook")
        .prefetch_related(Prefetch("steps", queryset=ChecklistStep.objects.order_by("position")))
    )


def checklist_step_get(*, org, incident: Incident, step_id) -> ChecklistStep:
    step = (
        ChecklistStep.objects.for_org(org)
        .select_related("run__incident")
        .filter(pk=step_id, run__incident=incident)
        .first()
    )
    if step is None:
        raise NotFound("No such checklist step.")
    return step


def action_item_get(*, org, incident: Incident, item_id) -> ActionItem:
    item = ActionItem.objects.for_org(org).filter(pk=item_id, incident=incident).first()
    if item is None:
        raise NotFound("No such action item.")
    return item


def overdue_action_items(*, org) -> QuerySet[ActionItem]:
    return (
        ActionItem.objects.for_org(org)
        .filter(done=False, due__lt=timezone.localdate())
        .select_related("incident", "owner")
        .order_by("due", "id")
    )


def runbook_list(*, org, include_archived: bool = False) -> list[Runbook]:
    qs = Runbook.objects.for_org(org)
    if not include_archived:
        qs = qs.filter(archived=False)
    runbooks = list(qs.order_by("slug"))
    latest = {}
    for version in (
        RunbookVersion.objects.for_org(org)
        .filter(runbook__in=[r.pk for r in runbooks])
        .order_by("runbook_id", "-number")
    ):
        latest.setdefault(version.runbook_id, version)
    for runbook in runbooks:
        runbook.latest = latest.get(runbook.pk)
    return runbooks


def runbook_get(*, org, runbook_id) -> Runbook:
    runbook = Runbook.objects.for_org(org).filter(pk=runbook_id).first()
    if runbook is None:
        raise NotFound("No such runbook.")
    runbook.latest = runbook.versions.order_by("-number").first()
    return runbook


def runbook_versions(*, runbook: Runbook) -> QuerySet[RunbookVersion]:
    return runbook.versions.order_by("-number")


def open_incident_count(*, org) -> int:
    return Incident.objects.for_org(org).filter(status__in=OPEN_STATUSES).count()


# ---------------------------------------------------------------------------- metrics


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of the values, or None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def incident_metrics(*, org, weeks: int = 12, now: datetime | None = None) -> dict:
    """Counts per week by category and by severity (incidents detected in the window, not
    cancelled or duplicate), and MTTA / MTTR (median and P90, in minutes)."""
    now = now or timezone.now()
    first_week = _week_start(timezone.localdate(now)) - timedelta(weeks=weeks - 1)
    start = timezone.make_aware(datetime.combine(first_week, datetime.min.time()))
    rows = list(
        Incident.objects.for_org(org)
        .filter(detected_at__gte=start)
        .exclude(status__in=("cancelled", "duplicate"))
        .values("detected_at", "acknowledged_at", "resolved_at", "category", "severity")
    )
    week_keys = [first_week + timedelta(weeks=i) for i in range(weeks)]
    by_category: dict[str, Counter] = {}
    by_severity: dict[str, Counter] = {}
    tta, ttr = [], []
    for row in rows:
        week = _week_start(timezone.localdate(row["detected_at"]))
        by_category.setdefault(row["category"], Counter())[week] += 1
        by_severity.setdefault(row["severity"], Counter())[week] += 1
        if row["acknowledged_at"]:
            tta.append((row["acknowledged_at"] - row["detected_at"]).total_seconds() / 60)
        if row["resolved_at"]:
            ttr.append((row["resolved_at"] - row["detected_at"]).total_seconds() / 60)
    return {
        "weeks": week_keys,
        "by_category": {k: [c[w] for w in week_keys] for k, c in sorted(by_category.items())},
        "by_severity": {k: [c[w] for w in week_keys] for k, c in sorted(by_severity.items())},
        "total": len(rows),
        "mtta": {"median": median(tta), "p90": percentile(tta, 90), "n": len(tta)},
        "mttr": {"median": median(ttr), "p90": percentile(ttr, 90), "n": len(ttr)},
    }


def postmortem_for(*, incident: Incident):
    return Postmortem.objects.filter(organization=incident.organization, incident=incident).first()
