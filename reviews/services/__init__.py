"""Writes for reviews, one module per use case (README.md, "Reviews"; docs/architecture.md):

- `queues`: queues and their rubric, sampling rules and reviewers; overdue notices.
- `sampling`: sampling at ingest (a traces receiver) and backfills.
- `claims`: claiming the next item under a lease, sweeping lapsed leases.
- `reviewing`: submitting, skipping and releasing a claimed item; sending it to evals.
- `adjudication`: the final answers of an item whose reviewers disagreed.
- `export`: a queue's reviews as JSON lines or CSV.

One transaction per use case; governance changes are audited last. The hot statements
(claim, lease, review count) live behind `reviews.backends`. Import from here."""

from .adjudication import item_adjudicate
from .base import GRANT
from .claims import item_claim, leases_sweep
from .export import queue_export
from .queues import (
    QUEUE_FIELDS,
    overdue_notify,
    queue_create,
    queue_update,
    reviewer_grant,
    reviewer_revoke,
    rule_create,
    rule_delete,
)
from .reviewing import item_add_to_evals, item_release, item_skip, review_submit
from .sampling import (
    BACKFILL_CHUNK,
    MAX_BACKFILL_DAYS,
    backfill_run,
    backfill_start,
    sample_generations,
)

__all__ = [
    "BACKFILL_CHUNK",
    "GRANT",
    "MAX_BACKFILL_DAYS",
    "QUEUE_FIELDS",
    "backfill_run",
    "backfill_start",
    "item_add_to_evals",
    "item_adjudicate",
    "item_claim",
    "item_release",
    "item_skip",
    "leases_sweep",
    "overdue_notify",
    "queue_create",
    "queue_export",
    "queue_update",
    "review_submit",
    "reviewer_grant",
    "reviewer_revoke",
    "rule_create",
    "rule_delete",
    "sample_generations",
]
