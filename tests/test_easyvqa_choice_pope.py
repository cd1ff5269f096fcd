"""The offline easy-VQA multiple-choice and POPE-style tasks: their constructions (counts, balance,
determinism, the negatives each POPE split draws), the constant-answer baselines through the
runner, and prompt snapshots of the multiple-choice tasks on a sample with options, a hint and
two images (tests/data/mc_prompt_snapshots.json; MMBENCH_UPDATE_SNAPSHOTS=1 rewrites it)."""

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from mmbench.catalog import TASKS, build_task
from mmbench.metrics.registry import METRICS
from mmbench.runner import evaluate
from mmbench.tasks.datasets.easyvqa import COLORS, SHAPES, caption_rows
from mmbench.tasks.datasets.easyvqa_mc import mc_rows
from mmbench.tasks.datasets.easyvqa_pope import nearest_color, pope_rows
from mmbench.types import ImageRef, Sample

SNAPSHOTS = Path(__file__).parent / "data" / "mc_prompt_snapshots.json"


def test_mc_rows():
    rows, images = mc_rows("test"), {r["image_id"]: r for r in caption_rows("test")}
    assert len(rows) == 2 * 888 and rows == mc_rows("test")
    for row in rows:
        truth = images[row["image_id"]][row["category"]]
        assert row["choices"][ord(row["answer"]) - 65] == truth
        assert len(set(row["choices"])) == len(row["choices"]) == (4 if row["category"] == "color" else 3)
        assert set(row["choices"]) <= set(COLORS if row["category"] == "color" else SHAPES)
    assert len(Counter(r["answer"] for r in rows)) == 4  # the correct option is not always at one letter


def test_easyvqa_mc_task_is_circular():
    samples = build_task("easyvqa_mc").load_samples()
    assert len(samples) == 888 * (4 + 3)
    first = [s for s in samples if s.meta["group"] == "test-0-color"]
    assert [s.id for s in first] == [f"test-0-color@{k}" for k in range(4)]
    assert {s.meta["choices"][ord(s.references[0]) - 65] for s in first} == {"red"}  # image 0 is a red triangle


def test_pope_rows_follow_pope():
    rows, images = pope_rows("test"), {r["image_id"]: r for r in caption_rows("test")}
    assert len(rows) == 3 * 888 * 4 and rows == pope_rows("test")
    by_split = Counter((r["pope_split"], r["answer"]) for r in rows)
    assert set(by_split.values()) == {888 * 2}  # 2 yes and 2 no per image in every split
    colors = Counter(im["color"] for im in images.values())
    shapes = Counter(im["shape"] for im in images.values())
    for r in rows:
        im = images[r["image_id"]]
        present = r["object"] in (im["color"], im["shape"])
        assert present == (r["answer"] == "yes")
        assert r["question"] == f"is there a {r['object']}{' shape' if r['object'] in COLORS else ''} in the image?"
        if r["answer"] == "no" and r["pope_split"] == "popular":
            counts = colors if r["object"] in COLORS else shapes
            own = im["color"] if r["object"] in COLORS else im["shape"]
            assert counts[r["object"]] == max(n for v, n in counts.items() if v != own)
        if r["answer"] == "no" and r["pope_split"] == "adversarial" and r["object"] in COLORS:
            assert r["object"] == nearest_color(im["color"])
    assert nearest_color("red") == "brown" and nearest_color("green") == "teal"


@pytest.mark.skipif("pope" not in METRICS, reason="the pope metric is not registered yet")
def test_constant_baselines_show_what_the_metrics_catch(tmp_path):
    res = evaluate(model="easyvqa-always-yes", tasks=["easyvqa_pope"], output=str(tmp_path / "yes"), cache=False)
    pope = res["tasks"]["easyvqa_pope"]["metrics"]
    assert (pope["accuracy"], pope["precision"], pope["recall"], pope["yes_ratio"]) == (0.5, 0.5, 1.0, 1.0)
    res = evaluate(model="easyvqa-always-a", tasks=["easyvqa_mc"], output=str(tmp_path / "a"), cache=False)
    mc = res["tasks"]["easyvqa_mc"]["metrics"]
    assert mc["accuracy"] == pytest.approx(2 / 7) and mc["circular_accuracy"] == 0.0


def test_multiple_choice_prompt_snapshots():
    """Every built-in multiple-choice task's prompt for one sample with options, a hint and two images."""
    sample = Sample(id="q1", images=(ImageRef(path="a.png"), ImageRef(path="b.png")),
                    text="Which image shows <image 1> a red shape?", references=("B",),
                    meta={"choices": ["the first", "the second", "neither"], "hint": "Look at the colours."})
    rendered = {}
    for name in TASKS.names():
        if not TASKS.entry(name).source.startswith("builtin"):
            continue
        task = build_task(name)
        if task.family != "multiple-choice":
            continue
        req = task.build_requests(sample, "snapshot-model")[0]
        rendered[name] = {"prompt": req.prompt, "question": req.question, "n_images": len(req.images)}
    if os.environ.get("MMBENCH_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.write_text(json.dumps(rendered, indent=2, sort_keys=True) + "\n")
    assert rendered == json.loads(SNAPSHOTS.read_text())
