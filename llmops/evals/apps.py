"""Evals: datasets, runs and pass policies (the evidence behind prompt and model decisions)."""

from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "llmops.evals"
    label = "evals"
    verbose_name = "Evals"
    nav_items = (("Evals", "evals:runs", 40),)

    def home_cards(self, actor) -> list[dict]:
        from datetime import timedelta

        from django.urls import reverse
        from django.utils import timezone

        from .models import EvalRun

        week = EvalRun.objects.for_org(actor.org).filter(
            created_at__gte=timezone.now() - timedelta(days=7)
        )
        return [
            {
                "title": "Evals",
                "value": week.count(),
                "text": "eval runs uploaded in the last 7 days",
                "href": reverse("evals:runs", kwargs={"org_slug": actor.org.slug}),
            }
        ]

    def organization_created(self, org):
        from .services import policy_default

        policy_default(org=org)
