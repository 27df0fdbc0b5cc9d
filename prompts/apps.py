"""Prompts: the prompt registry (owners, versions, four-eyes reviews, eval-gated deploys)."""

from django.apps import AppConfig
from django.urls import reverse


class PromptsConfig(AppConfig):
    name = "prompts"
    label = "prompts"
    verbose_name = "Prompts"
    nav_items = (("Prompts", "prompts:list", 20),)

    def ready(self) -> None:
        from llmops.traces.registry import register_prompt_version_resolver

        from .selectors import known_prompt_versions

        register_prompt_version_resolver(known_prompt_versions)

    def home_cards(self, actor) -> list[dict]:
        from .models import Prompt
        from .selectors import versions_needing_review

        waiting = versions_needing_review(actor=actor).count()
        total = Prompt.objects.for_org(actor.org).count()
        href = reverse("prompts:list", kwargs={"org_slug": actor.org.slug})
        return [
            {
                "title": "Prompts",
                "value": waiting,
                "text": f"version{'s' if waiting != 1 else ''} waiting for your review · "
                f"{total} prompt{'s' if total != 1 else ''}",
                "href": href + ("?mine=1" if waiting else ""),
            }
        ]
