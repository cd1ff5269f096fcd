"""Regenerate ``cases.json`` by running CLIP_benchmark's own retrieval code.

Usage (see README.md for the commit)::

    python tests/data/retrieval/make_cases.py /path/to/clip_benchmark/metrics/zeroshot_retrieval.py

The official file is loaded from the given path (it is not part of this
repository).  For each case we build embeddings, then call the official
``evaluate`` with a stand-in model whose encoders return the given embeddings
unchanged, so the official code does everything else: L2 normalisation, the
text x image score matrix, the positive-pair matrix, ``batchify`` and
``recall_at_k``.  The score and positive-pair matrices that ``evaluate`` hands to
``batchify`` are recorded, and each query's rank is read off the official code
too: the smallest k for which the official ``recall_at_k`` says "hit".

Where a case has exact ties, CLIP_benchmark's order among tied scores is that of
``torch.topk`` (undefined), so the expected ranks are instead the pessimistic
ranks that mmbench documents, computed here by sorting each query's recorded
official scores (incorrect items first among equals).  The official recall is
still stored, for the record.

Needs torch, numpy and tqdm; no model, no network.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).with_name("cases.json")


# ----------------------------------------------------------------------------- running the official code


def load_official(path: Path):
    spec = importlib.util.spec_from_file_location("clip_benchmark_zeroshot_retrieval", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StandInModel:
    """Plays a CLIP model: the 'images' and 'tokens' already are the embeddings."""

    def encode_image(self, x):
        return x

    def encode_text(self, x):
        return x


def run_official(module, image_emb: np.ndarray, captions: list[list[int]], text_emb: np.ndarray,
                 ks: list[int], images_per_batch: int):
    """Official ``evaluate`` on these embeddings; returns (metrics, scores, positive_pairs)."""
    images_t = torch.from_numpy(image_emb)
    texts_t = torch.from_numpy(text_emb)

    def tokenizer(caption_ids):
        return texts_t[torch.as_tensor(list(caption_ids), dtype=torch.long)].reshape(-1, texts_t.shape[1])

    loader = [(images_t[s:s + images_per_batch], captions[s:s + images_per_batch])
              for s in range(0, len(captions), images_per_batch)]

    seen = []
    original = module.batchify

    def recording_batchify(func, X, Y, batch_size, device, *args, **kwargs):
        seen.append((X, Y, batch_size))
        return original(func, X, Y, batch_size, device, *args, **kwargs)

    module.batchify = recording_batchify
    try:
        metrics = module.evaluate(StandInModel(), loader, tokenizer, "cpu", amp=False, recall_k_list=list(ks))
    finally:
        module.batchify = original
    scores, positives, batch_size = seen[0]          # text x image, as evaluate built them
    return metrics, scores, positives, batch_size


def official_ranks(module, scores, positives, batch_size) -> list[float | None]:
    """Per query (row): smallest k at which the official recall_at_k reports a hit; None if never."""
    n_queries, n_gallery = scores.shape
    ranks: list[float | None] = [None] * n_queries
    for k in range(1, n_gallery + 1):
        hit = module.batchify(module.recall_at_k, scores, positives, batch_size, "cpu", k=k) > 0
        for q in np.flatnonzero(hit.numpy()):
            if ranks[q] is None:
                ranks[q] = float(k)
    return ranks


def pessimistic_ranks(scores: torch.Tensor, positives: torch.Tensor) -> list[float | None]:
    """Rank of the first correct item, sorting by score, incorrect items first among equals."""
    s, p = scores.numpy(), positives.numpy()
    ranks: list[float | None] = []
    for row, pos in zip(s, p):
        order = np.lexsort((pos, -row))        # primary: score descending; ties: incorrect (False) first
        hits = np.flatnonzero(pos[order])
        ranks.append(float(hits[0] + 1) if len(hits) else None)
    return ranks


def as_json(x: np.ndarray) -> list:
    """Shortest decimals that read back as the same float32 values (checked)."""
    out = [[float(np.format_float_positional(v, unique=True)) for v in row] for row in x]
    assert np.array_equal(np.asarray(out, dtype=x.dtype), x)
    return out


def fraction(value: float, denominator: int) -> list[int]:
    numerator = round(value * denominator)
    assert abs(numerator / denominator - value) < 1e-6, (value, denominator)
    return [numerator, denominator]


# ----------------------------------------------------------------------------- cases


def rounded(x: np.ndarray) -> np.ndarray:
    """4 decimals, so the JSON holds short decimals and both sides read the same float32."""
    return np.asarray(np.round(x, 4).tolist(), dtype=np.float32)


def noisy_case(rng, n_images: int, counts: list[int], dim: int, noise: float):
    image = rng.standard_normal((n_images, dim))
    text = [image[i] + noise * rng.standard_normal(dim) for i in range(n_images) for _ in range(counts[i])]
    return rounded(image), rounded(np.array(text).reshape(-1, dim)), counts


HALF = [0.5 * np.array(signs) for signs in itertools.product((1, -1), repeat=4)]
AXES = [sign * np.eye(4)[j] for j in range(4) for sign in (1, -1)]
EXACT = HALF + AXES   # 24 exactly-unit vectors whose dot products are exact in float32


def tie_case(rng, n_images: int, counts: list[int]):
    image = np.array([EXACT[j] for j in rng.integers(0, len(EXACT), n_images)])
    n_texts = sum(counts)
    text = np.array([EXACT[j] for j in rng.integers(0, len(EXACT), n_texts)])
    return image.astype(np.float32), text.astype(np.float32), counts


def build_cases():
    rng = np.random.default_rng(20240611)
    cases = []
    image, text, counts = noisy_case(rng, 12, [5] * 12, 16, 2.0)
    cases.append(("five_captions_each", "12 images x 5 captions, dim 16, captions = image + noise",
                  image, text, counts, [1, 5, 10], 4))
    image, text, counts = noisy_case(rng, 15, [1] * 15, 16, 1.6)
    cases.append(("one_caption_each", "15 images x 1 caption, dim 16", image, text, counts, [1, 5, 10], 4))
    uneven = [3, 0, 1, 5, 2, 0, 1, 1, 4, 0, 2, 1, 1, 3]
    image, text, counts = noisy_case(rng, len(uneven), uneven, 16, 1.8)
    cases.append(("uneven_with_captionless", "14 images with 0-5 captions, 3 of them with none",
                  image, text, counts, [1, 5, 10], 3))
    many = [int(c) for c in rng.integers(0, 7, 40)]
    image, text, counts = noisy_case(rng, 40, many, 8, 1.0)
    cases.append(("medium_random_counts", "40 images with 0-6 captions each, dim 8",
                  image, text, counts, [1, 2, 3, 5, 10, 20], 16))
    image, text, counts = tie_case(rng, 8, [2, 1, 3, 0, 1, 2, 1, 2])
    cases.append(("exact_ties", "8 images, 12 texts, all unit vectors from a set of 24 "
                  "(axes and (+-1/2)^4): many exactly tied scores", image, text, counts, [1, 2, 5], 3))
    counts = [2, 1, 0, 3, 1, 1]
    image = np.tile(np.array([[0.5, 0.5, -0.5, 0.5]], dtype=np.float32), (6, 1))
    text = np.tile(np.array([[1.0, 0.0, 0.0, 0.0]], dtype=np.float32), (sum(counts), 1))
    cases.append(("all_tied", "every image and every text embedding identical: every score ties",
                  image, text, counts, [1, 2, 5], 4))
    return cases


def make(module) -> list[dict]:
    out = []
    for name, description, image, text, counts, ks, per_batch in build_cases():
        captions, t = [], 0
        for c in counts:
            captions.append(list(range(t, t + c)))
            t += c
        text_to_image = [i for i, c in enumerate(counts) for _ in range(c)]
        metrics, scores, positives, batch_size = run_official(module, image, captions, text, ks, per_batch)
        assert positives.sum(dim=1).tolist() == [1] * len(text_to_image)
        assert positives.float().argmax(dim=1).tolist() == text_to_image

        official = {"text": official_ranks(module, scores, positives, batch_size),
                    "image": official_ranks(module, scores.T, positives.T, batch_size)}
        pessimistic = {"text": pessimistic_ranks(scores, positives),
                       "image": pessimistic_ranks(scores.T, positives.T)}
        ties = official != pessimistic or _has_ties(scores, positives) or _has_ties(scores.T, positives.T)
        expected = pessimistic  # equal to the official ranks whenever there are no ties (asserted below)
        if not ties:
            assert official == pessimistic, name

        n_texts, n_images = len(text_to_image), len(counts)
        recall_official = {}
        for k in ks:
            # evaluate's "image_retrieval" = texts query images (t2i); "text_retrieval" = images query texts (i2t)
            recall_official[f"t2i_R@{k}"] = fraction(metrics[f"image_retrieval_recall@{k}"], n_texts)
            recall_official[f"i2t_R@{k}"] = fraction(metrics[f"text_retrieval_recall@{k}"], n_images)
            if not ties:  # the official recall agrees with the ranks read off the same code
                assert recall_official[f"t2i_R@{k}"][0] == sum(r <= k for r in expected["text"])
                assert recall_official[f"i2t_R@{k}"][0] == sum(r is not None and r <= k for r in expected["image"])
        recall_expected = {}
        for k in ks:
            recall_expected[f"t2i_R@{k}"] = [sum(r <= k for r in expected["text"]), n_texts]
            recall_expected[f"i2t_R@{k}"] = [sum(r is not None and r <= k for r in expected["image"]), n_images]
        ranked_images = [r for r in expected["image"] if r is not None]

        case = {
            "name": name,
            "description": description,
            "ties": ties,
            "expected_source": ("pessimistic rule applied to the official score matrix (exact ties: "
                                "CLIP_benchmark's torch.topk order is undefined)" if ties else
                                "CLIP_benchmark evaluate/recall_at_k (ranks: smallest k the official code counts a hit)"),
            "ks": ks,
            "official_batch_size": batch_size,
            "text_to_image": text_to_image,
            "expected": {
                "recall": recall_expected,
                "t2i_mean_rank": float(np.mean(expected["text"])),
                "t2i_median_rank": float(np.median(expected["text"])),
                "i2t_mean_rank": float(np.mean(ranked_images)),
                "i2t_median_rank": float(np.median(ranked_images)),
                "images_without_caption": counts.count(0),
                "text_ranks": expected["text"],
                "image_ranks": expected["image"],
            },
            "official": {"recall": recall_official, "text_ranks": official["text"], "image_ranks": official["image"]},
            "image_emb": as_json(image),
            "text_emb": as_json(text),
        }
        out.append(case)

        if not ties:
            # The same case with the texts in a shuffled order: recall and ranks do not depend on
            # the order of the texts when nothing ties, so the official values carry over.
            perm = np.random.default_rng(len(out)).permutation(n_texts)
            shuffled = json.loads(json.dumps(case))
            shuffled["name"] = name + "_shuffled_texts"
            shuffled["description"] = description + "; texts in a shuffled order (official values carried over)"
            shuffled["text_to_image"] = [text_to_image[p] for p in perm]
            shuffled["text_emb"] = [case["text_emb"][p] for p in perm]
            shuffled["expected"]["text_ranks"] = [expected["text"][p] for p in perm]
            shuffled["official"]["text_ranks"] = [official["text"][p] for p in perm]
            out.append(shuffled)
    return out


def _has_ties(scores: torch.Tensor, positives: torch.Tensor) -> bool:
    """Does any query's best correct score equal an incorrect item's score?"""
    s, p = scores.numpy(), positives.numpy()
    for row, pos in zip(s, p):
        if pos.any() and np.any(row[~pos] == row[pos].max()):
            return True
    return False


# ----------------------------------------------------------------------------- output


def dump(obj, indent: int = 0) -> str:
    """JSON with one line per matrix row, so the file diffs well."""
    pad = " " * indent
    if isinstance(obj, dict):
        items = [f'{pad}  {json.dumps(k)}: {dump(v, indent + 2).lstrip()}' for k, v in obj.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], (list, dict)):
        return pad + "[\n" + ",\n".join(dump(v, indent + 2) for v in obj) + "\n" + pad + "]"
    return pad + json.dumps(obj)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("official", type=Path, help="path to clip_benchmark/metrics/zeroshot_retrieval.py")
    args = parser.parse_args()
    source = args.official.read_bytes()
    blob = hashlib.sha1(b"blob %d\0" % len(source) + source).hexdigest()
    module = load_official(args.official)
    torch.manual_seed(0)
    cases = make(module)
    document = {
        "generated_by": "tests/data/retrieval/make_cases.py",
        "official_file": "clip_benchmark/metrics/zeroshot_retrieval.py",
        "official_git_blob": blob,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cases": cases,
    }
    OUT.write_text(dump(document) + "\n")
    print(f"wrote {len(cases)} cases to {OUT} (official file git blob {blob})", file=sys.stderr)
    for case in cases:
        diff = {k: (case["official"]["recall"][k], v) for k, v in case["expected"]["recall"].items()
                if case["official"]["recall"][k] != v}
        print(f"  {case['name']}: ties={case['ties']} official-vs-pessimistic differences: {diff or 'none'}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
