from django.contrib import admin

from .models import Generation, HourlyRollup


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = (
        "external_id",
        "organization",
        "created_at",
        "prompt_name",
        "prompt_version",
        "model_id",
        "status",
    )
    list_filter = ("status",)
    search_fields = ("external_id",)
    raw_id_fields = ("model_version",)
    list_select_related = ("organization",)


@admin.register(HourlyRollup)
class HourlyRollupAdmin(admin.ModelAdmin):
    list_display = (
        "organization",
        "hour",
        "prompt_name",
        "prompt_version",
        "model_id",
        "count",
        "errors",
    )
