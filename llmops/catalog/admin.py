"""Django admin for the catalog: read-mostly; decisions go through the pages and API so
they are checked and audited."""

from django.contrib import admin

from .models import ModelDecision, ModelEvidence, ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "model_id",
        "organization",
        "provider",
        "status",
        "is_floating",
        "deprecation_date",
    )
    list_filter = ("status", "provider", "organization")
    search_fields = ("model_id", "display_name")
    readonly_fields = [f.name for f in ModelVersion._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ModelDecision)
class ModelDecisionAdmin(admin.ModelAdmin):
    list_display = (
        "model_version",
        "kind",
        "decision",
        "from_status",
        "to_status",
        "actor_label",
        "at",
    )
    list_filter = ("kind",)
    readonly_fields = [f.name for f in ModelDecision._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ModelEvidence)
class ModelEvidenceAdmin(admin.ModelAdmin):
    list_display = ("model_version", "eval_run", "passed", "attached_by_label", "created_at")
    readonly_fields = [f.name for f in ModelEvidence._meta.fields]

    def has_add_permission(self, request):
        return False
