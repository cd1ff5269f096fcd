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
