from django.apps import AppConfig


class PromptsConfig(AppConfig):
    name = "prompts"
    label = "prompts"
    verbose_name = "Prompts"
