"""Speed and agreement of mmbench's caption scoring against pycocoevalcap, at COCO Karpathy-test scale.

    python benchmarks/caption_scoring.py                 # 5,000 images x 5 references
    python benchmarks/caption_scoring.py --images 1000   # smaller

Data: the 1,000 real COCO images of ``tests/data/reference/coco_fakecap_val2014``
(first 5 references each), replicated to ``--images`` images with new ids.  The first
copy keeps the official fakecap prediction; later copies perturb it deterministically (a
word dropped, two words swapped, or a word replaced by one from the references), so the
copies differ.

* mmbench: ``score_captions(preds, refs, tokenizer="ptb", meteor=False, spice=False)``
  (pure-Python PTB tokenizer; BLEU-1..4, ROUGE-L, CIDEr-D).
* pycocoevalcap 1.2: what ``COCOEvalCap.evaluate()`` runs for the same metrics -
  ``PTBTokenizer`` (the Java jar; references and predictions in two calls), then
  ``Bleu(4)``, ``Rouge()`` and ``Cider()``.

Checks every corpus value agrees within 1e-9 (and the largest per-image difference), and
prints the speed ratio (pycocoevalcap seconds / mmbench seconds) for a first call in a
fresh process (each side in its own subprocess, best of ``--fresh-runs``; import time
reported separately) and for a repeated call in a warm process (best of ``--repeats``).
Target: >= 10x.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FAKECAP = REPO / "tests" / "data" / "reference" / "coco_fakecap_val2014"
NAMES = [("BLEU-1", "Bleu_1"), ("BLEU-2", "Bleu_2"), ("BLEU-3", "Bleu_3"), ("BLEU-4", "Bleu_4"),
         ("ROUGE-L", "ROUGE_L"), ("CIDEr-D", "CIDEr")]


def build_data(n_images: int, n_refs: int = 5) -> tuple[list[str], list[str], list[list[str]]]:
    """(ids, predictions, references) for ``n_images`` images, from the 1,000 fakecap images."""
    refs = {}
    for line in (FAKECAP / "references.jsonl").read_text().splitlines():
        obj = json.loads(line)
        refs[obj["image_id"]] = obj["references"][:n_refs]
    preds = {}
    for line in (FAKECAP / "predictions.jsonl").read_text().splitlines():
        obj = json.loads(line)
        preds[obj["image_id"]] = obj["prediction"]
    base = [i for i in refs if i in preds]
    ids, out_preds, out_refs = [], [], []
    for k in range(n_images):
        copy, image = divmod(k, len(base))
        img = base[image]
        pred = preds[img]
        if copy:
            rng = random.Random(copy * 1_000_003 + image)
            words = pred.split()
            op = rng.randrange(3)
            if op == 0 and len(words) > 2:
                del words[rng.randrange(len(words))]
            elif op == 1 and len(words) > 1:
                j = rng.randrange(len(words) - 1)
                words[j], words[j + 1] = words[j + 1], words[j]
            else:
                donor = rng.choice(refs[img]).split() or ["a"]
                words[rng.randrange(len(words))] = rng.choice(donor)
            pred = " ".join(words)
        ids.append(f"{copy}_{img}")
        out_preds.append(pred)
        out_refs.append(list(refs[img]))
    return ids, out_preds, out_refs


def run_mmbench(ids, preds, refs) -> tuple[float, dict[str, float], dict[str, list[float]]]:
    from mmbench.metrics.caption import score_captions

    t0 = time.perf_counter()
    values = score_captions(preds, refs, tokenizer="ptb", meteor=False, spice=False)
    seconds = time.perf_counter() - t0
    per_image = {m: [s[m] for s in values.per_sample] for m, _ in NAMES}
    return seconds, {m: values.corpus[m] for m, _ in NAMES}, per_image


def run_pycocoevalcap(ids, preds, refs) -> tuple[float, dict[str, float], dict[str, list[float]]]:
    import contextlib
    import io

    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    gts = {i: [{"caption": r} for r in rs] for i, rs in zip(ids, refs)}
    res = {i: [{"caption": p}] for i, p in zip(ids, preds)}
    t0 = time.perf_counter()
    tokenizer = PTBTokenizer()
    gts_tok, res_tok = tokenizer.tokenize(gts), tokenizer.tokenize(res)
    corpus, per_image = {}, {}
    with contextlib.redirect_stdout(io.StringIO()):  # Bleu prints its length ratios
        bleu, bleu_images = Bleu(4).compute_score(gts_tok, res_tok, verbose=0)
        rouge, rouge_images = Rouge().compute_score(gts_tok, res_tok)
        cider, cider_images = Cider().compute_score(gts_tok, res_tok)
    seconds = time.perf_counter() - t0
    for k in range(4):
        corpus[f"Bleu_{k + 1}"], per_image[f"Bleu_{k + 1}"] = bleu[k], list(bleu_images[k])
    corpus["ROUGE_L"], per_image["ROUGE_L"] = rouge, list(rouge_images)
    corpus["CIDEr"], per_image["CIDEr"] = cider, list(cider_images)
    return seconds, corpus, per_image


RUNNERS = {"mmbench": run_mmbench, "pycocoevalcap": run_pycocoevalcap}
IMPORTS = {"mmbench": "mmbench.metrics.caption",
           "pycocoevalcap": "pycocoevalcap.bleu.bleu pycocoevalcap.cider.cider pycocoevalcap.rouge.rouge "
                            "pycocoevalcap.tokenizer.ptbtokenizer"}


def child(side: str, data_file: str) -> None:
    """Fresh-process measurement: import time, then the first call."""
    import importlib

    data = json.loads(Path(data_file).read_text())
    t0 = time.perf_counter()
    for module in IMPORTS[side].split():
        importlib.import_module(module)
    import_s = time.perf_counter() - t0
    seconds, corpus, _ = RUNNERS[side](data["ids"], data["preds"], data["refs"])
    print(json.dumps({"import_s": import_s, "first_call_s": seconds, "corpus": corpus}))


def fresh(side: str, data_file: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", side, "--data", data_file],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3, help="warm calls per side (best is reported)")
    parser.add_argument("--fresh-runs", type=int, default=2, help="fresh processes per side (best is reported)")
    parser.add_argument("--child", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data)
        return

    ids, preds, refs = build_data(args.images)
    print(f"images={len(ids)} references={sum(map(len, refs))} (exactly {len(refs[0])} per image) "
          f"load_avg={os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="mmbench-capscore-") as tmp:
        data_file = str(Path(tmp) / "data.json")
        Path(data_file).write_text(json.dumps({"ids": ids, "preds": preds, "refs": refs}))
        first: dict[str, dict] = {}
        for _ in range(args.fresh_runs):  # alternate the sides; keep each side's fastest fresh process
            for side in ("mmbench", "pycocoevalcap"):
                run = fresh(side, data_file)
                first.setdefault(side + "_all", []).append(run["first_call_s"])
                if side not in first or run["first_call_s"] < first[side]["first_call_s"]:
                    first[side] = run

    warm: dict[str, list[float]] = {"mmbench": [], "pycocoevalcap": []}
    results = {}
    for _ in range(args.repeats):
        for side in ("mmbench", "pycocoevalcap"):
            seconds, corpus, per_image = RUNNERS[side](ids, preds, refs)
            warm[side].append(seconds)
            results[side] = (corpus, per_image)

    (ours, ours_img), (theirs, theirs_img) = results["mmbench"], results["pycocoevalcap"]
    print(f"\n{'metric':<8} {'mmbench':>20} {'pycocoevalcap':>20} {'|diff| corpus':>14} {'max |diff| image':>17}")
    worst = 0.0
    for m, p in NAMES:
        diff = abs(ours[m] - theirs[p])
        diff_img = max(abs(a - b) for a, b in zip(ours_img[m], theirs_img[p]))
        fresh_diff = abs(first["mmbench"]["corpus"][m] - first["pycocoevalcap"]["corpus"][p])
        worst = max(worst, diff, fresh_diff)
        print(f"{m:<8} {ours[m]:>20.15f} {theirs[p]:>20.15f} {diff:>14.2e} {diff_img:>17.2e}")
    print(f"all corpus values within 1e-9: {worst < 1e-9} (largest |diff| {worst:.2e}, fresh-process runs included)")

    fm, fp = first["mmbench"], first["pycocoevalcap"]
    wm, wp = min(warm["mmbench"]), min(warm["pycocoevalcap"])
    print(f"\n{'':<38} {'mmbench':>9} {'pycocoevalcap':>14} {'ratio':>7}")
    label = f"first call, fresh process, best of {args.fresh_runs}"
    print(f"{label:<38} {fm['first_call_s']:>9.3f} {fp['first_call_s']:>14.3f} "
          f"{fp['first_call_s'] / fm['first_call_s']:>6.1f}x")
    print(f"{'  the same + import time (s)':<38} {fm['import_s'] + fm['first_call_s']:>9.3f} "
          f"{fp['import_s'] + fp['first_call_s']:>14.3f} "
          f"{(fp['import_s'] + fp['first_call_s']) / (fm['import_s'] + fm['first_call_s']):>6.1f}x")
    print(f"{f'repeated call, best of {args.repeats} (s)':<38} {wm:>9.3f} {wp:>14.3f} {wp / wm:>6.1f}x")
    print("  all fresh first calls (s): mmbench " + " ".join(f"{s:.3f}" for s in first["mmbench_all"])
          + " | pycocoevalcap " + " ".join(f"{s:.3f}" for s in first["pycocoevalcap_all"]))
    print("  all warm calls (s): mmbench " + " ".join(f"{s:.3f}" for s in warm["mmbench"])
          + " | pycocoevalcap " + " ".join(f"{s:.3f}" for s in warm["pycocoevalcap"]))
    print(f"target >= 10x: first call {'met' if fp['first_call_s'] / fm['first_call_s'] >= 10 else 'MISSED'}, "
          f"repeated {'met' if wp / wm >= 10 else 'MISSED'}; load_avg_end={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
