"""torchrun with 2 CPU processes (gloo) gives the same results as 1 process."""

import json
import os
import subprocess
import sys

import pytest

from tests.fixtures import tiny_models
from tests.helpers import make_caption_task


def _eval(args, env, launcher):
    proc = subprocess.run([*launcher, "-m", "mmbench", "eval", *args], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def test_two_processes_equal_one(tmp_path):
    tasks = make_caption_task(tmp_path, metric="coco-caption", n=9, bad_rows=True)
    model = tiny_models.make_vit_gpt2_captioner(tmp_path / "ckpt")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = ["--model", model, "--tasks", "tiny_caption", "--include", str(tasks), "--batch-size", "2",
              "--no-cache"]
    _eval([*common, "--output", str(tmp_path / "one")], env, [sys.executable])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    _eval([*common, "--output", str(tmp_path / "two")], env, torchrun)
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert one["n_processes"] == 1 and two["n_processes"] == 2
    t1, t2 = one["tasks"]["tiny_caption"], two["tasks"]["tiny_caption"]
    assert t1["metrics"] == t2["metrics"] and t1["n_failed"] == t2["n_failed"] == 2
    assert t1["fingerprint"]["hash"] == t2["fingerprint"]["hash"]
    assert (tmp_path / "one" / "predictions" / "tiny_caption.jsonl").read_text() == \
        (tmp_path / "two" / "predictions" / "tiny_caption.jsonl").read_text()


def test_retrieval_two_processes_equal_one(tmp_path):
    """Embedding requests are sharded and gathered like generation requests: same recall, same files."""
    from tests.test_retrieval_task import _local_task

    task = _local_task(tmp_path, "wds_dist", broken=3)
    model = tiny_models.make_clip(tmp_path / "clip")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = ["--model", model, "--tasks", task, "--include", str(tmp_path / f"{task}.yaml"), "--batch-size", "3",
              "--no-cache"]
    _eval([*common, "--output", str(tmp_path / "one")], env, [sys.executable])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    _eval([*common, "--output", str(tmp_path / "two")], env, torchrun)
    one = json.loads((tmp_path / "one" / "results.json").read_text())["tasks"][task]
    two = json.loads((tmp_path / "two" / "results.json").read_text())["tasks"][task]
    assert one["metrics"] == two["metrics"] and one["n_failed"] == two["n_failed"] == 1
    import numpy as np

    # embeddings agree to float32 rounding (shards batch different requests together), not bit for bit
    for name in ("image_embeddings.npy", "text_embeddings.npy"):
        a, b = (np.load(tmp_path / run / "predictions" / f"{task}.{name}") for run in ("one", "two"))
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-5
    assert (tmp_path / "one" / "predictions" / f"{task}.text_to_image.json").read_text() == \
        (tmp_path / "two" / "predictions" / f"{task}.text_to_image.json").read_text()


def test_a_streamed_task_two_processes_equal_one(tmp_path):
    """A VQA task of more than one chunk (8,192 samples) runs, gathers and scores chunk by chunk under torchrun:
    the same metrics, fingerprint and predictions as one process."""
    from PIL import Image

    (tmp_path / "img").mkdir()
    for i in range(7):
        Image.new("RGB", (4, 4), (30 * i, 0, 0)).save(tmp_path / "img" / f"{i}.png")
    with open(tmp_path / "q.jsonl", "w") as fh:
        for i in range(9000):
            answers = [] if i in (5, 8500) else ["yes"] * (i % 5) + ["no"] * (10 - i % 5)
            fh.write(json.dumps({"question_id": i, "image": f"img/{i % 7}.png", "question": f"q {i}?",
                                 "answers": answers}) + "\n")
    (tmp_path / "t.yaml").write_text(
        "name: big_vqa\nfamily: vqa\ndataset: {path: json, data_files: q.jsonl, split: train}\n"
        "prompt: '{question}'\nmetrics: [vqa-accuracy]\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    common = ["--model", "easyvqa-always-yes", "--tasks", "big_vqa", "--include", str(tmp_path / "t.yaml"),
              "--batch-size", "64", "--no-cache"]
    _eval([*common, "--output", str(tmp_path / "one")], env, [sys.executable])
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    _eval([*common, "--output", str(tmp_path / "two")], env, torchrun)
    t1, t2 = (json.loads((tmp_path / run / "results.json").read_text())["tasks"]["big_vqa"] for run in ("one", "two"))
    assert t1["n_samples"] == 9000 and t1["n_failed"] == 2 and 0 < t1["metrics"]["accuracy"] < 1
    for key in ("metrics", "fingerprint", "n_samples", "n_failed", "n_computed"):
        assert t1[key] == t2[key], key
    assert (tmp_path / "one" / "predictions" / "big_vqa.jsonl").read_bytes() == \
        (tmp_path / "two" / "predictions" / "big_vqa.jsonl").read_bytes()
