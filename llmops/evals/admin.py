"""Django admin for evals: read-only browsing; writes go through services (audited)."""

from django.contrib import admin

from .models import EvalCase, EvalDataset, EvalPolicy, EvalRun


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EvalDataset)
class EvalDatasetAdmin(ReadOnlyAdmin):
    list_display = ("name", "organization", "created_at")
    search_fields = ("name",)


@admin.register(EvalCase)
class EvalCaseAdmin(ReadOnlyAdmin):
    list_display = ("id", "dataset", "source_kind", "source_label", "created_at")
    list_filter = ("source_kind",)


@admin.register(EvalRun)
class EvalRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "organization", "tool", "model_id", "dataset", "created_at")
    list_filter = ("tool",)


@admin.register(EvalPolicy)
class EvalPolicyAdmin(ReadOnlyAdmin):
    list_display = ("name", "organization", "is_default", "min_cases")
