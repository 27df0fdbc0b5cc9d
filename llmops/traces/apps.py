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

    def model_usage(self, actor, model) -> list[dict]:
        """For the catalog's model page: production traffic on this model id, last 7 days."""
        from django.urls import reverse
        from django.utils import timezone

        from llmops.tenancy.policy import can_any

        from .selectors import rollup_summary

        if not can_any(actor, "generation.view"):
            return []
        s = rollup_summary(
            org=actor.org, since=timezone.now() - timedelta(days=7), model_id=model.model_id
        )
        rows = []
        if s["count"]:
            detail = f"{s['error_rate'] * 100:.1f}% errors"
            if s["p95_ms"] is not None:
                detail += f" · P95 {s['p95_ms']:,.0f} ms"
            if s["cost_total"]:
                detail += f" · ${s['cost_total']:,.2f}"
            href = reverse("traces:generations", kwargs={"org_slug": actor.org.slug})
            rows.append(
                {
                    "label": f"{s['count']:,} requests in 7 days",
                    "href": f"{href}?model={model.model_id}",
                    "detail": detail,
                }
            )
        return [
            {
                "title": "Production traffic (7 days)",
                "rows": rows,
                "empty": "No recorded traffic on this model id in the last 7 days.",
            }
        ]
