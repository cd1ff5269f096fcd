"""bfloat16 vs float32 on the reference models: speed, and what it does to the scores.

    python benchmarks/precision.py                  # 300 samples per task, 2 rounds
    python benchmarks/precision.py --limit 50 --rounds 1

For each reference model and its default-suite tasks (the captioner: captioning; ViLT: VQA
and multiple choice; CLIP: retrieval and zero-shot), ``evaluate`` runs with ``--dtype float32``
and ``--dtype bfloat16`` (weights and activations in bf16; on a CPU with AMX or AVX512-BF16
torch's matmuls run natively in bf16), interleaved, best of ``--rounds``.  Printed per task:
samples/s at each precision and their ratio, every metric's value at each precision and the
difference, and the share of predictions (generated text) that differ.  The fingerprints of
the two runs differ (the dtype is part of the model fingerprint), so they never share a
leaderboard group or a cache entry; the script asserts that.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SUITE = (("easyvqa-captioner", ("easyvqa_caption",)),
         ("easyvqa-vilt", ("easyvqa_vqa", "easyvqa_mc")),
         ("easyvqa-clip", ("easyvqa_retrieval", "easyvqa_zeroshot")))


def predictions(run_dir: Path, task: str) -> dict[str, str]:
    path = run_dir / "predictions" / f"{task}.jsonl"
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["id"]: r.get("prediction") for r in rows if isinstance(r.get("prediction"), str)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", default="16")
    args = parser.parse_args()

    import torch

    from mmbench.runner.evaluate import evaluate

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{open('/proc/loadavg').read().split()[:3]}")
    batch = int(args.batch_size) if args.batch_size.isdigit() else args.batch_size
    with tempfile.TemporaryDirectory(prefix="mmbench-precision-") as tmp:
        for model, tasks in SUITE:
            best: dict[str, dict[str, float]] = {"float32": {}, "bfloat16": {}}
            results: dict[str, dict] = {}
            dirs: dict[str, Path] = {}
            for r in range(args.rounds):
                for dtype in ("float32", "bfloat16"):
                    out = Path(tmp) / f"{model}-{dtype}-{r}"
                    res = evaluate(model=model, tasks=list(tasks), limit=args.limit, batch_size=batch, cache=False,
                                   dtype=dtype, output=str(out), meteor=False)
                    results[dtype], dirs[dtype] = res, out
                    for task in tasks:
                        rate = res["tasks"][task]["timing"]["samples_per_s"]
                        best[dtype][task] = max(best[dtype].get(task, 0.0), rate)
            fp32, bf16 = results["float32"], results["bfloat16"]
            assert fp32["model"]["fingerprint"]["hash"] != bf16["model"]["fingerprint"]["hash"], "dtype not fingerprinted"
            print(f"\n{model}: fp32 dtype {fp32['model']['fingerprint'].get('dtype')}, "
                  f"bf16 dtype {bf16['model']['fingerprint'].get('dtype')}")
            for task in tasks:
                a, b = best["float32"][task], best["bfloat16"][task]
                pa, pb = predictions(dirs["float32"], task), predictions(dirs["bfloat16"], task)
                common = pa.keys() & pb.keys()
                differ = sum(pa[k] != pb[k] for k in common)
                print(f"  {task}: fp32 {a:.1f}/s, bf16 {b:.1f}/s (x{b / a:.2f}); predictions differing: "
                      f"{differ}/{len(common)}")
                m32, m16 = fp32["tasks"][task]["metrics"], bf16["tasks"][task]["metrics"]
                for key in sorted(m32):
                    if isinstance(m32[key], (int, float)) and isinstance(m16.get(key), (int, float)):
                        print(f"    {key:<28} fp32 {m32[key]:.4f}  bf16 {m16[key]:.4f}  diff {m16[key] - m32[key]:+.4f}")


if __name__ == "__main__":
    main()
