"""Production outputs: one Generation per recorded call, as the production app reported it,
and the hourly rollups dashboards read instead of raw rows."""

from __future__ import annotations

from django.db import models

from llmops.tenancy.models import Organization, OrgQuerySet


class Generation(models.Model):
    class Status(models.TextChoices):
        OK = "ok", "OK"
        ERROR = "error", "Error"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=200)
    trace_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(help_text="Event time, as reported.")
    ingested_at = models.DateTimeField()
    # Facts about what ran, kept as reported; prompts match them by name and number.
    prompt_name = models.CharField(max_length=200, null=True, blank=True)
    prompt_version = models.PositiveIntegerField(null=True, blank=True)
    model_id = models.CharField(max_length=200)
    model_version = models.ForeignKey(
        "catalog.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=True,
    )
    input = models.JSONField(null=True, blank=True)
    output = models.TextField(blank=True)
    output_is_json = models.BooleanField(default=False)
    context = models.JSONField(null=True, blank=True)
    tool_calls = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    user_ref = models.CharField(max_length=200, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=16, decimal_places=8, null=True, blank=True)
    cost_source = models.CharField(max_length=10, blank=True)  # "reported" | "catalog" | ""
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OK)
    error = models.TextField(blank=True)
    # Evidence somewhere (reviewed, an eval case, an incident): retention keeps it.
    pinned = models.BooleanField(default=False)
    pinned_reason = models.CharField(max_length=200, blank=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"], name="generation_unique_external_id"
            )
        ]
        indexes = [
            models.Index(
                fields=["organization", "-created_at", "-id"], name="generation_org_created"
            ),
            models.Index(
                fields=["organization", "prompt_name", "prompt_version", "-created_at"],
                name="generation_org_prompt",
            ),
            models.Index(
                fields=["organization", "model_id", "-created_at"], name="generation_org_model"
            ),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.external_id

    @property
    def prompt_label(self) -> str:
        if not self.prompt_name:
            return ""
        return f"{self.prompt_name} v{self.prompt_version}"


class RollupBase(models.Model):
    """Sums per (organization, prompt name + version, model id, period), upserted by ingest.
    `latency_hist` is a sparse {bucket index: count} over fixed log-spaced buckets
    (see `llmops.traces.histogram`). Empty prompt fields are NULL and compare equal in the
    unique key (NULLS NOT DISTINCT, PostgreSQL 15+)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    prompt_name = models.CharField(max_length=200, null=True, blank=True)
    prompt_version = models.PositiveIntegerField(null=True, blank=True)
    model_id = models.CharField(max_length=200)
    count = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=8, default=0)
    latency_count = models.BigIntegerField(default=0)
    latency_sum_ms = models.BigIntegerField(default=0)
    latency_hist = models.JSONField(default=dict)

    objects = OrgQuerySet.as_manager()

    class Meta:
        abstract = True

    @classmethod
    def check(cls, **kwargs):
        # SQLite cannot enforce NULLS NOT DISTINCT (models.W047); ingest's portable rollup
        # path reads and merges under SQLite's single writer instead, so the warning is noise.
        return [e for e in super().check(**kwargs) if e.id != "models.W047"]


class HourlyRollup(RollupBase):
    """Per hour: the 24-hour dashboard and short windows."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "prompt_name", "prompt_version", "model_id", "hour"],
                name="hourlyrollup_unique_key",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["organization", "hour"], name="hourlyrollup_org_hour")]
        ordering = ["hour"]


class DailyRollup(RollupBase):
    """Per UTC day: windows over two days read 24 times fewer rows than hourly."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "prompt_name", "prompt_version", "model_id", "day"],
                name="dailyrollup_unique_key",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["organization", "day"], name="dailyrollup_org_day")]
        ordering = ["day"]


class DailyUserRollup(models.Model):
    """Cost and volume per end user (pseudonymous `user_ref`) and day, for top spenders.

    Ingest appends one row per key and batch (no unique key: an upsert per end user and batch
    is the costliest part of ingest); readers sum a key's rows and `user_rollups_compact`
    folds each day's rows into one per end user. The organization has no database foreign
    key or own index: ingest appends hundreds of rows per batch, a foreign-key check each cost
    more than the insert, and the rows are derived data that only ingest and compaction
    write, with the batch's organization; deleting an organization still deletes them (Django
    cascades), and the (organization, day) index serves every read."""

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    user_ref = models.CharField(max_length=200)
    day = models.DateField()
    count = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=8, default=0)

    objects = OrgQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="dailyuserrollup_org_day")]
        ordering = ["day"]
