"""Evals records: datasets of cases, uploaded runs with per-case results, and pass policies.
Evidence only: a run points at no prompt and no model; what it is evidence for owns the link.
A run keeps plain facts about what it judged (`model_id`, `subject_content_hash`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from llmops.tenancy.models import Organization, OrgQuerySet


class EvalDataset(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="eval_datasets"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="evaldataset_unique_name")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EvalCase(models.Model):
    class SourceKind(models.TextChoices):
        MANUAL = "manual", "Manual"
        REVIEW = "review", "Review"
        INCIDENT = "incident", "Incident"
        IMPORT = "import", "Import"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(EvalDataset, on_delete=models.CASCADE, related_name="cases")
    input = models.JSONField()
    expected = models.JSONField(null=True, blank=True)
    criteria = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    source_kind = models.CharField(
        max_length=20, choices=SourceKind.choices, default=SourceKind.MANUAL
    )
    # A reference to where the case came from (a review, an incident): label and link path,
    # not a foreign key, since reviews and incidents sit above evals.
    source_label = models.CharField(max_length=200, blank=True)
    source_link = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["dataset", "id"], name="evalcase_dataset_id")]

    def __str__(self) -> str:
        return f"case {self.pk}"


class EvalRun(models.Model):
    class Tool(models.TextChoices):
        PROMPTFOO = "promptfoo", "promptfoo"
        DEEPEVAL = "deepeval", "DeepEval"
        RAGAS = "ragas", "Ragas"
        CUSTOM = "custom", "Custom"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(
        EvalDataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    # The dataset as it was at run time, so results stay interpretable as it changes.
    dataset_case_count = models.PositiveIntegerField(null=True, blank=True)
    dataset_hash = models.CharField(max_length=64, blank=True)
    tool = models.CharField(max_length=20, choices=Tool.choices)
    model_id = models.CharField(max_length=200, blank=True, help_text="As reported by the run.")
    # What the run judged when it was recorded for a prompt version: that version's content
    # hash (plain fact, no link; prompts owns the link and checks it against the version).
    subject_content_hash = models.CharField(max_length=64, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    commit = models.CharField(max_length=64, blank=True)
    ci_url = models.URLField(max_length=500, blank=True)
    uploaded_by_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="evalrun_org_created")]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.tool})"

    @property
    def case_count(self) -> int | None:
        value = (self.metrics or {}).get("cases")
        return int(value) if isinstance(value, int | float) else None


class EvalResult(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="results")
    case = models.ForeignKey(
        EvalCase, null=True, blank=True, on_delete=models.SET_NULL, related_name="results"
    )
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    passed = models.BooleanField(default=False)
    error = models.BooleanField(default=False)
    reason = models.TextField(blank=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "id"], name="evalresult_run_id")]

    @property
    def shown_input(self):
        """The input as reported, else the input of the dataset case it ran."""
        if self.input is not None or self.case_id is None:
            return self.input
        return self.case.input if self.case else None


class EvalPolicy(models.Model):
    """Thresholds on named metrics (`[{"metric": "pass_rate", "op": ">=", "value": 0.9}]`),
    optionally a required dataset and a minimum number of cases."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="eval_policies"
    )
    name = models.CharField(max_length=200)
    thresholds = models.JSONField(default=list)
    required_dataset = models.ForeignKey(
        EvalDataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    min_cases = models.PositiveIntegerField(default=1)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="evalpolicy_unique_name"),
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(is_default=True),
                name="evalpolicy_one_default",
            ),
        ]
        ordering = ["name"]
        verbose_name_plural = "eval policies"

    def __str__(self) -> str:
        return self.name
