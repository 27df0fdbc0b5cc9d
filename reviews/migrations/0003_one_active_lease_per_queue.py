from django.db import migrations, models


class Migration(migrations.Migration):
    """At most one active lease per (queue, reviewer), in the database. The partial unique
    index replaces the plain partial index on the same columns."""

    dependencies = [("reviews", "0002_release_duplicate_active_leases")]

    operations = [
        migrations.RemoveIndex(model_name="assignment", name="assignment_active_reviewer"),
        migrations.AddConstraint(
            model_name="assignment",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "active")),
                fields=("queue", "reviewer"),
                name="assignment_one_active_per_queue",
            ),
        ),
    ]
