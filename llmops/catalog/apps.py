"""Model catalog: the approved model-version list, prices, deprecations, evidence links."""

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "llmops.catalog"
    label = "catalog"
    verbose_name = "Model catalog"
    nav_items = (("Models", "catalog:list", 30),)

    def home_cards(self, actor) -> list[dict]:
        from django.urls import reverse

        from .selectors import model_counts_by_status

        counts = model_counts_by_status(org=actor.org)
        proposed = counts.get("proposed", 0)
        return [
            {
                "title": "Models",
                "value": counts.get("approved", 0) + counts.get("deprecated", 0),
                "text": f"usable model versions · {proposed} awaiting a decision",
                "href": reverse("catalog:list", kwargs={"org_slug": actor.org.slug}),
            }
        ]
