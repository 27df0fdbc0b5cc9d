from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "llmops.tenancy"
    label = "tenancy"
    verbose_name = "Tenancy"
    nav_items = (("Members", "tenancy:members", 90), ("Keys", "tenancy:api_keys", 92))
