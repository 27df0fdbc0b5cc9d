from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "llmops.traces"
    label = "traces"
    verbose_name = "Traces"
