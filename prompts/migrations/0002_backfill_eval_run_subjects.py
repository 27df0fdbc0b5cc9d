"""Back-fill what an eval run judged (content hash, model id) for runs recorded for a version.

A run uploaded to a version's eval-runs endpoint was created and linked in one transaction,
by the same actor, to that version alone. Such runs take the version's content hash (and its
pinned model when the run named none or the same one). Every other run keeps blank facts: it
can no longer be attached, and a link to it no longer counts for the eval gate."""

from datetime import timedelta

from django.db import migrations

SAME_REQUEST = timedelta(seconds=5)


def backfill(apps, schema_editor):
    EvalRun = apps.get_model("evals", "EvalRun")
    Link = apps.get_model("prompts", "PromptVersionEvalRun")
    links = (
        Link.objects.filter(eval_run__subject_content_hash="")
        .select_related("eval_run", "version", "version__model")
        .order_by("eval_run_id", "id")
    )
    by_run: dict[int, list] = {}
    for link in links.iterator():
        by_run.setdefault(link.eval_run_id, []).append(link)
    for run_links in by_run.values():
        if len(run_links) != 1:
            continue
        link = run_links[0]
        run, version = link.eval_run, link.version
        pinned = version.model.model_id
        if run.model_id not in ("", pinned):
            continue
        if run.uploaded_by_label != link.attached_by_label:
            continue
        if abs(link.created_at - run.created_at) > SAME_REQUEST:
            continue
        EvalRun.objects.filter(pk=run.pk).update(
            subject_content_hash=version.content_hash, model_id=pinned
        )


class Migration(migrations.Migration):
    dependencies = [
        ("prompts", "0001_registry"),
        ("evals", "0002_evalrun_subject_content_hash"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
