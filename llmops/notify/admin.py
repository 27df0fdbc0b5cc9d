from django.contrib import admin

from .models import DeliveryAttempt, Notification, WebhookEndpoint


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = (
        "kind",
        "channel",
        "status",
        "organization",
        "recipient",
        "attempts",
        "created_at",
    )
    list_filter = ("channel", "status")
    search_fields = ("kind", "subject", "idempotency_key")
    raw_id_fields = ("organization", "recipient", "endpoint")


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(admin.ModelAdmin):
    list_display = ("notification", "at", "ok", "status_code", "duration_ms")
    raw_id_fields = ("notification",)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "url", "active", "created_at")
    exclude = ("secret", "previous_secret")
    raw_id_fields = ("organization", "created_by")
