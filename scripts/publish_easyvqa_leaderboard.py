"""Regenerate leaderboards/easy-vqa/: run the reference models and baselines on the easy-VQA tasks
and build the leaderboard pages from their results.

    python scripts/publish_easyvqa_leaderboard.py            # from the repository root

Everything runs offline on the CPU (a few minutes on 2 cores). Runs go to
leaderboards/easy-vqa/runs/<model>/ (results.json + predictions/, gzipped), the tables and the page to
leaderboards/easy-vqa/ (README.md, leaderboard.csv, leaderboard.json, index.html).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
from pathlib import Path

RUNS = (
    ("easyvqa-captioner", ("easyvqa_caption", "easyvqa_caption_vqascore", "easyvqa_zeroshot_lm")),
    ("easyvqa-vilt", ("easyvqa_vqa", "easyvqa_consistency", "easyvqa_mc", "easyvqa_pope")),
    ("easyvqa-question-only", ("easyvqa_vqa", "easyvqa_consistency", "easyvqa_mc", "easyvqa_pope")),
    ("easyvqa-majority", ("easyvqa_vqa", "easyvqa_consistency", "easyvqa_mc", "easyvqa_pope")),
    ("easyvqa-socratic", ("easyvqa_vqa", "easyvqa_consistency", "easyvqa_mc", "easyvqa_pope")),
    ("easyvqa-always-yes", ("easyvqa_mc", "easyvqa_pope")),
    ("easyvqa-always-a", ("easyvqa_mc", "easyvqa_pope")),
    ("easyvqa-clip", ("easyvqa_retrieval", "easyvqa_zeroshot")),
    ("easyvqa-t2i", ("easyvqa_t2i", "easyvqa_t2i_vqascore")),
    ("easyvqa-t2i-random", ("easyvqa_t2i", "easyvqa_t2i_vqascore")),
    ("easyvqa-t2i-nearest", ("easyvqa_t2i", "easyvqa_t2i_vqascore")),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="leaderboards/easy-vqa")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from mmbench.leaderboard import build_leaderboard
    from mmbench.runner import evaluate

    out = Path(args.out)
    runs = out / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    paths = []
    for model, tasks in RUNS:
        run_dir = runs / model
        evaluate(model=model, tasks=list(tasks), output=str(run_dir), batch_size=args.batch_size, cache=False, seed=0)
        (run_dir / ".mmbench.lock").unlink(missing_ok=True)
        for jsonl in (run_dir / "predictions").glob("*.jsonl"):  # ~10x smaller; read back transparently
            with jsonl.open("rb") as src, gzip.GzipFile(jsonl.with_name(jsonl.name + ".gz"), "wb", mtime=0) as dst:
                shutil.copyfileobj(src, dst)
            jsonl.unlink()
        paths.append(run_dir)
        print(f"ran {model} on {', '.join(tasks)}")
    build_leaderboard([str(p) for p in paths], str(out), seed=0)
    print(f"wrote {out}/README.md, leaderboard.csv, leaderboard.json, index.html")


if __name__ == "__main__":
    main()
