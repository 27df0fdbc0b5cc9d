"""Model catalog: the model versions an organization may use, their prices and lifecycle,
the eval evidence behind each decision, and the history of decisions and transitions."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from llmops.evals.models import EvalRun
from llmops.tenancy.models import Organization, OrgQuerySet


class Provider(models.TextChoices):
    ANTHROPIC = "anthropic", "Anthropic"
    OPENAI = "openai", "OpenAI"
    GOOGLE = "google", "Google"
    AWS_BEDROCK = "aws_bedrock", "AWS Bedrock"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI"
    VERTEX_AI = "vertex_ai", "Vertex AI"
    SELF_HOSTED = "self_hosted", "Self-hosted"
    OTHER = "other", "Other"


class DataClass(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    PII = "pii", "PII"


# Statuses in which a model may serve production traffic (pinned by protected labels).
DEPLOYABLE_STATUSES = frozenset({"approved", "deprecated"})


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SUSPENDED = "suspended", "Suspended"
        DEPRECATED = "deprecated", "Deprecated"
        RETIRED = "retired", "Retired"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="model_versions"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices)
    model_id = models.CharField(
        max_length=200, help_text="Exact pinned id, e.g. claude-sonnet-4-5-20250929."
    )
    display_name = models.CharField(max_length=200, blank=True)
    platform_id = models.CharField(
        max_length=300, blank=True, help_text="Bedrock model id, Azure deployment name, ..."
    )
    context_window = models.PositiveIntegerField(null=True, blank=True)
    input_price_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="USD per 1M input tokens"
    )
    output_price_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="USD per 1M output tokens"
    )
    use_cases = models.JSONField(default=list, blank=True)
    data_classes = models.JSONField(default=list, blank=True)
    notes = models.TextField(blank=True)
    deprecation_date = models.DateField(null=True, blank=True)
    retirement_date = models.DateField(null=True, blank=True)
    lifecycle_source_url = models.URLField(max_length=500, blank=True)
    replacement = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROPOSED)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    is_floating = models.BooleanField(default=False)
    floating_flag_overridden = models.BooleanField(default=False)
    # Set forever once any decision or transition on this model used break-glass.
    break_glass_used = models.BooleanField(default=False)
    # Deprecation/retirement warnings already sent, e.g. "deprecation:2026-12-31:30".
    warnings_sent = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "model_id"], name="modelversion_unique_model_id"
            )
        ]
        indexes = [models.Index(fields=["organization", "status"], name="modelversion_org_status")]
        ordering = ["provider", "model_id"]

    def __str__(self) -> str:
        return self.display_name or self.model_id

    @property
    def is_deployable(self) -> bool:
        return self.status in DEPLOYABLE_STATUSES


class ModelEvidence(models.Model):
    """An eval run linked as evidence on a model version; the verdict (and each threshold's
    result) is stored here because whether a run passes depends on what it is evidence for."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="evidence"
    )
    eval_run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="+")
    passed = models.BooleanField(default=False)
    verdict = models.JSONField(default=dict)
    attached_by_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "eval_run"], name="modelevidence_unique_run"
            )
        ]
        ordering = ["-created_at", "-id"]


class ModelDecision(models.Model):
    """One row per decision (approve/reject) or lifecycle transition; never edited."""

    class Kind(models.TextChoices):
        PROPOSAL = "proposal", "Proposal"
        DECISION = "decision", "Decision"
        TRANSITION = "transition", "Transition"
        FLAG = "flag", "Floating flag"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="decisions"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    decision = models.CharField(max_length=20, blank=True)  # approve | reject, for decisions
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    comment = models.TextField(blank=True)
    break_glass_reason = models.TextField(blank=True)
    evidence = models.JSONField(default=list, blank=True)  # run ids and verdicts at the time
    at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]

    @property
    def is_break_glass(self) -> bool:
        return bool(self.break_glass_reason)
