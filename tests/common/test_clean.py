"""llmops.common.clean: each cleaner's good values, and bad values refused with the field
named (a 400, or a 413 for over-long body-sized text)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from llmops.common import clean
from llmops.common.errors import InvalidInput, TooLarge


def refused(call, field):
    with pytest.raises(InvalidInput) as caught:
        call()
    assert caught.value.field == field
    assert caught.value.details["fields"][field]
    return caught.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, ""), ("", ""), ("  hi  ", "hi"), ("line\nbreak", "line\nbreak"), ("é" * 5, "é" * 5)],
)
def test_text_good(value, expected):
    assert clean.text(value, field="title", max_length=10 if value else 1) == expected


@pytest.mark.parametrize("value", [3, b"bytes", ["a"], "a\x00b", "bad \ud800 half", "x" * 6])
def test_text_bad(value):
    refused(lambda: clean.text(value, field="title", max_length=5), "title")


def test_text_required_one_word_and_too_large():
    assert "required" in refused(
        lambda: clean.text("   ", field="name", max_length=9, required=True), "name"
    )
    refused(
        lambda: clean.text("two words", field="model_id", max_length=20, one_word=True), "model_id"
    )
    assert clean.text(" gpt-4o ", field="model_id", max_length=20, one_word=True) == "gpt-4o"
    with pytest.raises(TooLarge) as caught:
        clean.text("x" * 11, field="body", max_length=10, too_large=True)
    assert caught.value.status == 413 and caught.value.details["field"] == "body"


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), ("", None), (0, 0), ("42", 42), (7.0, 7)]
)
def test_count_good(value, expected):
    assert clean.count(value, field="n") == expected


@pytest.mark.parametrize(
    "value", [True, False, "abc", 2.5, -1, 2_000_000_001, [], "1e3", float("inf")]
)
def test_count_bad(value):
    refused(lambda: clean.count(value, field="n"), "n")


def test_count_range_and_unit():
    assert clean.count("5", field="w", min_value=1, max_value=10) == 5
    refused(lambda: clean.count(0, field="w", min_value=1, max_value=10), "w")
    refused(lambda: clean.count(11, field="w", min_value=1, max_value=10), "w")
    assert "tokens" in refused(lambda: clean.count("x", field="w", unit="tokens"), "w")


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (None, 2, None),
        ("", 2, None),
        (0, 2, Decimal("0.00")),
        ("1.005", 2, Decimal("1.00")),
        (" 3.25 ", 4, Decimal("3.2500")),
        (12.5, 2, Decimal("12.50")),
    ],
)
def test_money_good(value, places, expected):
    result = clean.money(value, field="cost", places=places)
    assert result == expected
    if expected is not None:
        assert result.as_tuple().exponent == -places


@pytest.mark.parametrize("value", [True, "ten", "-1", "NaN", "Infinity", [1], "1e12", 10**13])
def test_money_bad(value):
    refused(lambda: clean.money(value, field="cost"), "cost")


def test_money_limit_and_unit():
    assert clean.money("99999999.9999", field="p", below=Decimal("1e8"), places=4)
    refused(lambda: clean.money("100000000", field="p", below=Decimal("1e8")), "p")
    assert "USD" in refused(lambda: clean.money("x", field="p", unit="USD"), "p")


def test_timestamp_good():
    assert clean.timestamp(None, field="at") is None
    assert clean.timestamp("", field="at") is None
    parsed = clean.timestamp("2026-01-31T10:00:00+02:00", field="at")
    assert parsed == datetime(2026, 1, 31, 8, 0, tzinfo=UTC) and parsed.tzinfo == UTC
    aware = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    assert clean.timestamp(aware, field="at") == aware
    naive = clean.timestamp("2025-05-01T12:00:00", field="at")
    assert timezone.is_aware(naive)
    later = timezone.now() + timedelta(days=3)
    assert clean.timestamp(later, field="at", future=True) == later


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-01-01T00:00:00+15:00",
        "1969-12-31T23:59:59Z",
        "2026-01-01T00:00\x00",
        12345,
        date(2026, 1, 1),
    ],
)
def test_timestamp_bad(value):
    refused(lambda: clean.timestamp(value, field="detected_at"), "detected_at")


def test_timestamp_future_refused_unless_allowed():
    ahead = (timezone.now() + timedelta(days=1)).isoformat()
    assert "future" in refused(lambda: clean.timestamp(ahead, field="at"), "at")


def test_day_good_and_bad():
    assert clean.day("", field="due") is None
    assert clean.day("2026-12-31", field="due") == date(2026, 12, 31)
    assert clean.day(date(2026, 1, 2), field="due") == date(2026, 1, 2)
    assert clean.day(datetime(2026, 1, 2, 5, tzinfo=UTC), field="due") == date(2026, 1, 2)
    for bad in ("2026-02-30", "31/12/2026", "soon", 20261231, "2026-01-01\x00"):
        refused(lambda bad=bad: clean.day(bad, field="due"), "due")


def test_words_good_and_bad():
    assert clean.words(None, field="tags") == []
    assert clean.words(" a, b ,a,, ", field="tags") == ["a", "b"]
    assert clean.words(["x" * 120], field="tags", max_length=100) == ["x" * 100]
    assert clean.words(["pii"], field="classes", choices=["public", "pii"]) == ["pii"]
    refused(lambda: clean.words(["secret"], field="classes", choices=["public"]), "classes")
    refused(lambda: clean.words([1, 2], field="tags"), "tags")
    refused(lambda: clean.words({"a": 1}, field="tags"), "tags")
    refused(lambda: clean.words(["a\x00"], field="tags"), "tags")


def test_url_good_and_bad():
    assert clean.url(None, field="link") == ""
    assert clean.url(" https://example.com/x ", field="link") == "https://example.com/x"
    assert clean.url("/o/acme/incidents/1", field="link", paths=True) == "/o/acme/incidents/1"
    for bad in ("javascript:alert(1)", "ftp://example.com", "/relative", "x" * 501):
        refused(lambda bad=bad: clean.url(bad, field="link"), "link")
    refused(lambda: clean.url("//evil.example", field="link", paths=True), "link")
