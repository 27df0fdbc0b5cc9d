"""llmops: governance for teams running LLM features in production."""

from .celery import app as celery_app

__all__ = ("celery_app",)
