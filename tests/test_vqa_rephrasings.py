"""The built-in vqa_rephrasings_val task on a local copy of the official release's layout
(v2_OpenEnded_mscoco_valrep2014_humans_og_questions.json + ..._annotations.json, COCO file names)."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path

import pytest
from PIL import Image

from mmbench.catalog import build_task
from mmbench.errors import DataError
from mmbench.runner import evaluate
from mmbench.tasks.datasets.vqa_rephrasings import ANNOTATIONS_FILE, QUESTIONS_FILE

# (original id, image id, question, 10 answers, rephrasings)
ORIGINALS = [
    (1001, 42, "Is the cat asleep?", ["yes"] * 8 + ["no"] * 2,
     ["Is the cat sleeping?", "Does the cat sleep?", "Is the cat napping?"]),
    (1002, 42, "What color is the cat?", ["black"] * 10,
     ["What is the color of the cat?", "Which color is the cat?", "The cat is what color?", "What colour is it?"]),
    (2001, 7, "Is it raining?", ["no"] * 9 + ["yes"], []),
]


def _release(root: Path, *, break_with: str | None = None) -> Path:
    data = root / "rephrasings"
    images = root / "val2014"
    data.mkdir()
    images.mkdir()
    questions, annotations = [], []
    for qid, image_id, question, answers, rephrasings in ORIGINALS:
        questions.append({"image_id": image_id, "question": question, "question_id": qid})
        for k, text in enumerate(rephrasings):
            questions.append({"image_id": image_id, "question": text, "question_id": qid * 10 + k,
                              "rephrasing_of": qid})
        for q in [qid] + [qid * 10 + k for k in range(len(rephrasings))]:
            annotations.append({"question_id": q, "image_id": image_id, "answer_type": "other",
                                "question_type": "what", "multiple_choice_answer": answers[0],
                                "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1}
                                            for j, a in enumerate(answers)]})
        Image.new("RGB", (8, 8), (image_id, 0, 0)).save(images / f"COCO_val2014_{image_id:012d}.jpg")
    if break_with == "unknown_original":
        questions.append({"image_id": 7, "question": "Rain?", "question_id": 9, "rephrasing_of": 5})
    if break_with == "duplicate":
        questions.append(dict(questions[0]))
    (data / QUESTIONS_FILE).write_text(json.dumps({"questions": questions}))
    (data / ANNOTATIONS_FILE).write_text(json.dumps({"annotations": annotations}))
    return root


@pytest.fixture
def release(tmp_path, monkeypatch):
    root = _release(tmp_path)
    monkeypatch.setenv("VQA_REPHRASINGS_DIR", str(root / "rephrasings"))
    monkeypatch.setenv("COCO_IMAGES", str(root / "val2014"))
    return root


def test_rows_are_grouped_by_original_question(release):
    samples = build_task("vqa_rephrasings_val").load_samples()
    assert len(samples) == 4 + 5 + 1 and all(s.error is None for s in samples)
    groups = {}
    for s in samples:
        groups.setdefault(s.meta["group"], []).append(s)
        assert len(s.references) == 10 and s.images[0].path.endswith(f"COCO_val2014_{int(s.meta['image_id']):012d}.jpg")
    assert {g: len(v) for g, v in groups.items()} == {"1001": 4, "1002": 5, "2001": 1}
    assert [s.meta["phrasing"] for s in groups["1001"]] == ["original"] + ["rephrasing"] * 3
    assert groups["1002"][3].references == ("black",) * 10  # a rephrasing carries its original's answers


def test_constant_answer_model_consensus_scores(release, tmp_path):
    """easyvqa-majority always answers "yes": correct (VQA accuracy > 0) on the cat-asleep and the
    rain groups, wrong on the colour group.  CS(k) averages over groups with at least k questions."""
    entry = evaluate(model="easyvqa-majority", tasks=["vqa_rephrasings_val"], output=str(tmp_path / "run"),
                     cache=False)["tasks"]["vqa_rephrasings_val"]
    m = entry["metrics"]
    assert m["n_groups"] == 3 and m["consistency"] == 1.0
    assert m["CS(1)"] == pytest.approx((1 + 0 + 1) / 3)
    assert m["CS(2)"] == pytest.approx((comb(4, 2) / comb(4, 2) + 0) / 2)  # the single-question group drops out
    assert m["CS(4)"] == pytest.approx((1 + 0) / 2)
    # "yes" against 8 x yes + 2 x no is 1.0; against 9 x no + 1 x yes it is 0.3 (official leave-one-out)
    assert m["group_majority_accuracy"] == pytest.approx((1.0 + 0.0 + 0.3) / 3)
    assert m["accuracy"] == pytest.approx((4 * 1.0 + 5 * 0.0 + 0.3) / 10)
    assert any("CS(4) is over the 2 of 3 groups" in w for w in entry["warnings"])


def test_missing_folder_says_which_variable(monkeypatch):
    monkeypatch.delenv("VQA_REPHRASINGS_DIR", raising=False)
    with pytest.raises(DataError, match="set VQA_REPHRASINGS_DIR"):
        build_task("vqa_rephrasings_val").load_samples()


@pytest.mark.parametrize("problem, message", [
    ("unknown_original", "sample '9', field 'rephrasing_of': rephrasing_of 5 is not a question"),
    ("duplicate", "sample '1001': duplicate question_id"),
])
def test_bad_release_files_name_the_question(tmp_path, monkeypatch, problem, message):
    root = _release(tmp_path, break_with=problem)
    monkeypatch.setenv("VQA_REPHRASINGS_DIR", str(root / "rephrasings"))
    monkeypatch.setenv("COCO_IMAGES", str(root / "val2014"))
    with pytest.raises(DataError, match=message):
        build_task("vqa_rephrasings_val").load_samples()
