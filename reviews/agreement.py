"""Inter-reviewer agreement: Krippendorff's alpha per question (nominal for booleans and
choices, ordinal or interval for scales, one yes/no question per option of a multiple
choice) and raw pairwise percentage agreement; plus the disagreement test for adjudication."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

import krippendorff
import numpy as np


def _variables(question: dict) -> list[tuple[str, str, Any]]:
    """(name, level, extract(answers) -> number | None) for each variable of a question."""
    key, qtype = question["key"], question["type"]
    if qtype == "boolean":
        return [(key, "nominal", lambda a: None if a.get(key) is None else float(bool(a[key])))]
    if qtype == "choice":
        options = question["options"]

        def choice(a):
            value = a.get(key)
            return float(options.index(value)) if value in options else None

        return [(key, "nominal", choice)]
    if qtype == "multi_choice":
        out = []
        for option in question["options"]:

            def chosen(a, option=option):
                value = a.get(key)
                return None if value is None else float(option in value)

            out.append((f"{key}: {option}", "nominal", chosen))
        return out
    if qtype == "scale":
        level = question.get("level", "ordinal")
        return [(key, level, lambda a: None if a.get(key) is None else float(a[key]))]
    return []  # free text is not compared


def alpha(matrix: list[list[float | None]], level: str) -> float | None:
    """Krippendorff's alpha of a coders x units matrix (None = missing); None when undefined
    (fewer than two values in play, or no unit rated twice)."""
    data = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    if data.size == 0:
        return None
    paired = (~np.isnan(data)).sum(axis=0) >= 2
    if not paired.any():
        return None
    values = np.unique(data[:, paired][~np.isnan(data[:, paired])])
    if len(values) < 2:
        return None
    try:
        return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))
    except (ValueError, ZeroDivisionError):
        return None


def question_agreement(rubric: dict, reviews: list[tuple[int, int, dict]]) -> list[dict]:
    """reviews: (item_id, reviewer_id, answers). One row per compared variable."""
    items = sorted({item for item, _, _ in reviews})
    reviewers = sorted({who for _, who, _ in reviews})
    col = {item: i for i, item in enumerate(items)}
    row = {who: i for i, who in enumerate(reviewers)}
    results = []
    for question in rubric.get("questions", []):
        for name, level, extract in _variables(question):
            matrix: list[list[float | None]] = [[None] * len(items) for _ in reviewers]
            per_item: dict[int, list[float]] = defaultdict(list)
            for item, who, answers in reviews:
                value = extract(answers or {})
                if value is not None:
                    matrix[row[who]][col[item]] = value
                    per_item[item].append(value)
            pairs = agree = units = 0
            for values in per_item.values():
                if len(values) < 2:
                    continue
                units += 1
                for a, b in combinations(values, 2):
                    pairs += 1
                    agree += a == b
            results.append(
                {
                    "key": question["key"],
                    "name": name,
                    "label": question.get("label", name),
                    "type": question["type"],
                    "level": level,
                    "required": question.get("required", False),
                    "alpha": alpha(matrix, level) if units else None,
                    "agreement": agree / pairs if pairs else None,
                    "units": units,
                    "pairs": pairs,
                }
            )
    return results


def disagreement(rubric: dict, answer_sets: list[dict]) -> list[str]:
    """Keys of required, comparable questions on which these reviews differ."""
    if len(answer_sets) < 2:
        return []
    keys = []
    for question in rubric.get("questions", []):
        if not question.get("required") or question["type"] == "text":
            continue
        seen = {_canonical(a.get(question["key"])) for a in answer_sets}
        if len(seen) > 1:
            keys.append(question["key"])
    return keys


def _canonical(value):
    if isinstance(value, list):
        return tuple(sorted(value))
    return value
