"""The tenant (Organization) and who belongs to it, in which role, with which keys."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models

from .throttling import validate_limits


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MAINTAINER = "maintainer", "Maintainer"
    REVIEWER = "reviewer", "Reviewer"
    VIEWER = "viewer", "Viewer"


class OrgQuerySet(models.QuerySet):
    """Every tenant-owned model's queryset: always scoped by organization."""

    def for_org(self, org):
        return self.filter(organization=org)


class Organization(models.Model):
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    allow_floating_models = models.BooleanField(
        default=False, help_text="Allow approving floating model ids such as gpt-4o."
    )
    retention_days = models.PositiveIntegerField(default=90)
    api_limits = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_limits],
        help_text='API rate limits overriding the defaults, e.g. {"ingest": {"key": "600/min", '
        '"org": "2000/min"}} (README "Limits").',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="membership_unique_user_org"
            )
        ]
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.role})"


class Team(models.Model):
    """A named set of members; owns a Django Group so guardian can grant objects to it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="team_unique_name")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Invitation(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(blank=True)
    role = models.CharField(max_length=20, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]


class ApiKey(models.Model):
    """`llmops_<public id><secret><checksum>`; only a SHA-256 of the whole key is stored."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    public_id = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="personal_api_keys",
        help_text="Set for a personal key, which acts as this user; empty for a machine key.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def prefix(self) -> str:
        return f"llmops_{self.public_id}"

    @property
    def is_machine(self) -> bool:
        return self.user_id is None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
