"""Zero-shot classification: the classifier and metrics against CLIP_benchmark's own code
(tests/data/zeroshot), the tie rule, ``mmbench score zeroshot``, the built-in hub tasks on a
local webdataset shard of their schema, and the offline easy-VQA task end to end."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mmbench.catalog import build_task, builtin_task_dir, include_tasks
from mmbench.cli import app
from mmbench.errors import DataError
from mmbench.metrics.zeroshot import class_logits, classification_accuracy, zeroshot_classifier

CASES = json.loads((Path(__file__).parent / "data" / "zeroshot" / "cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_matches_clip_benchmark(case):
    classifier = zeroshot_classifier(np.array(case["text_emb"], dtype=np.float32))
    np.testing.assert_allclose(classifier, np.array(case["official_classifier"]), atol=2e-7)
    logits = class_logits(np.array(case["image_emb"], dtype=np.float32), classifier)
    values = classification_accuracy(list(logits), case["labels"], (1, 5))
    expected = case["expected"]
    assert values.corpus["acc1"] == expected["acc1"]
    assert values.corpus["mean_per_class_recall"] == pytest.approx(expected["mean_per_class_recall"], abs=1e-12)
    if expected["acc5"] is None:
        assert "acc5" in values.unavailable and "acc5" not in values.corpus
    else:
        assert values.corpus["acc5"] == expected["acc5"]


def test_ties_are_pessimistic_and_failures_are_misses():
    # image 0: true class tied with class 1 at the top -> rank 2; image 1: failed
    values = classification_accuracy([[0.5, 0.5, 0.1], None, [0.1, 0.2, 0.9]], [0, 1, 2], (1, 2))
    assert values.corpus == {"acc1": 1 / 3, "acc2": 2 / 3, "mean_per_class_recall": 1 / 3}
    assert values.per_sample[0] == {"acc1": 0.0, "acc2": 1.0, "rank": 2.0} and "rank" not in values.per_sample[1]
    assert any("1 of 3 images failed" in w for w in values.warnings)
    constant = classification_accuracy([[1.0] * 5] * 10, list(range(5)) * 2, (1, 5))
    assert constant.corpus["acc1"] == 0.0 and constant.corpus["acc5"] == 1.0


def test_score_zeroshot_cli(tmp_path):
    case = CASES[0]
    classifier = np.array(case["official_classifier"], dtype=np.float32)
    np.save(tmp_path / "I.npy", np.array(case["image_emb"], dtype=np.float32))
    np.save(tmp_path / "C.npy", classifier)
    (tmp_path / "L.json").write_text(json.dumps(case["labels"]))
    args = ["score", "zeroshot", "--image-embeddings", str(tmp_path / "I.npy"), "--class-embeddings",
            str(tmp_path / "C.npy"), "--labels", str(tmp_path / "L.json")]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert list(got) == ["acc1", "acc5", "mean_per_class_recall"]
    assert got["acc1"] == case["expected"]["acc1"] and got["acc5"] == case["expected"]["acc5"]
    (tmp_path / "bad.json").write_text(json.dumps(case["labels"][:-1]))
    bad = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "bad.json")])
    assert bad.exit_code != 0 and "bad.json" in bad.output and "labels" in bad.output
    np.save(tmp_path / "S.npy", np.array(case["image_emb"], dtype=np.float32) @ classifier.T)
    scores = CliRunner().invoke(app, ["score", "zeroshot", "--class-scores", str(tmp_path / "S.npy"),
                                      "--labels", str(tmp_path / "L.json"), "--json"])
    assert json.loads(scores.stdout.strip().splitlines()[-1])["acc1"] == case["expected"]["acc1"]


HUB_TASKS = ["imagenet1k_val", "cifar10_test", "cifar100_test", "pets_test", "flowers_test", "eurosat_test"]


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 30 * i % 256, dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("builtin", HUB_TASKS)
def test_hub_tasks_read_the_webdataset_schema(tmp_path, builtin):
    """CLIP_benchmark's wds classification shards: <key>.webp|png|jpg and <key>.cls (the class index)."""
    with tarfile.open(tmp_path / "shard.tar", "w") as tar:
        for i in range(4):
            for name, data in ((f"{i:06d}.png", _png(i)), (f"{i:06d}.cls", str(i * 3).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    (tmp_path / "local.yaml").write_text(textwrap.dedent(f"""
        include: {builtin_task_dir() / 'zeroshot' / (builtin + '.yaml')}
        name: local_{builtin}
        dataset: {{path: webdataset, data_files: {{test: shard.tar}}, revision: null}}
    """))
    include_tasks(tmp_path / "local.yaml")
    task = build_task(f"local_{builtin}")
    samples = task.load_samples()
    assert [s.meta["label"] for s in samples] == [0, 3, 6, 9]
    assert [s.references[0] for s in samples] == [task.classnames[i] for i in (0, 3, 6, 9)]
    requests = task.build_requests(samples[0], None)
    assert len(requests) == 1 + len(task.classnames) * len(task.templates)
    assert requests[1].text == task.templates[0].format(c=task.classnames[0])
    assert len(task.build_requests(samples[1], None)) == 1  # the prompts travel with the first sample only


def test_builtin_prompt_sets_are_clip_benchmark_sizes():
    task = build_task("imagenet1k_val")
    assert (len(task.classnames), len(task.templates)) == (1000, 80)
    assert task.classnames[:2] == ["tench", "goldfish"] and task.templates[0] == "a bad photo of a {c}."
    assert [len(build_task(n).classnames) for n in ("cifar10_test", "cifar100_test")] == [10, 100]


def test_bad_labels_and_templates_are_named(tmp_path):
    (tmp_path / "t.yaml").write_text(textwrap.dedent("""
        include: easyvqa_zeroshot
        name: bad_templates
        metric_options: {templates: ["a photo of {x}"]}
    """))
    include_tasks(tmp_path / "t.yaml")
    with pytest.raises(DataError, match="templates"):
        build_task("bad_templates")


@pytest.mark.slow
def test_easyvqa_zeroshot_end_to_end_and_rescored(tmp_path):
    from mmbench.runner import evaluate

    run = evaluate(model="easyvqa-clip", tasks=["easyvqa_zeroshot"], limit=48, cache=False,
                   output=str(tmp_path / "run"))["tasks"]["easyvqa_zeroshot"]
    assert run["n_samples"] == 48 and run["n_failed"] == 0 and run["n_requests"] == 48 + 24 * 4
    assert run["metrics"]["acc1"] > 0.9
    p = tmp_path / "run" / "predictions" / "easyvqa_zeroshot"
    result = CliRunner().invoke(app, ["score", "zeroshot", "--image-embeddings", f"{p}.image_embeddings.npy",
                                      "--class-embeddings", f"{p}.class_embeddings.npy",
                                      "--labels", f"{p}.labels.json", "--json"])
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got == {k: run["metrics"][k] for k in got}


@pytest.mark.slow
def test_easyvqa_zeroshot_by_likelihood_end_to_end_and_rescored(tmp_path):
    """The reference captioner through ScoreRequest: one request per image with the 24 x 2 prompts;
    class = mean over templates of the summed log-probs, as recomputed here from the run's scores."""
    from mmbench.runner import evaluate

    run = evaluate(model="easyvqa-captioner", tasks=["easyvqa_zeroshot_lm"], limit=12, cache=False,
                   output=str(tmp_path / "run"))["tasks"]["easyvqa_zeroshot_lm"]
    assert run["n_samples"] == 12 and run["n_failed"] == 0 and run["n_requests"] == 12
    p = tmp_path / "run" / "predictions" / "easyvqa_zeroshot_lm"
    scores = np.load(f"{p}.class_scores.npy")
    labels = json.loads(Path(f"{p}.labels.json").read_text())
    assert scores.shape == (12, 24)
    assert run["metrics"]["acc1"] == np.mean(scores.argmax(axis=1) == np.array(labels)) > 0.9
    result = CliRunner().invoke(app, ["score", "zeroshot", "--class-scores", f"{p}.class_scores.npy",
                                      "--labels", f"{p}.labels.json", "--json"])
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got == {k: run["metrics"][k] for k in got}
