"""The inference engine: auto batch size with out-of-memory back-off, prefetch timing, batch invariance check."""

import pytest

from mmbench.catalog import MODELS
from mmbench.errors import MMBenchError
from mmbench.models.base import ModelAdapter
from mmbench.runner import evaluate
from tests.helpers import make_caption_task, read_jsonl


class FakeOOM(RuntimeError):
    pass


FakeOOM.__name__ = "OutOfMemoryError"  # what torch.cuda.OutOfMemoryError is called


class SmallMemoryModel(ModelAdapter):
    """Raises an out-of-memory error for batches larger than 4; records batch sizes it ran."""

    adapter = "test-small-memory"
    seen: list[int] = []

    def __init__(self, name, **kw):
        super().__init__(name, device="cpu")

    def _generate_batch(self, requests, images):
        if len(requests) > 4:
            raise FakeOOM("CUDA out of memory. Tried to allocate 2.00 GiB")
        SmallMemoryModel.seen.append(len(requests))
        return [f"caption {r.id}" for r in requests]


class BatchDependentModel(ModelAdapter):
    """Answers differently when batched (a padding bug, say)."""

    adapter = "test-batch-dependent"

    def __init__(self, name, **kw):
        super().__init__(name, device="cpu")

    def _generate_batch(self, requests, images):
        return [f"{r.id} in a batch of {len(requests)}" for r in requests]


MODELS.register("test-small-memory", SmallMemoryModel, description="test", replace=True)
MODELS.register("test-batch-dependent", BatchDependentModel, description="test", replace=True)


@pytest.mark.parametrize("background", [True, False], ids=["prefetch-thread", "inline"])
def test_auto_batch_size_backs_off_without_losing_samples(tmp_path, monkeypatch, background):
    tasks = make_caption_task(tmp_path, metric="coco-caption", n=11)
    SmallMemoryModel.seen.clear()
    monkeypatch.setattr(SmallMemoryModel, "prefetch_in_background", background, raising=False)
    res = evaluate(model="test-small-memory", tasks=["tiny_caption"], include=[str(tasks)], batch_size="auto",
                   output=str(tmp_path / "run"), meteor=False)
    task = res["tasks"]["tiny_caption"]
    assert task["n_failed"] == 0 and task["batch_size"] == 4 and task["batch_size_requested"] == "auto"
    assert sum(SmallMemoryModel.seen) == 11 and max(SmallMemoryModel.seen) == 4
    preds = read_jsonl(tmp_path / "run" / task["predictions"])
    assert [p["prediction"] for p in preds] == [f"caption img{i}" for i in range(11)]
    assert set(task["timing"]) >= {"model_s", "data_wait_s", "inference_s", "samples_per_s"}
    assert task["memory"]["peak_rss_mb"] > 0


def test_batches_are_prepared_in_the_background_only_where_that_hides_work(monkeypatch):
    """A CPU model whose torch threads use every core prepares each batch inline, in the runner's
    thread (a prefetch thread would take a core from torch mid-operator); a GPU or served model, or
    torch given fewer threads than the cores, prepares the next batch in a background thread.  The
    batches and outputs are the same either way."""
    import os
    import threading

    import torch

    from mmbench.runner.batching import overlapped_batches, prefetch_in_background
    from mmbench.types import GenerateRequest

    class Model(ModelAdapter):
        def __init__(self, device):
            super().__init__("m", device="cpu")
            self.device, self.threads = device, set()

        def prepare(self, requests):
            self.threads.add(threading.current_thread().name)
            return super().prepare(requests)

        def _generate_batch(self, requests, images):
            return [r.id for r in requests]

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores)
    assert not prefetch_in_background(Model("cpu"))
    assert prefetch_in_background(Model("cuda:0")) and prefetch_in_background(Model("remote"))
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores - 1)
    assert prefetch_in_background(Model("cpu")) == (cores > 1)
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores)
    requests = [GenerateRequest(id=str(i), images=(), prompt="p") for i in range(7)]
    runs = {}
    for device in ("cpu", "cuda:0"):
        model = Model(device)
        timer = {"data_wait_s": 0.0, "forward_s": 0.0}
        runs[device] = [([r.id for r in batch], [o.text for o in outs])
                        for batch, outs in overlapped_batches(model, requests, 3, timer)]
        inline = model.threads == {threading.current_thread().name}
        assert inline == (device == "cpu"), model.threads
    assert runs["cpu"] == runs["cuda:0"] == [(["0", "1", "2"],) * 2, (["3", "4", "5"],) * 2, (["6"],) * 2]
    Model.prefetch_in_background = True  # an adapter's own choice wins
    assert prefetch_in_background(Model("cpu"))


def test_fixed_batch_size_out_of_memory_is_a_clear_error(tmp_path):
    tasks = make_caption_task(tmp_path, metric="coco-caption", n=6)
    with pytest.raises(MMBenchError, match="out of memory at batch size 8"):
        evaluate(model="test-small-memory", tasks=["tiny_caption"], include=[str(tasks)], batch_size=8,
                 output=str(tmp_path / "run"), meteor=False)


def test_bad_batch_size():
    with pytest.raises(MMBenchError, match="whole number or 'auto'"):
        evaluate(model="test-small-memory", tasks=["easyvqa_caption"], batch_size="lots")


def test_check_batch_invariance_reports_mismatches(tmp_path):
    tasks = make_caption_task(tmp_path, metric="coco-caption", n=6)
    res = evaluate(model="test-batch-dependent", tasks=["tiny_caption"], include=[str(tasks)], batch_size=3,
                   output=str(tmp_path / "run"), meteor=False, check_batch_invariance=True)
    inv = res["tasks"]["tiny_caption"]["batch_invariance"]
    assert inv["n_checked"] == 6 and inv["mismatches"] == 6 and inv["mismatch_rate"] == 1.0
    res = evaluate(model="test-small-memory", tasks=["tiny_caption"], include=[str(tasks)], batch_size=4,
                   output=str(tmp_path / "run2"), meteor=False, check_batch_invariance=True)
    assert res["tasks"]["tiny_caption"]["batch_invariance"]["mismatches"] == 0


def test_two_runs_cannot_share_an_output_folder(tmp_path):
    from mmbench.runner import lock_output as _lock_output

    held = _lock_output(tmp_path / "run")
    try:
        tasks = make_caption_task(tmp_path, metric="coco-caption", n=2)
        with pytest.raises(MMBenchError, match=r"in use by a running evaluation \(pid \d+\)"):
            evaluate(model="test-small-memory", tasks=["tiny_caption"], include=[str(tasks)],
                     output=str(tmp_path / "run"), meteor=False)
    finally:
        held.close()
    res = evaluate(model="test-small-memory", tasks=["tiny_caption"], include=[str(tasks)],
                   output=str(tmp_path / "run"), meteor=False)  # free again once the holder is gone
    assert res["tasks"]["tiny_caption"]["n_failed"] == 0


def test_threads_option_applies_during_the_run_only(tmp_path):
    import torch

    from mmbench.errors import MMBenchError
    from mmbench.runner import evaluate

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        res = evaluate(model="easyvqa-majority", tasks=["easyvqa_vqa"], limit=4, threads=1,
                       output=str(tmp_path / "a"))
        assert res["torch_threads"] == 1 and res["config"]["threads"] == 1
        assert torch.get_num_threads() == 2  # the caller's setting is back
    finally:
        torch.set_num_threads(before)
    with pytest.raises(MMBenchError, match="--threads must be"):
        evaluate(model="easyvqa-majority", tasks=["easyvqa_vqa"], limit=4, threads=0, output=str(tmp_path / "b"))


def test_peak_memory_is_per_task(tmp_path):
    """Peak RSS is measured from each task's start (Linux high-water-mark reset), so a task run
    after a memory-hungry one does not inherit its peak."""
    import re

    import numpy as np

    from mmbench.runner import evaluate

    hog = np.ones(800 * 2**20 // 8)  # 800 MB written: the process's high-water mark rises by as much
    del hog
    with open("/proc/self/status", encoding="ascii") as fh:
        before_mb = int(re.search(r"VmHWM:\s+(\d+) kB", fh.read()).group(1)) / 1024
    res = evaluate(model="easyvqa-majority", tasks=["easyvqa_vqa"], limit=4, output=str(tmp_path / "run"))
    mem = res["tasks"]["easyvqa_vqa"]["memory"]
    assert mem["peak_rss_scope"] == "task"
    assert mem["peak_rss_mb"] < before_mb - 400  # the task's peak does not include the 800 MB
