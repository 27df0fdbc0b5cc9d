"""Batch ingest with text the database cannot store: a NUL character or an unpaired
surrogate in one item is that item's error (with its external_id); the others are stored."""

from __future__ import annotations

import json

import pytest

from llmops.traces.models import Generation

from .conftest import item

pytestmark = pytest.mark.django_db


def _body(items_json: list[str]) -> bytes:
    return ('{"generations": [' + ", ".join(items_json) + "]}").encode()


@pytest.mark.parametrize(
    "bad, field, problem",
    [
        ({"output": "a\u0000b"}, "output", "NUL character"),
        ({"input": [{"role": "user", "content": "x\u0000"}]}, "input[0].content", "NUL"),
        ({"metadata": {"k\u0000": "v"}}, "metadata.k", "NUL"),
        ({"tags": ["ok", "t\u0000"]}, "tags[1]", "NUL"),
        ({"user_ref": "\u0000"}, "user_ref", "NUL"),
    ],
)
def test_nul_in_one_item_rejects_only_that_item(acme, ingest_key, post_batch, bad, field, problem):
    r = post_batch(ingest_key, [item("good-1"), item("bad", **bad), item("good-2")])
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["accepted"] == 2 and body["rejected"] == 1
    [error] = body["errors"]
    assert error["index"] == 1
    assert error["external_id"] == "bad"
    assert error["message"].startswith(field) and problem in error["message"]
    stored = set(
        Generation.objects.filter(organization=acme.org).values_list("external_id", flat=True)
    )
    assert stored == {"good-1", "good-2"}


def test_unpaired_surrogate_in_one_item_rejects_only_that_item(acme, ingest_key, post_batch):
    good = json.dumps(item("good"))
    bad = json.dumps(item("bad-surrogate")).replace('"It ships today."', '"x\\ud800y"')
    assert "\\ud800" in bad
    r = post_batch(ingest_key, _body([good, bad]))
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["accepted"] == 1 and body["rejected"] == 1
    [error] = body["errors"]
    assert error["index"] == 1
    assert error["external_id"] == "bad-surrogate"
    assert error["message"] == "output contains an unpaired surrogate."
    assert Generation.objects.filter(organization=acme.org, external_id="good").exists()


def test_a_paired_surrogate_escape_is_stored(acme, ingest_key, post_batch):
    raw = json.dumps(item("emoji")).replace('"It ships today."', '"\\ud83d\\ude00"')
    r = post_batch(ingest_key, _body([raw]))
    assert r.json()["accepted"] == 1, r.content
    assert Generation.objects.get(organization=acme.org, external_id="emoji").output == "\U0001f600"


def test_invalid_items_carry_their_external_id(acme, ingest_key, post_batch):
    r = post_batch(ingest_key, [item("ok"), item("typed", input_tokens="12"), {"model": "m"}])
    body = r.json()
    assert body["accepted"] == 1
    assert [(e["index"], e["external_id"]) for e in body["errors"]] == [(1, "typed"), (2, None)]


def test_number_out_of_range_in_one_item_rejects_only_that_item(acme, ingest_key, post_batch):
    good = json.dumps(item("good"))
    bad = json.dumps(item("huge")).replace('"latency_ms": 800', '"latency_ms": 1e309')
    r = post_batch(ingest_key, _body([good, bad]))
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["accepted"] == 1
    assert body["errors"][0]["external_id"] == "huge"
    assert body["errors"][0]["message"] == "latency_ms is not a finite number."


def test_a_body_that_is_not_json_is_still_one_400(ingest_key, post_batch):
    r = post_batch(ingest_key, b'{"generations": [')
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid"
