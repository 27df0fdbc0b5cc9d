from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "llmops.evals"
    label = "evals"
    verbose_name = "Evals"
