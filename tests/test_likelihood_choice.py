"""The likelihood-choice family (choice by ScoreRequest) end to end on easyvqa_caption_choice with the
reference captioner: prediction = the most likely candidate, cache, batch size, option errors."""

from __future__ import annotations

import json

import pytest

from mmbench.runner import evaluate
from mmbench.catalog import build_task
from mmbench.errors import DataError
from mmbench.tasks.config import load_task_config
from mmbench.tasks.likelihood_choice import LikelihoodChoiceTask
from mmbench.types import Sample


def test_easyvqa_caption_choice_with_the_reference_captioner(tmp_path):
    first = evaluate(model="easyvqa-captioner", tasks=["easyvqa_caption_choice"], limit=12, batch_size=5,
                     output=str(tmp_path / "a"), device="cpu")
    task = first["tasks"]["easyvqa_caption_choice"]
    assert task["family"] == "likelihood-choice" and task["n_failed"] == 0
    assert task["metrics"]["exact_match"] >= 11 / 12  # 99.2% on the full test split (docs/likelihood.md)
    assert task["primary_metric"] == "exact_match"
    lines = [json.loads(x) for x in (tmp_path / "a" / "predictions" / "easyvqa_caption_choice.jsonl").open()]
    assert all(line["prediction"].startswith("a ") and "gold_rank" in line["scores"] for line in lines)
    # all from the cache the second time, at another batch size, with the same numbers
    second = evaluate(model="easyvqa-captioner", tasks=["easyvqa_caption_choice"], limit=12, batch_size=1,
                      output=str(tmp_path / "b"), device="cpu")
    again = second["tasks"]["easyvqa_caption_choice"]
    assert again["n_cached"] == 12 and again["n_computed"] == 0
    assert again["metrics"] == task["metrics"]


def _task(tmp_path, options: str) -> LikelihoodChoiceTask:
    path = tmp_path / "t.yaml"
    path.write_text("name: t\nfamily: likelihood-choice\ndataset: {path: json, data_files: x.jsonl, split: train}\n"
                    f"metrics: [exact-match]\nmetric_options: {options}\n")
    return LikelihoodChoiceTask(load_task_config(path))


def test_selection_and_ties(tmp_path):
    task = _task(tmp_path, "{choices: [a b c, x, y], selection: mean}")
    sample = Sample("s", references=("x",))
    # sum picks "x" (-1.0); the per-token mean picks "a b c" (-0.5); ties go to the first listed
    assert task.collect(sample, [((-1.5, 3), (-1.0, 1), (-2.0, 1))]) == {"choice": "a b c", "gold_rank": 2}
    task.selection = "sum"
    assert task.collect(sample, [((-1.5, 3), (-1.0, 1), (-2.0, 1))]) == {"choice": "x", "gold_rank": 1}
    assert task.collect(sample, [((-1.0, 1), (-1.0, 1), (-1.0, 1))])["choice"] == "a b c"


@pytest.mark.parametrize("options, message", [("{selection: max, choices: [a]}", "selection"),
                                               ("{choices: [a, a]}", "distinct"),
                                               ("{selection: sum}", "needs candidates")])
def test_bad_options_fail_at_build(tmp_path, options, message):
    with pytest.raises(DataError, match=message):
        _task(tmp_path, options)


def test_the_easyvqa_task_lists_the_24_captions():
    task = build_task("easyvqa_caption_choice")
    assert len(task.shared_choices) == 24 and task.needs == "score"
