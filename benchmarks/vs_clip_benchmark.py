"""mmbench vs clip-benchmark 1.6.2 on image-text retrieval, side by side: the same open_clip
ViT-B-32, the same local webdataset shards, fp32 and bf16, interleaved runs.

    /work/venvs/clip-benchmark/bin/python benchmarks/vs_clip_benchmark.py            # 772 images, 2 rounds
    /work/venvs/clip-benchmark/bin/python benchmarks/vs_clip_benchmark.py --images 64 --rounds 1   # quick

Runs in the clip-benchmark venv (``bash benchmarks/install_peers.sh clip-benchmark``): open_clip
needs torchvision, which does not import beside the main environment's CPU torch, so both
harnesses run there, on one interpreter, one torch and one open_clip (mmbench is installed
in that venv from this checkout, editable).  Each side is its own CLI in a fresh process:

* clip-benchmark: ``clip_benchmark eval --dataset wds/<name> --dataset_root <dir> --task
  zeroshot_retrieval --model ViT-B-32 --pretrained <file> --recall_k 1 5 10`` at its defaults
  (batch size 64, 4 loader workers, ``--amp`` on, which on a CPU is bf16 autocast); fp32 adds
  ``--no_amp``.
* mmbench: ``mmbench eval --adapter open-clip --model ViT-B-32 --model-arg pretrained=<file>
  --tasks <name> --include <dir> --batch-size auto --dtype float32|bfloat16 --no-cache``.

The model is open_clip's ViT-B-32 with random weights (``torch.manual_seed(0)``), saved once
as safetensors and loaded by both from that file.  The data: the first ``--images`` easy-VQA
test images that have a derived caption (64x64 PNGs, as ``easyvqa_retrieval``), each paired
with one caption, written as CLIP_benchmark webdataset shards (``test/{0..3}.tar`` with ``nshards.txt`` and
``dataset_type.txt = retrieval``; one shard per loader worker of the peer, since webdataset
fails on a worker that gets no shard), which both harnesses read.  Captions
(``--captions``): ``coco`` (default) gives each image a distinct real COCO caption (the first
reference of each image in ``tests/data/reference/coco_fakecap_val2014``, 8-20 tokens), so no
two texts tie; ``easyvqa`` uses the image's own derived caption ("a red triangle"), 24
distinct texts in all.  The two harnesses break exact ties differently (clip-benchmark by
``torch.topk`` order, mmbench pessimistically: docs/retrieval.md), so recall is only
comparable on tie-free data; with ``easyvqa`` the image-to-text recall is printed but not
asserted.

Speed is images per second of wall time of the whole command (process start, imports,
model load, data, both towers, recall): what a user waits for.  Order per round: peer fp32,
mmbench fp32, peer bf16, mmbench bf16; the best of ``--rounds`` per cell is kept (load from
other processes only ever adds time) and each round's ratio is printed too.  Recall@1/5/10
both ways must be equal between the harnesses at fp32 (the same counts of hits); at bf16
the two compute differently (autocast vs bf16 weights, bf16 vs fp32 similarity matrix), so
the differences are printed, with each harness's bf16-vs-fp32 change.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KS = (1, 5, 10)


def build_shards(root: Path, n: int, captions: str, shards: int) -> list[str]:
    """``root/test/{0..shards-1}.tar`` + metadata as CLIP_benchmark's ``build_wds_dataset`` reads
    them (consecutive runs of samples per shard); the captions."""
    sys.path.insert(0, str(REPO))
    from mmbench.tasks.datasets.easyvqa import caption_rows

    rows = caption_rows("test")[:n]
    if len(rows) < n:
        raise SystemExit(f"--images {n}: easy-VQA's test split has {len(rows)} captioned images")
    if captions == "coco":
        seen: set[str] = set()
        coco = []
        for line in (REPO / "tests/data/reference/coco_fakecap_val2014/references.jsonl").read_text().splitlines():
            text = json.loads(line)["references"][0].strip()
            if text.lower() not in seen:
                seen.add(text.lower())
                coco.append(text)
        if len(coco) < n:
            raise SystemExit(f"--images {n}: only {len(coco)} distinct COCO captions ship in tests/data")
        texts = coco[:n]
    else:
        texts = [row["references"][0] for row in rows]
    (root / "test").mkdir(parents=True, exist_ok=True)
    per_shard = -(-n // shards)
    for shard in range(shards):
        with tarfile.open(root / "test" / f"{shard}.tar", "w") as tar:
            for i in range(shard * per_shard, min(n, (shard + 1) * per_shard)):
                for ext, data in (("png", Path(rows[i]["image"]).read_bytes()), ("txt", texts[i].encode())):
                    info = tarfile.TarInfo(f"s{i:07d}.{ext}")
                    info.size = len(data)
                    info.mtime = 0
                    tar.addfile(info, io.BytesIO(data))
    (root / "test" / "nshards.txt").write_text(f"{shards}\n")
    (root / "dataset_type.txt").write_text("retrieval\n")
    return texts


def write_task(path: Path, name: str, shards: str) -> None:
    path.write_text(textwrap.dedent(f"""
        name: {name}
        family: retrieval
        description: easy-VQA test images, one caption each, from a CLIP_benchmark webdataset shard
        dataset: {{path: webdataset, data_files: {{test: "{shards}"}}, split: test,
                   columns: {{id: __key__, image: png, captions: txt}}}}
        metrics: [retrieval-recall]
        metric_options:
          retrieval-recall: {{ks: [1, 5, 10]}}
    """))


def build_checkpoint(path: Path, model_name: str) -> int:
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.create_model(model_name)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return sum(p.numel() for p in model.parameters())


def run_peer(work: Path, ckpt: Path, model_name: str, precision: str, tag: str, args) -> dict:
    out = work / f"peer_{tag}.json"
    cmd = [str(Path(sys.executable).with_name("clip_benchmark")), "eval", "--dataset", "wds/vs_clip",
           "--dataset_root", str(work / "wds"), "--task", "zeroshot_retrieval", "--model", model_name,
           "--pretrained", str(ckpt), "--recall_k", *map(str, KS), "--output", str(out), "--quiet",
           "--num_workers", str(args.peer_workers)]
    if precision == "fp32":
        cmd.append("--no_amp")
    wall = _timed(cmd, work / f"peer_{tag}.log")
    metrics = json.loads(out.read_text())["metrics"]
    recall = {f"t2i_R@{k}": metrics[f"image_retrieval_recall@{k}"] for k in KS}
    recall.update({f"i2t_R@{k}": metrics[f"text_retrieval_recall@{k}"] for k in KS})
    return {"wall": wall, "recall": recall}


def run_mmbench(work: Path, ckpt: Path, model_name: str, precision: str, tag: str, args) -> dict:
    out = work / f"mmbench_{tag}"
    cmd = [sys.executable, "-m", "mmbench", "eval", "--adapter", "open-clip", "--model", model_name,
           "--model-arg", f"pretrained={ckpt}", "--tasks", "vs_clip", "--include", str(work / "vs_clip.yaml"),
           "--batch-size", args.mmbench_batch_size, "--dtype", "float32" if precision == "fp32" else "bfloat16",
           "--no-cache", "--output", str(out)]
    wall = _timed(cmd, work / f"mmbench_{tag}.log")
    res = json.loads((out / "results.json").read_text())
    entry = res["tasks"]["vs_clip"]
    return {"wall": wall, "recall": {k: entry["metrics"][k] for k in (f"{d}_R@{k}" for d in ("t2i", "i2t") for k in KS)},
            "inference_s": entry["timing"].get("inference_s"), "batch_size": entry.get("batch_size"),
            "text_padding": res["model"].get("text_padding")}


def _timed(cmd: list[str], log: Path) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed (exit {proc.returncode}); its output: {log}\n"
                         + log.read_text()[-3000:])
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=772)
    parser.add_argument("--captions", choices=["coco", "easyvqa"], default="coco")
    parser.add_argument("--model", default="ViT-B-32", help="open_clip model name (random weights)")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mmbench-batch-size", default="auto")
    parser.add_argument("--peer-workers", type=int, default=4,
                        help="clip-benchmark's --num_workers (its default 4); the data is written as this many "
                             "shards, since webdataset gives each loader worker whole shards and fails on a worker "
                             "with none")
    parser.add_argument("--workdir", help="keep the shard, checkpoint and run folders here (default: a temp dir)")
    args = parser.parse_args()
    try:
        import clip_benchmark  # noqa: F401
        import open_clip  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"{exc}: run this with the clip-benchmark venv's python "
                         "(bash benchmarks/install_peers.sh clip-benchmark)") from None
    import torch

    tmp = tempfile.TemporaryDirectory(prefix="mmbench-vs-clipb-")
    work = Path(args.workdir or tmp.name).resolve()
    work.mkdir(parents=True, exist_ok=True)
    texts = build_shards(work / "wds", args.images, args.captions, max(1, args.peer_workers))
    write_task(work / "vs_clip.yaml", "vs_clip", str(work / "wds" / "test" / "*.tar"))
    ckpt = work / f"{args.model}-seed0.safetensors"
    n_params = build_checkpoint(ckpt, args.model)
    precisions = [p for p in args.precisions.split(",") if p]
    print(f"open_clip {args.model}, random weights (seed 0), {n_params / 1e6:.1f}M parameters; {args.images} "
          f"easy-VQA test images + {len(texts)} captions ({args.captions}, {len(set(texts))} distinct); "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; load avg {_load()}", flush=True)

    runs: dict[tuple[str, str], list[dict]] = {}
    for r in range(args.rounds):
        for precision in precisions:
            for side, fn in (("clip-benchmark", run_peer), ("mmbench", run_mmbench)):
                res = fn(work, ckpt, args.model, precision, f"{precision}_r{r}", args)
                runs.setdefault((side, precision), []).append(res)
                extra = (f" (inference {res['inference_s']:.1f}s, batch {res['batch_size']}, "
                         f"text padding {res['text_padding']})" if side == "mmbench" else "")
                print(f"round {r + 1} {precision} {side:<14} {res['wall']:7.1f}s  "
                      f"{args.images / res['wall']:6.2f} img/s{extra}  load avg {_load()}", flush=True)

    print(f"\n{'precision':<9} {'clip-benchmark img/s':>21} {'mmbench img/s':>14} {'ratio':>7}   per round")
    for precision in precisions:
        peer, ours = runs[("clip-benchmark", precision)], runs[("mmbench", precision)]
        best_p, best_m = (args.images / min(x["wall"] for x in runs_) for runs_ in (peer, ours))
        each = " ".join(f"{p['wall'] / m['wall']:.2f}x" for p, m in zip(peer, ours))
        print(f"{precision:<9} {best_p:>21.2f} {best_m:>14.2f} {best_m / best_p:>6.2f}x   {each}")

    print("\nrecall (hits out of " + f"{args.images}):")
    failures = []
    for precision in precisions:
        peer, ours = runs[("clip-benchmark", precision)][0]["recall"], runs[("mmbench", precision)][0]["recall"]
        line = []
        for key in peer:
            a, b = round(peer[key] * args.images), round(ours[key] * args.images)
            line.append(f"{key} {a}/{b}")
            tie_free = args.captions == "coco" or key.startswith("t2i")
            if precision == "fp32" and tie_free and a != b:
                failures.append(f"{precision} {key}: clip-benchmark {a} vs mmbench {b} hits")
        print(f"  {precision} clip-benchmark/mmbench: " + ", ".join(line))
        for side in ("clip-benchmark", "mmbench"):
            again = [run["recall"] for run in runs[(side, precision)][1:]]
            if any(a != runs[(side, precision)][0]["recall"] for a in again):
                failures.append(f"{side} {precision}: recall differs between rounds")
    if "fp32" in precisions and "bf16" in precisions:
        for side in ("clip-benchmark", "mmbench"):
            f32, b16 = runs[(side, "fp32")][0]["recall"], runs[(side, "bf16")][0]["recall"]
            print(f"  {side} bf16 - fp32 (hits): "
                  + ", ".join(f"{k} {round((b16[k] - f32[k]) * args.images):+d}" for k in f32))
    print(f"\nload avg at the end {_load()}")
    if failures:
        raise SystemExit("recall differs: " + "; ".join(failures))
    print("fp32 recall equal in every direction and k" + ("" if args.captions == "coco" else " (t2i; i2t has ties)"))


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


if __name__ == "__main__":
    main()
