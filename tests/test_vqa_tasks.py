"""VQA tasks: hub task definitions on local fixtures of the same schema, tiny VQA models end to end
(prompt snapshots are in tests/test_prompt_snapshots.py)."""

import io
import json
import textwrap
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from mmbench.catalog import build_task, builtin_task_dir, include_tasks
from mmbench.runner import evaluate
from tests.fixtures import tiny_models
from tests.helpers import read_jsonl

def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.random.RandomState(seed).rand(24, 24, 3) * 255).astype("uint8")).save(buf, format="PNG")
    return buf.getvalue()


def _vqav2_fixture(path: Path, n: int = 5) -> Path:
    questions = ["what color is the cat?", "how many dogs are there?", "is it raining?", "what is on the table?",
                 "what sport is this?"]
    answers = [["black"] * 7 + ["gray"] * 3, ["2"] * 10, ["no"] * 9 + ["yes"], ["food"] * 4 + ["plate"] * 6,
               ["tennis"] * 10]
    rows = {"question_type": [], "multiple_choice_answer": [], "answers": [], "image_id": [], "answer_type": [],
            "question_id": [], "question": [], "image": []}
    for i in range(n):
        rows["question_type"].append(" ".join(questions[i % 5].split()[:2]))
        rows["multiple_choice_answer"].append(answers[i % 5][0])
        rows["answers"].append([{"answer": a, "answer_confidence": "yes", "answer_id": j + 1}
                                for j, a in enumerate(answers[i % 5])])
        rows["image_id"].append(100 + i)
        rows["answer_type"].append(["other", "number", "yes/no", "other", "other"][i % 5])
        rows["question_id"].append(1000 + i)
        rows["question"].append(questions[i % 5])
        rows["image"].append({"bytes": _png(i), "path": None})
    features = datasets.Features({
        "question_type": datasets.Value("string"), "multiple_choice_answer": datasets.Value("string"),
        "answers": [{"answer": datasets.Value("string"), "answer_confidence": datasets.Value("string"),
                     "answer_id": datasets.Value("int64")}],
        "image_id": datasets.Value("int64"), "answer_type": datasets.Value("string"),
        "question_id": datasets.Value("int64"), "question": datasets.Value("string"), "image": datasets.Image()})
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(path))
    return path


def _local_task(tmp_path: Path, builtin: str, data: str, name: str) -> str:
    (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(f"""
        include: {builtin_task_dir() / 'vqa' / (builtin + '.yaml')}
        name: {name}
        dataset: {{path: parquet, data_files: {data}, split: train, revision: null}}
    """))
    include_tasks(tmp_path / f"{name}.yaml")
    return name


def test_vqav2_schema_and_official_accuracy(tmp_path):
    _vqav2_fixture(tmp_path / "vqav2.parquet")
    task = build_task(_local_task(tmp_path, "vqav2_val", "vqav2.parquet", "vqav2_local"))
    samples = task.load_samples()
    assert [s.id for s in samples] == ["1000", "1001", "1002", "1003", "1004"]
    assert samples[0].references[:7] == ("black",) * 7 and samples[0].meta["answer_type"] == "other"
    req = task.build_request(samples[0], "any-model")
    assert req.question == "what color is the cat?" and req.prompt.startswith("what color is the cat?\nAnswer")
    values = task.score(samples, ["gray", "two", "No", None, "tennis"], {})
    # gray: 3 of 10 -> 0.9 (leave-one-out mean); "two" vs 10 x "2": the official script does not normalise
    # when all answers agree -> 0; "No" -> "no" (answers differ, normalised) -> 1; failed -> 0; tennis -> 1
    assert values.corpus["accuracy"] == pytest.approx((0.9 + 0 + 1 + 0 + 1) / 5)
    assert values.corpus["accuracy/yes/no"] == pytest.approx(1.0)
    assert values.corpus["unanswered"] == 0.0


def test_wrong_answer_count_is_a_sample_error(tmp_path):
    task = build_task("vqav2_val")
    row = {"question_id": 5, "image": {"bytes": _png(0), "path": None}, "question": "q?", "answers": ["a"] * 9}
    sample = task.row_to_sample(0, row)
    assert sample.error and "'answers'" in sample.error and "expected 10 answers, got 9" in sample.error
    row = {"question_id": 6, "image": {"bytes": _png(0), "path": None}, "answers": ["a"] * 10}
    assert "'question'" in task.row_to_sample(0, row).error


@pytest.mark.parametrize("kind", ["blip_vqa", "vilt", "llava", "idefics3"])
def test_tiny_vqa_models_batched(tmp_path, kind):
    _vqav2_fixture(tmp_path / "vqav2.parquet", n=6)
    name = _local_task(tmp_path, "vqav2_val", "vqav2.parquet", f"vqa_{kind}")
    builders = {"blip_vqa": lambda p: tiny_models.make_blip_vqa(p),
                "vilt": lambda p: tiny_models.make_vilt_vqa(p, ["black", "2", "no", "yes", "food", "tennis"]),
                "llava": tiny_models.make_llava, "idefics3": tiny_models.make_idefics3}
    ckpt = builders[kind](tmp_path / "ckpt")
    runs = {}
    for bs in (1, 4):
        res = evaluate(model=ckpt, tasks=[name], output=str(tmp_path / f"run{bs}"), batch_size=bs, cache=False)
        task = res["tasks"][name]
        assert task["n_failed"] == 0, task["failures"]
        runs[bs] = [p["prediction"] for p in read_jsonl(tmp_path / f"run{bs}" / task["predictions"])]
    assert runs[1] == runs[4]  # batch size never changes answers
    assert res["model"]["fingerprint"]["adapter"] == ("hf-vqa" if kind in ("blip_vqa", "vilt") else "hf-vlm")
    if kind == "vilt":
        assert set(runs[4]) <= {"black", "2", "no", "yes", "food", "tennis"}


def test_multiple_choice_task_counts_unparseable(tmp_path):
    data = tmp_path / "mc.jsonl"
    img = tmp_path / "a.png"
    img.write_bytes(_png(3))
    rows = [{"question_id": "q1", "image": "a.png", "question": "Which animal?", "answers": ["dog"],
             "choices": ["cat", "dog"]},
            {"question_id": "q2", "image": "a.png", "question": "Which colour?", "answers": ["A"],
             "choices": ["red", "blue"]},
            {"question_id": "q3", "image": "a.png", "question": "Which shape?", "answers": ["circle"],
             "choices": ["circle", "square"]}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "mc.yaml").write_text(textwrap.dedent("""
        name: tiny_mc
        family: vqa
        dataset: {path: json, data_files: mc.jsonl, split: train}
        prompt: "{question}\\n{options}\\nAnswer with the option's letter."
        metrics: [multiple-choice]
    """))
    include_tasks(tmp_path / "mc.yaml")
    task = build_task("tiny_mc")
    samples = task.load_samples()
    assert task.build_request(samples[0], None).prompt == "Which animal?\nA. cat\nB. dog\nAnswer with the option's letter."
    values = task.score(samples, ["The answer is B.", "blue", "A or B"], {})
    assert values.corpus["accuracy"] == pytest.approx(1 / 3)  # B right; "blue" is B, not A; "A or B" unparsed
    assert values.corpus["unparsed"] == 1.0
