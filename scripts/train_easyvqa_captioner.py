"""Train mmbench's reference captioner on easy-VQA captions (CPU, a couple of minutes).

The model is a tiny transformers ``VisionEncoderDecoderModel`` (ViT encoder on 64x64
images, GPT-2 decoder) with a word-level tokenizer built with the ``tokenizers``
library and a ``ViTImageProcessor``.  It is trained from scratch on the train split
of :func:`mmbench.tasks.datasets.easyvqa.caption_rows` to say one reference template
("a red triangle on a plain background" by default), then evaluated by greedy
decoding on the test split.  The result reloads offline with the plain
``from_pretrained(dir, local_files_only=True)`` of ``VisionEncoderDecoderModel``,
``AutoTokenizer`` and ``AutoImageProcessor``, and ``model.generate(pixel_values=...)``
needs no extra arguments.

Usage::

    python scripts/train_easyvqa_captioner.py                 # writes mmbench/assets/models/easyvqa-captioner
    python scripts/train_easyvqa_captioner.py --out /tmp/cap --seed 1 --epochs 4

Deterministic for a given seed, thread count and torch build.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so `python scripts/...` works from a checkout without installing
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

DEFAULT_OUT = REPO / "mmbench" / "assets" / "models" / "easyvqa-captioner"
SPECIAL_TOKENS = {"pad": "<pad>", "bos": "<bos>", "eos": "<eos>", "unk": "<unk>"}
IMAGE_MEAN = [0.5, 0.5, 0.5]
IMAGE_STD = [0.5, 0.5, 0.5]
# The architecture (no dropout: the data is synthetic and the run is short).
ENCODER = dict(image_size=64, patch_size=8, num_channels=3, hidden_size=96, num_hidden_layers=3,
               num_attention_heads=4, intermediate_size=192, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
DECODER = dict(n_positions=32, n_embd=128, n_layer=2, n_head=4, n_inner=256,
               resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="torch seed for init and shuffling")
    p.add_argument("--epochs", type=int, default=16, help="passes over the train split")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (linear warm-up and decay)")
    p.add_argument("--target-template", type=int, default=1,
                   help="index into easyvqa.CAPTION_TEMPLATES of the caption the model learns to say")
    p.add_argument("--hflip", action=argparse.BooleanOptionalAction, default=True,
                   help="random horizontal flips (default on)")
    p.add_argument("--shift", type=int, default=6,
                   help="random translation by up to this many pixels, edges replicated; 0 turns it off")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    return p.parse_args(argv)


# --------------------------------------------------------------------------- building blocks


def build_tokenizer():
    """Lower-cased word-level tokenizer over every word of every reference caption."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from mmbench.tasks.datasets.easyvqa import CAPTION_TEMPLATES, COLORS, SHAPES

    words = sorted({w for t in CAPTION_TEMPLATES for c in COLORS for s in SHAPES for w in t.format(color=c, shape=s).split()})
    vocab = {tok: i for i, tok in enumerate([SPECIAL_TOKENS[k] for k in ("pad", "bos", "eos", "unk")] + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk"]))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=SPECIAL_TOKENS["bos"],
        eos_token=SPECIAL_TOKENS["eos"],
        pad_token=SPECIAL_TOKENS["pad"],
        unk_token=SPECIAL_TOKENS["unk"],
        model_max_length=32,
        padding_side="right",
    )


def build_image_processor():
    from transformers import ViTImageProcessor

    return ViTImageProcessor(
        do_resize=True,
        size={"height": 64, "width": 64},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=IMAGE_MEAN,
        image_std=IMAGE_STD,
    )


def build_model(tokenizer):
    from transformers import GenerationConfig, GPT2Config, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig

    encoder = ViTConfig(**ENCODER)
    decoder = GPT2Config(
        **DECODER,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = tokenizer.bos_token_id
    config.bos_token_id = tokenizer.bos_token_id
    config.eos_token_id = tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    model = VisionEncoderDecoderModel(config=config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=tokenizer.bos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=16,
        num_beams=1,
        do_sample=False,
    )
    return model


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


def encode_targets(texts: list[str], tokenizer) -> torch.Tensor:
    """Labels: word ids + eos, padded with -100.  The model prepends decoder_start (bos) itself."""
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in texts]
    width = max(map(len, ids))
    return torch.tensor([x + [-100] * (width - len(x)) for x in ids])


def random_shift(pixels: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels; the uniform background is extended by edge replication."""
    n, _, h, w = pixels.shape
    padded = torch.nn.functional.pad(pixels, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])


@torch.no_grad()
def caption(model, tokenizer, pixel_values: torch.Tensor, batch_size: int = 128) -> list[str]:
    model.eval()
    out: list[str] = []
    for start in range(0, len(pixel_values), batch_size):
        ids = model.generate(pixel_values=pixel_values[start:start + batch_size], max_new_tokens=16, num_beams=1, do_sample=False)
        out.extend(t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True))
    return out


def score(predictions: list[str], rows: list[dict], target_template: int) -> dict[str, float]:
    """Exact-caption accuracy, colour+shape accuracy and (if pycocoevalcap imports) BLEU-4 / CIDEr-D."""
    from mmbench.tasks.datasets.easyvqa import COLORS, SHAPES

    def attrs(text: str) -> tuple[set[str], set[str]]:
        words = set(text.split())
        return words & set(COLORS), words & set(SHAPES)

    n = len(rows)
    exact = sum(p == r["references"][target_template] for p, r in zip(predictions, rows)) / n
    both = sum(attrs(p) == ({r["color"]}, {r["shape"]}) for p, r in zip(predictions, rows)) / n
    color = sum(attrs(p)[0] == {r["color"]} for p, r in zip(predictions, rows)) / n
    shape = sum(attrs(p)[1] == {r["shape"]} for p, r in zip(predictions, rows)) / n
    result = {"exact": exact, "color_shape": both, "color": color, "shape": shape}
    try:  # only for the model card; mmbench's own metrics compute the official numbers
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
    except ImportError:
        return result
    # Captions are lower-case words without punctuation, so whitespace splitting equals PTB tokenisation here.
    gts = {r["image_id"]: r["references"] for r in rows}
    res = {r["image_id"]: [p] for p, r in zip(predictions, rows)}
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # Bleu prints its n-gram counts
        bleu, _ = Bleu(4).compute_score(gts, res)
        cider, _ = Cider().compute_score(gts, res)
    result.update({"bleu4": float(bleu[3]), "cider_d": float(cider)})
    return result


# --------------------------------------------------------------------------- main


def train(args: argparse.Namespace) -> dict:
    from transformers.utils import logging as hf_logging

    from mmbench.tasks.datasets.easyvqa import CAPTION_TEMPLATES, caption_rows

    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    hf_logging.set_verbosity_error()  # the "falling back to ViTImageProcessorPil" notice (no torchvision) is expected
    hf_logging.disable_progress_bar()  # "Writing model shards" bars

    tokenizer = build_tokenizer()
    processor = build_image_processor()
    train_rows, test_rows = caption_rows("train"), caption_rows("test")
    x_train = load_pixels(train_rows, processor)
    x_test = load_pixels(test_rows, processor)
    y_train = encode_targets([r["references"][args.target_template] for r in train_rows], tokenizer)
    t_data = time.perf_counter() - t0
    print(f"data: {len(train_rows)} train / {len(test_rows)} test images, {t_data:.1f}s", flush=True)

    model = build_model(tokenizer)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,} parameters", flush=True)

    steps_per_epoch = (len(train_rows) + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    warmup = max(1, total // 20)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    generator = torch.Generator().manual_seed(args.seed)
    t1 = time.perf_counter()
    step = 0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_rows), generator=generator)
        losses = []
        for start in range(0, len(order), args.batch_size):
            idx = order[start:start + args.batch_size]
            pixels = x_train[idx]
            if args.hflip:  # mirror half the batch: easy-VQA shapes and their names are left-right symmetric
                flip = torch.rand(len(idx), generator=generator) < 0.5
                pixels = torch.where(flip[:, None, None, None], pixels.flip(-1), pixels)
            if args.shift:
                pixels = random_shift(pixels, args.shift, generator)
            loss = model(pixel_values=pixels, labels=y_train[idx]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            step += 1
        print(f"epoch {epoch + 1}/{args.epochs}: loss {np.mean(losses):.4f} ({time.perf_counter() - t1:.1f}s)", flush=True)
    t_train = time.perf_counter() - t1

    t2 = time.perf_counter()
    predictions = caption(model, tokenizer, x_test)
    t_eval = time.perf_counter() - t2
    scores = score(predictions, test_rows, args.target_template)
    t_total = time.perf_counter() - t0
    print(f"test ({len(test_rows)} images): " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()), flush=True)
    print(f"time: data {t_data:.1f}s, train {t_train:.1f}s, test generation {t_eval:.1f}s, total {t_total:.1f}s", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    processor.save_pretrained(args.out)
    portable_tokenizer_config(args.out)
    for f in args.out.iterdir():  # transformers 5 writes model.safetensors with mode 0600
        f.chmod(0o644)
    info = {
        "n_params": n_params,
        "vocab_size": len(tokenizer),
        "n_train": len(train_rows),
        "n_test": len(test_rows),
        "steps": step,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "target_template": CAPTION_TEMPLATES[args.target_template],
        "scores": scores,
        "seconds": {"data": t_data, "train": t_train, "test_generation": t_eval, "total": t_total},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": __import__("transformers").__version__},
        "examples": list(zip([r["image_id"] for r in test_rows[:5]], predictions[:5])),
    }
    (args.out / "README.md").write_text(model_card(info))
    check_saved(args.out, test_rows[:8], predictions[:8])
    print(f"saved to {args.out} (reloads offline; batched and one-by-one generation agree)", flush=True)
    return info


def portable_tokenizer_config(out: Path) -> None:
    """transformers 5 records ``tokenizer_class: "TokenizersBackend"``, a name transformers 4.x lacks;
    ``PreTrainedTokenizerFast`` names the same class in 5.x (an alias) and loads in 4.x too."""
    path = out / "tokenizer_config.json"
    cfg = json.loads(path.read_text())
    if cfg.get("tokenizer_class") == "TokenizersBackend":
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


def check_saved(out: Path, rows: list[dict], expected: list[str]) -> None:
    """Reload ``out`` exactly as mmbench does and check batched == one-by-one == in-memory captions."""
    from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

    model = VisionEncoderDecoderModel.from_pretrained(out, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    processor = AutoImageProcessor.from_pretrained(out, local_files_only=True)
    pixels = load_pixels(rows, processor)
    batched = caption(model, tokenizer, pixels)
    single = [caption(model, tokenizer, pixels[i:i + 1])[0] for i in range(len(rows))]
    if not batched == single == expected:
        raise RuntimeError(f"saved model disagrees: batched {batched}, one-by-one {single}, in memory {expected}")


def model_card(info: dict) -> str:
    a, s, t = info["args"], info["scores"], info["seconds"]
    e, d = ENCODER, DECODER
    n_words = len(info["target_template"].split())
    size = "{:.2f} MB".format(info["n_params"] * 4 / 1e6)
    defaults = vars(parse_args([]))
    cmd = "python scripts/train_easyvqa_captioner.py" + "".join(
        f" --{k.replace('_', '-')} {v}" for k, v in a.items() if k not in ("out", "hflip") and v != defaults[k]
    ) + ("" if a["hflip"] == defaults["hflip"] else " --no-hflip")
    coco = (
        f"| BLEU-4 (pycocoevalcap, 5 references) | {s['bleu4']:.4f} |\n| CIDEr-D (pycocoevalcap) | {s['cider_d']:.4f} |\n"
        if "bleu4" in s else ""
    )
    aug = ", ".join(
        (["random horizontal flips"] if a["hflip"] else [])
        + ([f"random translation by up to {a['shift']} px (edges replicated)"] if a["shift"] else [])
    ) or "none"
    examples = "\n".join(f"- test image {i}: \"{p}\"" for i, p in info["examples"])
    return f"""# easyvqa-captioner (mmbench reference captioner)

A tiny image captioner trained from scratch on captions derived from
[easy-VQA](https://pypi.org/project/easy-vqa/) (MIT), used by mmbench's offline
default run.  It is a test fixture with real behaviour, not a general captioner:
it only knows the 8 colours x 3 shapes of easy-VQA.

## Architecture
`VisionEncoderDecoderModel`: ViT encoder ({e['image_size']}x{e['image_size']} input, patch {e['patch_size']}, hidden {e['hidden_size']},
{e['num_hidden_layers']} layers, {e['num_attention_heads']} heads, MLP {e['intermediate_size']}) -> linear projection -> GPT-2 decoder with
cross-attention (n_embd {d['n_embd']}, {d['n_layer']} layers, {d['n_head']} heads, MLP {d['n_inner']}, {d['n_positions']} positions), no dropout.  {info['n_params']:,} parameters
(~{size} fp32 safetensors).  Word-level tokenizer (`tokenizers` WordLevel, lower-cased,
whitespace split; `<pad>`, `<bos>`, `<eos>`, `<unk>` plus every word of the reference templates,
{info['vocab_size']} tokens), `ViTImageProcessor` (resize 64x64, rescale 1/255, mean/std 0.5).
Decoding starts from `<bos>` (`decoder_start_token_id`) and stops at `<eos>`; both are
set in `config.json` and `generation_config.json`.

## Training
- Data: `mmbench.tasks.datasets.easyvqa.caption_rows("train")`, {info['n_train']} images
  (see `docs/easyvqa.md` for how captions are derived from the questions).
- Target: reference template {a['target_template']}, `"{info['target_template']}"`
  ({n_words} words; BLEU-4 needs captions of at least 4 words to have 4-grams to count).
- {a['epochs']} epochs, batch {a['batch_size']}, {info['steps']} steps, AdamW (lr {a['lr']}, weight decay 0.01,
  5% linear warm-up then linear decay), gradient clipping 1.0, seed {a['seed']},
  `torch.set_num_threads({a['threads']})`, CPU.
- Augmentation: {aug}.
- Command: `{cmd}`
- Deterministic: the same seed, thread count and torch build give a byte-identical
  `model.safetensors` (checked: five runs on torch 2.13 CPU, some on a busy machine).
- Time on 2 CPU cores: data {t['data']:.0f} s, training {t['train']:.0f} s, test generation
  {t['test_generation']:.0f} s, total {t['total']:.0f} s
  (Python {info['versions']['python']}, torch {info['versions']['torch']}, transformers {info['versions']['transformers']}).
  For reference, about 115 s in total on an idle machine; with other jobs sharing the two cores,
  torch's two threads contend and the same run took 5-20 minutes (same weights, just slower).

## Test scores
Greedy decoding (`max_new_tokens=16, num_beams=1`) on `caption_rows("test")`, {info['n_test']} images:

| metric | value |
|---|---|
| exact caption | {s['exact']:.4f} |
| colour and shape correct | {s['color_shape']:.4f} |
| colour correct | {s['color']:.4f} |
| shape correct | {s['shape']:.4f} |
{coco}
Example outputs:
{examples}

## Use
```python
from PIL import Image
from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

d = "mmbench/assets/models/easyvqa-captioner"
model = VisionEncoderDecoderModel.from_pretrained(d, local_files_only=True)
tokenizer = AutoTokenizer.from_pretrained(d, local_files_only=True)
processor = AutoImageProcessor.from_pretrained(d, local_files_only=True)
pixels = processor(images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt").pixel_values
ids = model.generate(pixel_values=pixels, max_new_tokens=16, num_beams=1, do_sample=False)
print(tokenizer.batch_decode(ids, skip_special_tokens=True))
```

License: the weights are trained by mmbench on MIT-licensed easy-VQA data; released with mmbench.
"""


def main(argv: list[str] | None = None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
