"""Embedding throughput: a CLIP ViT-B/32-size dual encoder through ``evaluate`` vs a bare loop.

    python benchmarks/embedding_throughput.py                # 64 images x 5 captions (~2 min on 2 cores)
    python benchmarks/embedding_throughput.py --images 16    # a quick check

The model has the architecture of openai/clip-vit-base-patch32 (``CLIPConfig()``'s
defaults: ViT-B/32 at 224 px, a 12-layer 512-wide text tower, 151M parameters) with
random weights, saved to a temporary folder with a byte-level BPE CLIP tokenizer built
offline (``tests/fixtures/tiny_tokenizers``).  Images are random 320x240 JPEGs, captions
the first 5 references of COCO images from ``tests/data/reference``.

* bare loop: ``CLIPModel`` + processor loaded directly, all batches preprocessed up front
  (not timed), then only ``get_image_features`` / ``get_text_features`` over batches of 32
  are timed under ``torch.inference_mode``.
* mmbench: ``evaluate`` on a local retrieval task over the same files at batch size 1, 32
  and auto, without the cache; the figure is the whole call minus model load.

Printed: seconds, requests/s, ratio to the bare loop, speed-up over batch size 1, the
largest difference between mmbench's and the bare loop's embeddings, and whether recall
is identical across batch sizes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
REFERENCES = REPO / "tests" / "data" / "reference" / "coco_fakecap_val2014" / "references.jsonl"


def build(root: Path, n_images: int) -> tuple[str, Path, list[bytes], list[list[str]]]:
    import numpy as np
    from PIL import Image
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from tests.fixtures.tiny_tokenizers import clip_tokenizer

    tokenizer = clip_tokenizer()
    tokenizer.model_max_length = 77
    config = CLIPConfig()  # ViT-B/32 defaults
    config.text_config.vocab_size = len(tokenizer)
    config.text_config.bos_token_id = tokenizer.bos_token_id
    config.text_config.eos_token_id = tokenizer.eos_token_id
    config.text_config.pad_token_id = tokenizer.pad_token_id
    model = CLIPModel(config).eval()
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer)
    ckpt = root / "clip-b32"
    model.save_pretrained(ckpt)
    processor.save_pretrained(ckpt)

    refs = [json.loads(line)["references"][:5] for line in REFERENCES.read_text().splitlines()[:n_images]]
    rng = np.random.default_rng(0)
    jpegs = []
    for _ in range(n_images):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
        jpegs.append(buf.getvalue())
    with tarfile.open(root / "shard.tar", "w") as tar:
        for i, (jpeg, captions) in enumerate(zip(jpegs, refs)):
            for name, data in ((f"{i:06d}.jpg", jpeg), (f"{i:06d}.txt", "\n".join(captions).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    (root / "bench_retrieval.yaml").write_text(textwrap.dedent("""
        name: bench_retrieval
        family: retrieval
        dataset: {path: webdataset, data_files: {test: shard.tar}, split: test,
                  columns: {id: __key__, image: jpg, captions: txt}}
        metrics: [retrieval-recall]
    """))
    return str(ckpt), root / "bench_retrieval.yaml", jpegs, refs


def bare_loop(ckpt: str, jpegs: list[bytes], refs: list[list[str]], batch: int = 32):
    import numpy as np
    import torch
    from PIL import Image
    from transformers import AutoProcessor, CLIPModel

    model = CLIPModel.from_pretrained(ckpt).eval()
    processor = AutoProcessor.from_pretrained(ckpt)
    images = [Image.open(io.BytesIO(j)).convert("RGB") for j in jpegs]
    texts = [c for caps in refs for c in caps]
    image_batches = [processor(images=images[i:i + batch], return_tensors="pt")["pixel_values"]
                     for i in range(0, len(images), batch)]
    text_batches = [processor.tokenizer(texts[i:i + batch], padding=True, truncation=True, max_length=77,
                                        return_tensors="pt") for i in range(0, len(texts), batch)]
    with torch.inference_mode():
        model.get_image_features(pixel_values=image_batches[0][:2])  # warm-up
        start = time.perf_counter()
        img = [model.get_image_features(pixel_values=b).pooler_output for b in image_batches]
        txt = [model.get_text_features(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).pooler_output
               for b in text_batches]
        seconds = time.perf_counter() - start
    unit = lambda x: (x / x.norm(dim=-1, keepdim=True)).numpy()  # noqa: E731
    return seconds, unit(torch.cat(img)), np.concatenate([unit(t) for t in txt])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()

    import numpy as np

    from mmbench.runner import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ckpt, task_file, jpegs, refs = build(root, args.images)
        n_requests = args.images + sum(len(r) for r in refs)
        bare_s, bare_img, bare_txt = bare_loop(ckpt, jpegs, refs)
        rows = []
        for batch_size in (1, 32, "auto"):
            res = evaluate(model=ckpt, tasks=["bench_retrieval"], include=[str(task_file)], batch_size=batch_size,
                           cache=False, output=str(root / f"run-{batch_size}"))
            entry = res["tasks"]["bench_retrieval"]
            seconds = res["timing"]["wall_s"] - res["timing"]["model_load_s"]
            pred = root / f"run-{batch_size}" / "predictions"
            diff = max(float(np.abs(np.load(pred / "bench_retrieval.image_embeddings.npy") - bare_img).max()),
                       float(np.abs(np.load(pred / "bench_retrieval.text_embeddings.npy") - bare_txt).max()))
            rows.append((str(batch_size), entry["batch_size"], seconds, entry["metrics"], diff))
    print(f"{args.images} images + {n_requests - args.images} captions = {n_requests} requests; "
          f"CLIP ViT-B/32 architecture, random weights, CPU")
    print(f"{'run':<14}{'batch':>6}{'seconds':>9}{'req/s':>8}{'vs bare':>9}{'vs b1':>7}{'max |diff|':>12}")
    print(f"{'bare loop':<14}{32:>6}{bare_s:>9.2f}{n_requests / bare_s:>8.1f}{1.0:>9.3f}{'':>7}{'':>12}")
    b1 = rows[0][2]
    for name, size, seconds, _, diff in rows:
        print(f"{'mmbench ' + name:<14}{size:>6}{seconds:>9.2f}{n_requests / seconds:>8.1f}{seconds / bare_s:>9.3f}"
              f"{b1 / seconds:>7.2f}{diff:>12.2e}")
    print("recall identical across batch sizes:", all(r[3] == rows[0][3] for r in rows))


if __name__ == "__main__":
    main()
