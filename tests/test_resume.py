"""Crash safety: a run killed with SIGKILL resumes without recomputing finished samples,
and its final results equal an uninterrupted run's."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from mmbench.cache import PredictionCache
from mmbench.errors import MMBenchError
from tests.helpers import make_caption_task

pytest.importorskip("mmbench_example_plugin", reason="install tests/plugin_pkg (README test command)")

N = 24


def _cmd(tasks, out, cache_dir, *extra):
    return [sys.executable, "-m", "mmbench", "eval", "--model", "example-echo", "--tasks", "tiny_caption",
            "--include", str(tasks), "--output", str(out), "--batch-size", "2", "--cache-dir", str(cache_dir),
            *extra]


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path):
    tasks = make_caption_task(tmp_path, metric="example-length", n=N)
    cache_dir, log = tmp_path / "cache", tmp_path / "computed.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_cmd(tasks, tmp_path / "run1", cache_dir, "--model-arg", "delay=0.25",
                                 "--model-arg", f"log={log}"), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if log.exists() and len(log.read_text().split()) >= 8:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "run1" / "results.json").exists()
    with sqlite3.connect(cache_dir / "predictions.sqlite") as db:
        finished = {row[0] for row in db.execute("SELECT sample_id FROM predictions")}
    assert 6 <= len(finished) < N  # killed midway, with whole batches stored

    log.write_text("")
    subprocess.run(_cmd(tasks, tmp_path / "run2", cache_dir, "--model-arg", f"log={log}"), check=True, env=env,
                   capture_output=True, timeout=120)
    recomputed = set(log.read_text().split())
    assert recomputed.isdisjoint(finished)
    assert recomputed | finished == {f"img{i}" for i in range(N)}
    resumed = json.loads((tmp_path / "run2" / "results.json").read_text())["tasks"]["tiny_caption"]
    assert resumed["n_cached"] == len(finished) and resumed["n_computed"] == N - len(finished)

    subprocess.run(_cmd(tasks, tmp_path / "run3", tmp_path / "cache3", "--no-cache"), check=True, env=env,
                   capture_output=True, timeout=120)
    fresh = json.loads((tmp_path / "run3" / "results.json").read_text())["tasks"]["tiny_caption"]
    assert fresh["n_cached"] == 0 and resumed["metrics"] == fresh["metrics"]
    assert (tmp_path / "run2" / "predictions" / "tiny_caption.jsonl").read_text() == \
        (tmp_path / "run3" / "predictions" / "tiny_caption.jsonl").read_text()


def test_corrupt_cache_is_detected_and_never_used(tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "predictions.sqlite").write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    with pytest.raises(MMBenchError, match=r"corrupt.*mv .*predictions.sqlite.*--no-cache"):
        PredictionCache(cache_dir)


def test_cache_keys_ignore_batch_size_and_limit(tmp_path):
    from mmbench.runner import evaluate

    tasks = make_caption_task(tmp_path, metric="example-length", n=6)
    first = evaluate(model="example-echo", tasks=["tiny_caption"], include=[str(tasks)], limit=4, batch_size=3,
                     output=str(tmp_path / "a"))["tasks"]["tiny_caption"]
    assert first["n_cached"] == 0 and first["n_computed"] == 4
    second = evaluate(model="example-echo", tasks=["tiny_caption"], include=[str(tasks)], batch_size=2,
                      output=str(tmp_path / "b"))["tasks"]["tiny_caption"]
    assert second["n_cached"] == 4 and second["n_computed"] == 2


def test_in_memory_images_are_keyed_by_their_pixels():
    """Two different in-memory images never share a cache key, even if one is freed and the
    other lands at the same address; equal pixels give equal keys across runs."""
    from PIL import Image

    from mmbench.cache import request_hash
    from mmbench.types import GenerateRequest, ImageRef

    def key(color):
        return request_hash(GenerateRequest(id="s", images=(ImageRef(pil=Image.new("RGB", (4, 4), color)),)))

    assert key((1, 2, 3)) == key((1, 2, 3))
    assert key((1, 2, 3)) != key((1, 2, 4))


def test_cache_key_changes_with_library_versions(monkeypatch):
    """A cache shared by two transformers releases is never read across them."""
    from importlib import metadata

    from mmbench.catalog import build_task
    from mmbench.runner import cache_task_key

    task = build_task("easyvqa_vqa")
    task.load_samples(limit=1)
    before = cache_task_key(task, "p")
    real = metadata.version
    # the installed version is read from package metadata (transformers is not imported for it)
    monkeypatch.setattr(metadata, "version", lambda name: "4.57.6" if name == "transformers" else real(name))
    assert cache_task_key(task, "p") != before
