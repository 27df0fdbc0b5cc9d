"""Checklists: the runbooks whose conditions match an incident, attached as step lists."""

from __future__ import annotations

from django.db import models, transaction
from django.db.models import Max
from django.utils import timezone

from llmops.tenancy.actor import Actor

from ..models import (
    SEVERITY_RANK,
    ChecklistRun,
    ChecklistStep,
    Incident,
    RunbookVersion,
    Severity,
    TimelineEntry,
)
from ._common import _open_incident, _same_org, _still_open, _timeline


def version_matches(
    version: RunbookVersion, incident: Incident, models_: set, prompts: set
) -> bool:
    if version.category and version.category != incident.category:
        return False
    if version.min_severity:
        if incident.severity == Severity.PENDING:
            return False
        if SEVERITY_RANK[incident.severity] > SEVERITY_RANK[version.min_severity]:
            return False
    if version.model_id and version.model_id not in models_:
        return False
    if version.prompt_name and version.prompt_name not in prompts:
        return False
    return True


def _latest_versions(org) -> list[RunbookVersion]:
    latest = (
        RunbookVersion.objects.for_org(org)
        .filter(runbook__archived=False)
        .values("runbook_id")
        .annotate(n=Max("number"))
    )
    wanted = models.Q(pk__in=[])
    for row in latest:
        wanted |= models.Q(runbook_id=row["runbook_id"], number=row["n"])
    return list(RunbookVersion.objects.for_org(org).filter(wanted).order_by("runbook_id"))


def _sync_checklists(actor: Actor, incident: Incident) -> None:
    """Attach the runbooks whose conditions now match; drop untouched ones that no longer
    match (ticked ones stay, marked as no longer matching, so the record is kept)."""
    evidence = list(incident.evidence.values_list("model_id", "prompt_name"))
    models_ = {m for m, _ in evidence if m}
    prompts = {p for _, p in evidence if p}
    matching = {
        v.runbook_id: v
        for v in _latest_versions(incident.organization)
        if version_matches(v, incident, models_, prompts)
    }
    runs = {run.runbook_id: run for run in incident.checklists.select_related("runbook_version")}
    for runbook_id, version in matching.items():
        run = runs.get(runbook_id)
        if run is None:
            run = ChecklistRun.objects.create(
                organization_id=incident.organization_id,
                incident=incident,
                runbook_id=runbook_id,
                runbook_version=version,
            )
            ChecklistStep.objects.bulk_create(
                ChecklistStep(
                    organization_id=incident.organization_id,
                    run=run,
                    position=i,
                    text=step["text"],
                    role=step.get("role", ""),
                    action=step.get("action", ""),
                )
                for i, step in enumerate(version.steps)
            )
            _timeline(
                actor,
                incident,
                TimelineEntry.Kind.CHECKLIST,
                f"Runbook attached: {version.title} (v{version.number}; matches "
                f"{version.conditions_label}).",
                {"runbook": runbook_id, "version": version.number, "event": "attached"},
            )
        elif run.unmatched_at is not None:
            run.unmatched_at = None
            run.save(update_fields=["unmatched_at"])
    for runbook_id, run in runs.items():
        if runbook_id in matching:
            continue
        title = run.runbook_version.title
        if run.steps.filter(done=True).exists():
            if run.unmatched_at is None:
                run.unmatched_at = timezone.now()
                run.save(update_fields=["unmatched_at"])
                _timeline(
                    actor,
                    incident,
                    TimelineEntry.Kind.CHECKLIST,
                    f"Runbook no longer matches but has ticked steps, kept: {title}.",
                    {"runbook": runbook_id, "event": "unmatched"},
                )
        else:
            run.delete()
            _timeline(
                actor,
                incident,
                TimelineEntry.Kind.CHECKLIST,
                f"Runbook detached (no longer matches): {title}.",
                {"runbook": runbook_id, "event": "detached"},
            )


@transaction.atomic
def checklist_step_set(*, actor: Actor, step: ChecklistStep, done: bool) -> ChecklistStep:
    _same_org(actor, step)
    incident = _open_incident(
        actor, step.run.incident, check=lambda i: _still_open(i, "; its checklist is closed.")
    )
    step = ChecklistStep.objects.select_for_update().get(pk=step.pk)
    if step.done == done:
        return step
    step.done = done
    step.done_by = actor.user if actor.is_human and done else None
    step.done_by_label = actor.label[:200] if done else ""
    step.done_at = timezone.now() if done else None
    step.save(update_fields=["done", "done_by", "done_by_label", "done_at"])
    _timeline(
        actor,
        incident,
        TimelineEntry.Kind.CHECKLIST,
        f"{'Ticked' if done else 'Unticked'}: {step.text}",
        {"step": step.pk, "done": done},
    )
    return step
