"""Celery tasks of the catalog: thin wrappers around services."""

from celery import shared_task


@shared_task(name="llmops.catalog.tasks.warn_deprecations")
def warn_deprecations() -> int:
    """Daily: warn admins at 30, 7 and 0 days before deprecation or retirement dates."""
    from .services import deprecation_warnings_send

    return deprecation_warnings_send()
