"""The harness's own ceiling: a model that answers at once, through the whole runner.

    python benchmarks/null_model.py                      # VQAv2 size: 214,354 questions on 40,504 images
    python benchmarks/null_model.py --questions 20000    # a quick check

A local VQA task the size of VQAv2 val (questions about tiny PNGs, 5 per image on average,
10 human answers each, scored with the official VQA accuracy) is evaluated by the
``constant-answer`` adapter (``easyvqa-always-yes``: no tensors, no image decoding), with
everything a real run does: loading and checking the rows, building and hashing requests
(each image's bytes hashed once), the prediction cache (SQLite, written per batch), writing
``predictions/``, scoring.  Each size runs in a fresh process, so a run's peak RSS is its own.

Each size's questions are loaded once before its run (datasets converts the JSON to its Arrow
cache on a first load; its peak is printed apart), so the run measures what every later run of
a task does.  Printed per size: samples/s over the task (``timing.wall_s`` of the task: load,
plan, inference, scoring and writing; the process start and imports are apart), the inference
loop alone, peak RSS, peak anonymous memory (RSS less the file pages mapped from the Arrow
data, which the kernel can take back), and the growth of both per question between the two
sizes (what grows with the task).
Target (issue #17): at least 5,000 samples/s on the full size, so that a fast served or
vLLM backend never waits on mmbench.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build_task(root: Path, n_questions: int, n_images: int) -> Path:
    """Write ``n_images`` 8x8 PNGs, ``n_questions`` rows (question i about image i mod n_images) and a task YAML."""
    import numpy as np
    from PIL import Image

    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    for i in range(n_images):
        path = images / f"{i}.png"
        pixels = (rng.rand(8, 8, 3) * 255).astype("uint8")
        if not path.exists():
            Image.fromarray(pixels).save(path)
    words = ["yes", "no", "2", "red", "blue", "cat", "1", "white"]
    with open(root / "questions.jsonl", "w") as fh:
        for q in range(n_questions):
            fh.write(json.dumps({"question_id": q, "image": f"images/{q % n_images}.png",
                                 "question": f"what is shown in region {q % 97}?",
                                 "answers": [words[(q + k) % len(words)] for k in range(10)]}) + "\n")
    tasks = root / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "null_vqa.yaml").write_text(textwrap.dedent("""
        name: null_vqa
        family: vqa
        description: VQAv2-size synthetic questions for the harness ceiling
        dataset:
          path: json
          data_files: ../questions.jsonl
          split: train
          columns: {id: question_id, image: image, question: question, answers: answers}
        prompt: "{question}"
        generation: {max_new_tokens: 3}
        metric_options: {answers_per_question: 10}
        metrics: [vqa-accuracy]
    """))
    return tasks


def _status_mb(key: str) -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key + ":")) / 1024


def child(tasks: str, out: str, batch_size: str) -> None:
    """One run in this process; prints one JSON line.  A thread samples the anonymous memory (the
    harness's own: Python objects, buffers) every 20 ms; the peak RSS also counts file pages
    mapped from the Arrow data, which the kernel can take back."""
    import threading

    from mmbench.runner.evaluate import evaluate

    peak_anon = [0.0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak_anon[0] = max(peak_anon[0], _status_mb("RssAnon"))
            done.wait(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    result = evaluate(model="easyvqa-always-yes", tasks=["null_vqa"], include=[tasks], output=out,
                      cache_dir=str(Path(out) / "cache"), batch_size=int(batch_size) if batch_size.isdigit()
                      else batch_size)
    wall = time.perf_counter() - t0
    done.set()
    watcher.join()
    task = result["tasks"]["null_vqa"]
    print(json.dumps({"n": task["n_samples"], "n_failed": task["n_failed"], "task_s": task["timing"]["wall_s"],
                      "inference_s": task["timing"]["inference_s"], "score_s": task["timing"]["score_s"],
                      "evaluate_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "peak_anon_mb": max(peak_anon[0], _status_mb("RssAnon"))}))


def convert(root: Path) -> float:
    """Load the questions once (datasets converts the JSON to its Arrow cache; a real task's data is
    converted on its first load, once); return that process's peak RSS in MB."""
    code = ("import datasets, resource, sys; datasets.load_dataset('json', data_files=sys.argv[1], split='train'); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    proc = subprocess.run([sys.executable, "-c", code, str(root / "questions.jsonl")], capture_output=True,
                          text=True, check=True)
    return float(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=214_354)
    parser.add_argument("--images", type=int, default=40_504)
    parser.add_argument("--batch-size", default="256")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child[:2], args.child[2])
        return
    sizes = sorted({max(1000, args.questions // 4), args.questions})
    with tempfile.TemporaryDirectory(prefix="mmbench-null-") as tmp:
        rows = []
        for n in sizes:
            root = Path(tmp) / f"n{n}"
            t0 = time.perf_counter()
            tasks = build_task(root, n, max(1, round(args.images * n / args.questions)))
            convert_mb = convert(root)
            print(f"built {n} questions in {time.perf_counter() - t0:.1f} s (their first load, converting the JSON "
                  f"to Arrow: peak RSS {convert_mb:.0f} MB)", flush=True)
            proc = subprocess.run([sys.executable, __file__, "--child", str(tasks), str(root / "run"),
                                   args.batch_size], capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"run of {n} questions failed:\n{proc.stderr[-3000:]}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"\nload average: {open('/proc/loadavg').read().split()[:3]}")
        print(f"{'questions':>10} {'failed':>7} {'task s':>8} {'samples/s':>10} {'inference s':>12} "
              f"{'loop samples/s':>15} {'score s':>8} {'peak RSS MB':>12} {'peak anon MB':>13}")
        for r in rows:
            print(f"{r['n']:>10} {r['n_failed']:>7} {r['task_s']:>8.2f} {r['n'] / r['task_s']:>10.0f} "
                  f"{r['inference_s']:>12.2f} {r['n'] / r['inference_s']:>15.0f} {r['score_s']:>8.2f} "
                  f"{r['peak_rss_mb']:>12.0f} {r['peak_anon_mb']:>13.0f}")
        if len(rows) == 2:
            per = 1024 * 1024 / (rows[1]["n"] - rows[0]["n"])
            print(f"growth per question: peak RSS {(rows[1]['peak_rss_mb'] - rows[0]['peak_rss_mb']) * per:.0f} "
                  f"bytes, peak anonymous memory {(rows[1]['peak_anon_mb'] - rows[0]['peak_anon_mb']) * per:.0f} bytes")
        full = rows[-1]
        rate = full["n"] / full["task_s"]
        print(f"target >= 5,000 samples/s on {full['n']} questions: {rate:.0f} ({'met' if rate >= 5000 else 'missed'})")


if __name__ == "__main__":
    main()
