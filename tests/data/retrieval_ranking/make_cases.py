"""Expected average precision from scikit-learn's ``average_precision_score``, on cases without ties.

    python -m venv --system-site-packages /tmp/official/venv && /tmp/official/venv/bin/pip install scikit-learn
    /tmp/official/venv/bin/python tests/data/retrieval_ranking/make_cases.py

For each case: random float64 embeddings (so no two scores tie), a text-to-image mapping and
optional image groups.  For every query the correct items are marked 1 and the official
``sklearn.metrics.average_precision_score(y_true, y_score)`` of its cosine scores against the
whole gallery is stored (a query without a correct item gets null: scikit-learn warns and
returns 0 there, mmbench scores it 0 too).  Embeddings are stored as lists of floats (exact
in JSON: repr round-trips float64).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import sklearn
from sklearn.metrics import average_precision_score


def case(name, n_images, captions, dim, seed, groups=None):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n_images, dim))
    mapping = np.repeat(np.arange(n_images), captions)
    texts = images[mapping] + 1.5 * rng.standard_normal((len(mapping), dim))
    ni = images / np.linalg.norm(images, axis=1, keepdims=True)
    nt = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    scores = nt @ ni.T
    assert all(len(np.unique(r)) == len(r) for r in scores) and all(len(np.unique(c)) == len(c) for c in scores.T)
    key = np.arange(n_images) if groups is None else np.unique(groups, return_inverse=True)[1]
    ap = {"t2i": [], "i2t": []}
    for t in range(len(texts)):
        ap["t2i"].append(float(average_precision_score(key == key[mapping[t]], scores[t])))
    for i in range(n_images):
        truth = key[mapping] == key[i]
        ap["i2t"].append(float(average_precision_score(truth, scores[:, i])) if truth.any() else None)
    return {"name": name, "images": images.tolist(), "texts": texts.tolist(), "text_to_image": mapping.tolist(),
            "image_groups": None if groups is None else list(groups), "average_precision": ap}


def main() -> None:
    cases = [
        case("five captions each", 12, [5] * 12, 8, 0),
        case("uneven captions, one image without", 10, [3, 1, 0, 4, 2, 5, 1, 2, 6, 1], 6, 1),
        case("one caption each", 15, [1] * 15, 4, 2),
        case("grouped images", 12, [2] * 12, 5, 3, groups=["a", "b", "c"] * 4),
    ]
    out = {"produced_by": f"sklearn.metrics.average_precision_score, scikit-learn {sklearn.__version__}",
           "command": "python tests/data/retrieval_ranking/make_cases.py", "cases": cases}
    Path(__file__).with_name("sklearn_ap.json").write_text(json.dumps(out) + "\n")
    print("wrote", len(cases), "cases", file=sys.stderr)


if __name__ == "__main__":
    main()
