"""The hot writes of reviews behind one interface: claim the next item, read a reviewer's
lease, count a submitted review. They run for every item, so they are plain SQL (the ORM
compiling these small queries cost more CPU than the database answering them).

`current()` picks the implementation for the connection: `PostgresBackend` claims in one
statement with FOR UPDATE SKIP LOCKED; `PortableBackend` (SQLite, which serialises writers
with IMMEDIATE transactions) builds the same pick with the ORM. Both must leave the same
rows behind (tests/reviews/test_claims.py and test_postgres.py). Table names come from the
models' `_meta.db_table`, states from their enums, passed as query parameters."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import Assignment, QueueItem

ITEM_TABLE = QueueItem._meta.db_table
ASSIGNMENT_TABLE = Assignment._meta.db_table
OPEN, DONE = QueueItem.State.OPEN.value, QueueItem.State.DONE.value
ACTIVE, SUBMITTED = Assignment.State.ACTIVE.value, Assignment.State.SUBMITTED.value

ASSIGNMENT_FIELDS = [
    "id",
    "organization_id",
    "queue_id",
    "item_id",
    "reviewer_id",
    "state",
    "claimed_at",
    "lease_expires_at",
]
_COLUMNS = ", ".join(ASSIGNMENT_FIELDS)
_DATETIME_COLUMNS = (
    ASSIGNMENT_FIELDS.index("claimed_at"),
    ASSIGNMENT_FIELDS.index("lease_expires_at"),
)

HELD_SQL = (
    f"SELECT {_COLUMNS} FROM {ASSIGNMENT_TABLE} "
    "WHERE queue_id = %s AND reviewer_id = %s AND state = %s "
    "ORDER BY claimed_at, id LIMIT 1"
)
OWN_SQL = f"SELECT {_COLUMNS} FROM {ASSIGNMENT_TABLE} WHERE item_id = %s AND reviewer_id = %s"
SUBMITTED_SQL = f"UPDATE {ASSIGNMENT_TABLE} SET state = %s, finished_at = %s WHERE id = %s"
COUNT_REVIEW_SQL = f"""
UPDATE {ITEM_TABLE}
SET reviews_done = reviews_done + 1,
    active_claims = active_claims - 1,
    state = CASE WHEN reviews_done + 1 >= reviews_needed THEN %(done)s ELSE state END,
    completed_at = CASE WHEN reviews_done + 1 >= reviews_needed THEN %(now)s
                   ELSE completed_at END
WHERE id = %(item)s
RETURNING state, reviews_needed, reviews_done
"""

# One statement: pick the next item with SKIP LOCKED over the partial index of open items
# (the query `PortableBackend._candidate` builds), count the claim on it, record the lease.
CLAIM_PG = f"""
WITH picked AS (
    SELECT i.id FROM {ITEM_TABLE} i
    WHERE i.queue_id = %(queue)s AND i.state = %(open)s
      AND i.reviews_done < i.reviews_needed - i.active_claims
      AND NOT EXISTS (
          SELECT 1 FROM {ASSIGNMENT_TABLE} a WHERE a.item_id = i.id AND a.reviewer_id = %(user)s
      )
    ORDER BY i.priority DESC, i.created_at, i.id
    LIMIT 1
    FOR UPDATE OF i SKIP LOCKED
), bumped AS (
    UPDATE {ITEM_TABLE} q SET active_claims = q.active_claims + 1
    FROM picked WHERE q.id = picked.id
    RETURNING q.id, q.generation_id
)
INSERT INTO {ASSIGNMENT_TABLE}
    (organization_id, queue_id, item_id, reviewer_id, state, claimed_at, lease_expires_at,
     skip_reason)
SELECT %(org)s, %(queue)s, bumped.id, %(user)s, %(active)s, %(now)s, %(lease)s, ''
FROM bumped
RETURNING id, item_id, (SELECT generation_id FROM bumped)
"""


def _aware(value):
    """SQLite hands back naive UTC text for datetimes in raw queries."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def _assignment_row(sql: str, params: list) -> Assignment | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index in _DATETIME_COLUMNS:
        values[index] = _aware(values[index])
    return Assignment.from_db("default", ASSIGNMENT_FIELDS, values)


class PortableBackend:
    """Plain SQL every supported database runs, and the claim built with the ORM."""

    lock_clause = ""

    def held(self, queue, user) -> Assignment | None:
        """The reviewer's live (or lapsed, unswept) lease in the queue, oldest first."""
        return _assignment_row(HELD_SQL, [queue.pk, user.pk, ACTIVE])

    def own_assignment(self, item, user) -> Assignment | None:
        """The reviewer's assignment on the item (locked where the database can)."""
        return _assignment_row(OWN_SQL + self.lock_clause, [item.pk, user.pk])

    def mark_submitted(self, assignment: Assignment, now: datetime) -> None:
        with connection.cursor() as cursor:
            cursor.execute(SUBMITTED_SQL, [SUBMITTED, now, assignment.pk])
        assignment.state, assignment.finished_at = SUBMITTED, now

    def count_review(self, item_id: int, now: datetime) -> tuple[str, int, int]:
        """Count one submitted review on the item and close it when it has all it needs, in
        one statement: returns the item's state, reviews needed and done."""
        with connection.cursor() as cursor:
            cursor.execute(COUNT_REVIEW_SQL, {"done": DONE, "now": now, "item": item_id})
            return cursor.fetchone()

    def claim(self, queue, user, now: datetime, lease: datetime) -> Assignment | None:
        """Take the next item for the reviewer and record their lease, or None."""
        item = self._candidate(queue, user)
        if item is None:
            return None
        assignment = Assignment.objects.create(
            organization_id=queue.organization_id,
            queue_id=queue.pk,
            item_id=item.pk,
            reviewer_id=user.pk,
            claimed_at=now,
            lease_expires_at=lease,
        )
        QueueItem.objects.filter(pk=item.pk).update(active_claims=F("active_claims") + 1)
        item.queue = queue  # callers go on to review it: no second fetch of the queue
        assignment.item = item
        return assignment

    def _candidate(self, queue, user) -> QueueItem | None:
        """The next item this reviewer may take, locked: priority, then age. SQLite
        serialises writers anyway, where the lock clause is simply not emitted."""
        mine = Assignment.objects.filter(item_id=OuterRef("pk"), reviewer_id=user.pk)
        return (
            QueueItem.objects.filter(
                queue_id=queue.pk,
                state=QueueItem.State.OPEN,
                reviews_done__lt=F("reviews_needed") - F("active_claims"),
            )
            .exclude(Exists(mine))
            .order_by("-priority", "created_at", "id")
            .select_for_update(skip_locked=True, of=("self",))
            .only("id", "queue_id", "generation_id", "organization_id")
            .first()
        )


class PostgresBackend(PortableBackend):
    """PostgreSQL: row locks on the reviewer's assignment, and the claim in one statement."""

    lock_clause = " FOR UPDATE"

    def claim(self, queue, user, now: datetime, lease: datetime) -> Assignment | None:
        params = {
            "queue": queue.pk,
            "user": user.pk,
            "org": queue.organization_id,
            "now": now,
            "lease": lease,
            "open": OPEN,
            "active": ACTIVE,
        }
        with connection.cursor() as cursor:
            cursor.execute(CLAIM_PG, params)
            row = cursor.fetchone()
        if row is None:
            return None
        assignment_id, item_id, generation_id = row
        # Only what the statement returned; other fields load on access (deferred).
        item = QueueItem.from_db(
            "default",
            ["id", "organization_id", "queue_id", "generation_id"],
            [item_id, queue.organization_id, queue.pk, generation_id],
        )
        item.queue = queue
        assignment = Assignment(
            pk=assignment_id,
            organization_id=queue.organization_id,
            queue=queue,
            item=item,
            reviewer_id=user.pk,
            state=Assignment.State.ACTIVE,
            claimed_at=now,
            lease_expires_at=lease,
        )
        assignment._state.adding = False
        return assignment


_PORTABLE, _POSTGRES = PortableBackend(), PostgresBackend()


def current() -> PortableBackend:
    """The hot-write implementation for the default connection's database."""
    return _POSTGRES if connection.vendor == "postgresql" else _PORTABLE
