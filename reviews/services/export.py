"""Export of a queue's reviews (JSON lines or CSV) for its managers: the file's name, type
and lines; the API and the page stream them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from llmops.common.errors import InvalidInput, NotFound, NotPermitted
from llmops.common.text import csv_safe
from llmops.tenancy.actor import Actor
from llmops.tenancy.policy import can

from .. import selectors
from ..models import ReviewQueue

FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


def queue_export(*, actor: Actor, queue: ReviewQueue, fmt: str) -> tuple[str, str, Iterator[str]]:
    """(file name, content type, lines) of the queue's export in `fmt`. A person who may not
    see the queue gets 404, one who sees it but may not manage it 403."""
    if not can(actor, "queue.manage", queue):
        if not can(actor, "queue.view", queue):
            raise NotFound("No such queue.")
        raise NotPermitted("You may not do 'queue.manage' here.")
    if fmt not in FORMATS:
        raise InvalidInput("format is jsonl or csv.", field="format")
    rows = selectors.export_items(queue=queue)
    if fmt == "jsonl":
        lines = (json.dumps(row, default=str) + "\n" for row in rows)
    else:
        lines = _csv_lines(queue, rows)
    return f"queue-{queue.pk}-reviews.{fmt}", FORMATS[fmt], lines


def _csv_lines(queue: ReviewQueue, rows) -> Iterator[str]:
    keys = [q["key"] for q in queue.rubric.get("questions", [])]
    header = [
        "item",
        "external_id",
        "reviewer",
        *keys,
        "corrected_output",
        "comment",
        "time_spent_ms",
        "created_at",
        "final",
    ]

    def line(values):
        buf = io.StringIO()
        csv.writer(buf).writerow([csv_safe(v) for v in values])
        return buf.getvalue()

    yield line(header)
    for row in rows:
        final = json.dumps(row["final_answers"]) if row["final_answers"] else ""
        for r in row["reviews"] or [{}]:
            answers = r.get("answers", {})
            yield line(
                [
                    row["item"],
                    row["generation"]["external_id"],
                    r.get("reviewer", ""),
                    *[_cell(answers.get(k)) for k in keys],
                    r.get("corrected_output", ""),
                    r.get("comment", ""),
                    r.get("time_spent_ms", ""),
                    r.get("created_at", ""),
                    final,
                ]
            )


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return value
