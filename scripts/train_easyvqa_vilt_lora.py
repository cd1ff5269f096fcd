"""Train a LoRA adapter on the reference ViLT (``easyvqa-vilt``) with rephrased easy-VQA questions (CPU, ~1 min).

The base model knows easy-VQA's own question templates and answers 0.94 of them right on the
test images, but only 0.45 of the new wordings of ``easyvqa_consistency`` ("which color is the
shape?", "can you see a circle?"...; its word-level vocabulary turns most new words into
``[UNK]``).  This script fine-tunes low-rank adapters (peft ``LoraConfig``) on the attention
query/value projections of its three layers with

* the **novel** wordings of :func:`mmbench.tasks.datasets.easyvqa_questions.consistency_rows`
  applied to **train** images (``consistency_rows("train")``: the same construction as the test
  task, never the test split), half of each batch, and
* easy-VQA's own train questions (:func:`~mmbench.tasks.datasets.easyvqa_questions.question_rows`
  ``("train")``), the other half, so that the template questions (negated ones included) are not
  forgotten.

The last ``--dev-fraction`` of the train images (by image id) is held out of training; the model
card reports accuracy there (template vs novel wordings), so nothing about the adapter was chosen
on test data.  The adapter is saved with ``save_pretrained`` (``adapter_config.json`` +
``adapter_model.safetensors``, ~30 KB) and ``base_model_name_or_path`` set to
``easyvqa-vilt``, the registered reference model: mmbench resolves a registered base to its checkpoint, so
``mmbench eval --model mmbench/assets/models/easyvqa-vilt-lora-rephrased`` works from any folder of a
fresh clone (see the model card for why not an absolute path or the registered name).

Usage::

    python scripts/train_easyvqa_vilt_lora.py             # writes mmbench/assets/models/easyvqa-vilt-lora-rephrased
    python scripts/train_easyvqa_vilt_lora.py --out /tmp/lora --steps 50

Deterministic for a given seed, thread count and torch build (one thread by default).
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "scripts"):  # `python scripts/...` from a checkout; the ViLT script's helpers
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import numpy as np
import torch
from train_easyvqa_vqa import Encoded, logits_fast, predict

from mmbench.tasks.datasets.easyvqa_questions import consistency_rows, question_rows

BASE_REL = "easyvqa-vilt"  # base_model_name_or_path: the registered reference model (mmbench resolves it)
DEFAULT_OUT = REPO / "mmbench" / "assets" / "models" / "easyvqa-vilt-lora-rephrased"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="adapter folder (default: %(default)s)")
    p.add_argument("--base", type=Path, default=REPO / BASE_REL, help="base ViLT checkpoint (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="torch seed for LoRA init and batch draws")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64, help="half novel rephrasings, half easy-VQA questions")
    p.add_argument("--lr", type=float, default=3e-3, help="peak AdamW learning rate (linear warm-up and decay)")
    p.add_argument("--rank", type=int, default=8, help="LoRA rank r")
    p.add_argument("--alpha", type=int, default=16, help="LoRA alpha")
    p.add_argument("--targets", default="query,value", help="comma-separated module names LoRA wraps")
    p.add_argument("--dev-fraction", type=float, default=0.1,
                   help="share of the train images (highest ids) held out of training, for the card's dev scores")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    return p.parse_args(argv)


def split_images(rows: list[dict], dev_ids: set[str]) -> tuple[list[dict], list[dict]]:
    return [r for r in rows if r["image_id"] not in dev_ids], [r for r in rows if r["image_id"] in dev_ids]


def accuracy(model, data: Encoded, rows: list[dict], answers: list[str], key: str) -> dict[str, float]:
    """Exact-match accuracy per value of ``rows[i][key]`` and overall."""
    predicted = [answers[i] for i in predict(model, data).tolist()]
    groups: dict[str, list[bool]] = collections.defaultdict(list)
    for p, r in zip(predicted, rows):
        groups[r[key]].append(p == r["answer"])
        groups["all"].append(p == r["answer"])
    return {k: float(np.mean(v)) for k, v in sorted(groups.items())}


def train(args: argparse.Namespace) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import ViltForQuestionAnswering, ViltProcessor
    from transformers.utils import logging as hf_logging

    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    model = ViltForQuestionAnswering.from_pretrained(args.base, local_files_only=True)
    processor = ViltProcessor.from_pretrained(args.base, local_files_only=True)
    answers = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    label2id = {a: i for i, a in enumerate(answers)}

    image_ids = sorted({r["image_id"] for r in question_rows("train")}, key=int)
    dev_ids = set(image_ids[len(image_ids) - int(len(image_ids) * args.dev_fraction):])
    rephrased, rephrased_dev = split_images(consistency_rows("train"), dev_ids)
    novel = [r for r in rephrased if r["phrasing"] == "novel"]
    originals, originals_dev = split_images(question_rows("train"), dev_ids)
    novel_data, orig_data = Encoded(novel, processor, label2id), Encoded(originals, processor, label2id)
    dev_rephrased = Encoded(rephrased_dev, processor, label2id)
    dev_originals = Encoded(originals_dev, processor, label2id)
    t_data = time.perf_counter() - t0
    print(f"data: {len(novel)} novel rephrasings + {len(originals)} easy-VQA questions on "
          f"{len(image_ids) - len(dev_ids)} train images; dev {len(rephrased_dev)} rephrasings + "
          f"{len(originals_dev)} questions on {len(dev_ids)} held-out train images; {t_data:.1f}s", flush=True)

    before = {"rephrased": accuracy(model, dev_rephrased, rephrased_dev, answers, "phrasing"),
              "questions": accuracy(model, dev_originals, originals_dev, answers, "answer_type")}
    print(f"dev before: {before}", flush=True)

    config = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, bias="none",
                        target_modules=args.targets.split(","))
    peft_model = get_peft_model(model, config)  # wraps model's modules in place; `model` now runs with LoRA
    n_trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in peft_model.parameters())
    print(f"LoRA r={args.rank} alpha={args.alpha} on {args.targets}: {n_trainable:,} trainable of {n_total:,}",
          flush=True)

    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=args.lr,
                                  weight_decay=0.0)
    warmup = max(1, args.steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (args.steps - s) / max(1, args.steps - warmup))))
    generator = torch.Generator().manual_seed(args.seed)
    half = args.batch_size // 2
    t1 = time.perf_counter()
    losses: list[float] = []
    model.train()
    for step in range(1, args.steps + 1):
        i_novel = torch.randint(len(novel_data), (half,), generator=generator)
        i_orig = torch.randint(len(orig_data), (args.batch_size - half,), generator=generator)
        parts = [novel_data.batch(i_novel), orig_data.batch(i_orig)]
        # the two tables pad questions to different lengths: pad the shorter one
        width = max(p[1].shape[1] for p in parts)
        pixels = torch.cat([p[0] for p in parts])
        ids = torch.cat([torch.nn.functional.pad(p[1], (0, width - p[1].shape[1])) for p in parts])
        mask = torch.cat([torch.nn.functional.pad(p[2], (0, width - p[2].shape[1])) for p in parts])
        labels = torch.cat([novel_data.label[i_novel], orig_data.label[i_orig]])
        loss = torch.nn.functional.cross_entropy(logits_fast(model, pixels, ids, mask), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if step % 250 == 0 or step == args.steps:
            print(f"step {step}/{args.steps}: loss {np.mean(losses[-250:]):.4f}, {time.perf_counter() - t1:.1f}s",
                  flush=True)
    t_train = time.perf_counter() - t1

    after = {"rephrased": accuracy(model, dev_rephrased, rephrased_dev, answers, "phrasing"),
             "questions": accuracy(model, dev_originals, originals_dev, answers, "answer_type")}
    print(f"dev after: {after}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    peft_model.peft_config["default"].base_model_name_or_path = BASE_REL
    peft_model.save_pretrained(args.out)
    for f in args.out.iterdir():
        f.chmod(0o644)
    cfg = json.loads((args.out / "adapter_config.json").read_text())
    if cfg.get("base_model_name_or_path") != BASE_REL:
        raise RuntimeError(f"adapter_config.json names {cfg.get('base_model_name_or_path')!r} as its base")
    info = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "n_novel": len(novel), "n_originals": len(originals), "n_dev_rephrased": len(rephrased_dev),
        "n_dev_questions": len(originals_dev), "n_train_images": len(image_ids) - len(dev_ids),
        "n_dev_images": len(dev_ids), "n_trainable": n_trainable, "n_total": n_total,
        "adapter_bytes": (args.out / "adapter_model.safetensors").stat().st_size,
        "final_loss": float(np.mean(losses[-250:])), "before": before, "after": after,
        "seconds": {"data": t_data, "train": t_train, "total": time.perf_counter() - t0},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": __import__("transformers").__version__, "peft": __import__("peft").__version__},
    }
    (args.out / "README.md").write_text(model_card(info))
    print(f"saved to {args.out} ({info['adapter_bytes']:,} bytes of adapter weights), "
          f"total {info['seconds']['total']:.0f}s", flush=True)
    return info


def model_card(info: dict) -> str:
    a, b, f, t = info["args"], info["before"], info["after"], info["seconds"]
    defaults = vars(parse_args([]))
    flags = [f"--{k.replace('_', '-')} {v}" for k, v in a.items()
             if k not in ("out", "base") and v != (str(defaults[k]) if isinstance(defaults[k], Path) else defaults[k])]
    cmd = " ".join(["python scripts/train_easyvqa_vilt_lora.py", *flags])

    def row(name: str, key: str, sub: str) -> str:
        return f"| {name} | {b[key][sub]:.4f} | {f[key][sub]:.4f} |"

    dev = "\n".join([row("rephrasings, template wordings", "rephrased", "template"),
                     row("rephrasings, novel wordings", "rephrased", "novel"),
                     row("easy-VQA questions, all", "questions", "all"),
                     *(row(f"easy-VQA questions, {k}", "questions", k) for k in ("yes/no", "color", "shape"))])
    return f"""# easyvqa-vilt-lora-rephrased (a LoRA adapter on mmbench's reference ViLT)

A PEFT LoRA adapter for `mmbench/assets/models/easyvqa-vilt` that teaches it the new wordings of
easy-VQA questions used by the `easyvqa_consistency` task ("which color is the shape?", "what colour
is the shape?", "which shape is shown?", "what kind of shape is this?", "can you see a ...?").
It exists to show `mmbench compare` on a fine-tune that changes behaviour; it is a test fixture,
not a general model.  Trained by `scripts/train_easyvqa_vilt_lora.py`.

## Use
```bash
# from the repository root (the adapter names its base by a path relative to it)
mmbench eval --model mmbench/assets/models/easyvqa-vilt-lora-rephrased --tasks easyvqa_vqa,easyvqa_consistency
```
mmbench reads `base_model_name_or_path` from `adapter_config.json`, loads the base ViLT, applies the
adapter with `PeftModel.from_pretrained` and merges it (`merge_and_unload`); the run's fingerprint names
the base (`base_model`) and the adapter (`peft_adapter`).

**Why a repository-relative base path.** mmbench's `resolve_model` treats `base_model_name_or_path`
as a directory (relative to the working directory) or a hub id; a registered name (`easyvqa-vilt`)
is not looked up there, and a relative path is not read relative to the adapter folder.  An absolute
path would only exist on the machine that trained it.  `mmbench/assets/models/easyvqa-vilt` is the
one value that works in a fresh clone, from its root; elsewhere mmbench stops with
"is not a registered model, not an existing directory, and not a hub id".

## Adapter
LoRA r={a['rank']}, alpha={a['alpha']}, dropout 0, no bias, on `{a['targets']}` of ViLT's 3 self-attention
layers: {info['n_trainable']:,} trainable parameters next to the base's {info['n_total'] - info['n_trainable']:,}
({info['adapter_bytes']:,} bytes of `adapter_model.safetensors`).  The tokenizer is the base's: the
new words (which, colour, kind, shown, can, you, see, this) are `[UNK]` to it, so the adapter learns
to read the questions' shape around `[UNK]`, not new word embeddings.

## Data (train split only)
- Half of each batch: the **novel** wordings of `consistency_rows("train")` (the construction of the
  `easyvqa_consistency` task applied to easy-VQA's train images), {info['n_novel']:,} questions.
- The other half: easy-VQA's own train questions, `question_rows("train")`, {info['n_originals']:,} questions,
  so that the template wordings, negated ones included, are kept.
- Both on {info['n_train_images']:,} train images; the {info['n_dev_images']} train images with the highest ids are
  held out for the dev scores below.  No test image or question is used.

## Training
{a['steps']} steps of batch {a['batch_size']} (drawn with replacement, `torch.Generator` seeded {a['seed']}), AdamW lr
{a['lr']} with 5% linear warm-up then linear decay, no weight decay, cross-entropy on the single answer,
`torch.set_num_threads({a['threads']})`, CPU; final loss {info['final_loss']:.4f}.  Time on the shared 2-core
machine: data {t['data']:.0f} s, training {t['train']:.0f} s, total {t['total']:.0f} s (Python
{info['versions']['python']}, torch {info['versions']['torch']}, transformers {info['versions']['transformers']},
peft {info['versions']['peft']}).  Deterministic: the same seed, threads and torch build give a byte-identical
`adapter_model.safetensors` (checked with two runs on torch 2.13 CPU, one next to other jobs).

Command: `{cmd}`

## Dev scores (held-out train images, exact match)
| questions | base | base + this adapter |
|---|---|---|
{dev}

Test scores, with intervals and p-values against the base: `leaderboards/compression/` (README.md).

License: trained by mmbench on MIT-licensed easy-VQA data; released with mmbench.
"""


def main(argv: list[str] | None = None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
