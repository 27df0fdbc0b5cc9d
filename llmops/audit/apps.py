from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "llmops.audit"
    label = "audit"
    verbose_name = "Audit trail"
    nav_items = (("Audit", "audit:log", 95),)

    def ready(self):
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from . import appendonly

        connection_created.connect(
            appendonly.on_connection_created, dispatch_uid="audit_append_only_sqlite"
        )
        post_migrate.connect(
            appendonly.ensure_triggers, sender=self, dispatch_uid="audit_append_only_triggers"
        )
