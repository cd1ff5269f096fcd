"""VQA metrics against values from the official evaluation code (see tests/data/vqa/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmbench.metrics.vqa import (exact_match, multiple_choice_accuracy, normalize_answer, parse_choice,
                                 score_vqa, vqa_accuracy_one, vqa_breakdown)

REF = json.loads((Path(__file__).parent / "data" / "vqa" / "cases.json").read_text(encoding="utf-8"))
CASES = REF["cases"]
TOL = 1e-9


def _columns(cases):
    return ([c["prediction"] for c in cases], [c["answers"] for c in cases],
            [c["answer_type"] for c in cases], [c["question_type"] for c in cases])


# ------------------------------------------------------------- official reference values

def test_reference_data_covers_the_rules():
    notes = {c["note"] for c in CASES}
    assert len(CASES) >= 900 and sum(c["note"] == "random" for c in CASES) == 400
    for must in ("identical answers, case differs", "identical answers, inner newline", "digit comma digit",
                 "at most 32 periods removed", "capitalised key unreachable", "none is 0",
                 "newline/tab in prediction", "1 of 1 answers match"):
        assert must in notes
    assert {c["answer_type"] for c in CASES} == {"yes/no", "number", "other"}


@pytest.mark.parametrize("i", range(len(CASES)), ids=lambda i: f"q{i}")
def test_per_question_accuracy_matches_official(i):
    c = CASES[i]
    assert abs(vqa_accuracy_one(c["prediction"], c["answers"]) - c["expected_accuracy"]) <= TOL, c["note"]


def test_normalize_answer_matches_official():
    got = [(s, want, normalize_answer(s)) for s, want in REF["normalization"]]
    assert [g for g in got if g[1] != g[2]] == []


def test_corpus_and_breakdowns_match_official():
    preds, answers, atypes, qtypes = _columns(CASES)
    got = score_vqa(preds, answers, answer_types=atypes, question_types=qtypes)
    exp = REF["expected"]
    assert abs(got.corpus["accuracy"] - exp["accuracy"]) <= TOL
    answer_keys = {k for k in got.corpus if not k.startswith("accuracy/question_type/")}
    assert answer_keys == {"accuracy"} | {f"accuracy/{t}" for t in exp["by_answer_type"]}
    for t, v in exp["by_answer_type"].items():
        assert abs(got.corpus[f"accuracy/{t}"] - v) <= TOL, t
    for t, v in exp["by_question_type"].items():
        assert abs(got.corpus[f"accuracy/question_type/{t}"] - v) <= TOL, t
    assert len(got.per_sample) == len(CASES)
    for s, c in zip(got.per_sample, CASES):
        assert abs(s["accuracy"] - c["expected_accuracy"]) <= TOL
    # the official rounds 100 * x to two decimals
    rounded = exp["official_rounded"]
    assert abs(100 * got.corpus["accuracy"] - rounded["overall"]) <= 0.005 + TOL
    for t, v in rounded["perAnswerType"].items():
        assert abs(100 * got.corpus[f"accuracy/{t}"] - v) <= 0.005 + TOL


def test_breakdown_helper_matches_official():
    preds, answers, atypes, qtypes = _columns(CASES)
    acc = [c["expected_accuracy"] for c in CASES]
    got = vqa_breakdown(acc, atypes, qtypes)
    exp = REF["expected"]
    assert abs(got["accuracy"] - exp["accuracy"]) <= TOL
    assert got["by_answer_type"].keys() == exp["by_answer_type"].keys()
    assert got["by_question_type"].keys() == exp["by_question_type"].keys()
    for key in ("by_answer_type", "by_question_type"):
        for t, v in exp[key].items():
            assert abs(got[key][t] - v) <= TOL


# ------------------------------------------------------------- rules stated directly

@pytest.mark.parametrize("m, want", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (9, 1.0), (10, 1.0)])
def test_leave_one_out_formula(m, want):
    assert vqa_accuracy_one("cat", ["cat"] * m + ["dog"] * (10 - m)) == pytest.approx(want, abs=TOL)


def test_identical_answers_skip_normalisation():
    assert vqa_accuracy_one("Yes", ["yes"] * 10) == 0.0
    assert vqa_accuracy_one(" yes\t", ["yes"] * 10) == 1.0
    assert vqa_accuracy_one("Yes", ["yes"] * 9 + ["Yes"]) == 1.0


def test_other_answer_counts_follow_the_formula():
    assert vqa_accuracy_one("cat", ["cat"]) == 0.0
    assert vqa_accuracy_one("cat", ["cat", "cat", "cat"]) == pytest.approx(2 / 3)
    assert vqa_accuracy_one("cat", ["cat"] * 4) == 1.0
    assert vqa_accuracy_one("cat", ["cat", "dog"]) == pytest.approx(0.5 * 0 + 0.5 * (1 / 3))


def test_score_vqa_without_types_and_with_none_types():
    r = score_vqa(["cat", "dog", "2"], [["cat"] * 10, ["cat"] * 10, ["two"] * 5 + ["3"] * 5],
                  answer_types=["other", None, "number"])
    assert set(r.corpus) == {"accuracy", "accuracy/other", "accuracy/number"}
    assert r.corpus["accuracy"] == pytest.approx(2 / 3)
    assert r.corpus["accuracy/other"] == 1.0 and r.corpus["accuracy/number"] == 1.0
    assert r.warnings == ()
    plain = score_vqa(["cat"], [["cat"] * 10])
    assert set(plain.corpus) == {"accuracy"} and plain.per_sample == ({"accuracy": 1.0},)
    b = vqa_breakdown([1.0, 0.0], None, ["what", None])
    assert b == {"accuracy": 0.5, "by_answer_type": {}, "by_question_type": {"what": 1.0}}


def test_score_vqa_warns_on_answer_counts_other_than_ten():
    r = score_vqa(["cat", "cat"], [["cat"] * 10, ["cat"]])
    assert len(r.warnings) == 1 and "[1, 10]" in r.warnings[0]


def test_score_vqa_empty_is_unavailable():
    r = score_vqa([], [])
    assert r.corpus == {} and "accuracy" in r.unavailable


@pytest.mark.parametrize("call, fragment", [
    (lambda: score_vqa(["a", "b"], [["a"] * 10]), "length mismatch"),
    (lambda: score_vqa(["a"], [["a"] * 10], answer_types=["x", "y"]), "answer_types=2"),
    (lambda: score_vqa(["a", None], [["a"] * 10] * 2), "question 1"),
    (lambda: score_vqa(["a", "b"], [["a"] * 10, []]), "question 1: empty"),
    (lambda: score_vqa(["a"], ["a"]), "question 0"),
    (lambda: score_vqa(["a"], [["a", 3]]), "question 0: answer 1"),
    (lambda: vqa_accuracy_one("a", []), "empty"),
    (lambda: vqa_accuracy_one(1, ["a"]), "not str"),
    (lambda: exact_match(["a", 2], ["a", "b"]), "item 1"),
    (lambda: exact_match(["a", "b"], ["a", []]), "item 1: empty"),
    (lambda: multiple_choice_accuracy(["A"], [["x", "y"]], [2]), "item 0"),
    (lambda: multiple_choice_accuracy(["A", "B"], [["x", "y"]], [0, 1]), "length mismatch"),
])
def test_invalid_input_raises_value_error(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()


# ------------------------------------------------------------- exact match

def test_exact_match():
    r = exact_match(["Two dogs.", "the Cat", "yes", "blue"], ["2 dogs", ["dog", "cat"], "no", ["green"]])
    assert [s["exact_match"] for s in r.per_sample] == [1.0, 1.0, 0.0, 0.0]
    assert r.corpus == {"exact_match": 0.5}
    assert exact_match([], []).corpus == {}


# ------------------------------------------------------------- multiple choice

OPTS = ["cat", "dog", "bird", "fish"]


@pytest.mark.parametrize("output, want", [
    ("B", 1), ("b", 1), ("(C)", 2), ("D.", 3), ("B)", 1), ("[A]", 0), ("**B**", 1), ('"C"', 2),
    ("Answer: B", 1), ("The answer is (C).", 2), ("answer is D", 3), ("Option A", 0), ("Choice: C", 2),
    ("I think the answer is B because dogs bark.", 1),
    ("B. dog", 1), ("(B) dog", 1), ("C: bird", 2),
    ("dog", 1), ("The fish.", 3), ("It is a bird", 2),
])
def test_parse_choice_formats(output, want):
    assert parse_choice(output, OPTS) == want


@pytest.mark.parametrize("output", [
    "", "I don't know", "E", "Answer: E",  # nothing / out of range
    "a cat or a dog", "The answer is A or B", "Answer: (A) or (C)", "Answer: A, Option B",  # several
    "B. cat",  # letter and text disagree
])
def test_parse_choice_returns_none_rather_than_guess(output):
    assert parse_choice(output, OPTS) is None


def test_parse_choice_text_ambiguity():
    assert parse_choice("dark red", ["red", "dark red"]) == 1
    assert parse_choice("it is dark red", ["red", "dark red"]) is None
    assert parse_choice("red", ["red", "red"]) is None
    assert parse_choice("b", ["b", "c"]) is None  # letter B vs option text "b"
    assert parse_choice("b", ["c", "b"]) == 1
    assert parse_choice("z", ["x", "y", "z"]) == 2  # no option Z: the text decides


def test_multiple_choice_accuracy():
    r = multiple_choice_accuracy(["B", "Answer: A", "no idea", "fish"], [OPTS] * 4, [1, 1, 0, 3])
    assert r.corpus == {"mc_accuracy": 0.5, "unparseable": 1.0}
    assert [s["mc_accuracy"] for s in r.per_sample] == [1.0, 0.0, 0.0, 1.0]
    assert [s["unparseable"] for s in r.per_sample] == [0.0, 0.0, 1.0, 0.0]


def test_exact_match_breakdown_by_answer_type():
    from mmbench.metrics.vqa import exact_match

    values = exact_match(["Yes.", "red", "circle", "no"], ["yes", "blue", "circle", "no"],
                         answer_types=["yes/no", "color", "shape", "yes/no"])
    assert values.corpus == {"exact_match": 0.75, "exact_match/yes/no": 1.0, "exact_match/color": 0.0,
                             "exact_match/shape": 1.0}
