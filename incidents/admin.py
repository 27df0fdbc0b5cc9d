"""Read-only admin views: incidents change only through their services (guards, timeline,
audit), so the admin site shows them and edits nothing."""

from django.contrib import admin

from .models import Incident, Runbook, RunbookVersion, TimelineEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "organization",
        "title",
        "status",
        "severity",
        "category",
        "detected_at",
    )
    list_filter = ("status", "severity", "category")
    search_fields = ("title", "dedupe_key")
    list_select_related = ("organization",)


@admin.register(TimelineEntry)
class TimelineEntryAdmin(ReadOnlyAdmin):
    list_display = ("incident", "kind", "actor_label", "created_at")
    list_filter = ("kind",)
    list_select_related = ("incident",)


@admin.register(Runbook)
class RunbookAdmin(ReadOnlyAdmin):
    list_display = ("slug", "organization", "archived", "reviewed_at")


@admin.register(RunbookVersion)
class RunbookVersionAdmin(ReadOnlyAdmin):
    list_display = ("runbook", "number", "title", "category", "min_severity", "created_at")
