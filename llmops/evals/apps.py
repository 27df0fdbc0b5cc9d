"""Evals: datasets, runs and pass policies (the evidence behind prompt and model decisions)."""

from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "llmops.evals"
    label = "evals"
    verbose_name = "Evals"
    nav_items = (("Evals", "evals:runs", 40),)

    def organization_created(self, org):
        from .services import policy_default

        policy_default(org=org)
