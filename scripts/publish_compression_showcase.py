"""Regenerate leaderboards/compression/: compressed and fine-tuned reference models against their base,
with `mmbench compare` (paired intervals, exact McNemar / sign-flip tests, Holm, flips, cost).

    python scripts/publish_compression_showcase.py            # from the repository root; ~10 min on 2 cores
    python scripts/publish_compression_showcase.py --limit 200 --out /tmp/showcase   # a quick look

Runs (full easy-VQA test tasks unless --limit; one torch thread, no cache, seed 0):

* fp32 vs ``--quantize int8`` vs ``--quantize int4`` (torchao weight-only) for ``easyvqa-captioner``
  (easyvqa_caption), ``easyvqa-vilt`` (easyvqa_vqa, easyvqa_consistency) and ``easyvqa-clip``
  (easyvqa_retrieval);
* ``easyvqa-vilt`` vs its LoRA adapter ``mmbench/assets/models/easyvqa-vilt-lora-rephrased``
  (scripts/train_easyvqa_vilt_lora.py) on easyvqa_vqa and easyvqa_consistency.

Each comparison is one `mmbench compare` call (one Holm family) written to
``<out>/<comparison>/compare.{md,html,json}``; ``<out>/README.md`` reads the figures out of the
compare results.  Run folders stay in ``<out>/runs/<run>/`` (results.json + gzipped predictions, as
the easy-VQA board keeps them; CLIP's embedding arrays dropped) so that the comparisons can be re-run
without the models:
``mmbench compare <out>/runs/easyvqa-vilt-fp32 <out>/runs/easyvqa-vilt-lora-rephrased``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LORA = "mmbench/assets/models/easyvqa-vilt-lora-rephrased"  # relative: its adapter_config names the base so
VILT_TASKS = ("easyvqa_vqa", "easyvqa_consistency")

#: run folder name -> (model, tasks, --quantize)
RUNS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    **{f"easyvqa-captioner-{q or 'fp32'}": ("easyvqa-captioner", ("easyvqa_caption",), q) for q in (None, "int8", "int4")},
    **{f"easyvqa-vilt-{q or 'fp32'}": ("easyvqa-vilt", VILT_TASKS, q) for q in (None, "int8", "int4")},
    **{f"easyvqa-clip-{q or 'fp32'}": ("easyvqa-clip", ("easyvqa_retrieval",), q) for q in (None, "int8", "int4")},
    "easyvqa-vilt-lora-rephrased": (LORA, VILT_TASKS, None),
}

#: comparison folder -> (title, base run, candidate runs)
COMPARISONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "captioner-quantized": ("easyvqa-captioner: fp32 vs int8 vs int4", "easyvqa-captioner-fp32",
                            ("easyvqa-captioner-int8", "easyvqa-captioner-int4")),
    "vilt-quantized": ("easyvqa-vilt: fp32 vs int8 vs int4", "easyvqa-vilt-fp32",
                       ("easyvqa-vilt-int8", "easyvqa-vilt-int4")),
    "clip-quantized": ("easyvqa-clip: fp32 vs int8 vs int4", "easyvqa-clip-fp32",
                       ("easyvqa-clip-int8", "easyvqa-clip-int4")),
    "vilt-lora": ("easyvqa-vilt vs easyvqa-vilt + LoRA (rephrased questions)", "easyvqa-vilt-fp32",
                  ("easyvqa-vilt-lora-rephrased",)),
}

#: --flip-threshold per comparison (default 0: any credit is right).  A caption is right when its CIDEr-D
#: is above 3: here every caption naming the image's colour and shape scores 5.58 or more, every other
#: one 2.31 or less (it still shares the template words), so with 0 a wrong shape would never flip.
FLIP_THRESHOLD = {"captioner-quantized": 3.0}

COMMAND = "python scripts/publish_compression_showcase.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "leaderboards" / "compression")
    p.add_argument("--limit", type=int, default=None, help="first N samples per task (default: the full tasks)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (1: steadier speeds on shared cores)")
    p.add_argument("--only", default=None, help="comma-separated comparisons to (re)build (default: all): "
                                                + ", ".join(COMPARISONS))
    p.add_argument("--compare-only", action="store_true", help="re-run the comparisons on the existing runs")
    return p.parse_args(argv)


def eval_command(name: str, out: Path, *, limit: int | None, batch_size: int, threads: int) -> list[str]:
    """The `mmbench eval` command line of run ``name`` (one process per run: cold load, own peak RSS)."""
    model, tasks, quantize = RUNS[name]
    cmd = ["mmbench", "eval", "--model", model, "--tasks", ",".join(tasks), "--output", str(out / "runs" / name),
           "--batch-size", str(batch_size), "--threads", str(threads), "--device", "cpu", "--seed", "0", "--no-cache"]
    return cmd + (["--limit", str(limit)] if limit else []) + (["--quantize", quantize] if quantize else [])


def run_models(out: Path, names: list[str], *, limit: int | None, batch_size: int, threads: int) -> None:
    """``mmbench eval`` each run of ``names`` into ``out/runs/<name>/`` (predictions gzipped)."""
    for name in names:
        run_dir = out / "runs" / name
        if run_dir.exists():
            shutil.rmtree(run_dir)
        cmd = eval_command(name, out, limit=limit, batch_size=batch_size, threads=threads)
        print("$ " + " ".join(cmd), flush=True)
        # the same CLI a user runs, in its own process (python -m: no reliance on the console script's PATH)
        subprocess.run([sys.executable, "-m", "mmbench", *cmd[1:]], check=True, cwd=REPO,
                       stdout=subprocess.DEVNULL)
        (run_dir / ".mmbench.lock").unlink(missing_ok=True)
        for jsonl in (run_dir / "predictions").glob("*.jsonl"):  # ~10x smaller; compare reads .gz itself
            with jsonl.open("rb") as src, gzip.GzipFile(jsonl.with_name(jsonl.name + ".gz"), "wb", mtime=0) as dst:
                shutil.copyfileobj(src, dst)
            jsonl.unlink()
        for npy in (run_dir / "predictions").glob("*_embeddings.npy"):  # 1.4 MB per CLIP run: re-scoring
            npy.unlink()                                                # retrieval needs them, compare does not


def weights_in_memory(name: str) -> int | None:
    """Bytes of the model's state dict as ``torch.save`` writes it after loading (and quantizing):
    what the weights take once loaded, which the on-disk checkpoint size does not show for on-the-fly
    quantization.  None if it cannot be serialised."""
    import torch

    from mmbench.models.resolve import load_model

    model, _, quantize = RUNS[name]
    adapter = load_model(model, device="cpu", quantize=quantize)
    buf = io.BytesIO()
    try:
        torch.save(adapter.model.state_dict(), buf)
    except Exception:  # noqa: BLE001 - a tensor subclass torch.save cannot write: report it as unknown
        return None
    return buf.tell()


def compare_showcase(out: Path, comparisons: list[str] | None = None, *, seed: int = 0,
                     n_boot: int = 2000) -> dict[str, dict[str, Any]]:
    """Run `mmbench compare` for each comparison (default: all) on ``out/runs/`` and write
    ``out/<comparison>/compare.{json,md,html}``; return the compare results by comparison."""
    from mmbench.compare import compare_runs, write_report

    results = {}
    for key in comparisons or list(COMPARISONS):
        _, base, cands = COMPARISONS[key]
        result = compare_runs(out / "runs" / base, [out / "runs" / c for c in cands], seed=seed, n_boot=n_boot,
                              flip_threshold=FLIP_THRESHOLD.get(key, 0.0))
        write_report(result, out / key)
        results[key] = result
        print(f"wrote {out / key}/compare.md, compare.html, compare.json", flush=True)
    return results


# --------------------------------------------------------------------------- README


def _f(v: Any, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _p(v: Any) -> str:
    if v is None:
        return "-"
    if v == 0:  # scipy's exact binomial tail underflows below ~1e-308
        return "< 1e-300"
    return f"{v:.2g}" if v < 0.001 else f"{v:.3f}"


def _signed(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:+.1e}" if v and abs(v) < 5e-5 else f"{v:+.4f}"  # a real but tiny difference is not "+0.0000"


def _ratio(entry: dict[str, Any] | None) -> str:
    return "-" if not entry or entry.get("ratio") is None else f"{entry['ratio']:.2f}"


def metric_line(name: str, row: dict[str, Any]) -> str:
    ci = "-" if row.get("ci_low") is None else f"[{_signed(row['ci_low'])}, {_signed(row['ci_high'])}]"
    return (f"| {name} | {_f(row.get('base'))} | {_f(row.get('candidate'))} | {_signed(row.get('difference'))} | "
            f"{ci} | {row.get('test') or '-'} | {_p(row.get('p_value'))} | {_p(row.get('p_value_holm'))} | "
            f"{row.get('verdict') or '-'} |")


def flips_line(t: dict[str, Any]) -> str:
    fl = t.get("flips") or {}
    parts = [f"{t.get('flipped_to_correct', 0)} wrong→right, {t.get('flipped_to_wrong', 0)} right→wrong"]
    for field, values in (fl.get("by_category") or {}).items():
        cells = [f"{v} +{c['to_correct']}/−{c['to_wrong']}" for v, c in values.items()
                 if c["to_correct"] or c["to_wrong"]]
        if cells:
            parts.append(f"by {field}: " + ", ".join(cells))
    return "; ".join(parts)


def phrasing_lines(t: dict[str, Any]) -> list[str]:
    """Per wording (template/novel) of easyvqa_consistency: accuracy and an exact McNemar test on that
    subset, from the flips split by ``phrasing`` (the discordant pairs of exact match there).
    compare itself gives ``accuracy/<phrasing>`` no test: the consistency metric reports it as a corpus
    key whose name is not the per-sample ``exact_match``."""
    from scipy.stats import binomtest

    cats = ((t.get("flips") or {}).get("by_category") or {}).get("phrasing") or {}
    out = []
    for value, c in sorted(cats.items()):
        row = t["metrics"].get(f"accuracy/{value}") or {}
        b, k = c["to_wrong"], c["to_correct"]
        p = binomtest(k, b + k, 0.5).pvalue if b + k else 1.0
        out.append(f"- {value} wordings (n = {c['n']}): accuracy {_f(row.get('base'))} → {_f(row.get('candidate'))} "
                   f"({_signed(row.get('difference'))}), {k} wrong→right / {b} right→wrong, exact McNemar "
                   f"p = {_p(p)} (this subset; outside the comparison's Holm family)")
    return ["", *out] if out else []


#: the metrics each task's summary shows besides the primary one
SHOWN = {"easyvqa_vqa": ("exact_match", "exact_match/yes/no", "exact_match/color", "exact_match/shape"),
         "easyvqa_consistency": ("exact_match", "accuracy/template", "accuracy/novel", "consistency",
                                 "consistency/template", "consistency/novel", "consistent_and_correct"),
         "easyvqa_caption": ("CIDEr-D", "BLEU-4", "ROUGE-L", "METEOR"),
         "easyvqa_retrieval": ("t2i_R@1", "i2t_R@1", "t2i_mAP", "i2t_mAP")}


def summarise(key: str, result: dict[str, Any], memory: dict[str, int | None]) -> str:
    title, base, _ = COMPARISONS[key]
    links = (f"Base `{base}`; report: [{key}/compare.md]({key}/compare.md), "
             f"[{key}/compare.html]({key}/compare.html), [{key}/compare.json]({key}/compare.json).")
    lines = [f"## {title}", "", links, ""]
    for label, cand in result["candidates"].items():
        lines.append(f"### {label}")
        if cand.get("relation"):
            lines += ["", cand["relation"] + "."]
        for task, t in cand["tasks"].items():
            lines += ["", f"**{task}** (n = {t.get('n')}, primary `{t.get('primary_metric')}`)", "",
                      "| metric | base | candidate | difference | 95% CI | test | p | p (Holm) | verdict |",
                      "|---|---|---|---|---|---|---|---|---|"]
            shown = [m for m in SHOWN.get(task, ()) if m in t["metrics"]] or [t.get("primary_metric")]
            if t.get("primary_metric") in t["metrics"] and t["primary_metric"] not in shown:
                shown.insert(0, t["primary_metric"])
            lines += [metric_line(m, t["metrics"][m]) for m in shown if m in t["metrics"]]
            lines += ["", f"Flips: {flips_line(t)}."]
            lines += phrasing_lines(t)
        cost = cand["cost"]
        speed = ", ".join(f"{task} {_ratio(c.get('samples_per_s'))}" for task, c in cost["tasks"].items())
        rss = ", ".join(f"{task} {_ratio(c.get('peak_rss_mb'))}" for task, c in cost["tasks"].items())
        mem_b, mem_c = memory.get(base), memory.get(label)
        mem = f"{mem_c / mem_b:.2f} ({mem_c / 1e3:.0f} kB / {mem_b / 1e3:.0f} kB)" if mem_b and mem_c else "-"
        cost_line = (f"Cost (candidate / base): samples/s {speed}; peak RSS {rss}; weights on disk "
                     f"{_ratio(cost['run'].get('weights_bytes'))}; weights in memory after loading {mem}; "
                     f"model load {_ratio(cost['run'].get('model_load_s'))}.")
        lines += ["", cost_line, ""]
    return "\n".join(lines)


def write_readme(out: Path, memory: dict[str, int | None], limit: int | None) -> Path:
    """``out/README.md`` from every ``out/<comparison>/compare.json`` there (so ``--only`` keeps the others)."""
    import json

    results = {k: json.loads((out / k / "compare.json").read_text(encoding="utf-8"))
               for k in COMPARISONS if (out / k / "compare.json").is_file()}
    intro = f"""# Compression and fine-tuning showcase (easy-VQA, offline)

What `mmbench compare` says about compressed and fine-tuned versions of mmbench's three reference
models, on the easy-VQA test tasks ({'the first ' + str(limit) + ' samples of each task' if limit else 'full tasks'},
CPU, one torch thread, seed 0, 2,000 bootstrap resamples).  Regenerate everything (runs, reports, this
file) from the repository root with

```bash
{COMMAND}{f' --limit {limit}' if limit else ''}
```

or one comparison from its runs (kept in `runs/`, predictions gzipped):

```bash
mmbench compare leaderboards/compression/runs/easyvqa-vilt-fp32 leaderboards/compression/runs/easyvqa-vilt-lora-rephrased --out /tmp/lora
```

From two checkpoints of your own it is the same three commands:

```bash
mmbench eval --model BASE --tasks easyvqa_vqa --output runs/base
mmbench eval --model CANDIDATE --tasks easyvqa_vqa --output runs/candidate   # or --model BASE --quantize int8
mmbench compare runs/base runs/candidate --out compare-out                   # compare.md / .html / .json
```

How to read the tables: differences are candidate − base with a 95% paired bootstrap interval over
images; `mcnemar-exact` is the exact McNemar test on 0/1 outcomes, `sign-flip` the paired
permutation test on graded scores, `randomization-bleu` its corpus-BLEU form; corpus statistics
(consistency, median ranks, METEOR) get no test, and neither do the consistency task's
`accuracy/template` and `accuracy/novel` (the consistency metric's own breakdown, which compare
cannot tie to the per-sample `exact_match`): for those the lines under the table test the same
subsets from the flips split by wording.  p (Holm) is adjusted over every test of one
comparison (one folder).  Flips count samples that went wrong→right and right→wrong by the task's
primary metric (a caption is right when its CIDEr-D is above 3: every caption naming the image's colour
and shape scores 5.58 or more here, every other one 2.31 or less).  Speed ratios come from a shared 2-core machine and move by tens of percent from
run to run (see docs/compress.md: these models are 0.14-0.68 M parameters, their compute is a small
part of a run); "weights in memory" is the size of the loaded (and quantized) state dict.  On a CPU
torchao's int4 keeps one value per byte, so it saves no memory over int8.  The weights on disk are
the same checkpoint for the quantized runs (quantized while loading), ratio 1.

"""
    body = "\n".join(summarise(key, res, memory) for key, res in results.items())
    path = out / "README.md"
    path.write_text(intro + body.rstrip() + "\n", encoding="utf-8")
    return path


def publish(out: Path, *, limit: int | None = None, batch_size: int = 32, threads: int = 1,
            only: list[str] | None = None, compare_only: bool = False) -> dict[str, dict[str, Any]]:
    """Run the models (unless ``compare_only``), compare, and write the README; the whole showcase
    or the comparisons ``only`` names."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.chdir(REPO)  # the LoRA adapter names its base by a repository-relative path
    keys = only or list(COMPARISONS)
    unknown = [k for k in keys if k not in COMPARISONS]
    if unknown:
        raise SystemExit(f"unknown comparison(s) {unknown}; expected some of {list(COMPARISONS)}")
    names = list(dict.fromkeys(n for k in keys for n in (COMPARISONS[k][1], *COMPARISONS[k][2])))
    if not compare_only:
        run_models(out, names, limit=limit, batch_size=batch_size, threads=threads)
    results = compare_showcase(out, keys)
    built = [k for k in COMPARISONS if (out / k / "compare.json").is_file()]
    memory = {n: weights_in_memory(n) for n in dict.fromkeys(n for k in built
                                                             for n in (COMPARISONS[k][1], *COMPARISONS[k][2]))}
    write_readme(out, memory, limit)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out.resolve()
    if out.is_relative_to(REPO):  # recorded in results.json and compare.json: keep it clone-independent
        out = out.relative_to(REPO)
    publish(out, limit=args.limit, batch_size=args.batch_size, threads=args.threads,
            only=args.only.split(",") if args.only else None, compare_only=args.compare_only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
