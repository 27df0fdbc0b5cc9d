import pytest

from llmops.common.errors import InvalidInput
from reviews import rubric
from reviews.services import queue_create

from .conftest import RUBRIC


def test_valid_rubric_is_kept_with_defaults():
    clean = rubric.validate_rubric(RUBRIC)
    scale = clean["questions"][3]
    assert scale["level"] == "ordinal" and scale["min"] == 1 and scale["max"] == 5
    assert [q["key"] for q in clean["questions"]] == [
        "correct",
        "tone",
        "issues",
        "quality",
        "notes",
    ]


@pytest.mark.parametrize(
    "question, needle",
    [
        ({"key": "tone", "type": "choice", "options": ["a"]}, "'tone'"),
        ({"key": "score", "type": "scale", "min": 5, "max": 1}, "'score'"),
        ({"key": "kind", "type": "dropdown"}, "'kind'"),
        ({"key": "Bad Key", "type": "text"}, "Bad Key"),
        ({"key": "many", "type": "choice", "options": [str(i) for i in range(10)]}, "'many'"),
        ({"key": "flag", "type": "boolean", "required": "yes"}, "'flag'"),
    ],
)
def test_invalid_rubric_names_the_question(question, needle):
    with pytest.raises(InvalidInput) as exc:
        rubric.validate_rubric({"questions": [{"key": "ok", "type": "text"}, question]})
    assert needle in exc.value.message


def test_duplicate_keys_refused():
    with pytest.raises(InvalidInput, match="'a' appears twice"):
        rubric.validate_rubric({"questions": [{"key": "a", "type": "text"}] * 2})


def test_answers_validated_against_rubric():
    clean = rubric.validate_rubric(RUBRIC)
    ok = rubric.validate_answers(
        clean, {"correct": "true", "tone": "rude", "issues": ["safety", "format"], "quality": "3"}
    )
    assert ok == {"correct": True, "tone": "rude", "issues": ["format", "safety"], "quality": 3}
    for answers, key in [
        ({"tone": "rude", "quality": 3}, "correct"),
        ({"correct": True, "tone": "angry", "quality": 3}, "tone"),
        ({"correct": True, "tone": "rude", "quality": 9}, "quality"),
        ({"correct": True, "tone": "rude", "quality": 3, "issues": ["nope"]}, "issues"),
        ({"correct": True, "tone": "rude", "quality": 3, "extra": 1}, "extra"),
        ({"correct": "maybe", "tone": "rude", "quality": 3}, "correct"),
    ]:
        with pytest.raises(InvalidInput) as exc:
            rubric.validate_answers(clean, answers)
        assert f"'{key}'" in exc.value.message
        assert exc.value.details["fields"] == {f"answers.{key}": [exc.value.message]}


def test_shortcuts_derived_from_options():
    clean = rubric.validate_rubric(RUBRIC)
    qs = {q["key"]: q for q in clean["questions"]}
    assert [s["key"] for s in rubric.shortcuts(qs["correct"])] == ["y", "n"]
    assert [s["key"] for s in rubric.shortcuts(qs["tone"])] == ["1", "2", "3"]
    assert [(s["key"], s["value"]) for s in rubric.shortcuts(qs["quality"])][0] == ("1", 1)
    wide = rubric.validate_rubric(
        {"questions": [{"key": "t", "type": "scale", "min": -2, "max": 2}]}
    )["questions"][0]
    assert [s["key"] for s in rubric.shortcuts(wide)] == ["1", "2", "3", "4", "5"]


def test_queue_create_refuses_a_bad_rubric(acme):
    with pytest.raises(InvalidInput, match="'tone'"):
        queue_create(
            actor=acme.actor("maint1"),
            name="q",
            rubric={"questions": [{"key": "tone", "type": "choice", "options": []}]},
        )
