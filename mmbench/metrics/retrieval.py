"""Image-text retrieval recall@k and ranks from precomputed embeddings.

Conventions (those of CLIP_benchmark's ``zeroshot_retrieval``, the reference the
tests are checked against):

* Both sides are L2-normalised (``normalize=True``) and every text is scored
  against every image with the dot product (cosine similarity).
* **Text-to-image (t2i)**: the query is a text, the gallery is all images; a text
  is a hit at k when *its* image is among the k best-scoring images.  Recall is
  averaged over texts.
* **Image-to-text (i2t)**: the query is an image, the gallery is all texts; an
  image is a hit at k when *any* of its captions is among the k best-scoring
  texts (the "CLIP-paper" recall, not the fraction of its captions retrieved).
  Recall is averaged over images.  An image with no caption can never be a hit:
  it counts as a miss and stays in the denominator, as in CLIP_benchmark; how many
  such images there were is reported in ``MetricValues.warnings``.
* **Rank** of a query: the 1-based position of the first correct item in the
  gallery sorted by decreasing score, so recall@k = fraction of queries with
  rank <= k.

Ties (exactly equal float scores) are broken **pessimistically**, against the
model: a correct item is placed after every incorrect item it ties with, so

    rank = 1 + #{incorrect items scoring >= best correct score}.

CLIP_benchmark leaves the order of tied scores to ``torch.topk`` (undefined); the
pessimistic rule is deterministic, cannot be gamed by a model that outputs
constant embeddings (all-tied scores give the worst rank, not the best), and
agrees with CLIP_benchmark whenever there are no ties.  Example: a text whose
image scores 0.5 while two other images score 0.7 and 0.5 has rank 3.

Interchangeable images (``image_groups``): when several images are equally correct
for a text (easy-VQA has 888 test images but 24 colour-shape pairs, so "a red
circle" describes ~37 of them), give each image a group label.  A text's correct
images are then every image in its image's group, and an image's correct texts are
the captions of every image in its group; the rank and tie rules are unchanged
(rank = 1 + incorrect items scoring at least as high as the best correct one).
Without groups, every image is its own group (the CLIP_benchmark definition).

Scale: scores are computed in blocks of queries (``chunk_size`` queries, and at
most ``_MAX_BLOCK_SCORES`` scores per block), keeping only what a rank needs: the
query's best correct score and how many gallery items score at least as high.
The full texts x images matrix is never held in memory.  Each query's scores
come from one matrix product, so ties are judged on one consistent set of
numbers.  Scoring is done in float32 unless an input is float64.

No library computes ranks this way in bounded memory with a stated tie rule,
hence this hand-written numpy code.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mmbench.metrics.spec import MetricSpec, Output
from mmbench.types import MetricValues

__all__ = ["retrieval_recall", "retrieval_metrics", "retrieval_ranks", "recall_from_ranks", "score_retrieval",
           "stack_embeddings"]

# At most this many scores (rows x gallery) are held at once: 256 MiB in float32.
_MAX_BLOCK_SCORES = 1 << 26

_BACKEND = {
    "implementation": "mmbench.metrics.retrieval (numpy, blocked)",
    "convention": "CLIP_benchmark zeroshot_retrieval",
    "ties": "pessimistic",
}


def retrieval_ranks(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    text_to_image: Sequence[int],
    *,
    normalize: bool = True,
    chunk_size: int = 4096,
    names: tuple[str, str] = ("image_emb", "text_emb"),
    image_groups: Sequence[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-query ranks of the first correct item, both directions.

    Args:
        image_emb: ``(n_images, d)`` image embeddings.
        text_emb: ``(n_texts, d)`` text (caption) embeddings.
        text_to_image: length ``n_texts``; ``text_to_image[t]`` is the row of
            ``image_emb`` that text ``t`` describes.  An image may have any number
            of captions, including none.
        normalize: L2-normalise both sides first (cosine similarity).  With
            False, raw dot products are ranked.
        chunk_size: the most queries scored at once (fewer when the gallery is so
            long that a block would exceed ``_MAX_BLOCK_SCORES`` scores).  Results
            do not depend on it.
        names: how ``image_emb`` and ``text_emb`` are named in error messages
            (a file name, say).
        image_groups: optional, length ``n_images``: images with equal labels are
            interchangeable (see the module docstring).  None: each image is its own group.

    Returns:
        ``(text_ranks, image_ranks)``, float64 arrays of whole numbers.
        ``text_ranks[t]`` (1..n_images) is the rank of text ``t``'s image when text
        ``t`` queries all images.  ``image_ranks[i]`` (1..n_texts) is the rank of
        image ``i``'s best-placed caption when image ``i`` queries all texts, and
        ``np.inf`` for an image with no caption (so ``ranks <= k`` is False for it).
        Ties are broken pessimistically (see the module docstring).

    Raises:
        ValueError: shapes disagree, an input is empty, a row has NaN/inf (or is
            all zeros when normalising), or a mapping entry is out of range; the
            message names the input and the row.

    Example:
        >>> img = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> txt = np.array([[1.0, 0.1], [1.0, 0.2], [0.1, 1.0]])
        >>> t, i = retrieval_ranks(img, txt, [1, 0, 1])
        >>> t.tolist(), i.tolist()
        ([2.0, 1.0, 1.0], [2.0, 1.0])
    """
    images, texts, mapping = _prepare(image_emb, text_emb, text_to_image, normalize, names)
    if image_groups is not None:
        groups = _group_codes(image_groups, len(images), names[0])
        if len(np.unique(groups)) < len(groups):
            return (_grouped_ranks(texts, images, groups[mapping], groups, chunk_size),
                    _grouped_ranks(images, texts, groups, groups[mapping], chunk_size))
    return _text_ranks(images, texts, mapping, chunk_size), _image_ranks(images, texts, mapping, chunk_size)


def retrieval_recall(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    text_to_image: Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
    *,
    normalize: bool = True,
    chunk_size: int = 4096,
    names: tuple[str, str] = ("image_emb", "text_emb"),
    image_groups: Sequence[Any] | None = None,
) -> MetricValues:
    """Recall@k in both directions, with mean and median ranks.

    Arguments are those of :func:`retrieval_ranks`, plus ``ks``, the cut-offs.

    Corpus keys: ``t2i_R@{k}`` (fraction of texts whose image is in their top k
    images), ``i2t_R@{k}`` (fraction of images with any caption in their top k
    texts), ``t2i_mean_rank``, ``t2i_median_rank`` (over all texts),
    ``i2t_mean_rank``, ``i2t_median_rank`` (over images that have at least one
    caption: a caption-less image has no rank).  Recall values are fractions in [0, 1].
    A median over an even count is the mean of the two middle ranks.

    ``per_sample`` is empty; per-query ranks come from :func:`retrieval_ranks`.

    ``k`` larger than the gallery (n_images for t2i, n_texts for i2t) is clamped
    to the gallery size, with a warning (the key keeps the requested k).
    ``warnings`` also says how many images have no caption (each is an i2t miss
    counted in the denominator).

    Example: with the inputs of the :func:`retrieval_ranks` example, text ranks
    (2, 1, 1) and image ranks (2, 1) give ``t2i_R@1`` = 2/3, ``i2t_R@1`` = 1/2,
    ``t2i_R@5`` = ``i2t_R@5`` = 1 (k clamped to the gallery, with a warning).
    """
    ks = _check_ks(ks)
    text_ranks, image_ranks = retrieval_ranks(
        image_emb, text_emb, text_to_image, normalize=normalize, chunk_size=chunk_size, names=names,
        image_groups=image_groups)
    return recall_from_ranks(text_ranks, image_ranks, ks, grouped=image_groups is not None)


def retrieval_metrics(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    text_to_image: Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
    *,
    normalize: bool = True,
    chunk_size: int = 4096,
    names: tuple[str, str] = ("image_emb", "text_emb"),
    image_groups: Sequence[Any] | None = None,
) -> MetricValues:
    """:func:`retrieval_recall`'s keys plus precision and ranking quality both ways:
    ``{t2i,i2t}_P@{k}``, ``{t2i,i2t}_R-precision`` and ``{t2i,i2t}_mAP``, defined (same tie rule)
    in :mod:`mmbench.metrics.retrieval_ranking`.  Arguments as :func:`retrieval_recall`."""
    from mmbench.metrics.retrieval_ranking import ranking_corpus, ranking_quality

    ks = _check_ks(ks)
    # one pass: the ranking pass also yields recall's ranks (the same pessimistic rank)
    per_query = ranking_quality(image_emb, text_emb, text_to_image, ks, normalize=normalize,
                                chunk_size=chunk_size, names=names, image_groups=image_groups)
    recall = recall_from_ranks(per_query["t2i"]["rank"], per_query["i2t"]["rank"], ks,
                               grouped=image_groups is not None)
    gallery = {"t2i": len(per_query["i2t"]["AP"]), "i2t": len(per_query["t2i"]["AP"])}
    corpus, warnings = ranking_corpus(per_query, _check_ks(ks), gallery)
    return _merge(recall, corpus, warnings)


def _merge(recall: MetricValues, corpus: dict[str, float], warnings: list[str]) -> MetricValues:
    backend = dict(next(iter(recall.backend.values()), _BACKEND))
    return MetricValues(corpus={**recall.corpus, **corpus},
                        backend={**recall.backend, **{key: dict(backend) for key in corpus}},
                        warnings=tuple(recall.warnings) + tuple(w for w in warnings if w not in recall.warnings),
                        per_sample=recall.per_sample)


def recall_from_ranks(text_ranks: np.ndarray, image_ranks: np.ndarray, ks: Sequence[int] = (1, 5, 10), *,
                      grouped: bool = False) -> MetricValues:
    """:func:`retrieval_recall`'s output from per-query ranks (``np.inf`` = never retrieved).

    Lets a caller add queries that could not be ranked (a failed sample) as misses.
    """
    ks = _check_ks(ks)
    n_texts, n_images = len(text_ranks), len(image_ranks)

    corpus: dict[str, float] = {}
    warnings: list[str] = []
    for direction, ranks, gallery, what in (("t2i", text_ranks, n_images, "images"),
                                             ("i2t", image_ranks, n_texts, "texts")):
        for k in ks:
            if k > gallery:
                warnings.append(f"{direction}_R@{k}: k={k} is larger than the gallery of {gallery} {what}; "
                                f"clamped to {gallery}")
            corpus[f"{direction}_R@{k}"] = int(np.count_nonzero(ranks <= min(k, gallery))) / len(ranks)

    finite_texts = text_ranks[np.isfinite(text_ranks)]
    if len(finite_texts) < n_texts:
        warnings.append(f"{n_texts - len(finite_texts)} of {n_texts} texts could not be ranked (failed): each counts "
                        "as a t2i miss and is left out of the t2i mean/median rank")
    if len(finite_texts):
        corpus["t2i_mean_rank"] = float(np.mean(finite_texts))
        corpus["t2i_median_rank"] = float(np.median(finite_texts))
    ranked = image_ranks[np.isfinite(image_ranks)]
    if len(ranked):
        corpus["i2t_mean_rank"] = float(np.mean(ranked))
        corpus["i2t_median_rank"] = float(np.median(ranked))
    n_without = n_images - len(ranked)
    if n_without:
        warnings.append(f"{n_without} of {n_images} images have no caption (or could not be ranked): each counts "
                        f"as an i2t miss (kept in the i2t_R@k denominator) and is left out of the i2t mean/median "
                        f"rank")

    backend = dict(_BACKEND, **({"image_groups": "interchangeable images share a group"} if grouped else {}))
    return MetricValues(corpus=corpus, backend={key: dict(backend) for key in corpus}, warnings=tuple(warnings))


# ----------------------------------------------------------------------------- checks


def _check_ks(ks: Sequence[int]) -> list[int]:
    out: list[int] = []
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"ks must be positive integers, got {k!r}")
        if int(k) not in out:
            out.append(int(k))
    if not out:
        raise ValueError("ks is empty: give at least one cut-off k")
    return out


def _prepare(image_emb, text_emb, text_to_image, normalize: bool,
             names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images = _matrix(image_emb, names[0])
    texts = _matrix(text_emb, names[1])
    if images.shape[1] != texts.shape[1]:
        raise ValueError(f"{names[0]} has dimension {images.shape[1]} but {names[1]} has dimension "
                         f"{texts.shape[1]}")
    if len(images) == 0:
        raise ValueError(f"{names[0]} is empty: the text-to-image gallery has no image")
    if len(texts) == 0:
        raise ValueError(f"{names[1]} is empty: the image-to-text gallery has no text")

    mapping = np.asarray(text_to_image)
    if mapping.ndim != 1 or len(mapping) != len(texts):
        raise ValueError(f"text_to_image must have one entry per row of {names[1]} ({len(texts)}), "
                         f"got shape {mapping.shape}")
    if mapping.dtype.kind not in "iu":
        if mapping.dtype.kind == "f" and np.all(np.isfinite(mapping)) and np.all(mapping == np.round(mapping)):
            mapping = mapping.astype(np.int64)
        else:
            raise ValueError(f"text_to_image must hold integer image rows, got dtype {mapping.dtype}")
    bad = np.flatnonzero((mapping < 0) | (mapping >= len(images)))
    if len(bad):
        raise ValueError(f"text_to_image[{bad[0]}] = {mapping[bad[0]]} ({names[1]} row {bad[0]}) is not a row "
                         f"of {names[0]} (0..{len(images) - 1})" + _more(bad))
    mapping = mapping.astype(np.intp, copy=False)

    dtype = np.float64 if np.float64 in (images.dtype, texts.dtype) else np.float32
    images = _finite_rows(images.astype(dtype, copy=False), names[0], normalize)
    texts = _finite_rows(texts.astype(dtype, copy=False), names[1], normalize)
    return images, texts, mapping


def _matrix(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows x dimension), got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}")
    return arr


def _finite_rows(x: np.ndarray, name: str, normalize: bool) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if len(bad):
        raise ValueError(f"{name} row {bad[0]} has NaN or infinite values" + _more(bad))
    if not normalize:
        return x
    norms = np.linalg.norm(x, axis=1)
    bad = np.flatnonzero(norms == 0)
    if len(bad):
        raise ValueError(f"{name} row {bad[0]} is all zeros and cannot be L2-normalised" + _more(bad))
    return x / norms[:, None]


def _more(bad: np.ndarray) -> str:
    return f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else ""


def _block_rows(chunk_size: int, gallery: int) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return max(1, min(int(chunk_size), _MAX_BLOCK_SCORES // gallery))


# ----------------------------------------------------------------------------- ranking


def _text_ranks(images: np.ndarray, texts: np.ndarray, mapping: np.ndarray, chunk_size: int) -> np.ndarray:
    """Each text queries all images; exactly one image is correct."""
    ranks = np.empty(len(texts), dtype=np.float64)
    rows = _block_rows(chunk_size, len(images))
    for start in range(0, len(texts), rows):
        stop = min(start + rows, len(texts))
        scores = texts[start:stop] @ images.T
        positive = scores[np.arange(stop - start), mapping[start:stop]]
        # Every image scoring >= the correct one, the correct one included: that is
        # 1 + (incorrect images tied or above), the pessimistic rank.
        ranks[start:stop] = np.count_nonzero(scores >= positive[:, None], axis=1)
        del scores  # free this block before the next one is allocated
    return ranks


def _image_ranks(images: np.ndarray, texts: np.ndarray, mapping: np.ndarray, chunk_size: int) -> np.ndarray:
    """Each image queries all texts; its captions (zero or more) are correct."""
    n_images = len(images)
    order = np.argsort(mapping, kind="stable")              # texts grouped by image
    n_captions = np.bincount(mapping, minlength=n_images)
    first = np.concatenate(([0], np.cumsum(n_captions)))    # order[first[i]:first[i+1]] = captions of image i
    ranks = np.empty(n_images, dtype=np.float64)
    rows = _block_rows(chunk_size, len(texts))
    for start in range(0, n_images, rows):
        stop = min(start + rows, n_images)
        scores = images[start:stop] @ texts.T
        caption = order[first[start]:first[stop]]
        row = mapping[caption] - start
        positive = scores[row, caption]
        best = np.full(stop - start, -np.inf, dtype=scores.dtype)
        np.maximum.at(best, row, positive)
        at_or_above = np.count_nonzero(scores >= best[:, None], axis=1)
        correct_at_best = np.bincount(row, weights=positive == best[row], minlength=stop - start)
        block = (at_or_above - correct_at_best + 1).astype(np.float64)
        block[n_captions[start:stop] == 0] = np.inf
        ranks[start:stop] = block
        del scores
    return ranks


def _group_codes(image_groups: Sequence[Any], n_images: int, name: str) -> np.ndarray:
    labels = list(image_groups)
    if len(labels) != n_images:
        raise ValueError(f"image_groups must have one label per row of {name} ({n_images}), got {len(labels)}")
    codes: dict[Any, int] = {}
    return np.array([codes.setdefault(label, len(codes)) for label in labels], dtype=np.intp)


def _grouped_ranks(queries: np.ndarray, gallery: np.ndarray, query_group: np.ndarray, gallery_group: np.ndarray,
                   chunk_size: int) -> np.ndarray:
    """Rank of the best correct gallery item per query, where correct = same group (pessimistic
    ties, as without groups).  A query with no correct item gets ``np.inf``."""
    ranks = np.empty(len(queries), dtype=np.float64)
    rows = _block_rows(chunk_size, len(gallery))
    for start in range(0, len(queries), rows):
        stop = min(start + rows, len(queries))
        scores = queries[start:stop] @ gallery.T
        correct = query_group[start:stop, None] == gallery_group[None, :]
        best = np.where(correct, scores, -np.inf).max(axis=1)
        block = 1.0 + np.count_nonzero(~correct & (scores >= best[:, None]), axis=1)
        block[~correct.any(axis=1)] = np.inf
        ranks[start:stop] = block
        del scores, correct
    return ranks


# ----------------------------------------------------------------------------- the task metric

DEFAULT_KS = (1, 5, 10)


def stack_embeddings(predictions: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images, texts, text_to_image)`` from per-sample ``{"image": vector, "texts": [vectors]}``."""
    images = np.stack([np.asarray(p["image"], dtype=np.float32) for p in predictions])
    text_rows = [np.asarray(t, dtype=np.float32) for p in predictions for t in p["texts"]]
    texts = np.stack(text_rows) if text_rows else np.zeros((0, images.shape[1]), dtype=np.float32)
    mapping = np.repeat(np.arange(len(predictions)), [len(p["texts"]) for p in predictions])
    return images, texts, mapping


def score_retrieval(predictions: Sequence[Any], references: Sequence[Sequence[str]], *,
                    groups: Sequence[Any] | None = None, ks: Sequence[int] = DEFAULT_KS) -> MetricValues:
    """The retrieval task's metric: recall@k both ways over a task's samples.

    ``predictions[i]`` is sample i's ``{"image": vector, "texts": [one vector per caption]}``,
    or None when the sample failed; ``references[i]`` are its captions (only their count is
    used).  ``groups[i]`` is the sample's group label or None (see :func:`retrieval_ranks`).
    A failed sample's image and captions count as misses in both directions (they stay in
    the recall denominators) and are left out of the galleries, so a failure never raises
    a score.  ``per_sample`` gives each image its own i2t hit (0/1) and the fraction of its
    captions that find it (``t2i_R@k``), plus its ranks.  Precision@k, R-precision and mAP
    (:mod:`mmbench.metrics.retrieval_ranking`) come both ways too: per image its own i2t values
    and the mean of its captions' t2i values; a failed query scores 0 in each.
    """
    from mmbench.metrics.retrieval_ranking import ranking_corpus, ranking_quality

    ks = _check_ks(ks)
    if len(predictions) != len(references) or (groups is not None and len(groups) != len(predictions)):
        raise ValueError("predictions, references and groups must have one entry per sample")
    grouped = groups is not None and any(g is not None for g in groups)
    ok = [i for i, p in enumerate(predictions) if p is not None]
    text_rank_of: dict[tuple[int, int], float] = {}
    image_rank_of: dict[int, float] = {}
    # per query: AP, R-precision, P@k (mmbench.metrics.retrieval_ranking); a failed query scores 0
    text_quality_of: dict[tuple[int, int], dict[str, float]] = {}
    image_quality_of: dict[int, dict[str, float]] = {}
    if ok:
        images, texts, mapping = stack_embeddings([predictions[i] for i in ok])
        if len(texts):
            # a sample without a group is a group of its own
            labels = [groups[i] if groups[i] is not None else ("sample", i) for i in ok] if grouped else None
            quality = ranking_quality(images, texts, mapping, ks, image_groups=labels,
                                      names=("image embeddings", "text embeddings"))
            t_ranks, i_ranks = quality["t2i"]["rank"], quality["i2t"]["rank"]  # recall's ranks, same pass
            row = 0
            for pos, i in enumerate(ok):
                image_rank_of[i] = float(i_ranks[pos])
                image_quality_of[i] = {key: float(v[pos]) for key, v in quality["i2t"].items()}
                for j in range(len(predictions[i]["texts"])):
                    text_rank_of[(i, j)] = float(t_ranks[row])
                    text_quality_of[(i, j)] = {key: float(v[row]) for key, v in quality["t2i"].items()}
                    row += 1
    n_samples = len(predictions)
    text_ranks = np.array([text_rank_of.get((i, j), np.inf) for i in range(n_samples)
                           for j in range(len(references[i]))])
    image_ranks = np.array([image_rank_of.get(i, np.inf) for i in range(n_samples)])
    if len(text_ranks) == 0:
        raise ValueError("no captions at all: nothing to retrieve")
    values = recall_from_ranks(text_ranks, image_ranks, ks, grouped=grouped)
    n_images, n_texts = len(image_ranks), len(text_ranks)
    quality_keys = ["AP", "R-precision", *(f"P@{k}" for k in ks)]
    zero = dict.fromkeys(quality_keys, 0.0)
    text_quality = [text_quality_of.get((i, j), zero) for i in range(n_samples) for j in range(len(references[i]))]
    image_quality = [image_quality_of.get(i, zero) for i in range(n_samples)]
    per_query = {"t2i": {key: np.array([q[key] for q in text_quality]) for key in quality_keys},
                 "i2t": {key: np.array([q[key] for q in image_quality]) for key in quality_keys}}
    # the galleries hold the samples that did not fail (clamping of k follows them, as for recall)
    gallery = {"t2i": len(ok), "i2t": sum(len(predictions[i]["texts"]) for i in ok)}
    corpus, quality_warnings = ranking_corpus(per_query, ks, gallery)
    values = _merge(values, corpus, quality_warnings)
    per_sample: list[dict[str, float]] = []
    for i in range(n_samples):
        i_rank = image_rank_of.get(i, np.inf)
        t_ranks = [text_rank_of.get((i, j), np.inf) for j in range(len(references[i]))]
        # the mean over images of t2i_R@k is the corpus value when every image has the same caption count
        scores: dict[str, float] = {f"i2t_R@{k}": float(i_rank <= min(k, n_texts)) for k in ks}
        if t_ranks:
            scores.update({f"t2i_R@{k}": float(np.mean([r <= min(k, n_images) for r in t_ranks])) for k in ks})
        scores.update({_quality_key("i2t", key): image_quality[i][key] for key in quality_keys})
        mine = [text_quality_of.get((i, j), zero) for j in range(len(references[i]))]
        if mine:
            scores.update({_quality_key("t2i", key): float(np.mean([q[key] for q in mine])) for key in quality_keys})
        if np.isfinite(i_rank):
            scores["i2t_rank"] = float(i_rank)
        finite = [r for r in t_ranks if np.isfinite(r)]
        if finite:
            scores["t2i_best_rank"] = float(min(finite))
            scores["t2i_mean_rank"] = float(np.mean(finite))
        per_sample.append(scores)
    warnings = list(values.warnings)
    if len(ok) < n_samples:
        warnings.append(f"{n_samples - len(ok)} images failed: their image and captions count as misses "
                        "and are left out of the galleries")
    return MetricValues(corpus=values.corpus, per_sample=tuple(per_sample), backend=values.backend,
                        warnings=tuple(warnings))


def _quality_key(direction: str, key: str) -> str:
    return f"{direction}_mAP" if key == "AP" else f"{direction}_{key}"


RETRIEVAL_RECALL = MetricSpec(
    name="retrieval-recall", fn=score_retrieval, version="2", primary="t2i_R@1",
    description="image-text retrieval recall@k both ways (t2i_R@k, i2t_R@k) as CLIP_benchmark, precision@k, "
                "R-precision, mAP and mean/median ranks, with a pessimistic tie rule; retrieval tasks only",
    # version 2 (#12): adds {t2i,i2t}_P@k, _R-precision and _mAP; the recall values are unchanged
    outputs=(Output("t2i_R@*"), Output("i2t_R@*"), Output("t2i_P@*"), Output("i2t_P@*"),
             Output("*_R-precision"), Output("*_mAP"),
             Output("t2i_mean_rank", higher_is_better=False),  # per sample: the mean over its captions
             Output("i2t_mean_rank", higher_is_better=False, per_sample=False),  # per sample: i2t_rank
             Output("*_median_rank", higher_is_better=False, aggregation="corpus", per_sample=False)),
    sample_fields={"groups": "group"}, failed_prediction=None)
