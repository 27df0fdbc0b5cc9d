"""Celery tasks of reviews: thin wrappers around services (ids in, counts out)."""

from __future__ import annotations

from celery import shared_task
from django.urls import NoReverseMatch, reverse

from . import services


def _queue_link(queue) -> str:
    try:
        return reverse(
            "reviews:stats", kwargs={"org_slug": queue.organization.slug, "queue_id": queue.pk}
        )
    except NoReverseMatch:
        return ""


@shared_task(name="reviews.tasks.backfill_run", acks_late=True, ignore_result=True)
def backfill_run_task(job_id: int) -> int:
    return services.backfill_run(job_id=job_id).sampled


@shared_task(name="reviews.tasks.sweep_leases", acks_late=True, ignore_result=True)
def sweep_leases() -> int:
    total = 0
    while True:
        swept = services.leases_sweep()
        total += swept
        if swept < 1000:
            return total


@shared_task(name="reviews.tasks.notify_overdue", acks_late=True, ignore_result=True)
def notify_overdue() -> int:
    return services.overdue_notify(link_for=_queue_link)
