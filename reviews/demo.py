"""Demo data for reviews (runs after the traces demo): two queues per organization sampled
from the demo generations, one with a reviewer per item and one with overlap 2 and some
disagreements waiting for adjudication; both demo reviewers granted on both."""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from llmops.evals.models import EvalDataset
from llmops.tenancy.actor import Actor

from . import services
from .models import QueueItem

SUPPORT_RUBRIC = {
    "questions": [
        {"key": "correct", "label": "Is the answer correct?", "type": "boolean", "required": True},
        {
            "key": "tone",
            "label": "Tone",
            "type": "choice",
            "required": True,
            "options": ["friendly", "neutral", "curt", "rude"],
        },
        {
            "key": "issues",
            "label": "Issues",
            "type": "multi_choice",
            "required": False,
            "options": ["hallucination", "policy violation", "missing info", "formatting"],
        },
        {
            "key": "helpful",
            "label": "Helpfulness",
            "type": "scale",
            "required": True,
            "min": 1,
            "max": 5,
            "labels": {"1": "useless", "3": "ok", "5": "excellent"},
        },
        {"key": "notes", "label": "Notes", "type": "text", "required": False},
    ]
}
SUMMARY_RUBRIC = {
    "questions": [
        {
            "key": "faithful",
            "label": "Faithful to the ticket?",
            "type": "boolean",
            "required": True,
        },
        {
            "key": "priority",
            "label": "Priority right?",
            "type": "choice",
            "required": True,
            "options": ["right", "too high", "too low"],
        },
        {
            "key": "quality",
            "label": "Quality",
            "type": "scale",
            "required": True,
            "min": 1,
            "max": 5,
        },
    ]
}


def _backfill(actor, queue, since, until) -> int:
    job = services.backfill_start(actor=actor, queue=queue, since=since, until=until)
    return services.backfill_run(job_id=job.pk).sampled


def _support_answers(rng):
    correct = rng.random() < 0.8
    return {
        "correct": correct,
        "tone": rng.choice(["friendly", "friendly", "neutral", "curt"]),
        "issues": [] if correct else rng.sample(["hallucination", "missing info"], 1),
        "helpful": rng.choice([4, 5]) if correct else rng.choice([1, 2, 3]),
    }


def seed(*, org, users, stdout) -> None:
    rng = random.Random(f"reviews-{org.slug}")
    maint = Actor(org=org, user=users["maint1"], role="maintainer")
    now = timezone.now()
    dataset = EvalDataset.objects.for_org(org).filter(name__icontains="edge").first()
    support = services.queue_create(
        actor=maint,
        name="Support replies — quality",
        instructions=(
            "Judge the **answer to the customer**: is it correct against our policies, "
            "and is the tone right? Add a corrected answer when you can."
        ),
        rubric=SUPPORT_RUBRIC,
        reviewers_per_item=1,
        sla_hours=48,
        eval_dataset=dataset,
    )
    services.rule_create(
        actor=maint,
        queue=support,
        rate=0.3,
        filters={"errors_only": True},
        priority=5,
        name="Errors",
    )
    services.rule_create(
        actor=maint,
        queue=support,
        rate=0.03,
        filters={"prompt": "support-reply"},
        name="Support replies, 3%",
    )
    summaries = services.queue_create(
        actor=maint,
        name="Ticket summaries — double-checked",
        instructions="Two reviewers per summary. Does it say what the ticket says?",
        rubric=SUMMARY_RUBRIC,
        reviewers_per_item=2,
        sla_hours=72,
    )
    services.rule_create(
        actor=maint,
        queue=summaries,
        rate=0.06,
        filters={"prompt": "summarize-ticket"},
        name="Summaries, 6%",
    )
    for queue in (support, summaries):
        for who in ("reviewer1", "reviewer2"):
            services.reviewer_grant(actor=maint, queue=queue, username=users[who].username)
    since, until = now - timedelta(days=15), now + timedelta(minutes=1)
    sampled = _backfill(maint, support, since, until) + _backfill(maint, summaries, since, until)

    r1 = Actor(org=org, user=users["reviewer1"], role="reviewer")
    r2 = Actor(org=org, user=users["reviewer2"], role="reviewer")
    # Some work done: reviewer1 labelled a dozen support replies.
    for _ in range(12):
        assignment = services.item_claim(actor=r1, queue=support)
        if assignment is None:
            break
        answers = _support_answers(rng)
        services.review_submit(
            actor=r1,
            item=assignment.item,
            answers=answers,
            comment="" if answers["correct"] else "Contradicts the refund policy.",
        )
    # Overlap: both reviewers on 14 summaries, disagreeing on some.
    for i in range(14):
        a1 = services.item_claim(actor=r1, queue=summaries)
        if a1 is None:
            break
        item = a1.item
        first = {"faithful": True, "priority": "right", "quality": rng.choice([3, 4, 5])}
        services.review_submit(actor=r1, item=item, answers=first)
        a2 = services.item_claim(actor=r2, queue=summaries)
        if a2 is None or a2.item_id != item.pk:
            if a2 is not None:
                services.item_release(actor=r2, item=a2.item)
            continue
        second = dict(first)
        if i % 5 == 1:
            second["faithful"] = False
        if i % 7 == 3:
            second["priority"] = "too low"
        if i % 6 == 4:
            second["quality"] = max(1, first["quality"] - 1)
        services.review_submit(actor=r2, item=item, answers=second)
    # A few items sampled long ago and still waiting: overdue.
    late = list(
        QueueItem.objects.filter(queue=support, state="open")
        .order_by("id")
        .values_list("id", flat=True)[:4]
    )
    QueueItem.objects.filter(pk__in=late).update(
        created_at=now - timedelta(days=3), due_at=now - timedelta(days=1)
    )
    pending = {
        q.name: QueueItem.objects.filter(queue=q, state="open").count()
        for q in (support, summaries)
    }
    stdout.write(
        f"{org.slug}: review queues seeded ({sampled} items sampled; pending "
        + ", ".join(f"{name}: {n}" for name, n in pending.items())
        + ")"
    )
