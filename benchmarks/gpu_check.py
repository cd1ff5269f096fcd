"""What only a GPU can check, as one prepared script for a lent CUDA machine (issue #17, item 7).

    python benchmarks/gpu_check.py --out $OUT/gpu.json                          # CUDA, bf16, 1.4B LLaVA
    python benchmarks/gpu_check.py --tiny --device cpu --dtype float32          # a dry run of every step

Each step prints one line and is added to ``--out`` as soon as it ends, so a step that fails
(or a run stopped at its time limit) keeps what came before; a step whose library is missing
says so and is skipped, never faked.

1. **build**: ``LlavaForConditionalGeneration`` from a config, random weights (seed 0), saved in
   ``--dtype``: CLIP ViT-L/14 at 336 px (576 image tokens) + a Llama of TinyLlama's shape
   (2048 wide, 22 layers, grouped KV heads): 1.4B parameters (``batch_throughput.SIZES["gpu"]``).
   ``generation_config.min_new_tokens = --new-tokens``, so every question generates exactly that many.
2. **data**: ``--images`` random images, ``--questions`` questions about each (VQA-style, so
   questions share the image and the template: what prefix reuse computes once).
3. **bare**: transformers alone.  All batches preprocessed first (processor, chat template,
   left padding), then only ``model.generate`` is timed, greedy, at each of ``--batch-sizes``
   in dataset order; the fastest is "the bare loop at its best batch size".
4. **mmbench**: ``evaluate`` (what ``mmbench eval`` runs) at that batch size with prefix reuse
   off and on, and at ``--batch-size auto`` (64 on CUDA): samples/s of the model loop
   (``timing.inference_s``, which includes preprocessing the bare loop did up front), its ratio
   to the bare loop, and how many outputs equal the bare loop's (bf16 results may move with
   padding and batch composition: counted, not asserted).
5. **backoff**: ``--batch-size auto`` again under a memory cap
   (``torch.cuda.set_per_process_memory_fraction``) set between the weights and the auto run's
   peak, so a batch of 64 runs out of memory: the size it settled on, samples lost (must be 0).
6. **bnb**: ``--quantize bnb-int8`` and ``bnb-nf4`` when bitsandbytes imports: samples/s and
   the share of outputs equal to the unquantized run's.
7. **vllm**: ``--adapter vllm`` when vLLM imports: samples/s and the share equal to ``hf-vlm``'s.

The device machine has torch and transformers but not every mmbench dependency: see
benchmarks/README.md ("gpu_check.py") for the wheels to carry.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch_throughput import build_llava  # noqa: E402

PROMPT = "{question}\nAnswer the question using a single word."
SHAPES = ["circle", "square", "triangle", "star", "cross", "heart", "ring", "arrow"]
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "grey"]
TEMPLATES = ["What colour is the {s}?", "Is there a {s} in the image?", "How many {s}s are there?",
             "Where is the {s}?", "Is the {c} {s} bigger than the other shapes?", "What is next to the {s}?",
             "Does the {s} touch the edge of the picture?", "What shape is {c}?",
             "Is the background lighter than the {s}?", "Which shape is closest to the top left corner?"]


def write_task(root: Path, n_images: int, per_image: int, image_size: int, new_tokens: int) -> tuple[str, list[dict]]:
    """A VQA task file over random images, ``per_image`` questions each; (task name, rows)."""
    import numpy as np
    import yaml
    from PIL import Image

    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_images):
        rng = np.random.default_rng(i)
        small = Image.fromarray((rng.random((image_size // 16, image_size // 16, 3)) * 255).astype("uint8"))
        path = images / f"{i:05d}.png"
        small.resize((image_size, image_size), Image.NEAREST).save(path)
        for k in range(per_image):
            question = TEMPLATES[(i + k) % len(TEMPLATES)].format(s=SHAPES[(i * 7 + k) % len(SHAPES)],
                                                                 c=COLOURS[(i + 3 * k) % len(COLOURS)])
            rows.append({"id": f"{i}-{k}", "image": str(path), "question": question, "answer": "yes"})
    data = root / "questions.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "gpu_vqa.yaml").write_text(yaml.safe_dump({
        "name": "gpu_vqa", "family": "vqa", "description": "random images, several questions each",
        "dataset": {"path": "json", "data_files": str(data), "split": "train",
                    "columns": {"id": "id", "image": "image", "question": "question", "answers": "answer"}},
        "prompt": PROMPT, "generation": {"max_new_tokens": new_tokens}, "metrics": ["exact-match"]}))
    return "gpu_vqa", rows


class BareLoop:
    """transformers alone: batches preprocessed up front, then only ``generate`` timed."""

    def __init__(self, ckpt: Path, device: str, dtype: str) -> None:
        import torch
        from transformers import AutoProcessor, LlavaForConditionalGeneration

        self.torch = torch
        self.device = device
        self.model = LlavaForConditionalGeneration.from_pretrained(
            ckpt, dtype=getattr(torch, dtype), local_files_only=True).to(device).eval()
        self.processor = AutoProcessor.from_pretrained(ckpt, local_files_only=True)

    def batches(self, rows: list[dict], batch_size: int) -> list[tuple[list[str], dict]]:
        from PIL import Image

        out = []
        for start in range(0, len(rows), batch_size):
            part = rows[start:start + batch_size]
            texts = [self.processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "image"}, {"type": "text",
                                                                  "text": PROMPT.format(question=r["question"])}]}],
                add_generation_prompt=True, tokenize=False) for r in part]
            images = [Image.open(r["image"]).convert("RGB") for r in part]
            inputs = self.processor(text=texts, images=images, padding=True, padding_side="left", return_tensors="pt")
            out.append(([r["id"] for r in part], {k: v.to(self.device) for k, v in inputs.items()}))
        return out

    def run(self, batches: list[tuple[list[str], dict]], new_tokens: int) -> tuple[float, dict[str, str]]:
        torch = self.torch
        kwargs = {"max_new_tokens": new_tokens, "do_sample": False, "num_beams": 1}
        with torch.inference_mode():
            self.model.generate(**batches[0][1], **kwargs)  # warm-up: kernels, allocator
            _sync(torch)
            t0 = time.perf_counter()
            outs = [self.model.generate(**inputs, **kwargs) for _, inputs in batches]
            _sync(torch)
            seconds = time.perf_counter() - t0
        texts = {}
        for (ids, inputs), out in zip(batches, outs):
            new = out[:, inputs["input_ids"].shape[1]:]
            assert new.shape[1] == new_tokens, f"generated {new.shape[1]} tokens, not {new_tokens}"
            texts.update(zip(ids, (t.strip() for t in self.processor.batch_decode(new, skip_special_tokens=True))))
        return seconds, texts


def _sync(torch: Any) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _free(torch: Any) -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_mmbench(ckpt: Path, tasks_dir: Path, task: str, out: Path, **kwargs: Any) -> tuple[dict, dict[str, str]]:
    """One ``evaluate``: (the task's result, id -> raw output)."""
    from mmbench.runner import evaluate

    res = evaluate(model=str(ckpt), tasks=[task], include=[str(tasks_dir)], output=str(out), cache=False,
                   meteor=False, **kwargs)
    entry = res["tasks"][task]
    lines = (out / entry["predictions"]).read_text().splitlines()
    return entry, {row["id"]: row["raw_output"] for row in map(json.loads, lines)}


def _equal(a: dict[str, str], b: dict[str, str]) -> str:
    same = sum(1 for k in a if b.get(k) == a[k])
    return f"{same}/{len(a)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="batch_throughput's 49M LLaVA at 128 px: a dry run")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--questions", type=int, default=8, help="questions per image")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--batch-sizes", default="16,32,64")
    parser.add_argument("--skip", default="", help="steps to skip, comma-separated (backoff,bnb,vllm)")
    parser.add_argument("--out", help="write the figures here as JSON (rewritten after every step)")
    parser.add_argument("--workdir", help="keep the checkpoint and runs here (default: a temp dir)")
    args = parser.parse_args()
    if args.tiny:
        args.images, args.questions, args.new_tokens = min(args.images, 6), min(args.questions, 4), 4
        args.batch_sizes = "4,8"

    import torch

    skip = set(filter(None, args.skip.split(",")))
    figures: dict[str, Any] = {}

    def record(step: str, line: str, **values: Any) -> None:
        figures[step] = values
        print(f"[{time.strftime('%H:%M:%S')}] {step:8s} {line}", flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(figures, indent=1, default=str))

    cuda = args.device.startswith("cuda")
    record("env", f"torch {torch.__version__}, device {args.device}"
                  + (f" ({torch.cuda.get_device_name()})" if cuda else "") + f", dtype {args.dtype}",
           torch=torch.__version__, device=torch.cuda.get_device_name() if cuda else "cpu", dtype=args.dtype)
    tmp = tempfile.TemporaryDirectory(prefix="mmbench-gpu-")
    work = Path(args.workdir or tmp.name)
    ckpt = work / "llava"
    t0 = time.perf_counter()
    size, image_size = ("small", 128) if args.tiny else ("gpu", 336)
    n_params = build_llava(ckpt, image_size=image_size, max_new_tokens=args.new_tokens, vocab_size=32000,
                           size=size, dtype=args.dtype, device=args.device)
    _free(torch)
    record("build", f"LLaVA {size} {n_params / 1e9:.2f}B parameters, {image_size} px, "
                    f"in {time.perf_counter() - t0:.0f} s", n_parameters=n_params, image_size=image_size)
    task, rows = write_task(work / "tasks", args.images, args.questions, image_size, args.new_tokens)
    n = len(rows)

    bare = BareLoop(ckpt, args.device, args.dtype)
    bare_rates: dict[int, float] = {}
    bare_texts: dict[str, str] = {}
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        try:
            seconds, texts = bare.run(bare.batches(rows, bs), args.new_tokens)
        except torch.OutOfMemoryError:
            _free(torch)
            print(f"bare loop: out of memory at batch {bs}", flush=True)
            break
        bare_rates[bs] = n / seconds
        bare_texts = bare_texts or texts
    best = max(bare_rates, key=bare_rates.get)
    record("bare", f"{n} questions, samples/s by batch size {({k: round(v, 1) for k, v in bare_rates.items()})}; "
                   f"best {best}", samples_per_s=bare_rates, best_batch=best)
    del bare
    _free(torch)

    common = dict(device=args.device, dtype=args.dtype)
    runs = {}
    for label, bs, reuse in ((f"b{best} reuse off", best, False), (f"b{best} reuse on", best, True),
                             ("auto reuse on", "auto", True)):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        entry, texts = run_mmbench(ckpt, work / "tasks", task, work / label.replace(" ", "_"), batch_size=bs,
                                   model_args={"prefix_reuse": reuse}, **common)
        rate = entry["timing"]["samples_per_s"]
        runs[label] = {"samples_per_s": rate, "vs_bare": rate / bare_rates[best], "batch_size": entry["batch_size"],
                       "equal_to_bare": _equal(bare_texts, texts), "failed": entry["n_failed"],
                       "peak_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None}
        hf_texts = texts  # the last run's (auto batch, reuse on): what later steps compare with
        _free(torch)
        print(f"  mmbench {label}: {rate:.1f} samples/s ({rate / bare_rates[best]:.2f}x the bare loop), batch "
              f"{entry['batch_size']}, outputs equal to bare {runs[label]['equal_to_bare']}", flush=True)
    record("mmbench", "; ".join(f"{k} {v['vs_bare']:.2f}x" for k, v in runs.items()), **runs)

    if "backoff" not in skip and cuda:
        weights = sum(f.stat().st_size for f in ckpt.glob("*.safetensors"))
        peak = runs["auto reuse on"]["peak_gb"] * 2**30
        total = torch.cuda.get_device_properties(0).total_memory
        cap = weights + 0.4 * max(peak - weights, 0)
        torch.cuda.set_per_process_memory_fraction(cap / total)
        try:
            entry, texts = run_mmbench(ckpt, work / "tasks", task, work / "backoff", batch_size="auto", **common)
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0)
            _free(torch)
        record("backoff", f"cap {cap / 2**30:.1f} GiB (auto's peak {peak / 2**30:.1f}): settled at batch "
                          f"{entry['batch_size']}, {entry['n_failed']} failed, equal to auto {_equal(hf_texts, texts)}",
               cap_gb=cap / 2**30, settled=entry["batch_size"], failed=entry["n_failed"],
               equal=_equal(hf_texts, texts))
    else:
        record("backoff", "skipped" + ("" if cuda else ": needs CUDA"), skipped=True)

    for method in ("bnb-int8", "bnb-nf4"):
        if "bnb" in skip or not cuda:
            record(method, "skipped" + ("" if cuda else ": needs CUDA"), skipped=True)
            continue
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            record(method, f"skipped: bitsandbytes does not import ({exc})", skipped=True)
            continue
        entry, texts = run_mmbench(ckpt, work / "tasks", task, work / method, batch_size="auto", quantize=method,
                                   **common)
        _free(torch)
        record(method, f"{entry['timing']['samples_per_s']:.1f} samples/s, equal to bf16 {_equal(hf_texts, texts)}",
               samples_per_s=entry["timing"]["samples_per_s"], equal=_equal(hf_texts, texts))

    if "vllm" in skip:
        record("vllm", "skipped", skipped=True)
    else:
        try:
            import vllm  # noqa: F401
        except ImportError as exc:
            record("vllm", f"skipped: vllm does not import ({exc})", skipped=True)
        else:
            entry, texts = run_mmbench(ckpt, work / "tasks", task, work / "vllm", batch_size="auto", adapter="vllm",
                                       dtype=args.dtype, model_args={"engine_args": {"gpu_memory_utilization": 0.5}})
            rate = entry["timing"]["samples_per_s"]
            record("vllm", f"{rate:.1f} samples/s ({rate / runs['auto reuse on']['samples_per_s']:.2f}x hf-vlm), "
                           f"equal to hf-vlm {_equal(hf_texts, texts)}", samples_per_s=rate,
                   vs_hf=rate / runs["auto reuse on"]["samples_per_s"], equal=_equal(hf_texts, texts))


if __name__ == "__main__":
    main()
