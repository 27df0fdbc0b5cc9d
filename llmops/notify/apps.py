"""Notifications: the outbox, e-mail and signed-webhook delivery, the in-app inbox."""

from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "llmops.notify"
    label = "notify"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.core import checks

        from llmops.common.crypto import check_secret_keys
        from llmops.common.logging import connect_task_logging

        connect_task_logging()
        checks.register(check_secret_keys)
