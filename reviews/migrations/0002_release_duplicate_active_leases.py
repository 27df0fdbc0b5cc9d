"""Before one active lease per (queue, reviewer) is enforced: a reviewer who holds several
(parallel claims before the constraint) keeps the oldest; the others are released and
their slots given back to the items."""

from django.db import migrations
from django.db.models import Count, F
from django.utils import timezone


def release_duplicates(apps, schema_editor):
    Assignment = apps.get_model("reviews", "Assignment")
    QueueItem = apps.get_model("reviews", "QueueItem")
    now = timezone.now()
    doubled = (
        Assignment.objects.filter(state="active")
        .values("queue_id", "reviewer_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    for pair in doubled:
        rows = list(
            Assignment.objects.filter(
                state="active", queue_id=pair["queue_id"], reviewer_id=pair["reviewer_id"]
            )
            .order_by("claimed_at", "id")
            .values_list("id", "item_id")
        )
        for assignment_id, item_id in rows[1:]:
            Assignment.objects.filter(pk=assignment_id).update(state="released", finished_at=now)
            QueueItem.objects.filter(pk=item_id, active_claims__gt=0).update(
                active_claims=F("active_claims") - 1
            )


class Migration(migrations.Migration):
    dependencies = [("reviews", "0001_queues_items_reviews")]

    operations = [migrations.RunPython(release_duplicates, migrations.RunPython.noop)]
