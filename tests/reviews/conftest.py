"""Fixtures for reviews tests: generations stored directly, queues made through services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from llmops.tenancy import guardian
from llmops.traces.models import Generation
from reviews import services
from reviews.models import QueueItem

RUBRIC = {
    "questions": [
        {"key": "correct", "label": "Correct?", "type": "boolean", "required": True},
        {
            "key": "tone",
            "label": "Tone",
            "type": "choice",
            "required": True,
            "options": ["friendly", "neutral", "rude"],
        },
        {
            "key": "issues",
            "label": "Issues",
            "type": "multi_choice",
            "required": False,
            "options": ["hallucination", "format", "safety"],
        },
        {
            "key": "quality",
            "label": "Quality",
            "type": "scale",
            "required": True,
            "min": 1,
            "max": 5,
        },
        {"key": "notes", "label": "Notes", "type": "text", "required": False},
    ]
}
GOOD = {"correct": True, "tone": "neutral", "quality": 4}


def make_generations(world, n, *, prefix="gen", start=0, **fields):
    now = timezone.now()
    base = fields.pop("created_at", None) or now
    rows = [
        Generation(
            organization=world.org,
            external_id=f"{world.org.slug}-{prefix}-{i}",
            created_at=base - timedelta(minutes=i),
            ingested_at=now,
            model_id=fields.get("model_id", "gpt-4o-2024-08-06"),
            input={"messages": [{"role": "user", "content": f"question {i}"}]},
            output=fields.get("output", f"answer {i}"),
            status=fields.get("status", "ok"),
            tags=fields.get("tags", []),
            metadata=fields.get("metadata", {}),
        )
        for i in range(start, start + n)
    ]
    return Generation.objects.bulk_create(rows)


def make_queue(
    world, *, name="Support answers", overlap=1, rubric=None, reviewers=("reviewer1",), **kw
):
    queue = services.queue_create(
        actor=world.actor("maint1"),
        name=name,
        rubric=rubric or RUBRIC,
        reviewers_per_item=overlap,
        **kw,
    )
    for who in reviewers:
        guardian.grant("review_queue", world.users[who], queue)
    return queue


def fill(queue, generations, priority=0):
    items = [
        QueueItem(
            organization_id=queue.organization_id,
            queue=queue,
            generation=g,
            reviews_needed=queue.reviewers_per_item,
            priority=priority,
        )
        for g in generations
    ]
    return QueueItem.objects.bulk_create(items)


@pytest.fixture
def queue(acme):
    q = make_queue(acme, reviewers=("reviewer1", "reviewer2"))
    fill(q, make_generations(acme, 5))
    return q
