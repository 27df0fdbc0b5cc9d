"""llmops.common.hygiene: which text is refused, and the field path a 400 names."""

from __future__ import annotations

import pytest
from django.urls import reverse

from llmops.common.errors import InvalidInput
from llmops.common.hygiene import check_json, json_problem, printable, text_problem


@pytest.mark.parametrize(
    "value, expected",
    [
        ({"name": "a\x00"}, ("name", "contains a NUL character")),
        (
            {"cases": [{"input": {"q": "\ud800"}}]},
            ("cases[0].input.q", "contains an unpaired surrogate"),
        ),
        ({"m": {"x\x00y": 1}}, ("m.x\\u0000y", "has a key that contains a NUL character")),
        ({"metrics": {"f1": float("inf")}}, ("metrics.f1", "is not a finite number")),
        ("\x00", ("body", "contains a NUL character")),
        ([1, ["ok", "\udfff"]], ("[1][1]", "contains an unpaired surrogate")),
    ],
)
def test_json_problem_names_the_field(value, expected):
    assert json_problem(value) == expected


def test_clean_json_passes_unchanged():
    value = {"emoji": "\U0001f600", "tab": "a\tb\nc", "n": [1, 2.5, None, True]}
    assert json_problem(value) is None
    assert check_json(value) is value
    assert text_problem("plain") is None


def test_deep_json_is_walked_without_recursion():
    value = "\x00"
    for _ in range(5000):
        value = [value]
    assert json_problem(value)[1] == "contains a NUL character"


def test_check_json_raises_invalid_input_with_field():
    with pytest.raises(InvalidInput) as info:
        check_json({"a": ["\x00"]})
    assert info.value.message == "a[0] contains a NUL character."
    assert info.value.details["field"] == "a[0]"


def test_printable_escapes_what_it_names():
    assert printable("a\x00\ud800\x1b") == "a\\u0000\\ud800\\u001b"


def test_api_body_refusal_format(acme, api_key, api):
    raw = api_key(acme, ["evals:write"])
    response = api(raw).generic(
        "POST",
        reverse("evals_api:datasets"),
        '{"name": "ok", "description": "x\\ud800"}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "description contains an unpaired surrogate.",
            "details": {
                "field": "description",
                "fields": {"description": ["description contains an unpaired surrogate."]},
            },
        }
    }
