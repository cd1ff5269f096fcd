"""Train mmbench's reference text-to-image model on easy-VQA's train images (one CPU core, ~20 min).

The model is a standard diffusers ``IFPipeline`` (DeepFloyd IF's stage-I layout: a diffusion
UNet in pixel space, a T5 text encoder, no VAE), so ``DiffusionPipeline.from_pretrained(dir)``
loads it with no remote code.  Everything is tiny and trained here from random init:

* ``text_encoder``: a 2-layer ``T5EncoderModel`` (d_model 64) with a word-level tokenizer
  (``tokenizers`` ``WordLevel``: one token per word of the training captions, lower-cased, ``</s>``
  appended; saved as a ``PreTrainedTokenizerFast``);
* ``unet``: a ``UNet2DConditionModel`` at 32x32 pixels (channels 16/32/64, cross-attention to
  the text at 8x8 and in the middle block: the text sets global attributes, colour and shape);
* ``scheduler``: ``DDPMScheduler`` (cosine betas, 1000 training steps, trailing spacing for
  sampling with fewer steps, fixed small variance).

IFPipeline expects IF's UNet layout: 6 output channels (noise and a learnt variance) that its
guidance step splits in two; with ``variance_type="fixed_small"`` the pipeline drops the second
half, so only the first 3 channels (the noise) are trained and the other 3 are never read.

Why IF's layout and 32x32: a pixel-space pipeline needs no autoencoder (one less model to
train and one less source of error), and 32x32 keeps a training step on one core near a
second; easy-VQA's shapes stay recognisable at 32 px (the images are 64x64, downsampled with
a 2x2 box filter).  Classifier-free guidance is trained by replacing 10% of the captions by
the empty prompt.  The weights saved are an exponential moving average (decay 0.995).

Usage::

    nice -n 10 python scripts/train_easyvqa_t2i.py            # writes mmbench/assets/models/easyvqa-t2i
    python scripts/train_easyvqa_t2i.py --out /tmp/t2i --steps 20

Deterministic for a given seed, thread count and torch build (TRAIN split only).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
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

DEFAULT_OUT = REPO / "mmbench" / "assets" / "models" / "easyvqa-t2i"
DEFAULT_TABLE = REPO / "mmbench" / "assets" / "models" / "easyvqa-t2i-nearest.json"
RESOLUTION = 32
MAX_TOKENS = 77  # IFPipeline pads every prompt to 77 tokens; training does the same
PAD, EOS, UNK = "<pad>", "</s>", "<unk>"
TEXT = dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, dropout_rate=0.0,
            relative_attention_num_buckets=8, feed_forward_proj="relu")
UNET = dict(sample_size=RESOLUTION, in_channels=3, out_channels=6, block_out_channels=(16, 32, 64),
            layers_per_block=1, down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"), cross_attention_dim=64,
            attention_head_dim=8, norm_num_groups=8)
SCHEDULER = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=True,
                 prediction_type="epsilon", timestep_spacing="trailing", variance_type="fixed_small")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="torch seed for init, batches, captions, noise")
    p.add_argument("--steps", type=int, default=800, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (warm-up, cosine decay)")
    p.add_argument("--uncond-prob", type=float, default=0.1, help="share of captions replaced by '' (CFG)")
    p.add_argument("--ema", type=float, default=0.995, help="EMA decay of the saved weights")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--table", type=Path, default=DEFAULT_TABLE,
                   help="where the copy-a-train-image baseline's caption table goes (default: %(default)s)")
    p.add_argument("--table-only", action="store_true", help="write the baseline's table, train nothing")
    p.add_argument("--report", type=Path, nargs="+", metavar="RUN_DIR",
                   help="train nothing: for each run folder of easyvqa_t2i, how often easyvqa-clip classifies "
                        "the generated image as its prompt (of the 24 captions), its colour and its shape")
    return p.parse_args(argv)


def write_nearest_table(path: Path) -> dict:
    """The ``easyvqa-t2i-nearest`` baseline's table: canonical caption -> train image ids (sorted)."""
    from mmbench.tasks.datasets.easyvqa import caption_rows

    captions: dict[str, list[str]] = {}
    for row in sorted(caption_rows("train"), key=lambda r: int(r["image_id"])):
        captions.setdefault(row["references"][0], []).append(row["image_id"])
    table = {"split": "train", "source": "scripts/train_easyvqa_t2i.py: easy-VQA train images by canonical caption",
             "captions": dict(sorted(captions.items()))}
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in table["captions"].items()]  # one line per caption
    path.write_text(f'{{"split": "train", "source": {json.dumps(table["source"])},\n "captions": {{\n'
                    + ",\n".join(lines) + "\n}}\n")
    return table


def build_tokenizer(texts: list[str]):
    """A word-level tokenizer over the words of ``texts`` (lower-cased, ``</s>`` appended)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for t in texts for w in t.lower().split()})
    vocab = {PAD: 0, EOS: 1, UNK: 2, **{w: i + 3 for i, w in enumerate(words)}}
    tok = Tokenizer(WordLevel(vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                   model_max_length=MAX_TOKENS)


def load_train() -> tuple[torch.Tensor, list[list[str]]]:
    """Train images as a ``(n, 3, 32, 32)`` tensor in [-1, 1] and each image's 5 reference captions."""
    from mmbench.tasks.datasets.easyvqa import caption_rows

    rows = caption_rows("train")
    pixels = np.stack([np.asarray(Image.open(r["image"]).convert("RGB").resize((RESOLUTION, RESOLUTION), Image.BOX))
                       for r in rows])
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return x, [r["references"] for r in rows]


def build_pipeline(tokenizer, seed: int):
    """The untrained pipeline (also the random-weight baseline's architecture)."""
    from diffusers import DDPMScheduler, IFPipeline, UNet2DConditionModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(vocab_size=len(tokenizer), pad_token_id=0, eos_token_id=1,
                                           decoder_start_token_id=0, **TEXT))
    unet = UNet2DConditionModel(**UNET)
    return IFPipeline(tokenizer=tokenizer, text_encoder=text_encoder, unet=unet,
                      scheduler=DDPMScheduler(**SCHEDULER), safety_checker=None, feature_extractor=None,
                      watermarker=None, requires_safety_checker=False)


def portable_tokenizer_name(folder: Path) -> None:
    """transformers 5 saves the tokenizer class as ``TokenizersBackend``, a name transformers 4.x
    lacks; ``PreTrainedTokenizerFast`` is the same class in 5.x and exists in 4.x, so the
    pipeline loads with both."""
    for path, key in ((folder / "model_index.json", None), (folder / "tokenizer" / "tokenizer_config.json",
                                                          "tokenizer_class")):
        data = json.loads(path.read_text())
        if key is None:
            data["tokenizer"] = ["transformers", "PreTrainedTokenizerFast"]
        else:
            data[key] = "PreTrainedTokenizerFast"
        path.write_text(json.dumps(data, indent=2, sort_keys=key is None) + "\n")


def train(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    images, refs = load_train()
    tokenizer = build_tokenizer([c for r in refs for c in r])
    t_data = time.perf_counter() - t0
    pipe = build_pipeline(tokenizer, args.seed)
    unet, text_encoder = pipe.unet, pipe.text_encoder
    noise_sched = pipe.scheduler
    ema = [copy.deepcopy(unet).requires_grad_(False), copy.deepcopy(text_encoder).requires_grad_(False)]
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    warmup = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / args.steps))))
    gen = torch.Generator().manual_seed(args.seed)
    unet.train()
    text_encoder.train()
    losses = []
    t1 = time.perf_counter()
    for step in range(args.steps):
        idx = torch.randint(0, len(images), (args.batch_size,), generator=gen)
        x = images[idx]
        flip = torch.rand(args.batch_size, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        pick = torch.randint(0, 5, (args.batch_size,), generator=gen)
        drop = torch.rand(args.batch_size, generator=gen) < args.uncond_prob
        texts = ["" if d else refs[i][k] for i, k, d in zip(idx.tolist(), pick.tolist(), drop.tolist())]
        enc = tokenizer(texts, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt")
        noise = torch.randn(x.shape, generator=gen)
        t = torch.randint(0, noise_sched.config.num_train_timesteps, (args.batch_size,), generator=gen)
        noisy = noise_sched.add_noise(x, noise, t)
        hidden = text_encoder(enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
        pred = unet(noisy, t, encoder_hidden_states=hidden).sample[:, :3]  # channels 3-5: IF's unused variance
        loss = torch.nn.functional.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            for live, avg in ((unet, ema[0]), (text_encoder, ema[1])):
                for p, q in zip(live.parameters(), avg.parameters()):
                    q.mul_(args.ema).add_(p.detach(), alpha=1 - args.ema)
        losses.append(float(loss))
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {np.mean(losses[-100:]):.4f}  {time.perf_counter() - t1:.0f}s", flush=True)
    t_train = time.perf_counter() - t1
    pipe.unet, pipe.text_encoder = ema[0].eval(), ema[1].eval()
    pipe.register_modules(unet=ema[0].eval(), text_encoder=ema[1].eval())
    args.out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(args.out, safe_serialization=True)
    portable_tokenizer_name(args.out)
    return {"n_train_images": len(images), "vocab": len(tokenizer),
            "unet_parameters": sum(p.numel() for p in ema[0].parameters()),
            "text_parameters": sum(p.numel() for p in ema[1].parameters()),
            "final_loss_mean_last_100": round(float(np.mean(losses[-100:])), 4),
            "data_s": round(t_data, 1), "train_s": round(t_train, 1),
            "unet_sha256": hashlib.sha256((args.out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes())
            .hexdigest()[:16],
            "torch": torch.__version__, "python": platform.python_version(), "threads": args.threads,
            "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed}


def report(run_dirs: list[Path]) -> list[dict]:
    """Zero-shot check of generated images: easyvqa-clip picks the closest of the 24 canonical
    captions "a <color> <shape>" for each image of ``<run>/predictions/easyvqa_t2i.jsonl``;
    the share where it is the prompt, and where its colour / shape is the prompt's."""
    import itertools

    from mmbench.models.resolve import load_model
    from mmbench.tasks.datasets.easyvqa import COLORS, SHAPES
    from mmbench.types import EmbedRequest, ImageRef

    clip = load_model("easyvqa-clip", device="cpu")
    captions = [f"a {c} {s}" for c, s in itertools.product(COLORS, SHAPES)]
    texts = np.stack([o.embedding for o in clip.embed([EmbedRequest(f"t{i}", text=t) for i, t in enumerate(captions)])])
    out = []
    for run in run_dirs:
        lines = [json.loads(x) for x in (run / "predictions" / "easyvqa_t2i.jsonl").read_text().splitlines()]
        ok = [x for x in lines if x["prediction"]]
        embs = clip.embed([EmbedRequest(x["id"], images=(ImageRef(path=str(run / x["prediction"])),)) for x in ok])
        best = [captions[int(np.argmax(texts @ e.embedding))] for e in embs]
        truth = [_prompt_of(x) for x in ok]
        n = len(lines)
        row = {"run": str(run), "n": n, "n_images": len(ok),
               "accuracy": sum(b == t for b, t in zip(best, truth)) / n,
               "colour_accuracy": sum(b.split()[1] == t.split()[1] for b, t in zip(best, truth)) / n,
               "shape_accuracy": sum(b.split()[2] == t.split()[2] for b, t in zip(best, truth)) / n}
        print(json.dumps(row))
        out.append(row)
    return out


def _prompt_of(line: dict) -> str:
    """The prompt of a predictions line of easyvqa_t2i: the canonical caption of the test image ``id``."""
    from mmbench.tasks.datasets.easyvqa_t2i import t2i_prompt_rows

    if not hasattr(_prompt_of, "table"):
        _prompt_of.table = {r["id"]: r["prompt"] for r in t2i_prompt_rows("test", per_class=10 ** 6)}
    return _prompt_of.table[line["id"]]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report:
        torch.set_num_threads(args.threads)
        report(args.report)
        return
    write_nearest_table(args.table)
    if args.table_only:
        return
    info = train(args)
    # printed, not saved beside the weights: the folder's files are the model's fingerprint, and
    # timings differ between runs that give identical weights (the model card records them)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
