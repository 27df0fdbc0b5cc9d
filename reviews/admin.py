from django.contrib import admin

from .models import QueueItem, ReviewQueue, SamplingRule


@admin.register(ReviewQueue)
class ReviewQueueAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "reviewers_per_item", "active", "created_at")
    list_filter = ("organization", "active")


@admin.register(SamplingRule)
class SamplingRuleAdmin(admin.ModelAdmin):
    list_display = ("queue", "name", "rate", "priority", "active")


@admin.register(QueueItem)
class QueueItemAdmin(admin.ModelAdmin):
    list_display = ("id", "queue", "state", "priority", "reviews_done", "reviews_needed", "due_at")
    list_filter = ("state",)
    raw_id_fields = ("generation", "sampled_by", "adjudicated_by")
