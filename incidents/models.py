"""AI incidents: runbooks with immutable versions, incidents with a guarded lifecycle,
append-only timelines, checklist runs, evidence snapshots, postmortems and action items.

Evidence and runbook conditions name prompts, models and generations by key (and keep a
snapshot), not by foreign key: an incident must outlive the retention of what it cites."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from llmops.tenancy.models import Organization, OrgQuerySet


class Category(models.TextChoices):
    HALLUCINATION = "hallucination", "Hallucination reaching users"
    PROMPT_INJECTION = "prompt_injection", "Prompt injection / jailbreak"
    HARMFUL_OUTPUT = "harmful_output", "Harmful or policy-violating output"
    DATA_DISCLOSURE = "data_disclosure", "Sensitive data disclosure"
    EXCESSIVE_AGENCY = "excessive_agency", "Excessive agency / tool misuse"
    DRIFT = "drift", "Drift after a model or prompt change"
    COST_SPIKE = "cost_spike", "Cost spike / runaway agent"
    OUTAGE = "outage", "Latency or vendor outage"
    OTHER = "other", "Other"


# OWASP Top 10 for LLM Applications (2025) entry each category maps to.
OWASP_LLM_TOP10 = {
    "hallucination": ("LLM09", "Misinformation"),
    "prompt_injection": ("LLM01", "Prompt Injection"),
    "harmful_output": ("LLM05", "Improper Output Handling"),
    "data_disclosure": ("LLM02", "Sensitive Information Disclosure"),
    "excessive_agency": ("LLM06", "Excessive Agency"),
    "drift": ("LLM03", "Supply Chain"),
    "cost_spike": ("LLM10", "Unbounded Consumption"),
    "outage": ("LLM10", "Unbounded Consumption"),
    "other": ("", "Not mapped"),
}


class Severity(models.TextChoices):
    PENDING = "pending", "Pending"
    SEV1 = "SEV1", "SEV1 (critical)"
    SEV2 = "SEV2", "SEV2 (major)"
    SEV3 = "SEV3", "SEV3 (minor)"
    SEV4 = "SEV4", "SEV4 (low)"


# Lower rank = more severe; pending ranks below every real severity.
SEVERITY_RANK = {"SEV1": 1, "SEV2": 2, "SEV3": 3, "SEV4": 4, "pending": 9}


class Status(models.TextChoices):
    TRIAGE = "triage", "Triage"
    INVESTIGATING = "investigating", "Investigating"
    MITIGATED = "mitigated", "Mitigated"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled (false alarm)"
    DUPLICATE = "duplicate", "Duplicate"


OPEN_STATUSES = frozenset({"triage", "investigating", "mitigated"})
ENDED_STATUSES = frozenset({"closed", "cancelled", "duplicate"})

# The lifecycle, in order; cancelled and duplicate end it from any open status.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "triage": ("investigating", "cancelled", "duplicate"),
    "investigating": ("mitigated", "cancelled", "duplicate"),
    "mitigated": ("resolved", "investigating", "cancelled", "duplicate"),
    "resolved": ("closed", "investigating"),
    "closed": (),
    "cancelled": (),
    "duplicate": (),
}


class Source(models.TextChoices):
    MANUAL = "manual", "Manual"
    REVIEW = "review", "Review"
    ALERT = "alert", "Alert"
    API = "api", "API"


class SeriousKind(models.TextChoices):
    """EU AI Act Art. 3(49) serious incident, by reporting deadline (Art. 73)."""

    WIDESPREAD = "widespread", "Widespread infringement (2 days)"
    CRITICAL_INFRASTRUCTURE = (
        "critical_infrastructure",
        "Critical infrastructure disruption (2 days)",
    )
    DEATH = "death", "Death of a person (10 days)"
    OTHER = "other", "Other serious incident (15 days)"


SERIOUS_REPORT_DAYS = {"widespread": 2, "critical_infrastructure": 2, "death": 10, "other": 15}


# ---------------------------------------------------------------------------- runbooks


class Runbook(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    slug = models.SlugField(max_length=80)
    archived = models.BooleanField(default=False)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    STALE_AFTER = timedelta(days=180)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="runbook_unique_slug")
        ]
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def last_reviewed(self):
        return self.reviewed_at or self.created_at

    @property
    def is_stale(self) -> bool:
        return timezone.now() - self.last_reviewed > self.STALE_AFTER


class RunbookVersion(models.Model):
    """Immutable: an edit is a new version. `steps` is `[{"text", "role", "action"}]`."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    steps = models.JSONField(default=list)
    # Attach conditions; blank means "any".
    category = models.CharField(max_length=30, choices=Category.choices, blank=True)
    min_severity = models.CharField(max_length=10, blank=True)
    model_id = models.CharField(max_length=200, blank=True)
    prompt_name = models.CharField(max_length=200, blank=True)
    change_note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["runbook", "number"], name="runbookversion_unique")
        ]
        ordering = ["runbook_id", "-number"]

    def __str__(self) -> str:
        return f"{self.title} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.pop("_allow_update", False):
            raise ValueError("Runbook versions are immutable; create a new version.")
        super().save(*args, **kwargs)

    @property
    def conditions_label(self) -> str:
        parts = []
        if self.category:
            parts.append(Category(self.category).label)
        if self.min_severity:
            parts.append(f"{self.min_severity} or worse")
        if self.model_id:
            parts.append(f"model {self.model_id}")
        if self.prompt_name:
            parts.append(f"prompt {self.prompt_name}")
        return ", ".join(parts) or "every incident"


# ---------------------------------------------------------------------------- incidents


class IncidentCounter(models.Model):
    """The last incident number per organization, locked while the next is allocated."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    last_number = models.PositiveIntegerField(default=0)


class Incident(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    category = models.CharField(max_length=30, choices=Category.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.PENDING)
    # The most severe severity the incident ever had: the SEV1/SEV2 postmortem rule follows
    # it, so lowering the severity (in a transition or after resolution) does not skip it.
    peak_severity = models.CharField(
        max_length=10, choices=Severity.choices, default=Severity.PENDING
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.TRIAGE)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    dedupe_key = models.CharField(max_length=200, blank=True)
    last_alert_at = models.DateTimeField(null=True, blank=True)
    alert_count = models.PositiveIntegerField(default=0)
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reporter_label = models.CharField(max_length=200, blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    users_affected = models.PositiveIntegerField(null=True, blank=True)
    cost_impact_usd = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    mitigation_note = models.TextField(blank=True)
    detected_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Optional regulatory clock (EU AI Act serious incident).
    serious = models.BooleanField(default=False)
    serious_kind = models.CharField(max_length=30, choices=SeriousKind.choices, blank=True)
    aware_at = models.DateTimeField(null=True, blank=True)
    initial_report_at = models.DateTimeField(null=True, blank=True)
    final_report_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "number"], name="incident_unique_number"
            ),
            models.CheckConstraint(
                condition=Q(acknowledged_at__isnull=True)
                | Q(acknowledged_at__gte=F("detected_at")),
                name="incident_ack_after_detected",
            ),
            models.CheckConstraint(
                condition=Q(mitigated_at__isnull=True) | Q(mitigated_at__gte=F("detected_at")),
                name="incident_mitigated_after_detected",
            ),
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True) | Q(resolved_at__gte=F("detected_at")),
                name="incident_resolved_after_detected",
            ),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=True)
                | Q(resolved_at__isnull=True)
                | Q(closed_at__gte=F("resolved_at")),
                name="incident_closed_after_resolved",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status"], name="incident_org_status"),
            models.Index(fields=["organization", "dedupe_key"], name="incident_org_dedupe"),
            models.Index(fields=["organization", "-detected_at"], name="incident_org_detected"),
        ]
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"{self.ref} {self.title}"

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def owasp(self) -> tuple[str, str]:
        return OWASP_LLM_TOP10.get(self.category, ("", ""))

    @property
    def allowed_transitions(self) -> tuple[str, ...]:
        return TRANSITIONS.get(self.status, ())

    @property
    def report_due_at(self):
        if not self.serious or not self.aware_at:
            return None
        return self.aware_at + timedelta(days=SERIOUS_REPORT_DAYS.get(self.serious_kind, 15))

    @property
    def time_to_acknowledge(self):
        return self.acknowledged_at - self.detected_at if self.acknowledged_at else None

    @property
    def time_to_resolve(self):
        return self.resolved_at - self.detected_at if self.resolved_at else None


class TimelineEntry(models.Model):
    """Append-only: never updated or deleted (refused in `save`, and by a trigger on PostgreSQL)."""

    class Kind(models.TextChoices):
        OPENED = "opened", "Opened"
        STATUS = "status", "Status change"
        SEVERITY = "severity", "Severity change"
        CATEGORY = "category", "Category change"
        COMMAND = "command", "Command"
        NOTE = "note", "Note"
        LINK = "link", "Evidence linked"
        ALERT = "alert", "Alert"
        CHECKLIST = "checklist", "Checklist"
        ACTION = "action", "Quick action"
        POSTMORTEM = "postmortem", "Postmortem"
        AUTOMATED = "automated", "Automated"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["incident", "created_at"], name="timeline_incident_time")]
        verbose_name_plural = "timeline entries"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Timeline entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Timeline entries are append-only.")


class Evidence(models.Model):
    """A prompt version, model version, generation, review or eval case cited by an incident,
    with a snapshot of it at link time and the SHA-256 of that snapshot."""

    class Kind(models.TextChoices):
        GENERATION = "generation", "Generation"
        PROMPT_VERSION = "prompt_version", "Prompt version"
        MODEL_VERSION = "model_version", "Model version"
        REVIEW = "review", "Review"
        EVAL_CASE = "eval_case", "Eval case"
        LINK = "link", "Link"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="evidence")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    ref = models.CharField(max_length=200, help_text="The cited object's id or key.")
    label = models.CharField(max_length=300)
    url = models.CharField(max_length=500, blank=True)
    # Keys runbook conditions match on: the model id and prompt name the evidence names.
    model_id = models.CharField(max_length=200, blank=True)
    prompt_name = models.CharField(max_length=200, blank=True)
    snapshot = models.JSONField(default=dict, blank=True)
    snapshot_hash = models.CharField(max_length=64, blank=True)
    added_by_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["incident", "kind", "ref"], name="evidence_unique_ref")
        ]
        ordering = ["created_at", "id"]


class ChecklistRun(models.Model):
    """A runbook version attached to an incident because its conditions matched."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="checklists")
    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="+")
    runbook_version = models.ForeignKey(RunbookVersion, on_delete=models.PROTECT, related_name="+")
    attached_at = models.DateTimeField(auto_now_add=True)
    # Set when the conditions stopped matching after steps were already ticked (kept as record).
    unmatched_at = models.DateTimeField(null=True, blank=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["incident", "runbook"], name="checklistrun_unique")
        ]
        ordering = ["attached_at", "id"]


class ChecklistStep(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(ChecklistRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    text = models.CharField(max_length=500)
    role = models.CharField(max_length=50, blank=True)
    action = models.CharField(max_length=50, blank=True)
    done = models.BooleanField(default=False)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    done_by_label = models.CharField(max_length=200, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="checkliststep_unique")
        ]
        ordering = ["run_id", "position"]


class IncidentEvalCase(models.Model):
    """An eval case made from this incident's failure (the loop back into evals): created by
    the incident's quick action, or an existing case linked by a maintainer (audited). Only
    these rows count for the eval-case rule, never a case's free-text source label."""

    class How(models.TextChoices):
        CREATED = "created", "Created from the incident"
        LINKED = "linked", "Linked by a maintainer"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="eval_cases")
    eval_case_id = models.BigIntegerField()
    dataset_name = models.CharField(max_length=200)
    how = models.CharField(max_length=10, choices=How.choices, default=How.CREATED)
    note = models.CharField(max_length=1000, blank=True)
    created_by_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "eval_case_id"], name="incidentevalcase_unique_case"
            )
        ]


POSTMORTEM_TEMPLATE = """## Impact

Who and what was affected, for how long; users affected, cost.

## Timeline

Key moments (UTC), from detection to resolution.

## Root cause

## Contributing factors

## What went well

## Action items

See the action items below; every item needs an owner.
"""


class Postmortem(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="postmortem")
    body = models.TextField()
    updated_by_label = models.CharField(max_length=200)
    updated_at = models.DateTimeField(auto_now=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    @property
    def is_written(self) -> bool:
        return bool(self.body.strip()) and self.body.strip() != POSTMORTEM_TEMPLATE.strip()


class ActionItem(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="action_items")
    title = models.CharField(max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    due = models.DateField(null=True, blank=True)
    done = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True)
    link = models.URLField(max_length=500, blank=True)
    overdue_notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["done", "due", "id"]
        indexes = [models.Index(fields=["organization", "done", "due"], name="actionitem_due")]

    @property
    def is_overdue(self) -> bool:
        return not self.done and self.due is not None and self.due < timezone.localdate()
