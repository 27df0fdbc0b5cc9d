"""Prompt registry records: prompts and their owners' grants, immutable versions, review
decisions, eval evidence links, labels and every label move (deployment)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from llmops.catalog.models import ModelVersion
from llmops.evals.models import EvalPolicy, EvalRun
from llmops.tenancy.models import Organization, OrgQuerySet

PROTECTED_ALWAYS = frozenset({"production"})


class Prompt(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    eval_policy = models.ForeignKey(
        EvalPolicy,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Overrides the organization's default eval policy for this prompt.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="prompt_unique_name")
        ]
        ordering = ["name"]
        permissions = [
            ("approve_prompt", "Approve versions of this prompt"),
            ("deploy_prompt", "Deploy versions of this prompt to labels"),
        ]

    def __str__(self) -> str:
        return self.name


class PromptUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Prompt, on_delete=models.CASCADE)


class PromptGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Prompt, on_delete=models.CASCADE)


class PromptVersion(models.Model):
    """Immutable once created; only `status` (and its timestamps) moves."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"
        SUPERSEDED = "superseded", "Superseded"

    class Source(models.TextChoices):
        UI = "ui", "Web"
        API = "api", "API"
        GIT = "git", "Git"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    template = models.TextField(blank=True)
    messages = models.JSONField(null=True, blank=True)
    variables = models.JSONField(default=list, blank=True)
    model = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    params = models.JSONField(default=dict, blank=True)
    tools = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True, help_text="What changed and why.")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.UI)
    source_path = models.CharField(max_length=500, blank=True)
    source_commit = models.CharField(max_length=64, blank=True)
    authors = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    author_emails = models.JSONField(default=list, blank=True)
    created_by_label = models.CharField(max_length=200, blank=True)
    content_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # Set forever when an admin approved through break-glass.
    break_glass_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt", "number"], name="promptversion_unique_number")
        ]
        indexes = [
            models.Index(fields=["organization", "status"], name="promptversion_org_status"),
        ]
        ordering = ["prompt", "-number"]

    def __str__(self) -> str:
        return f"{self.prompt.name} v{self.number}"

    @property
    def is_chat(self) -> bool:
        return self.messages is not None


class Approval(models.Model):
    """One review decision on a version; the decider may retract it (never deleted)."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REQUEST_CHANGES = "request_changes", "Request changes"
        REJECT = "reject", "Reject"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="approvals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=20, choices=Decision.choices)
    comment = models.TextField(blank=True)
    break_glass_reason = models.TextField(blank=True)
    retracted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["version", "decision"], name="approval_version_decision")]

    @property
    def is_open(self) -> bool:
        return self.retracted_at is None


class PromptVersionEvalRun(models.Model):
    """An eval run as evidence for exactly one version, judged under the prompt's policy."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="eval_links")
    eval_run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="+")
    policy = models.ForeignKey(
        EvalPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    passed = models.BooleanField(default=False)
    verdict = models.JSONField(default=dict)
    attached_by_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "eval_run"], name="promptevalrun_unique_run")
        ]
        ordering = ["-created_at", "-id"]


class Label(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=60)
    protected = models.BooleanField(default=False)
    version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="labels"
    )
    # Model lifecycle warnings already sent for the version behind this label.
    warnings_sent = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prompt", "name"], name="label_unique_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def always_protected(self) -> bool:
        """A label (production) that is protected whatever its `protected` flag says."""
        return self.name in PROTECTED_ALWAYS

    @property
    def is_protected(self) -> bool:
        return self.protected or self.always_protected


class Deployment(models.Model):
    """One move of a label; never edited. A rollback is a move to an earlier version."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="deployments")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="deployments")
    from_version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    break_glass_reason = models.TextField(blank=True)
    is_rollback = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["prompt", "-created_at"], name="deployment_prompt_created")]
