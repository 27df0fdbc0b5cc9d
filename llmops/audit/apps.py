from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "llmops.audit"
    label = "audit"
    verbose_name = "Audit trail"
    nav_items = (("Audit", "audit:log", 95),)
