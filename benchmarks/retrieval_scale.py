"""Peak memory and time of recall@k, precision@k, R-precision and mAP at COCO-like scale.

    python benchmarks/retrieval_scale.py                      # 50,000 images x 250,000 captions, d=256
    python benchmarks/retrieval_scale.py --images 5000        # a quick, smaller run

Target: peak resident memory below 4 GB.  The embeddings themselves take
(n_images + n_texts) x d x 4 bytes (307 MB at full scale); the metric holds at
most one block of scores (``retrieval._MAX_BLOCK_SCORES`` float32 values) plus
normalised copies of the inputs.  The full run times recall@k alone
(``retrieval.retrieval_recall``: two 250,000 x 50,000 x 256 matrix products), then what a
retrieval task computes, ``retrieval.retrieval_metrics``: recall, precision, R-precision and
mAP from one pass (two more products; recall's ranks come out of the ranking pass), and checks
the recall values of both agree.  It uses every core numpy's BLAS is given: run it rarely.
``--skip-ranking`` times recall alone.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import psutil

from mmbench.metrics import retrieval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--captions-per-image", type=int, default=5)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--skip-ranking", action="store_true", help="time recall@k only")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n_texts = args.images * args.captions_per_image
    image = rng.standard_normal((args.images, args.dim), dtype=np.float32)
    text = rng.standard_normal((n_texts, args.dim), dtype=np.float32)
    mapping = np.repeat(np.arange(args.images), args.captions_per_image)
    rss_inputs = psutil.Process().memory_info().rss

    start = time.perf_counter()
    values = retrieval.retrieval_recall(image, text, mapping, chunk_size=args.chunk_size)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB

    print(f"images={args.images} texts={n_texts} dim={args.dim} float32 chunk_size={args.chunk_size} "
          f"max_block_scores={retrieval._MAX_BLOCK_SCORES}")
    print(f"rss_after_inputs_MB={rss_inputs / 2**20:.0f} peak_rss_MB={peak / 2**20:.0f} seconds={seconds:.1f}")
    print("  ".join(f"{k}={v:.6g}" for k, v in values.corpus.items()))
    print("under 4 GB:", peak < 4 * 2**30)
    if args.skip_ranking:
        return

    start = time.perf_counter()
    both = retrieval.retrieval_metrics(image, text, mapping, chunk_size=args.chunk_size)
    both_seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert all(both.corpus[k] == v for k, v in values.corpus.items()), "one-pass recall differs"
    print(f"recall + precision/R-precision/mAP in one pass: peak_rss_MB={peak / 2**20:.0f} (whole run) "
          f"seconds={both_seconds:.1f} ({both_seconds / seconds:.2f}x recall alone; recall values equal)")
    print("  ".join(f"{k}={v:.6g}" for k, v in both.corpus.items() if k not in values.corpus))
    print("under 4 GB:", peak < 4 * 2**30)


if __name__ == "__main__":
    main()
