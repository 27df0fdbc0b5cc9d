from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "llmops.catalog"
    label = "catalog"
    verbose_name = "Model catalog"
