from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "llmops.tenancy"
    label = "tenancy"
    verbose_name = "Tenancy"
    nav_items = (("Members", "tenancy:members", 90), ("Keys", "tenancy:api_keys", 92))

    def ready(self):
        from llmops.common.logging import connect_task_logging

        from . import schema, signals  # noqa: F401 - OpenAPI auth extension, receivers

        # One JSON line per Celery task, like the request log (any process that loads the
        # apps, the worker included).
        connect_task_logging()
