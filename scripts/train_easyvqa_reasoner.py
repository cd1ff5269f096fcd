"""Train mmbench's reference Socratic reasoner: a tiny Llama that answers easy-VQA questions from a caption.

The reasoner is the text half of ``easyvqa-socratic`` (``easyvqa-captioner`` describes the image,
this model answers from the description; :mod:`mmbench.models.socratic`).  It is a
``LlamaForCausalLM`` built from a config, with a word-level tokenizer (``tokenizers`` WordLevel over
every word of the training prompts), trained from scratch on the TRAIN split only:

* the description is the caption the reference captioner was trained to say for the image
  (``"a <color> <shape> on a plain background"``, from
  :func:`mmbench.tasks.datasets.easyvqa.caption_rows`: the 3,578 train images whose colour and shape
  are known);
* the prompts are the ones the pipeline sends: ``SocraticPipeline.reasoner_prompt`` over the
  requests the easy-VQA tasks build (their own prompt templates) from the train-split rows of
  ``easyvqa_vqa`` (easy-VQA's questions), ``easyvqa_mc`` (colour/shape options, every rotation) and
  ``easyvqa_pope`` (presence questions); the target is the task's reference answer (a word, or the
  option's letter) followed by ``<eos>``; the loss covers the answer tokens only.

``easyvqa_consistency``'s rephrasings are never trained on (its new wordings stay a test).

Usage::

    python scripts/train_easyvqa_reasoner.py                  # writes mmbench/assets/models/easyvqa-reasoner

Deterministic for a given seed, thread count and torch build.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so `python scripts/...` works from a checkout without installing
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

DEFAULT_OUT = REPO / "mmbench" / "assets" / "models" / "easyvqa-reasoner"
SPECIAL_TOKENS = {"pad": "<pad>", "bos": "<bos>", "eos": "<eos>", "unk": "<unk>"}
#: the captioner's trained template (easyvqa.CAPTION_TEMPLATES[1]); what it says at test time
DESCRIPTION = "a {color} {shape} on a plain background"
#: a Llama (rotary positions: "the letter just before the matching option" is a relative-position
#: pattern, which a tiny GPT-2 with learned absolute positions did not pick up in 900 steps)
MODEL = dict(max_position_embeddings=96, hidden_size=96, intermediate_size=192, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True)
TASKS = ("easyvqa_vqa", "easyvqa_mc", "easyvqa_pope")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3, help="peak AdamW learning rate (linear warm-up and decay)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    return p.parse_args(argv)


def build_examples(split: str) -> list[tuple[str, str, str]]:
    """``(task, reasoner prompt, answer)`` for every train-split question of the easy-VQA tasks
    whose image has a known caption, with the prompts exactly as the pipeline renders them."""
    from mmbench.catalog import build_task
    from mmbench.models.socratic import DEFAULT_TEMPLATE, SocraticPipeline
    from mmbench.tasks.datasets.easyvqa import caption_rows
    from mmbench.tasks.datasets.easyvqa_mc import mc_rows
    from mmbench.tasks.datasets.easyvqa_pope import pope_rows
    from mmbench.tasks.datasets.easyvqa_questions import question_rows

    captions = {r["image_id"]: DESCRIPTION.format(color=r["color"], shape=r["shape"]) for r in caption_rows(split)}
    pipeline = SocraticPipeline.__new__(SocraticPipeline)
    pipeline.template = DEFAULT_TEMPLATE
    rows = {"easyvqa_vqa": question_rows(split), "easyvqa_mc": mc_rows(split), "easyvqa_pope": pope_rows(split)}
    examples, seen = [], set()
    for name in TASKS:
        task = build_task(name)
        for i, row in enumerate(rows[name]):
            description = captions.get(str(row["image_id"]))
            if description is None:
                continue
            for sample in task.row_to_samples(i, row):
                if sample.error:
                    continue
                prompt = pipeline.reasoner_prompt(task.build_request(sample, "easyvqa-socratic"), description)
                key = (prompt, sample.references[0])
                if key not in seen:  # POPE repeats its positives in each split
                    seen.add(key)
                    examples.append((name, prompt, sample.references[0]))
    return examples


def build_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    split = pre_tokenizers.Whitespace()  # words and punctuation; case kept (option letters A-D)
    words = sorted({w for t in texts for w, _ in split.pre_tokenize_str(t)})
    vocab = {tok: i for i, tok in enumerate([SPECIAL_TOKENS[k] for k in ("pad", "bos", "eos", "unk")] + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk"]))
    tok.pre_tokenizer = split
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=SPECIAL_TOKENS["bos"],
                                   eos_token=SPECIAL_TOKENS["eos"], pad_token=SPECIAL_TOKENS["pad"],
                                   unk_token=SPECIAL_TOKENS["unk"], model_max_length=MODEL["max_position_embeddings"],
                                   padding_side="left")


def encode(examples, tokenizer) -> list[tuple[list[int], int]]:
    """Token ids ``prompt + answer + <eos>`` and the number of prompt tokens (not in the loss)."""
    out = []
    for _, prompt, answer in examples:
        p = tokenizer(prompt)["input_ids"]
        a = tokenizer(answer)["input_ids"] + [tokenizer.eos_token_id]
        if len(p) + len(a) > MODEL["max_position_embeddings"]:
            raise ValueError(f"prompt too long for the model ({len(p)} tokens): {prompt!r}")
        out.append((p + a, len(p)))
    return out


def batch_tensors(items, pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids, _ in items)
    ids = torch.full((len(items), width), pad)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    labels = torch.full((len(items), width), -100)
    for r, (seq, n_prompt) in enumerate(items):
        ids[r, :len(seq)] = torch.tensor(seq)
        mask[r, :len(seq)] = 1
        labels[r, n_prompt:len(seq)] = torch.tensor(seq[n_prompt:])
    return ids, mask, labels


def answer(model, tokenizer, prompts: list[str], batch_size: int = 256) -> list[str]:
    out = []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[i:i + batch_size], padding=True, return_tensors="pt")
        with torch.inference_mode():
            gen = model.generate(**enc, max_new_tokens=5, do_sample=False, num_beams=1,
                                 pad_token_id=tokenizer.pad_token_id)
        out += [t.strip() for t in tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)]
    return out


def train(args: argparse.Namespace) -> dict:
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    examples = build_examples("train")
    test = build_examples("test")  # for the model card only: the pipeline's figures come from mmbench eval
    tokenizer = build_tokenizer([p for _, p, _ in examples] + [a for _, _, a in examples])
    data = encode(examples, tokenizer)
    t_data = time.perf_counter() - t0

    torch.manual_seed(args.seed)
    config = LlamaConfig(**MODEL, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id, max_new_tokens=5,
                                               do_sample=False, num_beams=1)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (args.steps - s) / max(1, args.steps - warm))))
    rng = random.Random(args.seed)
    order: list[int] = []
    model.train()
    t1 = time.perf_counter()
    losses = []
    for step in range(args.steps):
        if len(order) < args.batch_size:
            extra = list(range(len(data)))
            rng.shuffle(extra)
            # batches of similar lengths (less padding): sort each window of 16 batches by length
            window = 16 * args.batch_size
            extra = [i for w in range(0, len(extra), window)
                     for i in sorted(extra[w:w + window], key=lambda i: len(data[i][0]))]
            batches = [extra[b:b + args.batch_size] for b in range(0, len(extra), args.batch_size)]
            rng.shuffle(batches)
            order += [i for b in batches for i in b]
        idx, order = order[:args.batch_size], order[args.batch_size:]
        ids, mask, labels = batch_tensors([data[i] for i in idx], tokenizer.pad_token_id)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step} loss {sum(losses[-50:]) / len(losses[-50:]):.4f} "
                  f"({time.perf_counter() - t1:.0f} s)", flush=True)
    t_train = time.perf_counter() - t1
    model.eval()

    t2 = time.perf_counter()
    preds = answer(model, tokenizer, [p for _, p, _ in test])
    by_task: dict[str, list[int]] = {}
    for (name, _, ref), pred in zip(test, preds):
        by_task.setdefault(name, []).append(int(pred == ref))
    scores = {name: round(sum(v) / len(v), 4) for name, v in by_task.items()}
    t_eval = time.perf_counter() - t2

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    portable_tokenizer_config(args.out)
    check_saved(args.out, [p for _, p, _ in test[:: max(1, len(test) // 16)]])
    counts = {name: sum(1 for e in examples if e[0] == name) for name in TASKS}
    info = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "n_examples": len(examples), "by_task": counts, "n_test": len(test), "test_exact": scores,
            "n_parameters": sum(p.numel() for p in model.parameters()), "vocab": len(tokenizer),
            "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 5),
            "bytes": (args.out / "model.safetensors").stat().st_size,
            "seconds": {"data": round(t_data, 1), "train": round(t_train, 1), "eval": round(t_eval, 1)},
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "transformers": __import__("transformers").__version__}}
    (args.out / "README.md").write_text(model_card(info))
    print(json.dumps(info, indent=1))
    return info


def portable_tokenizer_config(out: Path) -> None:
    """As the captioner's script: name the tokenizer class transformers 4.x knows too."""
    path = out / "tokenizer_config.json"
    cfg = json.loads(path.read_text())
    if cfg.get("tokenizer_class") == "TokenizersBackend":
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


def check_saved(out: Path, prompts: list[str]) -> None:
    """Reload ``out`` as mmbench's hf-lm adapter does and check batched == one-by-one answers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    tokenizer.padding_side = "left"
    batched = answer(model, tokenizer, prompts)
    single = [answer(model, tokenizer, [p])[0] for p in prompts]
    if batched != single:
        raise RuntimeError(f"saved model: batched {batched} != one-by-one {single}")


def model_card(info: dict) -> str:
    a, s, m = info["args"], info["seconds"], MODEL
    rows = "\n".join(f"| {name} | {info['by_task'][name]:,} | {info['test_exact'][name]:.4f} |" for name in TASKS)
    return f"""# easyvqa-reasoner (the text half of mmbench's easyvqa-socratic pipeline)

A tiny text-only causal LM trained from scratch to answer easy-VQA questions from an image
*description*, so that `easyvqa-socratic` (`easyvqa-captioner` describes, this model answers;
`mmbench/models/socratic.py`, `docs/socratic.md`) runs the easy-VQA tasks offline.  It knows
nothing but easy-VQA's 8 colours, 3 shapes and the easy-VQA task prompts; it never sees pixels.

## Architecture
`LlamaForCausalLM` from config: hidden {m['hidden_size']}, {m['num_hidden_layers']} layers, {m['num_attention_heads']} heads,
MLP {m['intermediate_size']}, rotary positions (up to {m['max_position_embeddings']}), tied input/output embeddings; {info['n_parameters']:,} parameters ({info['bytes'] / 1e6:.2f} MB fp32 safetensors).
Word-level tokenizer (`tokenizers` WordLevel, `Whitespace` pre-tokenizer: words and punctuation, case
kept for the option letters), {info['vocab']} entries: `<pad>`, `<bos>`, `<eos>`, `<unk>` and every word of
the training prompts.  No chat template: mmbench's `hf-lm` adapter sends the plain prompt; generation
stops at `<eos>`.

## Data (easy-VQA TRAIN split only)
Prompt = `SocraticPipeline.reasoner_prompt` with the default template
`"Image description: {{description}}\\n{{prompt}}"`, where the description is the caption the reference
captioner was trained to say for the image (`"a <color> <shape> on a plain background"`, the 3,578
train images with a known colour and shape) and the prompt is what each easy-VQA task sends for the
train-split row (its own template).  Target = the reference answer (a word, or the option letter), then `<eos>`;
loss on the answer tokens only.  {info['n_examples']:,} distinct examples:

| task construction (train split) | examples | exact match on the test-split construction, true captions |
|---|---|---|
{rows}

The last column is the reasoner alone, given the *true* caption of each test image (a ceiling for the
pipeline); the pipeline's own figures (with the captioner's descriptions) are in `docs/socratic.md`.
`easyvqa_consistency`'s new wordings are never trained on.

## Training
{a['steps']} steps, batch {a['batch_size']}, AdamW (lr {a['lr']}, weight decay 0.01, 5% linear warm-up then
linear decay), gradient clipping 1.0, seed {a['seed']}, `torch.set_num_threads({a['threads']})`, CPU; final
loss {info['final_loss']}.
Command: `python scripts/train_easyvqa_reasoner.py`.
Time on 2 shared CPU cores: data {s['data']} s, training {s['train']} s, test answers {s['eval']} s
(Python {info['versions']['python']}, torch {info['versions']['torch']}, transformers {info['versions']['transformers']}).
"""


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
