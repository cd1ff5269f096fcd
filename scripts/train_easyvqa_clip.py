"""Train mmbench's reference CLIP on easy-VQA captions (CPU, about two minutes).

The model is a tiny transformers ``CLIPModel`` (64x64 images, patch 8, two layers per
tower) trained from random init with a contrastive loss on the train split of
:func:`mmbench.tasks.datasets.easyvqa.caption_rows`, then evaluated on the test split
(zero-shot colour-shape classification, class-level retrieval recall, and whether
CLIPScore separates the right caption from a wrong one).  It is saved with a
``CLIPProcessor`` (``CLIPImageProcessor`` + a byte-level BPE ``CLIPTokenizer`` learnt
here) and reloads offline with ``CLIPModel.from_pretrained(dir)`` and
``AutoProcessor.from_pretrained(dir, local_files_only=True)``.

Usage::

    python scripts/train_easyvqa_clip.py                  # writes mmbench/assets/models/easyvqa-clip
    python scripts/train_easyvqa_clip.py --out /tmp/clip --steps 20

Deterministic for a given seed, thread count and torch build.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import platform
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so `python scripts/...` works from a checkout without installing
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

DEFAULT_OUT = REPO / "mmbench" / "assets" / "models" / "easyvqa-clip"
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_TOKENS = 32
# The architecture (no dropout: the data is synthetic and the run is short).
TOWER = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4)
VISION = dict(TOWER, image_size=64, patch_size=8, num_channels=3)
PROJECTION_DIM = 64
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps the learnt temperature at 100


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="torch seed for init, batches, captions and augmentation")
    p.add_argument("--steps", type=int, default=1500, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (linear warm-up, cosine decay)")
    p.add_argument("--prefix-prob", type=float, default=0.5,
                   help="probability that a training caption gets the CLIPScore prefix 'A photo depicts '")
    p.add_argument("--hflip", action=argparse.BooleanOptionalAction, default=True,
                   help="random horizontal flips (default on)")
    p.add_argument("--shift", type=int, default=6,
                   help="random translation by up to this many pixels, edges replicated; 0 turns it off")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    return p.parse_args(argv)


# --------------------------------------------------------------------------- texts and tokenizer


def caption_texts() -> tuple[list[str], list[int], list[bool]]:
    """Every distinct training text: 24 classes x 5 templates x {plain, "A photo depicts " + caption}.

    Returns ``(texts, class_of_text, prefixed)``; class ``c`` is ``(COLORS[c // 3], SHAPES[c % 3])``.
    """
    from mmbench.metrics.clipscore import CLIPSCORE_PROMPT
    from mmbench.tasks.datasets.easyvqa import COLORS, SHAPES, references

    texts, classes, prefixed = [], [], []
    for c, (color, shape) in enumerate(itertools.product(COLORS, SHAPES)):
        for caption in references(color, shape):
            for prefix in (False, True):
                texts.append(CLIPSCORE_PROMPT + caption if prefix else caption)
                classes.append(c)
                prefixed.append(prefix)
    return texts, classes, prefixed


def learn_bpe_merges(words: Counter[str], max_merges: int) -> list[tuple[str, str]]:
    """Greedy byte-pair merges over ``words`` (CLIP style: a word's last symbol carries ``</w>``).

    Written here rather than using ``tokenizers``' ``BpeTrainer`` because that trainer
    breaks ties between equally frequent pairs in hash-map order: two trainings on the
    same texts gave different merges (and token ids) in one process.  Here ties go to
    the smallest pair, so the vocabulary is a pure function of the texts.
    """
    words_as_symbols = {(*w[:-1], w[-1] + "</w>"): n for w, n in sorted(words.items())}
    merges: list[tuple[str, str]] = []
    while len(merges) < max_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for symbols, n in words_as_symbols.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += n
        if not pairs:  # every word is a single symbol
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        merged = {}
        for symbols, n in words_as_symbols.items():
            out: list[str] = []
            for s in symbols:
                if out and (out[-1], s) == best:
                    out[-1] = out[-1] + s
                else:
                    out.append(s)
            merged[tuple(out)] = n
        words_as_symbols = merged
    return merges


def build_tokenizer(texts: list[str], max_merges: int = 300):
    """A ``CLIPTokenizer`` (byte-level BPE; lower-cases like CLIP's) whose merges are learnt from ``texts``.

    Vocabulary: ``<|startoftext|>`` (0), ``<|endoftext|>`` (1, also pad and unk), the 256
    byte symbols, the same with ``</w>`` (so any text tokenizes without unk), then one
    entry per merge.  Encodings are ``<|startoftext|> ... <|endoftext|>``.
    """
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    backend = CLIPTokenizer().backend_tokenizer  # CLIP's normaliser (NFC, lower case) and pre-tokenizer
    words: Counter[str] = Counter()
    for text in texts:
        words.update(w for w, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text)))
    merges = learn_bpe_merges(words, max_merges)
    byte_symbols = sorted(ByteLevel.alphabet())  # the 256 printable stand-ins for bytes (returned unordered)
    tokens = [BOS, EOS, *byte_symbols, *(b + "</w>" for b in byte_symbols), *(a + b for a, b in merges)]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=MAX_TOKENS)


def encode_texts(processor, texts: list[str]) -> dict[str, torch.Tensor]:
    """``processor(text=texts)``, checked to be ``BOS ... EOS`` with no other special token in between.

    CLIP pools the text tower at the first ``<|endoftext|>``, which is also this
    tokenizer's unk and pad token: a missing EOS, or an unknown symbol turned into it,
    would silently pool at the wrong place.
    """
    tok = processor.tokenizer
    enc = processor(text=texts, padding=True, truncation=True, return_tensors="pt")
    for text, ids, mask in zip(texts, enc["input_ids"].tolist(), enc["attention_mask"].tolist()):
        real = ids[:sum(mask)]
        if real[0] != tok.bos_token_id or real[-1] != tok.eos_token_id or tok.eos_token_id in real[:-1] \
                or tok.bos_token_id in real[1:]:
            raise RuntimeError(f"bad CLIP encoding of {text!r}: {tok.convert_ids_to_tokens(real)}")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


# --------------------------------------------------------------------------- model and images


def build_processor(tokenizer):
    from transformers import CLIPImageProcessor, CLIPProcessor

    image_processor = CLIPImageProcessor(  # CLIP's own mean/std and bicubic resize; 64x64 in, 64x64 out
        size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}, do_center_crop=True)
    return CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def build_model(tokenizer):
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config=dict(TOWER, vocab_size=len(tokenizer), max_position_embeddings=MAX_TOKENS,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        vision_config=VISION,
        projection_dim=PROJECTION_DIM,
    )
    return CLIPModel(config)


def load_pixels(rows: list[dict], processor, chunk: int = 256) -> torch.Tensor:
    """All images of ``rows`` through the image processor, as one float tensor."""
    out = []
    for start in range(0, len(rows), chunk):
        images = []
        for r in rows[start:start + chunk]:
            with Image.open(r["image"]) as im:
                images.append(im.convert("RGB"))
        out.append(processor(images=images, return_tensors="pt")["pixel_values"])
    return torch.cat(out)


def random_shift(pixels: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels; the plain background is extended by edge replication."""
    n, _, h, w = pixels.shape
    padded = torch.nn.functional.pad(pixels, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])


def multi_positive_loss(logits_per_image: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE where every in-batch pair of the same class is a positive.

    Only 24 distinct (colour, shape) pairs exist, so a batch of 64 nearly always holds
    several images of one class; the standard diagonal target would push "a red circle"
    away from the other red circles in the batch (false negatives).  Instead the
    target distribution of each row (and column) is uniform over its same-class
    entries.  With no duplicates in the batch this is exactly CLIP's loss.
    """
    same = (classes[:, None] == classes[None, :]).float()
    target = same / same.sum(1, keepdim=True)  # symmetric matrix, so the same target serves both directions
    loss_i = torch.nn.functional.cross_entropy(logits_per_image, target)
    loss_t = torch.nn.functional.cross_entropy(logits_per_image.t(), target)
    return (loss_i + loss_t) / 2


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def embed(model, pixels: torch.Tensor | None = None, text: dict | None = None, batch_size: int = 256) -> np.ndarray:
    """L2-normalised projected image (``pixels``) or text (``text``) embeddings, float64."""
    model.eval()
    out = []
    n = len(pixels) if pixels is not None else len(text["input_ids"])
    for s in range(0, n, batch_size):
        if pixels is not None:
            feats = model.get_image_features(pixel_values=pixels[s:s + batch_size]).pooler_output
        else:
            feats = model.get_text_features(**{k: v[s:s + batch_size] for k, v in text.items()}).pooler_output
        out.append(feats.double().numpy())
    x = np.concatenate(out)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def class_recall(scores: np.ndarray, query_cls: np.ndarray, gallery_cls: np.ndarray, ks=(1, 5, 10)) -> dict:
    """Recall@k where any gallery item of the query's class is correct.

    ``scores`` is (queries, gallery).  A query's rank is 1 + the number of wrong-class
    items scoring at least as high as its best right-class item (ties count against
    the model, as in ``mmbench.metrics.retrieval``, whose one-correct-image-per-text
    mapping cannot express class-level correctness).
    """
    right = query_cls[:, None] == gallery_cls[None, :]
    best = np.where(right, scores, -np.inf).max(1)
    ranks = 1 + (np.where(right, -np.inf, scores) >= best[:, None]).sum(1)
    return {f"R@{k}": float(np.mean(ranks <= k)) for k in ks}


def evaluate(model, processor, pixels: torch.Tensor, rows: list[dict], seed: int) -> dict:
    """Test figures: zero-shot accuracy, class-level retrieval recall, CLIPScore separation."""
    from mmbench.metrics.clipscore import clip_score
    from mmbench.tasks.datasets.easyvqa import COLORS, SHAPES

    texts, text_cls, prefixed = caption_texts()
    text_cls, prefixed = np.array(text_cls), np.array(prefixed)
    canonical = np.array([texts.index(f"a {c} {s}") for c, s in itertools.product(COLORS, SHAPES)])
    canonical_prefixed = np.array([texts.index(f"A photo depicts a {c} {s}") for c, s in itertools.product(COLORS, SHAPES)])
    img_cls = np.array([COLORS.index(r["color"]) * len(SHAPES) + SHAPES.index(r["shape"]) for r in rows])
    images = embed(model, pixels=pixels)
    captions = embed(model, text=encode_texts(processor, texts))
    sims = images @ captions.T  # (images, texts) cosine similarities

    out: dict = {"n_images": len(rows)}
    out["zero_shot_acc"] = float(np.mean(sims[:, canonical].argmax(1) == img_cls))
    out["zero_shot_acc_prefixed"] = float(np.mean(sims[:, canonical_prefixed].argmax(1) == img_cls))
    out["retrieval"] = {}
    for name, subset in (("canonical captions", canonical),
                         ("all 5 templates", np.flatnonzero(~prefixed)),
                         ("all 5 templates, 'A photo depicts ' + caption", np.flatnonzero(prefixed))):
        s = sims[:, subset]
        out["retrieval"][name] = {"n_texts": len(subset),
                                  "i2t": class_recall(s, img_cls, text_cls[subset]),
                                  "t2i": class_recall(s.T, text_cls[subset], img_cls)}

    # CLIPScore = 2.5 * max(cos, 0) with "A photo depicts " + caption, via mmbench's own metric.
    rng = np.random.default_rng(seed)
    wrong_cls = (img_cls + rng.integers(1, 24, len(rows))) % 24  # a uniformly random other class
    hardest_cls = np.where(np.arange(24)[None, :] == img_cls[:, None], -np.inf, sims[:, canonical_prefixed]).argmax(1)
    right_score = clip_score(images, captions[canonical_prefixed[img_cls]])[1]
    random_wrong = clip_score(images, captions[canonical_prefixed[wrong_cls]])[1]
    hardest_wrong = clip_score(images, captions[canonical_prefixed[hardest_cls]])[1]
    out["clipscore"] = {
        "right": float(right_score.mean()),
        "random_wrong": float(random_wrong.mean()),
        "hardest_wrong": float(hardest_wrong.mean()),
        "right_beats_random_wrong": float(np.mean(right_score > random_wrong)),
        "right_beats_hardest_wrong": float(np.mean(right_score > hardest_wrong)),
    }
    return out


# --------------------------------------------------------------------------- main


def train(args: argparse.Namespace) -> dict:
    from transformers.utils import logging as hf_logging

    from mmbench.tasks.datasets.easyvqa import COLORS, SHAPES, caption_rows

    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    hf_logging.set_verbosity_error()  # the "falling back to CLIPImageProcessorPil" notice (no torchvision) is expected
    hf_logging.disable_progress_bar()

    texts, text_cls, prefixed = caption_texts()
    tokenizer = build_tokenizer(texts)
    processor = build_processor(tokenizer)
    text_inputs = encode_texts(processor, texts)  # all 240 distinct training texts, tokenized once
    text_cls_t, prefixed_t = torch.tensor(text_cls), torch.tensor(prefixed)
    train_rows, test_rows = caption_rows("train"), caption_rows("test")
    x_train, x_test = load_pixels(train_rows, processor), load_pixels(test_rows, processor)
    y_train = torch.tensor([COLORS.index(r["color"]) * len(SHAPES) + SHAPES.index(r["shape"]) for r in train_rows])
    t_data = time.perf_counter() - t0
    print(f"data: {len(train_rows)} train / {len(test_rows)} test images, {len(texts)} texts, "
          f"vocab {len(tokenizer)}, {text_inputs['input_ids'].shape[1]} tokens max, {t_data:.1f}s", flush=True)

    model = build_model(tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,} parameters", flush=True)

    # text_table[class, template, prefixed] -> text index (caption_texts lists them in that order).
    text_table = torch.arange(len(texts)).view(24, 5, 2)
    assert (text_cls_t[text_table] == torch.arange(24)[:, None, None]).all()
    assert (prefixed_t[text_table] == torch.tensor([False, True])).all()

    decay = [p for n, p in model.named_parameters() if n != "logit_scale"]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                   {"params": [model.logit_scale], "weight_decay": 0.0}], lr=args.lr)
    warmup = max(1, args.steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warmup) / max(1, args.steps - warmup))))))
    generator = torch.Generator().manual_seed(args.seed)
    order = torch.empty(0, dtype=torch.long)
    losses: list[float] = []
    t1 = time.perf_counter()
    model.train()
    for step in range(args.steps):
        if len(order) < args.batch_size:  # epochs of shuffled images; the tail of one carries into the next
            order = torch.cat([order, torch.randperm(len(train_rows), generator=generator)])
        idx, order = order[:args.batch_size], order[args.batch_size:]
        cls = y_train[idx]
        template = torch.randint(0, 5, (len(idx),), generator=generator)
        prefix = (torch.rand(len(idx), generator=generator) < args.prefix_prob).long()
        tids = text_table[cls, template, prefix]
        pixels = x_train[idx]
        if args.hflip:  # easy-VQA shapes and their names are left-right symmetric
            flip = torch.rand(len(idx), generator=generator) < 0.5
            pixels = torch.where(flip[:, None, None, None], pixels.flip(-1), pixels)
        if args.shift:
            pixels = random_shift(pixels, args.shift, generator)
        out = model(pixel_values=pixels, input_ids=text_inputs["input_ids"][tids],
                    attention_mask=text_inputs["attention_mask"][tids])
        loss = multi_positive_loss(out.logits_per_image, cls)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(max=MAX_LOGIT_SCALE)
        losses.append(loss.item())
        if (step + 1) % max(1, args.steps // 6) == 0 or step + 1 == args.steps:
            print(f"step {step + 1}/{args.steps}: loss {np.mean(losses[-50:]):.4f}, "
                  f"logit scale {model.logit_scale.exp().item():.1f} ({time.perf_counter() - t1:.0f}s)", flush=True)
    t_train = time.perf_counter() - t1

    t2 = time.perf_counter()
    scores = evaluate(model, processor, x_test, test_rows, args.seed)
    t_eval = time.perf_counter() - t2
    t_total = time.perf_counter() - t0
    print(f"test ({len(test_rows)} images): zero-shot accuracy {scores['zero_shot_acc']:.4f} "
          f"(prefixed captions {scores['zero_shot_acc_prefixed']:.4f}); CLIPScore right "
          f"{scores['clipscore']['right']:.3f} vs random wrong {scores['clipscore']['random_wrong']:.3f}", flush=True)
    print(f"time: data {t_data:.1f}s, train {t_train:.1f}s, test {t_eval:.1f}s, total {t_total:.1f}s", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    write_vocab_files(args.out, tokenizer)
    for f in args.out.iterdir():  # transformers 5 writes model.safetensors with mode 0600
        f.chmod(0o644)
    info = {
        "n_params": n_params,
        "size_bytes": (args.out / "model.safetensors").stat().st_size,
        "sha256": hashlib.sha256((args.out / "model.safetensors").read_bytes()).hexdigest(),
        "vocab_size": len(tokenizer),
        "n_train": len(train_rows),
        "steps": args.steps,
        "final_loss": float(np.mean(losses[-50:])),
        "logit_scale": model.logit_scale.exp().item(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "scores": scores,
        "seconds": {"data": t_data, "train": t_train, "test": t_eval, "total": t_total},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": __import__("transformers").__version__},
        "example": tokenizer.convert_ids_to_tokens(tokenizer("A photo depicts a red circle").input_ids),
    }
    (args.out / "README.md").write_text(model_card(info))
    check_saved(args.out, model, processor, x_test[:8], texts[:8])
    print(f"saved to {args.out} ({info['size_bytes'] / 1e6:.2f} MB model.safetensors; reloads offline, same embeddings)",
          flush=True)
    return info


def write_vocab_files(out: Path, tokenizer) -> None:
    """Also write OpenAI-style ``vocab.json`` + ``merges.txt``.

    transformers 5 saves only ``tokenizer.json`` (and ``save_vocabulary`` fails on a
    tokenizer built from a vocab dict); the two classic files let CLIP tokenizers that
    do not read ``tokenizer.json`` (transformers 4.x ``CLIPTokenizer``, say) load it too.
    """
    bpe = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    (out / "vocab.json").write_text(json.dumps(bpe["vocab"], ensure_ascii=False) + "\n", encoding="utf-8")
    merges = "".join(f"{a} {b}\n" for a, b in bpe["merges"])
    (out / "merges.txt").write_text("#version: 0.2\n" + merges, encoding="utf-8")


def check_saved(out: Path, model, processor, pixels: torch.Tensor, texts: list[str]) -> None:
    """Reload ``out`` as a user would and check it gives the in-memory model's tokens and embeddings.

    Also checks that ``vocab.json`` + ``merges.txt`` alone (no ``tokenizer.json``) give the same tokens.
    """
    import shutil
    import tempfile

    from transformers import AutoProcessor, CLIPModel, CLIPTokenizer

    loaded = CLIPModel.from_pretrained(out, local_files_only=True)
    loaded_processor = AutoProcessor.from_pretrained(out, local_files_only=True)
    probe = [*texts, "Zebra qux! 42 - caf\u00e9", "A photo depicts a PURPLE hexagon."]
    expected = [processor.tokenizer(t)["input_ids"] for t in probe]
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
            shutil.copy(out / name, tmp)
        classic = CLIPTokenizer.from_pretrained(tmp, local_files_only=True)
        same_tokens = all(tok(t)["input_ids"] == e for tok in (loaded_processor.tokenizer, classic)
                          for t, e in zip(probe, expected))
    a = embed(loaded, text=encode_texts(loaded_processor, texts)), embed(loaded, pixels=pixels)
    b = embed(model, text=encode_texts(processor, texts)), embed(model, pixels=pixels)
    if not (same_tokens and all(np.allclose(x, y, atol=1e-6) for x, y in zip(a, b))):
        raise RuntimeError(f"the checkpoint saved in {out} does not reproduce the trained model")


def model_card(info: dict) -> str:
    a, s, t = info["args"], info["scores"], info["seconds"]
    defaults = vars(parse_args([]))
    cmd = "python scripts/train_easyvqa_clip.py" + "".join(
        f" --{k.replace('_', '-')} {v}" for k, v in a.items() if k not in ("out", "hflip") and v != defaults[k]
    ) + ("" if a["hflip"] == defaults["hflip"] else " --no-hflip")
    aug = ", ".join(
        (["random horizontal flips"] if a["hflip"] else [])
        + ([f"random translation by up to {a['shift']} px (edges replicated)"] if a["shift"] else [])
    ) or "none"
    rows = "\n".join(
        f"| {name} | {r['n_texts']} | " + " | ".join(f"{r[d][f'R@{k}']:.4f}" for d in ("i2t", "t2i") for k in (1, 5, 10)) + " |"
        for name, r in s["retrieval"].items())
    cs = s["clipscore"]
    return f"""# easyvqa-clip (mmbench reference CLIP)

A tiny CLIP trained from scratch on captions derived from
[easy-VQA](https://pypi.org/project/easy-vqa/) (MIT), so that mmbench can run CLIPScore
and image-text retrieval offline with a model whose scores mean something.  It is a
test fixture with real behaviour, not a general CLIP: it only knows the 8 colours x
3 shapes of easy-VQA and the 5 caption templates of `mmbench.tasks.datasets.easyvqa`.

## Architecture
`CLIPModel`: vision tower 64x64 input, patch {VISION['patch_size']} (64 patches + CLS), text tower with
{MAX_TOKENS} positions; both towers hidden {TOWER['hidden_size']}, {TOWER['num_hidden_layers']} layers,
{TOWER['num_attention_heads']} heads, MLP {TOWER['intermediate_size']}; projection dim {PROJECTION_DIM}; learnt
temperature (clamped at 100 as in CLIP; ended at {info['logit_scale']:.1f}).  {info['n_params']:,} parameters,
`model.safetensors` {info['size_bytes'] / 1e6:.2f} MB (fp32).

`CLIPProcessor`: `CLIPImageProcessor` (shortest edge 64, centre crop 64, CLIP mean/std; the
images are already 64x64) and a `CLIPTokenizer` with {info['vocab_size']} entries: `<|startoftext|>` (0),
`<|endoftext|>` (1, also pad and unk), the 256 byte symbols with and without `</w>` (so any
text tokenizes without unk), and byte-level BPE merges learnt from the 240 training texts
(see below), which leaves every word of them a single token.  Encodings are
`<|startoftext|> ... <|endoftext|>` (the text tower pools at the first `<|endoftext|>`;
the script checks every training text encodes that way), at most {MAX_TOKENS} tokens.  Like
OpenAI's CLIP tokenizer it lower-cases: `"A photo depicts a red circle"` ->
`{info['example']}`.
The merges are learnt by a few lines in the script, not `tokenizers`' `BpeTrainer`, which
breaks frequency ties in hash-map order (two trainings on the same texts gave different
vocabularies).  Saved as `tokenizer.json` and also as `vocab.json` + `merges.txt` for loaders
that want those (with transformers 5 load them with `CLIPTokenizer.from_pretrained(dir)`:
`CLIPTokenizer(vocab_file=..., merges_file=...)` silently builds a 2-token vocabulary).

## Training
- Images: `mmbench.tasks.datasets.easyvqa.caption_rows("train")`, {info['n_train']} images, preprocessed once into a tensor.
- Texts: per image and step, one of its 5 reference captions at random, prefixed with
  `"A photo depicts "` (the CLIPScore prompt, `mmbench.metrics.clipscore.CLIPSCORE_PROMPT`)
  with probability {a['prefix_prob']}; 24 classes x 5 templates x 2 = 240 distinct texts, kept as written
  (the tokenizer lower-cases).
- Loss: symmetric InfoNCE over the batch with the learnt temperature, but with
  **multi-positive targets**: only 24 distinct (colour, shape) pairs exist, so a batch of
  {a['batch_size']} almost always holds several images of one class, and CLIP's one-positive
  (diagonal) target would treat those as negatives and push "a red circle" away from
  other red circles.  Each row's (and column's) target is instead uniform over the batch
  entries of the same class; with no duplicates it reduces to CLIP's loss.
- {info['steps']} steps, batch {a['batch_size']}, AdamW (lr {a['lr']}, weight decay 0.01 except the temperature,
  5% linear warm-up then cosine decay), gradient clipping 1.0, seed {a['seed']},
  `torch.set_num_threads({a['threads']})`, CPU.  Final training loss {info['final_loss']:.4f}.
- Augmentation: {aug}.
- Command: `{cmd}`
- Deterministic: the same seed, thread count and torch build give a byte-identical
  `model.safetensors` (checked: two runs of this command, sha256 `{info['sha256'][:16]}...`).
- Time on 2 shared CPU cores: data {t['data']:.0f} s, training {t['train']:.0f} s, test evaluation {t['test']:.0f} s,
  total {t['total']:.0f} s (Python {info['versions']['python']}, torch {info['versions']['torch']},
  transformers {info['versions']['transformers']}).

## Test scores
`caption_rows("test")`, {s['n_images']} images.  Since 24 captions are shared by many images, a
retrieved item counts as correct when it has the query's (colour, shape); ties count against the model.

- Zero-shot classification accuracy (best of the 24 canonical captions "a {{color}} {{shape}}"
  is the right one): **{s['zero_shot_acc']:.4f}**; with the captions prefixed by "A photo depicts ":
  {s['zero_shot_acc_prefixed']:.4f}.
- Retrieval recall (i2t: an image queries the texts; t2i: a text queries the {s['n_images']} images):

| texts | n | i2t R@1 | i2t R@5 | i2t R@10 | t2i R@1 | t2i R@5 | t2i R@10 |
|---|---|---|---|---|---|---|---|
{rows}

  i2t R@1 over the 24 canonical captions is the zero-shot accuracy above.
- CLIPScore (2.5 x max(cos, 0), `"A photo depicts " + caption`, mean over test images):
  right caption {cs['right']:.4f}; a random wrong caption {cs['random_wrong']:.4f} (right scores higher
  for {cs['right_beats_random_wrong']:.2%} of images); the highest-scoring wrong caption {cs['hardest_wrong']:.4f}
  (right scores higher for {cs['right_beats_hardest_wrong']:.2%}).

## Use
```python
import torch
from PIL import Image
from transformers import AutoProcessor, CLIPModel

d = "mmbench/assets/models/easyvqa-clip"
model = CLIPModel.from_pretrained(d, local_files_only=True)
processor = AutoProcessor.from_pretrained(d, local_files_only=True)
inputs = processor(images=[Image.open(p).convert("RGB") for p in paths],
                   text=["A photo depicts a red circle"], padding=True, return_tensors="pt")
with torch.no_grad():
    image = model.get_image_features(pixel_values=inputs["pixel_values"]).pooler_output
    text = model.get_text_features(input_ids=inputs["input_ids"],
                                   attention_mask=inputs["attention_mask"]).pooler_output
```

License: the weights are trained by mmbench on MIT-licensed easy-VQA data; released with mmbench.
"""


def main(argv: list[str] | None = None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
