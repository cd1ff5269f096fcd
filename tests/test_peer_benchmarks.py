"""Smoke test of the side-by-side benchmarks' inputs (benchmarks/vs_clip_benchmark.py,
benchmarks/vs_lmms_eval.py), without the peers or their venvs: the data and task files they
write are readable by mmbench, and the LLaVA chat template renders lmms-eval's string user turn
and mmbench's list of parts to the same text, which the equal-outputs check relies on."""

from __future__ import annotations

import importlib.util
import sys
import tarfile
from pathlib import Path

import jinja2.sandbox
import pytest

REPO = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("captions", ["coco", "easyvqa"])
def test_clip_benchmark_shards_are_read_by_mmbench(tmp_path, captions):
    from mmbench.validate import validate_tasks

    bench = _script("vs_clip_benchmark")
    texts = bench.build_shards(tmp_path / "wds", 10, captions, shards=4)
    assert (len(texts), len(set(texts)) == 10) == (10, captions == "coco")  # coco: no two texts tie
    members = [m for i in range(4) for m in tarfile.open(tmp_path / "wds" / "test" / f"{i}.tar").getnames()]
    assert sorted(members) == sorted(f"s{i:07d}.{ext}" for i in range(10) for ext in ("png", "txt"))
    assert (tmp_path / "wds" / "test" / "nshards.txt").read_text() == "4\n"
    assert (tmp_path / "wds" / "dataset_type.txt").read_text() == "retrieval\n"
    bench.write_task(tmp_path / "vs_clip.yaml", "vs_clip", str(tmp_path / "wds" / "test" / "*.tar"))
    (report,) = validate_tasks("vs_clip", include=[str(tmp_path / "vs_clip.yaml")], n=10)
    assert report.ok, report.problems
    assert report.n_checked == 10 and report.n_images == 10


def test_lmms_eval_task_asks_what_mmbench_asks(tmp_path):
    from mmbench.validate import validate_tasks

    bench = _script("vs_lmms_eval")
    rows, prompt = bench.write_data(tmp_path, 2, 8)
    assert len({r["image"] for r in rows}) == 2 and len(rows) >= 10  # every question of 2 images
    peer_utils = (tmp_path / "lmms_tasks" / "utils.py").read_text()
    assert f"PROMPT = {prompt!r}" in peer_utils
    (report,) = validate_tasks(bench.TASK, include=[str(tmp_path / "tasks")], n=3)
    assert report.ok, report.problems
    assert [text for _, text in report.prompts] == [prompt.format(question=r["question"]) for r in rows[:3]]

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(bench.CHAT_TEMPLATE)
    text = prompt.format(question=rows[0]["question"])
    as_string = [{"role": "user", "content": f"<image>\n{text}"}]  # lmms-eval's llava_hf
    as_parts = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]  # mmbench
    render = [template.render(messages=m, bos_token="<s>", eos_token="</s>", add_generation_prompt=True)
              for m in (as_string, as_parts)]
    assert render[0] == render[1] == f"<s>USER: <image>\n{text} ASSISTANT:"


@pytest.mark.slow
def test_gpu_check_dry_run_on_the_cpu(tmp_path):
    """benchmarks/gpu_check.py, prepared for a lent GPU, runs every step here with a tiny model:
    the bare loop and mmbench agree on every output, and the steps that need CUDA, bitsandbytes
    or vLLM say they were skipped (never a made-up figure)."""
    import json
    import subprocess

    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--tiny", "--device", "cpu",
                           "--dtype", "float32", "--images", "3", "--questions", "2", "--out", str(out),
                           "--workdir", str(tmp_path / "work")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["bare"]["best_batch"] in (4, 8)
    for label in ("reuse off", "reuse on"):
        run = figures["mmbench"][f"b{figures['bare']['best_batch']} {label}"]
        assert run["equal_to_bare"] == "6/6" and run["failed"] == 0 and run["samples_per_s"] > 0
    assert figures["mmbench"]["auto reuse on"]["equal_to_bare"] == "6/6"
    assert all(figures[step].get("skipped") for step in ("backoff", "bnb-int8", "bnb-nf4"))
