"""AuditEvent: append-only, one hash chain per organization (ChainHead serialises it)."""

from django.db import models

from llmops.tenancy.models import Organization, OrgQuerySet


class ChainHead(models.Model):
    """The latest sequence number and hash of an organization's chain. Appenders lock this
    row (SELECT ... FOR UPDATE), so concurrent writers never fork the chain."""

    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="")


class AuditEvent(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    seq = models.BigIntegerField()
    created_at = models.DateTimeField()
    # The actor is kept as values, not a foreign key a user deletion would try to change.
    actor_type = models.CharField(max_length=20)  # user | api_key | system
    actor_id = models.CharField(max_length=40, blank=True)
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=80, db_index=True)
    target_type = models.CharField(max_length=80, blank=True)
    target_id = models.CharField(max_length=80, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict)
    ip = models.CharField(max_length=45, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "seq"], name="audit_unique_org_seq")
        ]
        indexes = [
            models.Index(fields=["organization", "action", "seq"], name="audit_org_action"),
            models.Index(
                fields=["organization", "target_type", "target_id"], name="audit_org_target"
            ),
            models.Index(fields=["organization", "created_at"], name="audit_org_created"),
        ]
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_label}"
