"""The audit trail in Django's admin (superusers): read-only, since the log is append-only
(the database refuses updates and deletes on PostgreSQL as well)."""

from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "organization", "seq", "action", "actor_label", "target_label")
    list_filter = ("action", "actor_type")
    search_fields = ("action", "actor_label", "target_label", "target_id")
    list_select_related = ("organization",)
    ordering = ("-created_at", "-id")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
