"""Reviews: sampled production outputs labelled by reviewers, with agreement and adjudication."""

from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviews"
    label = "reviews"
    verbose_name = "Reviews"
    nav_items = (("Reviews", "reviews:list", 50),)

    def ready(self) -> None:
        from llmops.traces import receivers

        from .services import sample_generations

        receivers.register(sample_generations)

    def home_cards(self, actor) -> list[dict]:
        from django.urls import reverse

        from llmops.tenancy.policy import can_any

        from .selectors import queue_list, queue_progress

        if not can_any(actor, "queue.view"):
            return []
        queues = list(queue_list(actor=actor))
        if not queues:
            return []
        progress = queue_progress(actor=actor, queues=queues)
        available = sum(p["mine_available"] + p["mine_active"] for p in progress.values())
        overdue = sum(p["overdue"] for p in progress.values())
        return [
            {
                "title": "Reviews",
                "value": available,
                "text": f"items waiting for you in {len(queues)} queue(s); {overdue} overdue",
                "href": reverse("reviews:list", kwargs={"org_slug": actor.org.slug}),
            }
        ]
