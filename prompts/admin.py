"""Read-mostly admin for the prompt registry (changes go through the services and pages)."""

from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from .models import Approval, Deployment, Label, Prompt, PromptVersion, PromptVersionEvalRun


@admin.register(Prompt)
class PromptAdmin(GuardedModelAdmin):
    list_display = ("name", "organization", "required_approvals", "created_at")
    list_filter = ("organization",)
    search_fields = ("name", "description")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PromptVersion)
class PromptVersionAdmin(ReadOnlyAdmin):
    list_display = ("prompt", "number", "status", "model", "source", "created_at")
    list_filter = ("status", "source", "organization")
    search_fields = ("prompt__name", "content_hash")


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ("version", "user", "decision", "retracted_at", "created_at")


@admin.register(PromptVersionEvalRun)
class PromptVersionEvalRunAdmin(ReadOnlyAdmin):
    list_display = ("version", "eval_run", "passed", "created_at")


@admin.register(Label)
class LabelAdmin(ReadOnlyAdmin):
    list_display = ("prompt", "name", "protected", "version", "updated_at")


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    list_display = ("prompt", "label", "from_version", "to_version", "actor_label", "created_at")
