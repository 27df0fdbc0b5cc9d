"""Bad input on the reviews routes is a 400 naming the field (API) or the form shown again
with the error (HTML), never a server error: lists for scalars, NUL characters, unpaired
surrogates, numbers too large for the database or for int(), digits int() refuses."""

from __future__ import annotations

import pytest
from django.urls import reverse

from reviews import services
from reviews.models import Review, ReviewQueue

from .conftest import GOOD, fill, make_generations, make_queue

SCALE = {"key": "a", "label": "A", "type": "scale", "min": 1, "max": 3}


def _url(name, **kw):
    return reverse(f"reviews_api:{name}", kwargs=kw)


def _fields(response) -> dict:
    return response.json()["error"]["details"].get("fields", {})


@pytest.fixture
def maint(acme, api_key, api):
    client = api(api_key(acme, ["reviews:manage"], user=acme.users["maint1"]))
    client.raise_request_exception = False  # a server error is an answer to assert on
    return client


@pytest.fixture
def reviewer(acme, api_key, api):
    client = api(api_key(acme, ["reviews:write"], user=acme.users["reviewer1"]))
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ["a"]}, "name"),
        ({"name": {"a": 1}}, "name"),
        ({"name": "a\u0000b"}, "name"),
        ({"name": "q", "instructions": ["x"]}, "instructions"),
        ({"name": "q", "instructions": "x\u0000"}, "instructions"),
        ({"name": "q", "reviewers_per_item": 10**30}, "reviewers_per_item"),
        ({"name": "q", "reviewers_per_item": [1]}, "reviewers_per_item"),
        ({"name": "q", "lease_minutes": 10**30}, "lease_minutes"),
        ({"name": "q", "sla_hours": 10**30}, "sla_hours"),
        ({"name": "q", "sla_hours": [1]}, "sla_hours"),
        ({"name": "q", "eval_dataset": 10**30}, "eval_dataset"),
        ({"name": "q", "eval_dataset": [1]}, "eval_dataset"),
        ({"name": "q", "active": [True]}, "active"),
        ({"name": "q", "rubric": [1]}, "rubric"),
        # Digits str.isdigit() accepts but int() refuses, and more digits than int() reads.
        (
            {"name": "q", "rubric": {"questions": [{**SCALE, "labels": {"\u00b2": "x"}}]}},
            "rubric.a",
        ),
        (
            {"name": "q", "rubric": {"questions": [{**SCALE, "labels": {"1" * 5000: "x"}}]}},
            "rubric.a",
        ),
        (
            {"name": "q", "rubric": {"questions": [{**SCALE, "min": 10**30, "max": 10**30 + 1}]}},
            "rubric.a",
        ),
        ({"name": "q", "rubric": {"questions": [{**SCALE, "help": ["x"]}]}}, "rubric.a"),
        (
            {"name": "q", "rubric": {"questions": [{**SCALE, "label": "a\u0000"}]}},
            "rubric.questions[0].label",
        ),
    ],
)
def test_queue_create_refuses_bad_fields_with_a_400_naming_them(maint, body, field):
    r = maint.post(_url("queues"), body, format="json")
    assert r.status_code == 400, r.content
    assert field in _fields(r), r.json()
    assert not ReviewQueue.objects.filter(name="q").exists()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"name": "q", "instructions": "\\ud800"}', "instructions"),
        (
            b'{"name": "q", "rubric": {"questions": [{"key": "a", "type": "scale", "max": 1e999}]}}',
            "rubric.questions[0].max",
        ),
    ],
)
def test_queue_create_refuses_raw_json_the_client_cannot_encode(maint, raw, field):
    r = maint.generic("POST", _url("queues"), raw, content_type="application/json")
    assert r.status_code == 400, r.content
    assert field in _fields(r)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"answers": [1]}, "answers"),
        ({"answers": {**GOOD, "correct": [True]}}, "answers.correct"),
        ({"answers": {**GOOD, "tone": ["neutral"]}}, "answers.tone"),
        ({"answers": {**GOOD, "tone": "neutral\u0000"}}, "answers.tone"),
        ({"answers": {**GOOD, "quality": "\u00b2"}}, "answers.quality"),
        ({"answers": {**GOOD, "quality": "9" * 5000}}, "answers.quality"),
        ({"answers": {**GOOD, "quality": 10**30}}, "answers.quality"),
        ({"answers": {**GOOD, "quality": [4]}}, "answers.quality"),
        ({"answers": {**GOOD, "issues": [["format"]]}}, "answers.issues"),
        ({"answers": {**GOOD, "notes": ["x"]}}, "answers.notes"),
        ({"answers": {**GOOD, "notes": "x\u0000"}}, "answers.notes"),
        ({"answers": GOOD, "corrected_output": ["x"]}, "corrected_output"),
        ({"answers": GOOD, "corrected_output": "x\u0000"}, "corrected_output"),
        ({"answers": GOOD, "comment": {"a": 1}}, "comment"),
        ({"answers": GOOD, "comment": "x\u0000"}, "comment"),
    ],
)
def test_review_refuses_bad_fields_with_a_400_naming_them(acme, reviewer, body, field):
    queue = make_queue(acme)
    fill(queue, make_generations(acme, 1))
    item_id = reviewer.post(_url("claim", queue_id=queue.pk)).json()["id"]
    r = reviewer.post(_url("item_review", item_id=item_id), body, format="json")
    assert r.status_code == 400, r.content
    assert field in _fields(r), r.json()
    assert not Review.objects.exists()


def test_huge_ids_and_bad_query_values_are_not_server_errors(acme, maint, reviewer):
    queue = make_queue(acme)
    huge = 10**30
    for url in (_url("queue", queue_id=huge), _url("stats", queue_id=huge)):
        assert maint.get(url).status_code == 404
    assert maint.get(_url("export", queue_id=huge)).status_code == 404
    assert reviewer.post(_url("claim", queue_id=huge)).status_code == 404
    for name in ("item_review", "item_release"):
        assert reviewer.post(_url(name, item_id=huge), {}, format="json").status_code == 404
    r = maint.get(_url("export", queue_id=queue.pk) + "?format=a%00b")
    assert r.status_code == 400 and "format" in r.json()["error"]["message"]
    r = maint.get(_url("export", queue_id=queue.pk) + "?format=xml")
    assert r.status_code == 400 and "format" in _fields(r)


# --- HTML forms --------------------------------------------------------------------------


def _settings(world, queue):
    return reverse("reviews:settings", kwargs={"org_slug": world.org.slug, "queue_id": queue.pk})


@pytest.mark.parametrize(
    ("rubric", "shown"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"questions": [{"key": "a", "type": "scale", "min": 1' + "0" * 5000 + "}]}", "digits"),
        ('{"questions": [{"key": "a", "type": "scale", "min": 1, "max": NaN}]}', "NaN"),
        ('{"questions": [{"key": "a", "type": "scale", "min": 1, "max": 1e999}]}', "finite"),
        ('{"questions": [{"key": "a", "type": "text", "label": "a\\u0000"}]}', "NUL"),
    ],
)
def test_rubric_form_shows_the_error_for_json_it_cannot_store(acme, login, rubric, shown):
    queue = make_queue(acme)
    before = queue.rubric
    client = login(acme.users["maint1"])
    client.raise_request_exception = False
    r = client.post(_settings(acme, queue), {"op": "rubric", "rubric": rubric})
    assert r.status_code == 200, r.status_code
    assert shown in r.content.decode()
    queue.refresh_from_db()
    assert queue.rubric == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("cost_above", "1e999"), ("latency_above", "9" * 30), ("version", "9" * 30)],
)
def test_rule_form_refuses_numbers_too_large_to_store(acme, login, field, value):
    queue = make_queue(acme)
    client = login(acme.users["maint1"])
    client.raise_request_exception = False
    r = client.post(
        _settings(acme, queue), {"op": "rule_add", "rate": "1", "priority": "0", field: value}
    )
    assert r.status_code == 200
    assert f'id="id_{field}"' in r.content.decode() and "errorlist" in r.content.decode()
    assert not queue.rules.exists()


def test_rule_service_refuses_filters_that_are_not_finite_or_too_large(acme):
    from llmops.common.errors import InvalidInput

    queue = make_queue(acme)
    for filters in (
        {"cost_above": float("inf")},
        {"latency_above": 10**400},
        {"version": 10**30},
    ):
        with pytest.raises(InvalidInput) as caught:
            services.rule_create(actor=acme.actor("maint1"), queue=queue, rate=1, filters=filters)
        assert caught.value.field == "filters"
