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

    def model_usage(self, actor, model) -> list[dict]:
        """For the catalog's model page: prompt versions pinning the model, labels first."""
        from .selectors import versions_pinning_model

        rows = []
        for item in versions_pinning_model(org=actor.org, model=model):
            version = item["version"]
            rows.append(
                {
                    "label": f"{version.prompt.name} v{version.number}",
                    "href": reverse(
                        "prompts:version",
                        kwargs={
                            "org_slug": actor.org.slug,
                            "name": version.prompt.name,
                            "number": version.number,
                        },
                    ),
                    "detail": f"{version.status}"
                    + (f" · labels: {', '.join(item['labels'])}" if item["labels"] else ""),
                }
            )
        rows.sort(key=lambda row: "labels:" not in row["detail"])
        return [
            {
                "title": "Prompt versions pinning this model",
                "rows": rows,
                "empty": "No prompt version pins this model.",
            }
        ]
