from datetime import timedelta

from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "llmops.traces"
    label = "traces"
    verbose_name = "Traces"
    nav_items = (("Production", "traces:dashboard", 30),)

    def home_cards(self, actor) -> list[dict]:
        from django.urls import reverse
        from django.utils import timezone

        from llmops.tenancy.policy import can_any

        from .selectors import rollup_summary

        if not can_any(actor, "generation.view"):
            return []
        s = rollup_summary(org=actor.org, since=timezone.now() - timedelta(hours=24))
        if s["count"]:
            text = f"requests in 24 h · {s['error_rate'] * 100:.1f}% errors"
            if s["p95_ms"] is not None:
                text += f" · P95 {s['p95_ms']:,.0f} ms"
        else:
            text = "requests in 24 h · no production traffic yet"
        return [
            {
                "title": "Production",
                "value": f"{s['count']:,}",
                "text": text,
                "href": reverse("traces:dashboard", kwargs={"org_slug": actor.org.slug}),
            }
        ]
