from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "llmops.notify"
    label = "notify"
    verbose_name = "Notifications"
