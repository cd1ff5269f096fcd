"""The benchmark metrics (issue #11 part A) against values their official scorers produced,
run unmodified (tests/data/<metric>/README.md says how), and their ``mmbench score`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.metrics.anls import anls_one, score_anls
from mmbench.metrics.choice import (LETTERS, parse_choice, parse_choice_mmmu, score_multiple_choice,
                                    score_multiple_choice_mmmu)
from mmbench.metrics.gqa import score_gqa_accuracy
from mmbench.metrics.pope import pope_answer, score_pope
from mmbench.metrics.registry import metric_spec
from mmbench.metrics.relaxed import relaxed_correct, score_relaxed_accuracy

DATA = Path(__file__).parent / "data"


def _load(name: str) -> dict:
    return json.loads((DATA / name / "cases.json").read_text())


MC = _load("multiple_choice")
POPE_CASES = _load("pope")
ANLS_CASES = _load("anls")
RELAXED = _load("relaxed_accuracy")


# ------------------------------------------------------------------ multiple choice (VLMEvalKit)
def _official_index(case: dict) -> int | None:
    letter = case["vlmevalkit_can_infer"]
    return LETTERS.index(letter) if letter and letter in LETTERS[:len(case["options"])] else None


def test_parse_choice_equals_vlmevalkit_can_infer_on_every_case():
    wrong = [(c["prediction"], c["options"], parse_choice(c["prediction"], c["options"]), c["vlmevalkit_can_infer"])
             for c in MC["cases"] if parse_choice(c["prediction"], c["options"]) != _official_index(c)]
    assert not wrong
    assert len(MC["cases"]) == 375


def test_multiple_choice_accuracy_and_circular_equal_the_official():
    cases = MC["cases"]
    values = score_multiple_choice([c["prediction"] for c in cases], [[c["answer"]] for c in cases],
                                   choices=[c["options"] for c in cases], groups=[c["group"] for c in cases])
    assert values.corpus["accuracy"] == MC["expected"]["vlmevalkit_accuracy"]
    assert [s["accuracy"] for s in values.per_sample] == [float(c["vlmevalkit_hit"]) for c in cases]
    assert values.corpus["unparsed"] == sum(_official_index(c) is None for c in cases)
    grouped = [c for c in cases if c["group"]]
    circ = score_multiple_choice([c["prediction"] for c in grouped], [[c["answer"]] for c in grouped],
                                 choices=[c["options"] for c in grouped], groups=[c["group"] for c in grouped],
                                 categories=[c["category"] for c in grouped])
    hits = MC["expected"]["vlmevalkit_circular_hit"]
    assert circ.corpus["circular_accuracy"] == pytest.approx(sum(hits.values()) / len(hits), abs=0, rel=1e-15)
    for cat in ("perception", "reasoning"):
        mine = [hits[g] for g in hits if next(c["category"] for c in grouped if c["group"] == g) == cat]
        assert circ.corpus[f"circular_accuracy/{cat}"] == pytest.approx(sum(mine) / len(mine), rel=1e-15)


@pytest.mark.parametrize("answer, want", [
    ("B", 1), ("(B)", 1), ("B.", 1), ("Answer: B", 1), ("The answer is B", 1), ("**B**", 1), ("dog", 1),
    ("a dog", 1), ("The answer is c", 2), ("A dog", 0),  # the article A is read as the letter, as the official
    ("A or B", None), ("", None), ("I don't know", None), ("Z", None), ("Cannot determine the answer", None),
    ("catfish", None), ("B is correct because the animal barks loudly", None),
])
def test_documented_forms(answer, want):
    assert parse_choice(answer, ["cat", "dog", "bird", "fish"]) == want


def test_answer_changed_and_groups():
    # the model answers by text, so its letter follows the rotation: consistent, and right each time
    v = score_multiple_choice(["dog", "dog"], [["B"], ["A"]], choices=[["cat", "dog"], ["dog", "cat"]],
                              groups=["q", "q"], categories=["animals", "animals"])
    assert v.corpus == {"accuracy": 1.0, "unparsed": 0.0, "accuracy/animals": 1.0, "circular_accuracy": 1.0,
                        "answer_changed": 0.0, "circular_accuracy/animals": 1.0}
    # always "A": the chosen text changes with the order; one rotation right, the group wrong
    v = score_multiple_choice(["A", "A"], [["B"], ["A"]], choices=[["cat", "dog"], ["dog", "cat"]], groups=["q", "q"])
    assert (v.corpus["accuracy"], v.corpus["circular_accuracy"], v.corpus["answer_changed"]) == (0.5, 0.0, 1.0)
    assert "circular_accuracy" not in score_multiple_choice(["A"], [["A"]], choices=[["x", "y"]]).corpus
    with pytest.raises(ValueError, match="different categories"):
        score_multiple_choice(["A", "A"], [["A"], ["A"]], choices=[["x", "y"]] * 2, groups=["g", "g"],
                              categories=["a", "b"])
    with pytest.raises(ValueError, match="neither an option letter"):
        score_multiple_choice(["A"], [["C"]], choices=[["x", "y"]])


# ------------------------------------------------------------------ MMMU
def test_mmmu_parse_equals_official_including_random_choice():
    cases = MC["cases"]
    values = score_multiple_choice_mmmu([c["prediction"] for c in cases], [[c["answer"]] for c in cases],
                                        choices=[c["options"] for c in cases])
    assert values.corpus["accuracy"] == MC["expected"]["mmmu_acc"]
    assert [s["accuracy"] for s in values.per_sample] == [float(c["mmmu_judge"] == "Correct") for c in cases]
    import random
    rng = random.Random(42)
    picked = [LETTERS[parse_choice_mmmu(c["prediction"], c["options"], rng)[0]] for c in cases]
    assert picked == [c["mmmu_parsed_pred"] for c in cases]
    assert values.corpus["unparsed"] > 0  # the random guesses are counted


# ------------------------------------------------------------------ POPE
def test_pope_parsing_equals_official():
    assert [pope_answer(c["answer"]) for c in POPE_CASES["parsing"]] == [c["official"] for c in POPE_CASES["parsing"]]
    assert pope_answer("I notice a dog") == "yes"  # VLMEvalKit#73: whole words only


def test_pope_scores_equal_official_per_split():
    rows = POPE_CASES["corpus"]
    v = score_pope([r["answer"] for r in rows], [[r["label"]] for r in rows], splits=[r["split"] for r in rows])
    for split, exp in POPE_CASES["expected"].items():
        suffix = "" if split == "overall" else f"/{split}"
        for key in ("accuracy", "precision", "recall", "f1", "yes_ratio"):
            assert v.corpus[key + suffix] == exp[key], (split, key)
    f1s = [POPE_CASES["expected"][s]["f1"] for s in ("random", "popular", "adversarial")]
    assert v.corpus["f1_mean"] == pytest.approx(sum(f1s) / 3, rel=1e-15)


def test_pope_undefined_ratios_are_unavailable():
    v = score_pope(["No", "No"], [["yes"], ["no"]])
    assert v.corpus["accuracy"] == 0.5 and "precision" in v.unavailable and "f1" in v.unavailable
    with pytest.raises(ValueError, match="label"):
        score_pope(["yes"], [["maybe"]])


# ------------------------------------------------------------------ ANLS
def test_anls_equals_rrc_script_per_question_and_overall():
    cases = ANLS_CASES["cases"]
    assert [anls_one(c["prediction"], c["answers"]) for c in cases] == [c["expected_anls"] for c in cases]
    v = score_anls([c["prediction"] for c in cases], [c["answers"] for c in cases])
    assert v.corpus["anls"] == ANLS_CASES["expected"]["anls"]
    assert len(cases) == 340


def test_anls_documented_differences_from_pix2struct():
    by_note = {c["note"]: c for c in ANLS_CASES["cases"]}
    assert by_note["nl exactly 0.5"]["expected_anls"] == 0.5 and by_note["nl exactly 0.5"]["pix2struct_anls"] == 0.0
    spaces = by_note["extra spaces (collapsed; the length counts them)"]
    assert spaces["expected_anls"] == 1.0 and spaces["pix2struct_anls"] < 1.0


# ------------------------------------------------------------------ relaxed accuracy
def test_relaxed_accuracy_equals_pix2struct():
    cases = RELAXED["cases"]
    v = score_relaxed_accuracy([c["prediction"] for c in cases], [c["targets"] for c in cases],
                               splits=[c["split"] for c in cases])
    assert [s["relaxed_accuracy"] for s in v.per_sample] == [c["expected"] for c in cases]
    for split in ("human", "augmented"):
        mine = [c["expected"] for c in cases if c["split"] == split]
        assert v.corpus[f"relaxed_accuracy/{split}"] == sum(mine) / len(mine)


def test_relaxed_target_is_the_reference():
    assert relaxed_correct("100", "95.1") and not relaxed_correct("95.1", "100")
    assert relaxed_correct("2015", "2016")  # years are numbers
    assert not relaxed_correct("45", "45%") and not relaxed_correct("0", "0.0")  # percent; zero target: strings
    assert any(c["expected"] != c["swapped"] for c in RELAXED["cases"])


# ------------------------------------------------------------------ GQA
def test_gqa_accuracy_is_exact_string_equality():
    preds = ["yes", "Yes", "yes.", " yes", "left", "the left", "2"]
    golds = ["yes", "yes", "yes", "yes", "left", "left", "two"]
    v = score_gqa_accuracy(preds, [[g] for g in golds], question_types=["verify"] * 4 + ["query"] * 3)
    assert [s["accuracy"] for s in v.per_sample] == [float(p == g) for p, g in zip(preds, golds)]
    assert v.corpus == {"accuracy": 2 / 7, "accuracy/verify": 0.25, "accuracy/query": 1 / 3}


# ------------------------------------------------------------------ specs
@pytest.mark.parametrize("name, primary, fields", [
    ("multiple-choice", "accuracy", {"choices": "choices", "groups": "group", "categories": "category"}),
    ("multiple-choice-mmmu", "accuracy", {"choices": "choices", "categories": "category"}),
    ("pope", "f1", {"splits": "split"}), ("anls", "anls", {}), ("relaxed-accuracy", "relaxed_accuracy",
                                                               {"splits": "split"}),
    ("gqa-accuracy", "accuracy", {"question_types": "question_type"}),
])
def test_specs(name, primary, fields):
    spec = metric_spec(name)
    assert spec.primary == primary and dict(spec.sample_fields) == fields
    assert metric_spec("multiple-choice").version == "2"
    assert metric_spec("multiple-choice").output("unparsed").higher_is_better is False
    assert metric_spec("pope").output("yes_ratio/random").higher_is_better is None


# ------------------------------------------------------------------ mmbench score
def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _score(*args: str) -> dict:
    result = CliRunner().invoke(app, ["score", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_score_anls_and_relaxed(tmp_path):
    cases = ANLS_CASES["cases"][:60]
    p = _jsonl(tmp_path / "p.jsonl", [{"question_id": c["question_id"], "prediction": c["prediction"]} for c in cases])
    r = _jsonl(tmp_path / "r.jsonl", [{"question_id": c["question_id"], "answers": c["answers"]} for c in cases])
    assert _score("anls", "--predictions", p, "--references", r) == {
        "anls": sum(c["expected_anls"] for c in cases) / len(cases)}
    rel = RELAXED["cases"][:80]
    p = _jsonl(tmp_path / "cp.jsonl", [{"question_id": c["id"], "prediction": c["prediction"]} for c in rel])
    r = _jsonl(tmp_path / "cr.jsonl", [{"question_id": c["id"], **({"answer": c["targets"][0]} if len(c["targets"]) == 1
                                                                   else {"answers": c["targets"]}),
                                        "split": c["split"]} for c in rel])
    out = _score("relaxed-accuracy", "--predictions", p, "--references", r)
    assert out["relaxed_accuracy"] == sum(c["expected"] for c in rel) / len(rel)
    assert set(out) == {"relaxed_accuracy", "relaxed_accuracy/human", "relaxed_accuracy/augmented"}


def test_score_pope_json_by_split(tmp_path):
    rows = POPE_CASES["corpus"]
    p = _jsonl(tmp_path / "p.jsonl", [{"question_id": i, "prediction": r["answer"]} for i, r in enumerate(rows)])
    r = _jsonl(tmp_path / "r.jsonl", [{"question_id": i, "answer": r["label"], "split": r["split"]}
                                      for i, r in enumerate(rows)])
    out = _score("pope", "--predictions", p, "--references", r)
    exp = POPE_CASES["expected"]
    assert {k: out[k] for k in ("accuracy", "precision", "recall", "f1", "yes_ratio")} == {
        k: exp["overall"][k] for k in ("accuracy", "precision", "recall", "f1", "yes_ratio")}
    assert out["by_split"]["adversarial"]["f1"] == exp["adversarial"]["f1"]
    assert set(out["by_split"]) == {"random", "popular", "adversarial"} and "f1_mean" in out


def test_score_multiple_choice_circular(tmp_path):
    cases = [c for c in MC["cases"] if c["group"]]
    p = _jsonl(tmp_path / "p.jsonl", [{"question_id": c["id"], "prediction": c["prediction"]} for c in cases])
    r = _jsonl(tmp_path / "r.jsonl", [{"question_id": c["id"], "options": dict(zip(LETTERS, c["options"])),
                                       "answer": c["answer"], "group": c["group"]} for c in cases])
    out = _score("multiple-choice", "--predictions", p, "--references", r, "--circular")
    hits = MC["expected"]["vlmevalkit_circular_hit"]
    assert out["accuracy"] == sum(c["vlmevalkit_hit"] for c in cases) / len(cases)
    assert out["circular_accuracy"] == sum(hits.values()) / len(hits)
    assert "circular_accuracy" not in _score("multiple-choice", "--predictions", p, "--references", r)
    bad = _jsonl(tmp_path / "bad.jsonl", [{"question_id": cases[0]["id"], "options": {"B": "x"}, "answer": "B"}])
    result = CliRunner().invoke(app, ["score", "multiple-choice", "--predictions", p, "--references", bad])
    assert result.exit_code == 2 and "option letters" in result.output


def test_a_runs_own_predictions_file_rescores_alone(tmp_path):
    """Lines as a run writes them (references and meta carried): re-scored without --references."""
    cases = [c for c in MC["cases"] if c["group"]][:20]
    lines = [{"id": f"s{c['id']}", "prompt_hash": "h", "raw_output": c["prediction"], "prediction": c["prediction"],
              "references": [c["answer"]], "scores": {}, "error": None,
              "meta": {"choices": c["options"], "group": c["group"], "category": c["category"]}} for c in cases]
    lines.append({"id": "broken", "prompt_hash": None, "raw_output": None, "prediction": None, "references": [],
                  "scores": {}, "error": "row error: no image", "meta": {}})
    p = _jsonl(tmp_path / "predictions.jsonl", lines)
    direct = score_multiple_choice([c["prediction"] for c in cases], [[c["answer"]] for c in cases],
                                   choices=[c["options"] for c in cases], groups=[c["group"] for c in cases],
                                   categories=[c["category"] for c in cases])
    assert _score("multiple-choice", "--predictions", p, "--circular") == direct.corpus
    rows = POPE_CASES["corpus"][:30]
    p = _jsonl(tmp_path / "pope.jsonl", [{"id": str(i), "prediction": r["answer"], "references": [r["label"]],
                                          "meta": {"split": r["split"]}} for i, r in enumerate(rows)])
    out = _score("pope", "--predictions", p)
    assert out["accuracy"] == score_pope([r["answer"] for r in rows], [[r["label"]] for r in rows]).corpus["accuracy"]
