"""Answer consistency across rephrased questions: the metric, the easy-VQA groups, the task end to end."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbench.metrics.consistency import answer_consistency
from mmbench.tasks.datasets.easyvqa import (COLORS, SHAPES, Fact, UnknownQuestionError, caption_rows, facts_from_question,
                                   resolve)
from mmbench.tasks.datasets.easyvqa_questions import consistency_rows


def corpus(predictions, answers, groups):
    return dict(answer_consistency(predictions, answers, groups=groups).corpus)


# ----------------------------------------------------------------------------- the metric


def test_docstring_example():
    values = answer_consistency(["red", "Red", "blue", "yes", "yes"], ["red"] * 3 + ["no"] * 2,
                                groups=["g1"] * 3 + ["g2"] * 2)
    assert values.corpus == {"consistency": 0.5, "group_majority_accuracy": 0.5, "consistent_and_correct": 0.0,
                             "CS(1)": (2 / 3 + 0) / 2, "CS(2)": (1 / 3 + 0) / 2, "CS(3)": 0.0, "n_groups": 2.0}
    assert [s["group_consistent"] for s in values.per_sample] == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert values.warnings == ("CS(3) is over the 1 of 2 groups with at least 3 questions "
                               "(CS(k) averages over groups with at least k)",)


@pytest.mark.parametrize("predictions, majority_right", [
    (["red", "red", "blue", "blue"], 0.0),    # 2 vs 2: no strict majority, counts as wrong
    (["red", "blue", "red", "blue"], 0.0),    # order does not matter
    (["red", "red", "red", "blue"], 1.0),     # 3 vs 1
    (["blue", "blue", "blue", "red"], 0.0),   # a strict majority, but the wrong answer
    (["red", "red", "blue", "green"], 1.0),   # a plurality of 2 over 1 and 1 is strict
    (["red", "blue", "green", "gray"], 0.0),  # four-way tie
])
def test_strict_majority(predictions, majority_right):
    got = corpus(predictions, ["red"] * 4, ["g"] * 4)
    assert got["group_majority_accuracy"] == majority_right
    assert got["consistency"] == 0.0 and got["consistent_and_correct"] == 0.0


def test_answers_are_compared_after_vqa_normalisation():
    # "Red." == "red"; the official VQA normalisation maps number words to digits: "two" == "2"
    got = corpus(["Red.", "red", " RED ", "two", "2", "Two."], ["red"] * 3 + ["2"] * 3, ["c"] * 3 + ["n"] * 3)
    assert got == {"consistency": 1.0, "group_majority_accuracy": 1.0, "consistent_and_correct": 1.0,
                   "CS(1)": 1.0, "CS(2)": 1.0, "CS(3)": 1.0, "n_groups": 2.0}
    # the references are normalised too, so "Red" and "red." in one group are one answer
    assert corpus(["red", "red"], ["Red", "red."], ["g", "g"])["consistent_and_correct"] == 1.0


def test_empty_answer_breaks_consistency():
    got = corpus(["red", "", "red"], ["red"] * 3, ["g"] * 3)
    assert got["consistency"] == 0.0 and got["consistent_and_correct"] == 0.0
    assert got["group_majority_accuracy"] == 1.0  # 2 "red" vs 1 empty
    # a group of only empty answers is consistent, and wrong
    got = corpus(["", ""], ["red", "red"], ["g", "g"])
    assert got["consistency"] == 1.0 and got["group_majority_accuracy"] == 0.0


def test_singleton_groups_are_consistent_and_reported():
    values = answer_consistency(["red", "blue", "red"], ["red", "red", "red"], groups=["a", "a", "b"])
    assert values.corpus["consistency"] == 0.5  # "b" is trivially consistent
    assert values.warnings[0] == "1 of 2 groups have a single question (trivially consistent)"


def test_one_element_list_references():
    assert corpus(["red", "red"], [["red"], "red"], [1, 1])["consistent_and_correct"] == 1.0


def test_groups_with_different_references_are_an_error():
    with pytest.raises(ValueError, match=r"group 'img7/color'.*different reference answers"):
        answer_consistency(["red", "red"], ["red", "blue"], groups=["img7/color", "img7/color"])


def test_bad_input_is_an_error():
    with pytest.raises(ValueError, match="question 1 has no group"):
        answer_consistency(["red", "red"], ["red", "red"], groups=["g", None])
    with pytest.raises(ValueError, match=r"predictions \(2\), answers \(3\) and groups \(3\)"):
        answer_consistency(["red", "red"], ["red"] * 3, groups=["g"] * 3)
    with pytest.raises(ValueError, match="no questions"):
        answer_consistency([], [], groups=[])
    with pytest.raises(ValueError, match="question 0: the reference must be"):
        answer_consistency(["red"], [[]], groups=["g"])


def test_human_answers_use_the_official_vqa_accuracy():
    """With 10 human answers (VQA-Rephrasings) a question is correct when its official VQA accuracy
    is above 0, and the majority answer scores its VQA accuracy."""
    humans = ["cat"] * 7 + ["dog"] * 3
    values = answer_consistency(["dog", "dog", "cat", "dog"], [humans] * 4, groups=["g"] * 4)
    assert values.corpus["CS(1)"] == 1.0 and values.corpus["CS(4)"] == 1.0  # every answer has accuracy > 0
    assert values.corpus["group_majority_accuracy"] == pytest.approx(0.9)  # "dog": official accuracy 0.9
    assert values.corpus["consistent_and_correct"] == 0.0
    values = answer_consistency(["cow", "cat"], [humans, list(reversed(humans))], groups=["g", "g"])
    assert values.corpus["CS(1)"] == 0.5 and values.corpus["CS(2)"] == 0.0  # the same multiset of answers
    with pytest.raises(ValueError, match="different reference answers"):
        answer_consistency(["cat", "cat"], [humans, ["cat"] * 10], groups=["g", "g"])


# Hand-written canonical forms of a small answer alphabet (the official VQA rules: lower case,
# punctuation dropped, number words as digits), so the reference below does not reuse mmbench's code.
CANONICAL = {"red": "red", "Red": "red", "red.": "red", "blue": "blue", "BLUE!": "blue", "two": "2", "2": "2",
             "Two": "2", "yes": "yes", "no": "no", "": ""}


def brute_force(predictions, answers, groups):
    """Consistency, strict-majority accuracy, all-correct rate and the consensus score CS(k)
    (enumerating every k-subset of every group), group by group."""
    by_group: dict = {}
    for pred, ans, group in zip(predictions, answers, groups):
        by_group.setdefault(group, ([], CANONICAL[ans]))[0].append(CANONICAL[pred])
    consistent = majority = all_right = 0
    max_k = min(4, max(len(preds) for preds, _ in by_group.values()))
    consensus = [0.0] * max_k
    counted = [0] * max_k
    for preds, ref in by_group.values():
        votes = Counter(preds)
        top = max(votes.values())
        winners = [a for a, n in votes.items() if n == top]
        consistent += len(set(preds)) == 1
        majority += winners == [ref]
        all_right += set(preds) == {ref}
        for k in range(1, min(max_k, len(preds)) + 1):
            subsets = list(itertools.combinations(preds, k))
            consensus[k - 1] += sum(all(p == ref for p in sub) for sub in subsets) / len(subsets)
            counted[k - 1] += 1
    n = len(by_group)
    out = {"consistency": consistent / n, "group_majority_accuracy": majority / n,
           "consistent_and_correct": all_right / n, "n_groups": float(n)}
    out.update({f"CS({k})": consensus[k - 1] / counted[k - 1] for k in range(1, max_k + 1)})
    return out


@st.composite
def grouped_questions(draw):
    n_groups = draw(st.integers(1, 4))
    refs = [draw(st.sampled_from(sorted(CANONICAL))) for _ in range(n_groups)]
    rows = draw(st.lists(st.tuples(st.integers(0, n_groups - 1), st.sampled_from(sorted(CANONICAL))),
                         min_size=1, max_size=14))
    return [p for _, p in rows], [refs[g] for g, _ in rows], [f"group{g}" for g, _ in rows]


@settings(max_examples=300, deadline=None)
@given(grouped_questions())
def test_matches_brute_force(case):
    predictions, answers, groups = case
    values = answer_consistency(predictions, answers, groups=groups)
    assert values.corpus == pytest.approx(brute_force(predictions, answers, groups), abs=1e-12)
    for pred_group, sample in zip(groups, values.per_sample):
        members = {CANONICAL[p] for p, g in zip(predictions, groups) if g == pred_group}
        assert sample == {"group_consistent": float(len(members) == 1)}


# ----------------------------------------------------------------------------- easy-VQA groups


@pytest.fixture(scope="module")
def rows():
    return consistency_rows("test")


def test_easyvqa_groups_shape(rows):
    assert len(rows) == 19_536
    assert len({r["question_id"] for r in rows}) == len(rows)
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    assert len(groups) == 3_552 == 4 * len(caption_rows("test"))
    for name, members in groups.items():
        assert len({m["answer"] for m in members}) == 1, name
        assert len({m["image_id"] for m in members}) == 1 and len({m["image"] for m in members}) == 1, name
        assert len(members) in (5, 6), name
        assert len({m["question"] for m in members}) == len(members), name  # real rephrasings, no repeats
        assert name.startswith(members[0]["image_id"] + "/")
    # per image: 4 templates for each of the 4 groups; 2 novel wordings for colour and shape, 1 for each existence
    assert Counter(r["phrasing"] for r in rows) == {"template": 16 * 888, "novel": 6 * 888}
    assert consistency_rows("test") == rows  # deterministic


def test_template_answers_agree_with_the_image(rows):
    """Parse every template question with easy-VQA's own template parser: the facts it states
    never contradict the image's colour and shape (derived from easy-VQA's original questions)."""
    known = {r["image_id"]: (r["color"], r["shape"]) for r in caption_rows("test")}
    n_checked = 0
    for r in rows:
        if r["phrasing"] != "template":
            continue
        color, shape = known[r["image_id"]]
        facts = facts_from_question(r["question"], r["answer"])
        attrs = resolve(facts, where=r["question_id"])
        assert attrs["color"] in (None, color) and attrs["shape"] in (None, shape), r
        # "no" answers rule a value out: it must not be the image's own
        both = resolve([*facts, Fact("color", color, True), Fact("shape", shape, True)], where=r["question_id"])
        assert both == {"color": color, "shape": shape}, r
        n_checked += 1
    assert n_checked == 4 * 4 * len(known)


def test_novel_phrasings_are_not_easyvqa_templates(rows):
    novel = [r for r in rows if r["phrasing"] == "novel"]
    assert novel
    for r in novel:
        with pytest.raises(UnknownQuestionError, match="matches no easy-VQA template"):
            facts_from_question(r["question"], r["answer"])


def test_every_attribute_value_is_asked_about(rows):
    answers = Counter(r["answer"] for r in rows)
    assert set(answers) == {"yes", "no", *COLORS, *SHAPES}
    assert answers["yes"] == answers["no"]


# ----------------------------------------------------------------------------- the task end to end


def test_task_with_a_constant_answer_model(tmp_path, rows):
    from mmbench.runner import evaluate

    results = evaluate(model="easyvqa-majority", tasks=["easyvqa_consistency"], limit=60, output=str(tmp_path),
                       cache_dir=str(tmp_path))
    task = results["tasks"]["easyvqa_consistency"]
    metrics = task["metrics"]
    assert {"exact_match", "consistency", "group_majority_accuracy", "consistent_and_correct",
            "n_groups"} <= set(metrics)
    lines = [json.loads(line) for line in (tmp_path / task["predictions"]).read_text().splitlines()]
    (constant,) = {line["prediction"] for line in lines}
    assert [line["id"] for line in lines] == [r["question_id"] for r in rows[:60]]

    answer_of = {r["group"]: r["answer"] for r in rows[:60]}
    expected = sum(a == constant for a in answer_of.values()) / len(answer_of)
    assert 0 < expected < 1
    assert metrics["n_groups"] == len(answer_of)
    assert metrics["consistency"] == 1.0
    assert metrics["group_majority_accuracy"] == pytest.approx(expected)
    assert metrics["consistent_and_correct"] == pytest.approx(expected)
    assert metrics["exact_match"] == pytest.approx(sum(r["answer"] == constant for r in rows[:60]) / 60)


def test_subset_breakdown():
    """accuracy/<label> over the label's questions; consistency/<label> over groups restricted
    to that label's questions, counting only groups with at least two of them."""
    preds = ["red", "red", "blue", "yes", "no", "circle", "circle", "circle"]
    refs = ["red", "red", "red", "yes", "yes", "circle", "circle", "circle"]
    groups = ["a", "a", "a", "b", "b", "c", "c", "c"]
    subsets = ["seen", "seen", "new", "seen", "new", "seen", "new", "new"]
    corpus = answer_consistency(preds, refs, groups=groups, subsets=subsets).corpus
    assert corpus["accuracy/seen"] == 4 / 4
    assert corpus["accuracy/new"] == 2 / 4  # blue wrong, no wrong, circle right x2
    assert corpus["consistency/seen"] == 1 / 1  # only group a has two "seen" questions
    assert corpus["consistency/new"] == 1 / 1  # only group c has two "new" questions (circle, circle)
    assert corpus["consistency"] == 1 / 3
    without = answer_consistency(preds, refs, groups=groups).corpus
    assert not any("/" in key for key in without)
    with pytest.raises(ValueError, match="subsets"):
        answer_consistency(preds, refs, groups=groups, subsets=subsets[:-1])
