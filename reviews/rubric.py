"""Rubrics: validating a queue's questions, validating answers against them, and the
keyboard shortcuts derived from each question's options. Pure functions, no database."""

from __future__ import annotations

import re
from typing import Any

from llmops.common.errors import InvalidInput

TYPES = ("boolean", "choice", "multi_choice", "scale", "text")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_QUESTIONS = 30
MAX_OPTIONS = 9  # number keys 1..9
MAX_TEXT = 20_000
SCALE_LIMIT = 1_000_000  # scale points are small integers; bigger is a typo or an attack
# A scale point written as text: ASCII digits only (str.isdigit() also takes "²", which
# int() refuses) and short (int() refuses more than 4300 digits).
INT_TEXT_RE = re.compile(r"-?[0-9]{1,7}")

DEFAULT_RUBRIC = {
    "questions": [
        {"key": "correct", "label": "Is the answer correct?", "type": "boolean", "required": True},
        {
            "key": "quality",
            "label": "Overall quality",
            "type": "scale",
            "required": True,
            "min": 1,
            "max": 5,
            "labels": {"1": "Unusable", "5": "Excellent"},
        },
        {"key": "notes", "label": "Notes", "type": "text", "required": False},
    ]
}


def _bad(message: str, key: str | None = None) -> InvalidInput:
    return InvalidInput(message, field=f"rubric.{key}" if key else "rubric")


def validate_rubric(rubric: Any) -> dict:
    """A clean copy of the rubric, or InvalidInput naming the offending question."""
    if not isinstance(rubric, dict) or not isinstance(rubric.get("questions"), list):
        raise _bad('A rubric is {"questions": [...]}.')
    questions = rubric["questions"]
    if not questions:
        raise _bad("A rubric needs at least one question.")
    if len(questions) > MAX_QUESTIONS:
        raise _bad(f"A rubric has at most {MAX_QUESTIONS} questions.")
    clean, seen = [], set()
    for index, q in enumerate(questions):
        if not isinstance(q, dict):
            raise _bad(f"Question {index + 1} is not an object.")
        key = q.get("key")
        name = f"'{key}'" if isinstance(key, str) and key else f"{index + 1}"
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise _bad(
                f"Question {name}: the key must be lowercase letters, digits and _ "
                "(starting with a letter, at most 40).",
                str(key or index + 1),
            )
        if key in seen:
            raise _bad(f"Question '{key}' appears twice.", key)
        seen.add(key)
        qtype = q.get("type")
        if qtype not in TYPES:
            raise _bad(f"Question '{key}': type must be one of {', '.join(TYPES)}.", key)
        label = q.get("label") or key
        if not isinstance(label, str) or len(label) > 300:
            raise _bad(f"Question '{key}': the label must be text of at most 300 characters.", key)
        required = q.get("required", False)
        if not isinstance(required, bool):
            raise _bad(f"Question '{key}': required must be true or false.", key)
        out: dict[str, Any] = {"key": key, "label": label, "type": qtype, "required": required}
        if qtype in ("choice", "multi_choice"):
            options = q.get("options")
            if not isinstance(options, list) or len(options) < 2:
                raise _bad(f"Question '{key}': a choice question needs at least 2 options.", key)
            if len(options) > MAX_OPTIONS:
                raise _bad(f"Question '{key}': at most {MAX_OPTIONS} options.", key)
            if not all(isinstance(o, str) and o.strip() and len(o) <= 200 for o in options):
                raise _bad(f"Question '{key}': options must be non-empty strings.", key)
            if len(set(options)) != len(options):
                raise _bad(f"Question '{key}': options must be distinct.", key)
            out["options"] = list(options)
        elif qtype == "scale":
            lo, hi = q.get("min", 1), q.get("max", 5)
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi)):
                raise _bad(f"Question '{key}': min and max must be integers.", key)
            if not all(-SCALE_LIMIT <= v <= SCALE_LIMIT for v in (lo, hi)):
                raise _bad(
                    f"Question '{key}': min and max are integers from -{SCALE_LIMIT} to "
                    f"{SCALE_LIMIT}.",
                    key,
                )
            if lo >= hi or hi - lo > 10:
                raise _bad(f"Question '{key}': a scale needs min < max and at most 11 points.", key)
            labels = q.get("labels") or {}
            if not isinstance(labels, dict) or not all(
                isinstance(v, str) and INT_TEXT_RE.fullmatch(str(k)) and lo <= int(k) <= hi
                for k, v in labels.items()
            ):
                raise _bad(f"Question '{key}': labels map scale points ({lo}..{hi}) to text.", key)
            level = q.get("level", "ordinal")
            if level not in ("ordinal", "interval"):
                raise _bad(f"Question '{key}': level is ordinal or interval.", key)
            out.update(min=lo, max=hi, labels={str(k): v for k, v in labels.items()}, level=level)
        if q.get("help"):
            if not isinstance(q["help"], str):
                raise _bad(f"Question '{key}': help is text.", key)
            out["help"] = q["help"][:500]
        clean.append(out)
    return {"questions": clean}


def _option_key(index: int) -> str:
    return str(index + 1)


def shortcuts(question: dict) -> list[dict]:
    """The options of a question with the key that chooses each: y/n for booleans, number
    keys for choices; a scale uses its own digits when they fit 0..9, else positions."""
    qtype = question["type"]
    if qtype == "boolean":
        return [
            {"value": True, "label": "Yes", "key": "y"},
            {"value": False, "label": "No", "key": "n"},
        ]
    if qtype in ("choice", "multi_choice"):
        return [
            {"value": option, "label": option, "key": _option_key(i)}
            for i, option in enumerate(question["options"])
        ]
    if qtype == "scale":
        lo, hi = question["min"], question["max"]
        digits = lo >= 0 and hi <= 9
        labels = question.get("labels", {})
        return [
            {
                "value": v,
                "label": labels.get(str(v), ""),
                "key": str(v) if digits else (_option_key(i) if i < 9 else ""),
            }
            for i, v in enumerate(range(lo, hi + 1))
        ]
    return []


def validate_answers(rubric: dict, answers: Any) -> dict:
    """Answers checked against the rubric: InvalidInput names the question that is wrong."""
    if not isinstance(answers, dict):
        raise InvalidInput('Answers are an object {"question_key": value}.', field="answers")
    questions = {q["key"]: q for q in rubric.get("questions", [])}
    unknown = sorted(set(answers) - set(questions))
    if unknown:
        raise InvalidInput(f"Unknown question '{unknown[0]}'.", field=f"answers.{unknown[0]}")
    clean: dict[str, Any] = {}
    for key, q in questions.items():
        value = answers.get(key)
        if value is None or value == "" or value == []:
            if q["required"]:
                raise InvalidInput(
                    f"Question '{key}' ({q['label']}) is required.", field=f"answers.{key}"
                )
            continue
        clean[key] = _answer(q, value)
    return clean


def _answer(q: dict, value: Any) -> Any:
    key, qtype = q["key"], q["type"]

    def bad(message: str) -> InvalidInput:
        return InvalidInput(f"Question '{key}': {message}", field=f"answers.{key}")

    if qtype == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "true",
            "yes",
            "y",
            "1",
            "false",
            "no",
            "n",
            "0",
        ):
            return value.lower() in ("true", "yes", "y", "1")
        raise bad("answer true or false.")
    if qtype == "choice":
        if value not in q["options"]:
            raise bad(f"choose one of {', '.join(q['options'])}.")
        return value
    if qtype == "multi_choice":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(v in q["options"] for v in value):
            raise bad(f"choose from {', '.join(q['options'])}.")
        return [o for o in q["options"] if o in value]  # rubric order, no duplicates
    if qtype == "scale":
        if isinstance(value, str) and INT_TEXT_RE.fullmatch(value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(f"answer an integer from {q['min']} to {q['max']}.")
        if not q["min"] <= value <= q["max"]:
            raise bad(f"answer an integer from {q['min']} to {q['max']}.")
        return value
    if not isinstance(value, str):
        raise bad("answer text.")
    if len(value) > MAX_TEXT:
        raise bad(f"at most {MAX_TEXT} characters.")
    return value


def answers_from_form(rubric: dict, data) -> dict:
    """Raw answers from an HTML form (QueryDict): `q_<key>` fields."""
    answers: dict[str, Any] = {}
    for q in rubric.get("questions", []):
        name = f"q_{q['key']}"
        if q["type"] == "multi_choice":
            values = data.getlist(name)
            if values:
                answers[q["key"]] = values
        else:
            value = data.get(name)
            if value not in (None, ""):
                answers[q["key"]] = value
    return answers
