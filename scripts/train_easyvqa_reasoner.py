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
  ``easyvqa_pope`` (presence questions); the target is the task's reference answer followed by
  ``<eos>``, except for multiple choice, where it is the correct option's *text* (the described
  colour or shape), which MMBench's answer parser (``metrics.choice.parse_choice``: the official
  ``can_infer_text``) maps to its option;
* each distinct prompt is sampled as often as the task asks it (images that share a caption share
  prompts): deduplicated, easy-VQA's yes/no questions would be 7 in 8 "no" for a colour ("yes" when
  negated: the question names one of 8 colours once per caption), and a model that learnt each wording's prior
  answer and ignored the description got 0.82-0.84 and stayed there; at easy-VQA's own frequencies
  they are balanced, as easy-VQA made them.  Each epoch also repeats the non-multiple-choice
  examples ``--vqa-repeat`` times (default 2): the yes/no questions are the hard part;
* the loss is the answer's next-token loss (``--prompt-loss`` adds the prompt's; at 1 it slowed
  the multiple-choice copy and did not help the yes/no questions in 2,000 steps);
* what made the yes/no questions learnable, beside the frequencies: peak learning rate 1e-3 (not
  3e-3 or 2e-3) and batch 64; hidden 64 is enough (easy-VQA's questions alone: 100% of 400 train
  prompts after 2,000 steps, 220 s).

Why the option text and not the letter: answering with the letter needs a lookup (find the option
equal to the described colour, emit the letter before it), an induction-style circuit that the tiny
models tried here did not form within the CPU budget (answer loss stuck at ln 4, chance, after
1,500 steps of a 2-layer and 1,000 of a 3-layer Llama, at lr 3e-3 on deduplicated prompts; not
retried with the settings above, which came later); the option's text is a copy of a
description word, learnt in a few hundred steps, and the multiple-choice metric reads it as MMBench
reads any answer given as the option's text.

``easyvqa_consistency``'s rephrasings are never trained on (its new wordings stay a test).

Usage::

    nice -n 10 python scripts/train_easyvqa_reasoner.py   # writes mmbench/assets/models/easyvqa-reasoner (1 thread)

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
MODEL = dict(max_position_embeddings=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True)
TASKS = ("easyvqa_vqa", "easyvqa_mc", "easyvqa_pope")
LETTERS = "ABCDEFGHIJ"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (linear warm-up and decay)")
    p.add_argument("--vqa-repeat", type=int, default=2, help="copies of each non-multiple-choice example per epoch")
    p.add_argument("--prompt-loss", type=float, default=0.0,
                   help="weight of the next-token loss on the prompt's tokens, beside the answer's (0: answer only)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--progress-every", type=int, default=500,
                   help="print the accuracy on 600 train examples every N steps (0: never)")
    return p.parse_args(argv)


def build_examples(split: str) -> list[tuple[str, str, str, str, int]]:
    """``(task, reasoner prompt, target, reference, count)`` for every distinct question of the
    easy-VQA tasks on ``split`` whose image has a known caption, with the prompts exactly as the
    pipeline renders them; ``target`` is what the reasoner is taught to say (module docstring),
    ``reference`` the task's, ``count`` how often the task asks it (images sharing a caption share
    prompts)."""
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
    examples, seen = [], {}
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
                reference = sample.references[0]
                target = sample.meta["choices"][LETTERS.index(reference)] if name == "easyvqa_mc" else reference
                key = (prompt, reference)
                if key in seen:  # a repeat within its task is counted; POPE's questions are all easy-VQA's own
                    if seen[key][0] == name:
                        seen[key][4] += 1
                    continue
                seen[key] = [name, prompt, target, reference, 1]
                examples.append(seen[key])
    return [tuple(e) for e in examples]


def is_right(task: str, answer: str, example: tuple[str, str, str, str]) -> bool:
    """Scored as the task scores it: multiple choice through MMBench's parser, the rest exact."""
    if task != "easyvqa_mc":
        return answer == example[3]
    from mmbench.metrics.choice import parse_choice

    options = [line[3:] for line in example[1].split("\n") if line[:1] in LETTERS and line[1:3] == ". "]
    chosen = parse_choice(answer, options)
    return chosen is not None and LETTERS[chosen] == example[3]


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
    for _, prompt, answer, _, _ in examples:
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


def accuracy(model, tokenizer, examples) -> dict[str, dict[str, float]]:
    """Per task and, for easy-VQA's questions, per answer kind: the share answered right given the
    true caption (:func:`is_right`)."""
    right: dict[str, list[int]] = {}
    for example, said in zip(examples, answer(model, tokenizer, [e[1] for e in examples])):
        ok = int(is_right(example[0], said, example))
        right.setdefault(example[0], []).append(ok)
        if example[0] == "easyvqa_vqa":
            right.setdefault("easyvqa_vqa yes/no" if example[3] in ("yes", "no") else "easyvqa_vqa colour/shape",
                             []).append(ok)
    return {k: {"n": len(v), "accuracy": round(sum(v) / len(v), 4)} for k, v in sorted(right.items())}


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
    tokenizer = build_tokenizer([e[1] for e in examples] + [e[2] for e in examples])
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
    probe = random.Random(args.seed + 1).sample(examples, min(len(examples), 600))
    t1, cpu1 = time.perf_counter(), time.process_time()
    losses = []
    for step in range(args.steps):
        if len(order) < args.batch_size:
            extra = [i for i in range(len(data))
                     for _ in range(examples[i][4] * (1 if examples[i][0] == "easyvqa_mc" else args.vqa_repeat))]
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
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        token_loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        on_answer = (labels[:, 1:] != -100).float()
        on_prompt = mask[:, 1:].float() - on_answer
        answer_loss = (token_loss * on_answer).sum() / on_answer.sum()
        loss = answer_loss + args.prompt_loss * (token_loss * on_prompt).sum() / on_prompt.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(answer_loss.item())
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step} loss {sum(losses[-50:]) / len(losses[-50:]):.4f} "
                  f"({time.perf_counter() - t1:.0f} s)", flush=True)
        if args.progress_every and (step + 1) % args.progress_every == 0:  # not counted in the training time
            p0, c0 = time.perf_counter(), time.process_time()
            model.eval()
            print("  train sample:", {k: v["accuracy"] for k, v in accuracy(model, tokenizer, probe).items()}, flush=True)
            model.train()
            t1, cpu1 = t1 + time.perf_counter() - p0, cpu1 + time.process_time() - c0
    t_train, cpu_train = time.perf_counter() - t1, time.process_time() - cpu1
    model.eval()

    t2 = time.perf_counter()
    scores = {split: accuracy(model, tokenizer, exs) for split, exs in (("train", examples), ("test", test))}
    t_eval = time.perf_counter() - t2

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    portable_tokenizer_config(args.out)
    check_saved(args.out, [e[1] for e in test[:: max(1, len(test) // 16)]])
    counts = {name: sum(1 for e in examples if e[0] == name) for name in TASKS}
    asked = {name: sum(e[4] for e in examples if e[0] == name) for name in TASKS}
    info = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "n_examples": len(examples), "by_task": counts, "asked": asked, "n_test": len(test), "accuracy": scores,
            "n_parameters": sum(p.numel() for p in model.parameters()), "vocab": len(tokenizer),
            "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 5),
            "bytes": (args.out / "model.safetensors").stat().st_size,
            "seconds": {"data": round(t_data, 1), "train": round(t_train, 1), "train_cpu": round(cpu_train, 1),
                        "eval": round(t_eval, 1)},
            "loadavg": Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None,
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
    a, s, m, acc = info["args"], info["seconds"], MODEL, info["accuracy"]
    def cells(split: str, k: str) -> str:
        return f"{acc[split][k]['n']:,} | {acc[split][k]['accuracy']:.4f}" if k in acc[split] else "0 | -"

    rows = "\n".join(f"| {k} | {cells('train', k)} | {cells('test', k)} |" for k in sorted({*acc["train"], *acc["test"]}))
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
train-split row (its own template).  Target = the reference answer, then `<eos>`; for multiple choice
the correct option's *text* (the described colour or shape), not its letter: MMBench's parser maps an
answer that names one option's text to that option (the letter lookup did not form within the CPU
budget; `scripts/train_easyvqa_reasoner.py` says why).  Loss: the answer's next-token loss plus
{a['prompt_loss']} x the prompt's.
{info['n_examples']:,} distinct examples ({', '.join(f"{k} {v:,}" for k, v in info['by_task'].items())}; POPE's questions are
all among easy-VQA's own), sampled as often as the tasks ask them ({', '.join(f"{k} {v:,}" for k, v in info['asked'].items() if v)}
times), the non-multiple-choice ones {a['vqa_repeat']} times that (deduplicated, the yes/no questions are 7 in 8 "no" for a
colour, "no" unless negated, and the models tried learnt each wording's prior instead of reading the description).

Accuracy of the reasoner alone given the *true* caption, scored as the tasks score (multiple choice
through `parse_choice`, the rest exact match), on the train-split and the test-split constructions:

| task construction | train n | train accuracy | test n | test accuracy |
|---|---|---|---|---|
{rows}

This is a ceiling for the pipeline; its own figures (with the captioner's descriptions) are in
`docs/socratic.md`.  `easyvqa_consistency`'s new wordings are never trained on.

## Training
{a['steps']} steps, batch {a['batch_size']}, AdamW (lr {a['lr']}, weight decay 0.01, 5% linear warm-up then
linear decay), gradient clipping 1.0, seed {a['seed']}, `torch.set_num_threads({a['threads']})`, CPU; final
answer loss {info['final_loss']}.
Command: `nice -n 10 python scripts/train_easyvqa_reasoner.py`.
Time: data {s['data']} s, training {s['train']} s wall / {s['train_cpu']} s CPU, accuracy tables {s['eval']} s, on a
shared 2-core machine (load average {' '.join(info['loadavg'] or ['?'])} at the end)
(Python {info['versions']['python']}, torch {info['versions']['torch']}, transformers {info['versions']['transformers']}).
"""


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
