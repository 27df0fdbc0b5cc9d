import csv
import io
import json
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from reviews.models import Assignment, Review

from .conftest import GOOD, RUBRIC, fill, make_generations, make_queue


def _url(name, **kw):
    return reverse(f"reviews_api:{name}", kwargs=kw)


def test_queue_create_list_get(acme, api_key, api):
    maint = api(api_key(acme, ["reviews:manage"], user=acme.users["maint1"]))
    r = maint.post(
        _url("queues"),
        {"name": "API queue", "rubric": RUBRIC, "reviewers_per_item": 2},
        format="json",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["name"] == "API queue" and body["reviewers_per_item"] == 2
    assert body["rubric"]["questions"][0]["key"] == "correct"
    assert [q["name"] for q in maint.get(_url("queues")).json()["results"]] == ["API queue"]
    assert maint.get(_url("queue", queue_id=body["id"])).json()["id"] == body["id"]


def test_bad_rubric_is_400_naming_the_question(acme, api_key, api):
    maint = api(api_key(acme, ["reviews:manage"], user=acme.users["maint1"]))
    bad = {
        "questions": [
            {"key": "ok", "type": "boolean"},
            {"key": "tone", "type": "choice", "options": ["x"]},
        ]
    }
    r = maint.post(_url("queues"), {"name": "q", "rubric": bad}, format="json")
    assert r.status_code == 400
    error = r.json()["error"]
    assert "'tone'" in error["message"] and "rubric.tone" in error["details"]["fields"]


def test_claim_review_release_flow(acme, api_key, api):
    queue = make_queue(acme)
    fill(queue, make_generations(acme, 2))
    reviewer = api(api_key(acme, ["reviews:write"], user=acme.users["reviewer1"]))
    r = reviewer.post(_url("claim", queue_id=queue.pk))
    assert r.status_code == 200
    item = r.json()
    assert item["rubric"]["questions"][0]["key"] == "correct" and item["lease_expires_at"]
    assert item["generation"]["input"] == {"messages": [{"role": "user", "content": "question 0"}]}
    assert reviewer.post(_url("claim", queue_id=queue.pk)).json()["id"] == item["id"]
    bad = reviewer.post(
        _url("item_review", item_id=item["id"]), {"answers": {"correct": True}}, format="json"
    )
    assert bad.status_code == 400 and "'tone'" in bad.json()["error"]["message"]
    ok = reviewer.post(
        _url("item_review", item_id=item["id"]),
        {"answers": GOOD, "corrected_output": "fixed", "comment": "meh"},
        format="json",
    )
    assert ok.status_code == 201 and ok.json()["answers"] == GOOD
    again = reviewer.post(_url("item_review", item_id=item["id"]), {"answers": GOOD}, format="json")
    assert again.status_code == 409
    second = reviewer.post(_url("claim", queue_id=queue.pk)).json()
    assert reviewer.post(_url("item_release", item_id=second["id"])).status_code == 200
    assert reviewer.post(_url("claim", queue_id=queue.pk)).status_code == 204


def test_expired_claim_taken_by_someone_else_is_409(acme, api_key, api):
    queue = make_queue(acme, reviewers=("reviewer1", "reviewer2"))
    fill(queue, make_generations(acme, 1))
    r1 = api(api_key(acme, ["reviews:write"], user=acme.users["reviewer1"]))
    r2 = api(api_key(acme, ["reviews:write"], user=acme.users["reviewer2"]))
    item = r1.post(_url("claim", queue_id=queue.pk)).json()
    Assignment.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=5))
    assert r2.post(_url("claim", queue_id=queue.pk)).json()["id"] == item["id"]
    late = r1.post(_url("item_review", item_id=item["id"]), {"answers": GOOD}, format="json")
    assert late.status_code == 409
    assert "taken by someone else" in late.json()["error"]["message"]
    assert late.json()["error"]["code"] == "claim_expired"


def test_reviewer_without_grant_gets_404_and_machine_key_cannot_review(acme, api_key, api):
    queue = make_queue(acme, reviewers=())
    fill(queue, make_generations(acme, 1))
    reviewer = api(api_key(acme, ["reviews:write"], user=acme.users["reviewer2"]))
    assert reviewer.get(_url("queue", queue_id=queue.pk)).status_code == 404
    assert reviewer.post(_url("claim", queue_id=queue.pk)).status_code == 404
    assert reviewer.get(_url("queues")).json()["results"] == []
    machine = api(api_key(acme, ["reviews:manage"]))
    assert machine.get(_url("queue", queue_id=queue.pk)).status_code == 200
    assert machine.post(_url("claim", queue_id=queue.pk)).status_code == 403


def test_stats_and_export_with_csv_safe_cells(acme, api_key, api):
    queue = make_queue(acme, overlap=2, reviewers=("reviewer1", "reviewer2"))
    (item,) = fill(queue, make_generations(acme, 1))
    from reviews import services

    for who, answers in (("reviewer1", GOOD), ("reviewer2", {**GOOD, "tone": "rude"})):
        actor = acme.actor(who)
        services.item_claim(actor=actor, queue=queue)
        services.review_submit(actor=actor, item=item, answers=answers, comment='=HYPERLINK("x")')
    maint = api(api_key(acme, ["reviews:manage"], user=acme.users["maint1"]))
    stats = maint.get(_url("stats", queue_id=queue.pk)).json()
    assert stats["progress"]["done"] == 1 and stats["progress"]["adjudicate"] == 1
    tone = next(a for a in stats["agreement"] if a["name"] == "tone")
    assert tone["agreement"] == 0.0
    r = maint.get(_url("export", queue_id=queue.pk) + "?format=jsonl")
    lines = [json.loads(line) for line in b"".join(r.streaming_content).decode().splitlines()]
    assert len(lines) == 1 and len(lines[0]["reviews"]) == 2
    r = maint.get(_url("export", queue_id=queue.pk) + "?format=csv")
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert rows[0][:4] == ["item", "external_id", "reviewer", "correct"]
    assert all(row[rows[0].index("comment")].startswith("'=") for row in rows[1:])
    reviewer = api(api_key(acme, ["reviews:write"], user=acme.users["reviewer1"]))
    assert reviewer.get(_url("export", queue_id=queue.pk)).status_code == 403
    assert Review.objects.count() == 2


def test_export_needs_reviews_manage_as_the_readme_says(acme, api_key, api):
    """README's scope table: queue export is `reviews:manage`; a maintainer's key with
    `reviews:write` only may read the queue and its stats but not export it."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `reviews:manage`"))
    assert "/api/v1/queues/{id}/export" in row
    queue = make_queue(acme)
    maint = acme.users["maint1"]
    writer = api(api_key(acme, ["reviews:write"], user=maint))
    assert writer.get(_url("stats", queue_id=queue.pk)).status_code == 200
    assert writer.get(_url("export", queue_id=queue.pk)).status_code == 403
    manager = api(api_key(acme, ["reviews:manage"], user=maint))
    assert manager.get(_url("export", queue_id=queue.pk) + "?format=csv").status_code == 200
    machine = api(api_key(acme, ["reviews:manage"]))
    assert machine.get(_url("export", queue_id=queue.pk) + "?format=jsonl").status_code == 200
