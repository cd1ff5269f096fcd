"""Prefix reuse (``--model-arg prefix_reuse``) on easy-VQA work: a realistic-size LLaVA answers every
question of the first easy-VQA test images with reuse on and off, at the best of several batch sizes
and at batch size 1; then the reference captioner's likelihood task (24 captions per image).

    python benchmarks/prefix_reuse.py            # 50 images (~480 questions); batch 1 on 5 images; ~10 min
    python benchmarks/prefix_reuse.py --quick    # 5 images, batch 1 on 2, captioner on 100 images; ~2 min

The model: ``LlavaForConditionalGeneration`` from a config with random weights (seed 0,
``batch_throughput.build_llava(size="realistic")``): a CLIP ViT-B/16 vision tower at 224 px
(12 layers, hidden 768; 196 image tokens, the CLS feature dropped), a 2-layer projector and a
134M Llama (hidden 768, 12 layers, MLP 2,048, 32,000-entry byte-level BPE vocabulary, untied
head): 221M parameters, the model of the side-by-side with lmms-eval (``vs_lmms_eval.py``).
``generation_config.json`` sets ``min_new_tokens = 8`` and the task asks for 8 new tokens
greedily, so every question generates exactly 8 tokens.  The prompt is the built-in
``easyvqa_vqa`` task's ("{question}\\nAnswer the question using a single word."), about 216
tokens with the LLaVA-1.5 template.  Questions about one image share the template, the image's
196 tokens and often the question's first words; with reuse the runner batches them together
and the adapter runs that prefix once.

Each configuration is one ``evaluate`` call (no prediction cache); the figure is
``timing.samples_per_s`` (questions / model-loop seconds).  Configurations run interleaved,
``--rounds`` times, best kept (load from other processes only slows a run down).  Every run's
predictions must equal the first run's, question by question (asserted): reuse and batching
change no output.

The captioner part: ``easyvqa-captioner`` (ViT+GPT-2, the reference model) on
``easyvqa_caption_choice`` (each image scores 24 captions, one score request) with reuse on
and off at batch size 8; equal predictions asserted, scores within 1e-4.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch_throughput import build_llava  # noqa: E402
from harness_overhead import REPO  # noqa: E402

TASK = "pr_easyvqa"


def write_task(root: Path, n_images: int, new_tokens: int, name: str) -> int:
    """A task over every question of the first ``n_images`` easy-VQA test images; the number of questions."""
    import yaml

    from mmbench.tasks.datasets.easyvqa_questions import question_rows

    rows = question_rows("test")
    keep = set(list(dict.fromkeys(r["image"] for r in rows))[:n_images])
    rows = [r for r in rows if r["image"] in keep]
    data = root / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    builtin = yaml.safe_load((REPO / "tasks/vqa/easyvqa_vqa.yaml").read_text())
    (root / f"{name}.yaml").write_text(yaml.safe_dump({
        "name": name, "family": "vqa", "description": f"easy-VQA test, every question of {n_images} images",
        "dataset": {"path": "json", "data_files": str(data), "split": "train",
                    "columns": builtin["dataset"]["columns"]},
        "prompt": builtin["prompt"], "generation": {"max_new_tokens": new_tokens}, "metrics": builtin["metrics"]}))
    return len(rows)


def run(model: str, task: str, out: Path, *, batch_size: int | str, reuse: bool, include: list[str],
        limit: int | None = None) -> tuple[dict, dict[str, str]]:
    """One ``evaluate``: (the task's result, id -> raw output).  A run folder that already holds
    the task's results (an earlier, interrupted invocation with the same ``--workdir``) is read
    back instead of run again."""
    from mmbench.runner import evaluate

    done = out / "results.json"
    if done.is_file() and task in json.loads(done.read_text()).get("tasks", {}):
        res = json.loads(done.read_text())
    else:
        res = evaluate(model=model, tasks=[task], include=include, output=str(out), batch_size=batch_size,
                       cache=False, meteor=False, limit=limit, model_args={"prefix_reuse": reuse})
    lines = (out / res["tasks"][task]["predictions"]).read_text().splitlines()
    return res["tasks"][task], {row["id"]: row["raw_output"] for row in map(json.loads, lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50, help="easy-VQA test images (all their questions)")
    parser.add_argument("--batch1-images", type=int, default=5, help="images for the batch-size-1 runs")
    parser.add_argument("--batch-sizes", default="16,32,64", help="the best of these is reported")
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--captioner-images", type=int, default=888, help="easyvqa_caption_choice images (0: skip)")
    parser.add_argument("--quick", action="store_true", help="5 images, batch 1 on 2, captioner on 100 images")
    parser.add_argument("--workdir", help="keep the checkpoint and run folders here (default: a temp dir); "
                                          "run again with the same folder, finished runs are read back")
    args = parser.parse_args()
    if args.quick:
        args.images, args.batch1_images, args.captioner_images, args.batch_sizes = 5, 2, 100, "16,32"

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    tmp = tempfile.TemporaryDirectory(prefix="mmbench-prefix-")
    work = Path(args.workdir or tmp.name)
    ckpt = work / "llava-221m"
    if not (ckpt / "config.json").is_file():
        build_llava(ckpt, image_size=224, max_new_tokens=args.new_tokens, vocab_size=32000, size="realistic")
    tasks_dir = work / "tasks"
    tasks_dir.mkdir(parents=True, exist_ok=True)
    n_questions = write_task(tasks_dir, args.images, args.new_tokens, TASK)
    n_single = write_task(tasks_dir, args.batch1_images, args.new_tokens, TASK + "_b1")
    load = [os.getloadavg()[0]]
    print(f"LLaVA 221M (ViT-B/16 224 px + 134M Llama), random weights; {n_questions} questions of {args.images} "
          f"images ({n_single} of {args.batch1_images} at batch 1); {args.new_tokens} new tokens; "
          f"torch threads {torch.get_num_threads()}; load avg {load[0]:.2f}", flush=True)

    sizes = [int(b) for b in args.batch_sizes.split(",")]
    configs = [(TASK, bs, reuse) for bs in sizes for reuse in (True, False)]
    configs += [(TASK + "_b1", 1, True), (TASK + "_b1", 1, False)]
    best: dict[tuple, float] = {}
    reference: dict[str, dict[str, str]] = {}
    for r in range(args.rounds):
        for task, bs, reuse in configs:
            t0 = time.perf_counter()
            result, preds = run(str(ckpt), task, work / f"r{r}_{task}_{bs}_{reuse}", batch_size=bs, reuse=reuse,
                                include=[str(tasks_dir)])
            reference.setdefault(task, preds)
            assert preds == reference[task], f"{task} batch {bs} reuse {reuse}: predictions differ"
            rate = result["timing"]["samples_per_s"]
            best[(task, bs, reuse)] = max(best.get((task, bs, reuse), 0.0), rate)
            load.append(os.getloadavg()[0])
            print(f"round {r + 1} {task} batch {bs:>2} reuse {'on ' if reuse else 'off'}: {rate:6.2f} samples/s "
                  f"(evaluate {time.perf_counter() - t0:.0f} s, load avg {load[-1]:.2f})", flush=True)

    on_best = max(sizes, key=lambda b: best[(TASK, b, True)])
    off_best = max(sizes, key=lambda b: best[(TASK, b, False)])
    b1_off = best[(TASK + "_b1", 1, False)]
    print(f"\n{'':<28}{'samples/s':>10} {'vs reuse off, same batch':>26} {'vs batch 1 off':>16}")
    for bs in sizes:
        for reuse in (True, False):
            rate = best[(TASK, bs, reuse)]
            print(f"  batch {bs:>2}, reuse {'on ' if reuse else 'off'}{'':<11}{rate:>10.2f} "
                  f"{rate / best[(TASK, bs, False)]:>25.2f}x {rate / b1_off:>15.2f}x")
    for reuse in (True, False):
        rate = best[(TASK + "_b1", 1, reuse)]
        print(f"  batch  1, reuse {'on ' if reuse else 'off'}{'':<11}{rate:>10.2f} {rate / b1_off:>25.2f}x "
              f"{rate / b1_off:>15.2f}x")
    print(f"best: reuse on at batch {on_best}: {best[(TASK, on_best, True)]:.2f} samples/s; reuse off at batch "
          f"{off_best}: {best[(TASK, off_best, False)]:.2f}; ratio {best[(TASK, on_best, True)] / best[(TASK, off_best, False)]:.2f}x; "
          f"vs lmms-eval's 1.02 samples/s (issue #17): {best[(TASK, on_best, True)] / 1.02:.2f}x")
    print("predictions: equal in every run")

    if args.captioner_images:
        caption = {}
        for r in range(args.rounds):
            for reuse in (True, False):
                result, preds = run("easyvqa-captioner", "easyvqa_caption_choice", work / f"cap{r}_{reuse}",
                                    batch_size=8, reuse=reuse, include=[], limit=args.captioner_images)
                reference.setdefault("caption", preds)
                assert preds == reference["caption"], "captioner predictions differ"
                caption[reuse] = max(caption.get(reuse, 0.0), result["timing"]["samples_per_s"])
                load.append(os.getloadavg()[0])
                print(f"round {r + 1} easyvqa_caption_choice reuse {'on ' if reuse else 'off'}: "
                      f"{result['timing']['samples_per_s']:.1f} images/s (load avg {load[-1]:.2f})", flush=True)
        print(f"captioner: reuse on {caption[True]:.1f} images/s, off {caption[False]:.1f}: "
              f"{caption[True] / caption[False]:.2f}x; predictions equal")
    print(f"\npython {sys.version.split()[0]} torch {torch.__version__} transformers {transformers.__version__}; "
          f"load avg {min(load):.2f}-{max(load):.2f}")


if __name__ == "__main__":
    main()
