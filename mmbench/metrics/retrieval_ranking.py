"""Retrieval precision@k, R-precision and mean average precision, in bounded memory.

Recall@k (:mod:`mmbench.metrics.retrieval`) asks whether *any* correct item is near the top;
these ask how *many* correct items are near the top, and where all of them sit.  They matter
when a query has several correct items: an image with five captions (image-to-text), or a
text whose image is one of a group of interchangeable images (text-to-image with
``image_groups``).  With one correct item per query, R-precision is R@1 and AP is 1/rank.

Definitions, for one query with ``m`` correct gallery items in a gallery of ``N``:

* The gallery is sorted by decreasing score, with the **pessimistic tie rule** of recall:
  among items with exactly equal scores, the incorrect ones come first.  So the ``j``-th
  correct item (correct items by decreasing score, ``j = 1..m``) sits at position

      pos_j = j + #{incorrect items scoring >= its score}.

  Ties between correct items do not matter (they are interchangeable).
* **P@k** = #{j : pos_j <= k} / k, the share of the top k that is correct.  ``k`` larger than
  the gallery is clamped to ``N`` (as recall, with a warning).
* **R-precision** = #{j : pos_j <= m} / m, P@m: precision at the query's own number of
  correct items (1 when they fill the top m).
* **AP** (average precision) = (1/m) * sum_j j / pos_j, the mean over correct items of the
  precision at the position of each; **mAP** is the mean AP over queries.  Without ties
  this equals scikit-learn's ``average_precision_score`` on the query's scores; with ties
  scikit-learn credits a tied block at its mean, this rule at its worst.
* A query with no correct item (an image without captions, a failed sample) scores 0 in
  each and stays in the denominator, as it counts as a miss for recall.

Both sides are L2-normalised and scored with one matrix product per block of queries, as
for recall.  Per query only what the definitions need is kept: the scores of its correct
items and, for each, how many gallery items score at least as much, so the texts x images
matrix never exists.  That costs one pass over a block of scores per correct item (five
for an image with five captions); a query with more than ``_SORT_ABOVE`` correct items
(large groups) sorts its row once instead.

No library computes these with a stated tie rule in bounded memory (scikit-learn's
``average_precision_score`` needs the whole score row and averages ties), hence numpy.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["ranking_quality", "query_ranking_quality", "ranking_corpus"]

# a query with more correct items than this sorts its row instead of one pass per item
_SORT_ABOVE = 32


def query_ranking_quality(queries: np.ndarray, gallery: np.ndarray, query_key: np.ndarray,
                          gallery_key: np.ndarray, ks: Sequence[int], chunk_size: int = 4096
                          ) -> dict[str, np.ndarray]:
    """Per-query AP, P@k and R-precision; gallery item g is correct for query q when
    ``gallery_key[g] == query_key[q]`` (non-negative integer keys).

    ``queries`` and ``gallery`` are already normalised (as :func:`retrieval._prepare` leaves them).
    Returns ``{"AP": (n,), "R-precision": (n,), "P@k": (n,) per k, "n_correct": (n,), "rank": (n,)}``;
    ``rank`` is the position of the best correct item, ``1 + #{incorrect items scoring >= it}``
    (``np.inf`` without a correct item): the rank recall@k uses
    (:func:`mmbench.metrics.retrieval.retrieval_ranks`, equal by construction and by test), so one
    pass over the scores serves recall and ranking quality.
    """
    from mmbench.metrics.retrieval import _block_rows

    n_gallery = len(gallery)
    order = np.argsort(gallery_key, kind="stable")
    n_keys = int(max(query_key.max(initial=-1), gallery_key.max(initial=-1))) + 1
    count = np.bincount(gallery_key, minlength=n_keys)
    first = np.concatenate(([0], np.cumsum(count)))       # order[first[k]:first[k+1]]: items with key k
    n_correct = count[query_key]
    out = {"AP": np.zeros(len(queries)), "R-precision": np.zeros(len(queries)), "n_correct": n_correct,
           "rank": np.full(len(queries), np.inf)}
    for k in ks:
        out[f"P@{k}"] = np.zeros(len(queries))
    rows = _block_rows(chunk_size, n_gallery)
    for start in range(0, len(queries), rows):
        stop = min(start + rows, len(queries))
        scores = queries[start:stop] @ gallery.T
        m = n_correct[start:stop]
        m_max = int(m.max(initial=0))
        if m_max == 0:
            continue
        # the correct items' scores, best first, padded with -inf (rows x m_max)
        index = np.zeros((stop - start, m_max), dtype=np.intp)
        valid = np.arange(m_max)[None, :] < m[:, None]
        starts = first[query_key[start:stop]]
        index[valid] = order[(starts[:, None] + np.arange(m_max)[None, :])[valid]]
        correct = np.where(valid, np.take_along_axis(scores, index, axis=1), -np.inf)
        correct = -np.sort(-correct, axis=1)
        # for each correct score: how many gallery items (correct or not) score at least as much
        at_or_above = np.zeros((stop - start, m_max), dtype=np.int64)
        if m_max <= _SORT_ABOVE:
            for j in range(m_max):
                at_or_above[:, j] = np.count_nonzero(scores >= correct[:, j:j + 1], axis=1)
        else:
            for r in range(stop - start):
                row = np.sort(scores[r])
                at_or_above[r] = n_gallery - np.searchsorted(row, correct[r], side="left")
        # how many correct items score at least as much as the j-th: the end of its run of equal scores
        run_end = np.empty((stop - start, m_max), dtype=np.int64)
        run_end[:, -1] = m_max - 1
        for i in range(m_max - 2, -1, -1):
            run_end[:, i] = np.where(correct[:, i] == correct[:, i + 1], run_end[:, i + 1], i)
        correct_above = run_end + 1
        j = np.arange(1, m_max + 1)[None, :]
        position = np.where(valid, j + (at_or_above - correct_above), np.iinfo(np.int64).max)
        safe_m = np.maximum(m, 1)
        ap = np.where(valid, j / np.minimum(position, n_gallery + 1), 0.0).sum(axis=1) / safe_m
        block = slice(start, stop)
        out["rank"][block] = np.where(m > 0, position[:, 0], np.inf)
        out["AP"][block] = ap
        out["R-precision"][block] = np.count_nonzero(position <= m[:, None], axis=1) / safe_m
        for k in ks:
            kk = min(k, n_gallery)
            out[f"P@{k}"][block] = np.count_nonzero(position <= kk, axis=1) / kk
        del scores
    return out


def ranking_quality(image_emb: np.ndarray, text_emb: np.ndarray, text_to_image: Sequence[int],
                    ks: Sequence[int] = (1, 5, 10), *, normalize: bool = True, chunk_size: int = 4096,
                    names: tuple[str, str] = ("image_emb", "text_emb"),
                    image_groups: Sequence[Any] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Per-query AP, P@k and R-precision both ways (arguments as :func:`retrieval.retrieval_ranks`).

    Returns ``{"t2i": {...}, "i2t": {...}}`` of arrays as :func:`query_ranking_quality`: ``t2i``
    one value per text (correct: its image, or every image of its image's group), ``i2t`` one
    per image (correct: its captions, or every caption of its group).

    Example (the :func:`retrieval.retrieval_ranks` example: image 1 has captions 0 and 2):
        >>> img = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> txt = np.array([[1.0, 0.1], [1.0, 0.2], [0.1, 1.0]])
        >>> q = ranking_quality(img, txt, [1, 0, 1], ks=(1, 2))
        >>> q["i2t"]["AP"].round(4).tolist(), q["i2t"]["P@2"].tolist(), q["t2i"]["AP"].tolist()
        ([0.5, 0.8333], [0.5, 0.5], [0.5, 1.0, 1.0])
    """
    from mmbench.metrics.retrieval import _check_ks, _group_codes, _prepare

    ks = _check_ks(ks)
    images, texts, mapping = _prepare(image_emb, text_emb, text_to_image, normalize, names)
    if image_groups is not None:
        image_key = _group_codes(image_groups, len(images), names[0])
    else:
        image_key = np.arange(len(images), dtype=np.intp)
    text_key = image_key[mapping]
    return {"t2i": query_ranking_quality(texts, images, text_key, image_key, ks, chunk_size),
            "i2t": query_ranking_quality(images, texts, image_key, text_key, ks, chunk_size)}


def ranking_corpus(per_query: dict[str, dict[str, np.ndarray]], ks: Sequence[int],
                   gallery: dict[str, int]) -> tuple[dict[str, float], list[str]]:
    """Corpus keys ``{t2i,i2t}_P@{k}``, ``{t2i,i2t}_R-precision``, ``{t2i,i2t}_mAP`` (means over
    every query; one without a correct item scores 0) and warnings."""
    corpus: dict[str, float] = {}
    warnings: list[str] = []
    for direction in ("t2i", "i2t"):
        q = per_query[direction]
        for k in ks:
            if k > gallery[direction]:
                warnings.append(f"{direction}_P@{k}: k={k} is larger than the gallery of {gallery[direction]}; "
                                f"clamped to {gallery[direction]}")
            corpus[f"{direction}_P@{k}"] = float(np.mean(q[f"P@{k}"]))
        corpus[f"{direction}_R-precision"] = float(np.mean(q["R-precision"]))
        corpus[f"{direction}_mAP"] = float(np.mean(q["AP"]))
    return corpus, warnings
