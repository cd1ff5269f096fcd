"""Compositionality: Winoground, SugarCrepe and ARO scores against the official code
(tests/data/compositionality), ties included; ``mmbench score winoground`` / ``caption-choice``;
the task family on local data of the Winoground and SugarCrepe schemas with the reference
dual encoder (similarity) and the reference captioner (likelihood)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmbench.catalog import build_task, builtin_task_dir, include_tasks
from mmbench.cli import app
from mmbench.metrics.compositionality import score_caption_choice, score_winoground

CASES = json.loads((Path(__file__).parent / "data" / "compositionality" / "cases.json").read_text())


def test_winoground_equals_the_dataset_card_functions():
    case = CASES["winoground"]
    values = score_winoground(case["scores"])
    for key in ("text_score", "image_score", "group_score"):
        assert values.corpus[key] == case[key], key
    assert score_winoground([{"c0_i0": 1.0, "c0_i1": 1.0, "c1_i0": 1.0, "c1_i1": 1.0}]).corpus["group_score"] == 0.0


def test_sugarcrepe_equals_official_per_split():
    case = CASES["sugarcrepe"]
    rows = case["cases"]
    values = score_caption_choice([r["scores"] for r in rows], correct=[r["correct"] for r in rows],
                                  splits=[r["split"] for r in rows])
    for split, accuracy in case["official"].items():
        assert values.corpus[f"accuracy/{split}"] == accuracy, split
    assert values.corpus["n_ties"] >= 9  # the built ties (every fourth item, and chance ones) all fail, as officially


def test_aro_vg_relation_and_attribution_equal_official():
    rel = CASES["vg_relation"]
    exclude = json.loads((builtin_task_dir() / "compositionality" / "aro_vg_relation.yaml").read_text()
                         .split("exclude_groups: ")[1].strip())
    values = score_caption_choice(rel["scores"], correct=[1] * len(rel["scores"]), groups=rel["groups"],
                                  exclude_groups=exclude)
    assert values.corpus["macro_accuracy"] == pytest.approx(rel["official_macro_accuracy"], abs=1e-12)
    assert values.corpus["accuracy"] == pytest.approx(rel["official_accuracy"], abs=1e-12)
    att = CASES["vg_attribution"]
    values = score_caption_choice(att["scores"], correct=[1] * len(att["scores"]), groups=att["groups"],
                                  min_group_count=25)
    assert values.corpus["macro_accuracy"] == pytest.approx(att["official_macro_accuracy"], abs=1e-12)
    assert values.corpus["n_groups"] == len(att["official_records"]) == 2


def test_aro_order_ties_count_as_right_as_officially():
    case = CASES["order"]
    values = score_caption_choice(case["scores"], correct=[0] * len(case["scores"]))
    assert values.corpus["accuracy"] == case["official_coco"] == case["official_flickr"]
    assert values.corpus["n_ties"] > 0
    assert score_caption_choice([[1.0] * 5], correct=[0]).corpus["accuracy"] == 1.0  # a constant model


def test_score_winoground_and_caption_choice_cli(tmp_path):
    lines = [{"id": i, **s} for i, s in enumerate(CASES["winoground"]["scores"])]
    (tmp_path / "S.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    result = CliRunner().invoke(app, ["score", "winoground", "--scores", str(tmp_path / "S.jsonl"), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got == {k: CASES["winoground"][k] for k in ("text_score", "image_score", "group_score")}
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "c0_i0": 1, "c0_i1": 0, "c1_i0": "x", "c1_i1": 1}\n')
    bad = CliRunner().invoke(app, ["score", "winoground", "--scores", str(tmp_path / "bad.jsonl")])
    assert bad.exit_code != 0 and "bad.jsonl:1" in bad.output and "c1_i0" in bad.output
    att = CASES["vg_attribution"]
    (tmp_path / "C.jsonl").write_text("".join(json.dumps({"id": i, "scores": s, "correct": 1, "group": g}) + "\n"
                                              for i, (s, g) in enumerate(zip(att["scores"], att["groups"]))))
    result = CliRunner().invoke(app, ["score", "caption-choice", "--scores", str(tmp_path / "C.jsonl"),
                                      "--min-group-count", "25", "--json"])
    assert json.loads(result.stdout.strip().splitlines()[-1])["macro_accuracy"] == pytest.approx(
        att["official_macro_accuracy"])


def _easyvqa_images():
    from mmbench.tasks.datasets.easyvqa import caption_rows

    by_pair = {}
    for row in caption_rows("test"):
        by_pair.setdefault((row["color"], row["shape"]), row["image"])
    return by_pair


@pytest.fixture(scope="module")
def local_data(tmp_path_factory):
    """Winoground- and SugarCrepe-shaped local data from easy-VQA images (pairs that differ in colour,
    shape or both)."""
    root = tmp_path_factory.mktemp("compositionality")
    img = _easyvqa_images()
    pairs = [(("red", "circle"), ("blue", "triangle")), (("green", "rectangle"), ("yellow", "circle")),
             (("black", "triangle"), ("teal", "rectangle")), (("gray", "circle"), ("brown", "triangle"))]
    with open(root / "wino.jsonl", "w") as fh:
        for i, (a, b) in enumerate(pairs):
            fh.write(json.dumps({"id": i, "image_0": img[a], "image_1": img[b], "caption_0": f"a {a[0]} {a[1]}",
                                 "caption_1": f"a {b[0]} {b[1]}", "collapsed_tag": "Object" if i % 2 else "Both"})
                     + "\n")
    (root / "sc").mkdir()
    (root / "sc" / "data").mkdir()
    from mmbench.tasks.datasets.compositionality import SUGARCREPE_SPLITS

    for n, split in enumerate(SUGARCREPE_SPLITS):
        items = {str(k): {"filename": Path(img[a]).name, "caption": f"a {a[0]} {a[1]}",
                          "negative_caption": f"a {b[0]} {a[1]}"} for k, (a, b) in enumerate(pairs[:1 + n % 3])}
        (root / "sc" / "data" / f"{split}.json").write_text(json.dumps(items))
    (root / "wino.yaml").write_text(textwrap.dedent(f"""
        include: {builtin_task_dir() / 'compositionality' / 'winoground.yaml'}
        name: local_winoground
        dataset: {{path: json, data_files: {{test: {root / 'wino.jsonl'}}}, revision: null}}
    """))
    (root / "wino_lm.yaml").write_text("include: wino.yaml\nname: local_winoground_lm\n"
                                       "metric_options: {method: likelihood}\n")
    (root / "sc.yaml").write_text(textwrap.dedent(f"""
        include: {builtin_task_dir() / 'compositionality' / 'sugarcrepe.yaml'}
        name: local_sugarcrepe
        dataset:
          loader_kwargs: {{data_dir: {root / 'sc'}, image_root: {Path(img[pairs[0][0]]).parent}}}
    """))
    for name in ("wino.yaml", "wino_lm.yaml", "sc.yaml"):
        include_tasks(root / name)
    return root


def test_builtin_task_files_load_local_data_of_their_schema(local_data):
    task = build_task("local_winoground")
    samples = task.load_samples()
    assert len(samples) == 4 and len(samples[0].images) == 2 and samples[0].meta["tag"] == "Both"
    reqs = task.build_requests(samples[0], None)
    assert [r.id for r in reqs] == ["0#image0", "0#image1", "0#text0", "0#text1"]
    sc = build_task("local_sugarcrepe").load_samples()
    assert len(sc) == sum(1 + n % 3 for n in range(7)) and sc[0].meta == {"correct": 1, "split": "add_obj"}
    assert sc[0].references == ("a blue circle", "a red circle")  # [negative, caption]: a tie fails


@pytest.mark.slow
def test_reference_models_end_to_end_and_rescored(local_data, tmp_path):
    from mmbench.runner import evaluate

    include = [str(local_data / n) for n in ("wino.yaml", "wino_lm.yaml", "sc.yaml")]
    clip = evaluate(model="easyvqa-clip", tasks=["local_winoground", "local_sugarcrepe"], include=include,
                    cache=False, output=str(tmp_path / "clip"))["tasks"]
    lm = evaluate(model="easyvqa-captioner", tasks=["local_winoground_lm"], include=include, cache=False,
                  output=str(tmp_path / "lm"))["tasks"]
    assert clip["local_winoground"]["metrics"]["group_score"] == 1.0
    assert lm["local_winoground_lm"]["metrics"]["group_score"] == 1.0
    assert clip["local_sugarcrepe"]["metrics"]["accuracy"] == 1.0
    for run, task in ((tmp_path / "clip", "local_winoground"), (tmp_path / "lm", "local_winoground_lm")):
        result = CliRunner().invoke(app, ["score", "winoground", "--json", "--scores",
                                          str(run / "predictions" / f"{task}.scores.jsonl")])
        got = json.loads(result.stdout.strip().splitlines()[-1])
        entry = (clip if run.name == "clip" else lm)[task]
        assert got == {k: entry["metrics"][k] for k in got}
    line = json.loads((tmp_path / "clip" / "predictions" / "local_winoground.jsonl").read_text().splitlines()[0])
    assert set(line["prediction"]) == {"c0_i0", "c0_i1", "c1_i0", "c1_i1"}
    assert np.isfinite(list(line["prediction"].values())).all()
