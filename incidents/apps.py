"""Incidents: AI incidents run from records with runbooks."""

from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    label = "incidents"
    verbose_name = "Incidents"
    nav_items = (("Incidents", "incidents:list", 60),)

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from . import appendonly

        connection_created.connect(
            appendonly.on_connection_created, dispatch_uid="incidents_timeline_sqlite"
        )
        post_migrate.connect(
            appendonly.ensure_triggers, sender=self, dispatch_uid="incidents_timeline_triggers"
        )

    def home_cards(self, actor) -> list[dict]:
        from django.urls import reverse

        from llmops.tenancy.policy import can_any

        from .selectors import open_incident_count, overdue_action_items

        if not can_any(actor, "incident.view"):
            return []
        open_count = open_incident_count(org=actor.org)
        overdue = overdue_action_items(org=actor.org).count()
        text = "open incidents"
        if overdue:
            text += f" · {overdue} overdue action item{'s' if overdue != 1 else ''}"
        return [
            {
                "title": "Incidents",
                "value": open_count,
                "text": text,
                "href": reverse("incidents:list", kwargs={"org_slug": actor.org.slug}),
            }
        ]
