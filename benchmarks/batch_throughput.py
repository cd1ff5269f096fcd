"""Throughput of a generative VLM through ``evaluate`` at batch size 1, 8 and "auto", and whether
the predictions depend on the batch size.

    python benchmarks/batch_throughput.py                       # 48 images per task, 16 new tokens, 2 rounds
    python benchmarks/batch_throughput.py --images 8 --max-new-tokens 4 --rounds 1   # a quick check

The model is a LLaVA architecture (``LlavaForConditionalGeneration``) built from a
config with random weights: a CLIP vision tower (hidden 256, 4 layers, patch 16,
``--image-size`` px), a 2-layer projector, and a Llama text model (hidden 512, 4
layers, 8 heads, MLP 1,408, a 32,000-entry byte-level BPE vocabulary as in Llama 2).
Each image becomes (image-size / 16)^2 image tokens.

Two local tasks over the same random PNGs run in one ``evaluate`` call per batch size:

* ``tp_caption``: one prompt for every sample, so every sequence in a batch has the same
  length (no padding);
* ``tp_vqa``: questions of 4 to about 30 words, so batches are left-padded (the runner
  sorts requests by prompt length first).

The checkpoint's ``generation_config.json`` sets ``min_new_tokens = max_new_tokens``, so
every sample generates exactly ``max_new_tokens`` tokens at every batch size (random
weights would otherwise stop at random places and make the sizes incomparable).
Reported per task: samples/s (``timing.samples_per_s``: samples / ``inference_s``) at each
batch size (best of ``--rounds`` interleaved runs: load from other processes only ever
slows a run down), the ratio vs batch size 1, and how many predictions differ from those
of the first batch-size-1 run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness_overhead import REPO, padded_bpe_tokenizer  # noqa: E402  (the same offline tokenizer builder)

LLAVA_CHAT_TEMPLATE = (  # LLaVA-1.5 style: "USER: <image>\n<prompt> ASSISTANT:"
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{% if message['role'] == 'user' %} {% else %}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
SUBJECTS = ["the dog", "the red car near the old wooden fence", "a man", "the small bird on the left branch",
            "the woman holding an umbrella in the rain", "the sign", "the two children playing football on the "
            "grass next to the river", "this"]
QUESTIONS = ["What colour is {s}?", "Is {s} moving?", "How many people can you see around {s} in this picture?",
             "Where is {s}?", "Looking carefully at the whole image, what do you think {s} is about to do next, "
             "and why?"]


#: model sizes: (Llama settings, CLIP vision settings, vision feature layer).  "small" is this
#: script's 49M model; "realistic" the 221M one of benchmarks/prefix_reuse.py and the side-by-side
#: with lmms-eval (ViT-B/16 at 224 px: 196 image tokens; a 134M Llama)
SIZES = {
    "small": (dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=4, num_attention_heads=8),
              dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4,
                   projection_dim=256), -1),
    "realistic": (dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12),
                  dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                       projection_dim=512), -2),
    # gpu_check.py's 1.4B model: TinyLlama's shape (1.1B with grouped KV heads) + CLIP ViT-L/14 at 336 px
    # (576 image tokens), as LLaVA-1.5 pairs them
    "gpu": (dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                 num_key_value_heads=4),
            dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                 projection_dim=768, patch_size=14), -2),
}


def build_llava(path: Path, *, image_size: int, max_new_tokens: int, vocab_size: int, size: str = "small",
                dtype: str = "float32", device: str = "cpu") -> int:
    """Save the random-weight LLaVA (seed 0) of ``size`` (:data:`SIZES`) and its processor to
    ``path``, its weights in ``dtype`` (built on ``device``: a GPU initialises a large model
    much faster); return its parameter count."""
    import torch
    import transformers
    from transformers import LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    tokenizer = padded_bpe_tokenizer(vocab_size, ("<image>",), bos_token="<s>", eos_token="</s>",
                                     pad_token="<pad>", unk_token="<unk>")
    text_kw, vision_kw, feature_layer = SIZES[size]
    text_kw = {"num_key_value_heads": text_kw["num_attention_heads"], **text_kw}
    vision_kw = {"patch_size": 16, **vision_kw}
    text = LlamaConfig(vocab_size=len(tokenizer), **text_kw,
                       max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                       tie_word_embeddings=False)
    vision = dict(model_type="clip_vision_model", **vision_kw, image_size=image_size)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=feature_layer,
                         pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(0)
        model = LlavaForConditionalGeneration(config).eval().to(getattr(torch, dtype))
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    gen.pad_token_id = tokenizer.pad_token_id
    gen.min_new_tokens = max_new_tokens  # never stop early: every batch size generates the same tokens
    image_cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    image_processor = image_cls(size={"shortest_edge": image_size}, crop_size={"height": image_size,
                                                                               "width": image_size})
    # "default" drops the CLS feature, so the processor counts patches + 1 - 1 image tokens
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=vision_kw["patch_size"],
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_CHAT_TEMPLATE)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def write_tasks(root: Path, n: int, image_size: int, max_new_tokens: int) -> Path:
    """``n`` random PNGs; a caption task and a VQA task (varied question lengths) over them."""
    import numpy as np
    from PIL import Image

    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    refs = [json.loads(line)["references"][:5] for line in
            (REPO / "tests/data/reference/coco_fakecap_val2014/references.jsonl").read_text().splitlines()]
    captions, questions = [], []
    for i in range(n):
        rng = np.random.default_rng(i)
        small = Image.fromarray((rng.random((image_size // 8, image_size // 8, 3)) * 255).astype("uint8"))
        small.resize((image_size, image_size), Image.BILINEAR).save(data / f"img{i:05d}.png")
        captions.append({"image_id": f"img{i:05d}", "image": f"img{i:05d}.png", "captions": refs[i % len(refs)]})
        q = QUESTIONS[i % len(QUESTIONS)].format(s=SUBJECTS[(i // len(QUESTIONS) + i) % len(SUBJECTS)])
        questions.append({"question_id": f"q{i:05d}", "image": f"img{i:05d}.png", "question": q, "answers": "yes"})
    (data / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in captions))
    (data / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in questions))
    tasks = root / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "tp_caption.yaml").write_text(textwrap.dedent(f"""
        name: tp_caption
        family: captioning
        description: random images, one prompt (no padding)
        dataset: {{path: json, data_files: ../data/captions.jsonl, split: train, columns: {{references: captions}}}}
        prompt: "Describe the image in one sentence."
        generation: {{max_new_tokens: {max_new_tokens}}}
        metrics: [coco-caption]
    """))
    (tasks / "tp_vqa.yaml").write_text(textwrap.dedent(f"""
        name: tp_vqa
        family: vqa
        description: random images, questions of varied length (left padding)
        dataset: {{path: json, data_files: ../data/questions.jsonl, split: train}}
        generation: {{max_new_tokens: {max_new_tokens}}}
        metrics: [exact-match]
    """))
    return tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48, help="samples per task")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=32000)
    parser.add_argument("--batch-sizes", default="1,8,auto")
    parser.add_argument("--tasks", default="tp_caption,tp_vqa")
    parser.add_argument("--rounds", type=int, default=2, help="evaluate every batch size this many times")
    parser.add_argument("--workdir", help="keep the checkpoint, images and run folders here (default: a temp dir)")
    args = parser.parse_args()

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    from mmbench.runner import evaluate

    tmp = tempfile.TemporaryDirectory(prefix="mmbench-throughput-")
    work = Path(args.workdir or tmp.name)
    ckpt = work / "ckpt"
    n_params = build_llava(ckpt, image_size=args.image_size, max_new_tokens=args.max_new_tokens,
                           vocab_size=args.vocab_size)
    task_dir = write_tasks(work / "task", args.images, args.image_size, args.max_new_tokens)
    tasks = [t for t in args.tasks.split(",") if t]
    print(f"model: LLaVA, CLIP vision 256x4 layers at {args.image_size}px ({(args.image_size // 16) ** 2} image "
          f"tokens), Llama 512x4 layers, vocab {args.vocab_size}; {n_params / 1e6:.1f}M parameters, random weights")
    print(f"images per task={args.images} max_new_tokens={args.max_new_tokens} (min_new_tokens too) "
          f"torch_threads={torch.get_num_threads()} load_avg={os.getloadavg()[0]:.2f}", flush=True)

    sizes = args.batch_sizes.split(",")
    runs: dict[str, list[dict]] = {bs: [] for bs in sizes}
    for r in range(args.rounds):  # interleaved, so a burst of load from other processes hits one run, not one size
        for bs in sizes:
            out = work / f"run{r}_bs{bs}"
            t0 = time.perf_counter()
            res = evaluate(model=str(ckpt), tasks=tasks, include=[str(task_dir)], output=str(out),
                           batch_size=bs if bs == "auto" else int(bs), cache=False, meteor=False)
            wall = time.perf_counter() - t0
            preds = {}
            for t in tasks:
                lines = (out / res["tasks"][t]["predictions"]).read_text().splitlines()
                preds[t] = {row["id"]: row["raw_output"] for row in map(json.loads, lines)}
            runs[bs].append({"tasks": res["tasks"], "preds": preds})
            print(f"round {r + 1} batch_size={bs}: evaluate {wall:.1f}s, samples/s "
                  + " ".join(f"{t}={res['tasks'][t]['timing']['samples_per_s']:.2f}" for t in tasks)
                  + f" (load avg {os.getloadavg()[0]:.2f})", flush=True)

    base = sizes[0]
    for t in tasks:
        best = {bs: max(run["tasks"][t]["timing"]["samples_per_s"] for run in runs[bs]) for bs in sizes}
        print(f"\n{t}: {'batch size':<10} {'settled':>7} {'best samples/s':>14} {'vs bs ' + base:>9}   "
              f"{'each run':<18} {'mismatches vs bs ' + base + ' (all runs)':>32}")
        base_preds = runs[base][0]["preds"][t]
        for bs in sizes:
            settled = runs[bs][0]["tasks"][t]["batch_size"]
            each = " ".join(f"{run['tasks'][t]['timing']['samples_per_s']:.2f}" for run in runs[bs])
            mismatches = sum(p != base_preds.get(k) for run in runs[bs] for k, p in run["preds"][t].items())
            n = sum(len(run["preds"][t]) for run in runs[bs])
            print(f"{'':<{len(t) + 2}}{bs:<10} {settled:>7} {best[bs]:>14.2f} {best[bs] / best[base]:>8.2f}x   "
                  f"{each:<18} {mismatches:>26}/{n}")
    print(f"\npython {sys.version.split()[0]} torch {torch.__version__} transformers {transformers.__version__} "
          f"load_avg_end={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
