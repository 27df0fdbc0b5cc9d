"""Agreement against a hand-computed example.

Three items, two reviewers each, boolean question `ok` (nominal):
  item 1: yes, yes    item 2: yes, no    item 3: no, no
Coincidence matrix (each pairable value counted once per pair, both orders):
  o(yes,yes)=2, o(yes,no)=o(no,yes)=1, o(no,no)=2; n_yes=3, n_no=3, n=6.
D_o = (1+1)/6 = 1/3; D_e = (3*3 + 3*3) / (6*5) = 18/30 = 3/5.
alpha = 1 - D_o/D_e = 1 - (1/3)/(3/5) = 1 - 5/9 = 4/9 = 0.4444...
Percentage agreement: 2 of 3 pairs agree = 0.6667.
"""

import pytest

from reviews.agreement import alpha, disagreement, question_agreement

RUBRIC = {
    "questions": [
        {"key": "ok", "label": "OK?", "type": "boolean", "required": True},
        {
            "key": "tags",
            "label": "Tags",
            "type": "multi_choice",
            "required": False,
            "options": ["a", "b"],
        },
        {
            "key": "score",
            "label": "Score",
            "type": "scale",
            "required": True,
            "min": 1,
            "max": 3,
            "level": "interval",
        },
        {"key": "why", "label": "Why", "type": "text", "required": True},
    ]
}


def test_alpha_nominal_hand_computed():
    reviews = [
        (1, 10, {"ok": True}),
        (1, 11, {"ok": True}),
        (2, 10, {"ok": True}),
        (2, 11, {"ok": False}),
        (3, 10, {"ok": False}),
        (3, 11, {"ok": False}),
    ]
    row = next(r for r in question_agreement(RUBRIC, reviews) if r["name"] == "ok")
    assert row["alpha"] == pytest.approx(4 / 9)
    assert row["agreement"] == pytest.approx(2 / 3)
    assert row["units"] == 3 and row["level"] == "nominal"


def test_interval_alpha_hand_computed():
    # Two items: (1, 2) and (3, 3). Pairable values 1,2,3,3 (n=4).
    # D_o = (1/(2-1)) * ((1-2)^2 * 2 [item 1] + 0 [item 2]) / n = 2/4 = 0.5
    # D_e = sum_{c,k} n_c n_k (c-k)^2 / (n(n-1)) over ordered pairs:
    #   values counts: 1:1, 2:1, 3:2 -> pairs (1,2):1*1*1, (1,3):1*2*4, (2,3):1*2*1, both orders -> 2*(1+8+2)=22
    #   D_e = 22 / 12 = 11/6; alpha = 1 - 0.5 / (11/6) = 1 - 3/11 = 8/11
    assert alpha([[1, 3], [2, 3]], "interval") == pytest.approx(8 / 11)


def test_multi_choice_counts_per_option_and_text_ignored():
    reviews = [
        (1, 10, {"ok": True, "tags": ["a"], "score": 1, "why": "x"}),
        (1, 11, {"ok": True, "tags": ["a", "b"], "score": 1, "why": "y"}),
    ]
    names = [r["name"] for r in question_agreement(RUBRIC, reviews)]
    assert names == ["ok", "tags: a", "tags: b", "score"]
    rows = {r["name"]: r for r in question_agreement(RUBRIC, reviews)}
    assert rows["tags: a"]["agreement"] == 1.0 and rows["tags: b"]["agreement"] == 0.0
    assert rows["ok"]["alpha"] is None  # one value only: undefined, not an error


def test_disagreement_on_required_questions_only():
    assert disagreement(RUBRIC, [{"ok": True, "why": "a"}, {"ok": True, "why": "b"}]) == []
    assert disagreement(RUBRIC, [{"ok": True, "score": 1}, {"ok": False, "score": 1}]) == ["ok"]
    assert disagreement(RUBRIC, [{"ok": True, "tags": ["a"]}, {"ok": True, "tags": ["b"]}]) == []
