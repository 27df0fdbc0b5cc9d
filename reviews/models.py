"""Reviews records: queues with a rubric and sampling rules, the items sampled into them,
who holds which item (leases), and the reviews people submitted."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from llmops.tenancy.models import Organization, OrgQuerySet


class ReviewQueue(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="review_queues"
    )
    name = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, help_text="Markdown, shown to reviewers.")
    rubric = models.JSONField(default=dict, blank=True)
    reviewers_per_item = models.PositiveSmallIntegerField(default=1)
    lease_minutes = models.PositiveSmallIntegerField(default=10)
    sla_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="Due time per item, in hours after it was sampled."
    )
    eval_dataset = models.ForeignKey(
        "evals.EvalDataset",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Where 'add to evals' sends a case.",
    )
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="reviewqueue_unique_name")
        ]
        ordering = ["name"]
        permissions = [("review_queue", "Review items of this queue")]

    def __str__(self) -> str:
        return self.name


class ReviewQueueUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE)


class ReviewQueueGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE)


class SamplingRule(models.Model):
    """Routes stored generations into a queue: `rate` of those matching `filters`.
    Filters: prompt, version, model, tags (all of), metadata {key: value}, errors_only,
    latency_above (ms), cost_above (USD)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=200, blank=True)
    rate = models.FloatField(default=0.05)
    filters = models.JSONField(default=dict, blank=True)
    priority = models.SmallIntegerField(default=0, help_text="Higher is reviewed first.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rate__gte=0) & Q(rate__lte=1), name="samplingrule_rate_0_1"
            )
        ]

    def __str__(self) -> str:
        return self.name or f"rule {self.pk}"


class QueueItem(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Needs reviews"
        DONE = "done", "Reviewed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="items")
    generation = models.ForeignKey(
        "traces.Generation", on_delete=models.CASCADE, related_name="queue_items"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    priority = models.SmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(null=True, blank=True)
    reviews_needed = models.PositiveSmallIntegerField(default=1)
    reviews_done = models.PositiveSmallIntegerField(default=0)
    # Leases currently held (swept when they expire); with reviews_done it bounds new claims.
    active_claims = models.PositiveSmallIntegerField(default=0)
    skips = models.PositiveSmallIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    overdue_notified_at = models.DateTimeField(null=True, blank=True)
    # Overlap: reviewers disagreed on a required question; a maintainer records the answer.
    needs_adjudication = models.BooleanField(default=False)
    final_answers = models.JSONField(null=True, blank=True)
    adjudicated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    adjudicated_at = models.DateTimeField(null=True, blank=True)
    sampled_by = models.ForeignKey(
        SamplingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["-priority", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "generation"], name="queueitem_once_per_queue"
            ),
            models.CheckConstraint(
                condition=Q(reviews_done__lte=F("reviews_needed")),
                name="queueitem_not_over_reviewed",
            ),
            models.CheckConstraint(
                condition=Q(active_claims__lte=F("reviews_needed") - F("reviews_done")),
                name="queueitem_not_over_assigned",
            ),
        ]
        indexes = [
            # The claim path: only items still needing reviews, in claim order.
            models.Index(
                "queue",
                F("priority").desc(),
                "created_at",
                "id",
                name="queueitem_claimable",
                condition=Q(state="open"),
            ),
            models.Index(
                fields=["queue", "due_at"],
                name="queueitem_open_due",
                condition=Q(state="open", due_at__isnull=False),
            ),
            models.Index(
                fields=["queue", "id"],
                name="queueitem_adjudication",
                condition=Q(needs_adjudication=True, final_answers__isnull=True),
            ),
            models.Index(fields=["queue", "completed_at"], name="queueitem_completed"),
        ]

    def __str__(self) -> str:
        return f"item {self.pk}"

    @property
    def remaining(self) -> int:
        return self.reviews_needed - self.reviews_done


class Assignment(models.Model):
    """One reviewer's hold on one item. At most one row per (item, reviewer): an item is
    never given to the same reviewer twice. At most one active lease per (queue, reviewer),
    enforced by a partial unique index: parallel claims by one reviewer cannot both win."""

    class State(models.TextChoices):
        ACTIVE = "active", "Claimed"
        SUBMITTED = "submitted", "Submitted"
        SKIPPED = "skipped", "Skipped"
        RELEASED = "released", "Released"
        EXPIRED = "expired", "Lease expired"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="assignments")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_assignments"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    claimed_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "reviewer"], name="assignment_once_per_reviewer"
            ),
            # Also the index of the claim path's "lease still held?" lookup.
            models.UniqueConstraint(
                fields=["queue", "reviewer"],
                condition=Q(state="active"),
                name="assignment_one_active_per_queue",
            ),
        ]
        indexes = [
            models.Index(
                fields=["lease_expires_at"],
                name="assignment_active_lease",
                condition=Q(state="active"),
            ),
        ]


class Review(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="reviews")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="reviews")
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="review")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews"
    )
    answers = models.JSONField(default=dict)
    corrected_output = models.TextField(blank=True)
    comment = models.TextField(blank=True)
    time_spent_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["queue", "created_at"], name="review_queue_created")]


class BackfillJob(models.Model):
    """Applying a queue's rules to generations already stored in a window (a Celery task)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="backfills")
    since = models.DateTimeField()
    until = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    sampled = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        return int(100 * self.processed / self.total) if self.total else 0
