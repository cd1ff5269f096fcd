"""Zero-shot classification: the prompt-ensemble classifier and acc@1, acc@5, mean per-class recall.

Conventions (those of CLIP_benchmark's ``zeroshot_classification``, the reference the tests
are checked against):

* **Classifier** (dual encoders): for each class, every template is filled with the class
  name (``"a photo of a {c}."``) and embedded; the template embeddings are L2-normalised,
  averaged, and the mean normalised again.  One row per class.
* **Logits**: the normalised image embedding times each class row (cosine similarity; the
  factor 100 CLIP_benchmark applies changes no ranking and is left out).  A generative
  model gives its own per-class score instead (the mean over templates of the prompt's
  log-likelihood, :mod:`mmbench.tasks.zeroshot`); everything below reads only the order.
* **acc@k**: the fraction of images whose true class is among the k best-scoring classes;
  **mean_per_class_recall**: the mean over classes (those with at least one image) of the
  fraction of that class's images whose top-1 class is right (scikit-learn's
  ``balanced_accuracy_score`` of the argmax, as CLIP_benchmark).

Ties (exactly equal scores) are **pessimistic**, as for retrieval: the true class is placed
after every other class with an equal score, ``rank = 1 + #{other classes scoring >= it}``,
and an image is a hit at k when ``rank <= k``.  CLIP_benchmark leaves tied order to
``torch.topk``/``argmax`` (the lowest class index wins); without ties the two agree.  A
constant model therefore scores 0, not 1/n_classes.

A failed image (its embedding or scores missing) counts as a miss at every k and stays in
every denominator.  acc@5 needs at least 5 classes; with fewer it is unavailable (CLIP_benchmark
reports NaN).

Example:
    >>> values = classification_accuracy([[0.9, 0.1, 0.0], [0.5, 0.5, 0.0]], [0, 1], ks=(1, 2))
    >>> values.corpus["acc1"], values.corpus["acc2"], values.corpus["mean_per_class_recall"]
    (0.5, 1.0, 0.5)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mmbench.metrics.spec import MetricSpec, Output
from mmbench.types import MetricValues

__all__ = ["zeroshot_classifier", "class_logits", "true_class_ranks", "classification_accuracy",
           "score_zeroshot", "ZEROSHOT_CLASSIFICATION"]

_BACKEND = {"implementation": "mmbench.metrics.zeroshot (numpy)",
            "convention": "CLIP_benchmark zeroshot_classification", "ties": "pessimistic"}


def _normalise(x: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(x).all():
        raise ValueError(f"{what} has NaN or infinite values")
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{what} has an all-zero row that cannot be L2-normalised")
    return x / norms


def zeroshot_classifier(template_embeddings: Sequence[Any]) -> np.ndarray:
    """``(n_classes, d)`` classifier from each class's template embeddings (``(n_templates, d)`` each):
    normalise each, average, normalise the mean.

    >>> zeroshot_classifier([[[2.0, 0.0], [0.0, 3.0]]]).round(4).tolist()
    [[0.7071, 0.7071]]
    """
    rows = []
    for c, emb in enumerate(template_embeddings):
        emb = np.asarray(emb, dtype=np.float64 if np.asarray(emb).dtype == np.float64 else np.float32)
        if emb.ndim != 2 or len(emb) == 0:
            raise ValueError(f"class {c}: expected (n_templates, d) template embeddings, got shape {emb.shape}")
        rows.append(_normalise(_normalise(emb, f"class {c} template embeddings").mean(axis=0), f"class {c} mean"))
    return np.stack(rows)


def class_logits(image_emb: Any, classifier: Any) -> np.ndarray:
    """Cosine similarity of each (normalised) image embedding with each class row: ``(n_images, n_classes)``."""
    images = np.asarray(image_emb)
    classes = np.asarray(classifier)
    if images.ndim != 2 or classes.ndim != 2 or images.shape[1] != classes.shape[1]:
        raise ValueError(f"image embeddings {images.shape} and class embeddings {classes.shape} must be 2-D "
                         "with the same dimension")
    return _normalise(images, "image embeddings") @ classes.T


def true_class_ranks(logits: Sequence[Any], labels: Sequence[int]) -> np.ndarray:
    """Pessimistic rank (1-based) of each image's true class; ``np.inf`` for a failed image (logits None)."""
    ranks = np.full(len(labels), np.inf)
    for i, (row, label) in enumerate(zip(logits, labels)):
        if row is None:
            continue
        row = np.asarray(row, dtype=np.float64)
        if not np.isfinite(row).all():
            raise ValueError(f"image {i}: class scores have NaN or infinite values")
        if not 0 <= label < len(row):
            raise ValueError(f"image {i}: label {label} is not a class index (0..{len(row) - 1})")
        ranks[i] = np.count_nonzero(row >= row[label])  # the true class itself + every other tied or above
    return ranks


def classification_accuracy(logits: Sequence[Any], labels: Sequence[int], ks: Sequence[int] = (1, 5), *,
                            n_classes: int | None = None) -> MetricValues:
    """``acc{k}`` for each k and ``mean_per_class_recall`` from per-image class scores.

    ``logits[i]``: the scores of every class for image i (higher = more likely), or None when
    the image failed (a miss).  ``labels[i]``: its true class index.  ``per_sample``: each
    image's ``acc{k}`` (0/1) and ``rank`` of its true class (absent for a failed image).
    """
    labels = [int(v) for v in labels]
    if len(logits) != len(labels):
        raise ValueError(f"{len(logits)} score rows but {len(labels)} labels")
    if not labels:
        raise ValueError("no images to classify")
    if n_classes is None:
        n_classes = next((len(r) for r in logits if r is not None), max(labels) + 1)
    ranks = true_class_ranks(logits, labels)
    corpus: dict[str, float] = {}
    unavailable: dict[str, str] = {}
    for k in ks:
        if k > n_classes:
            unavailable[f"acc{k}"] = f"acc@{k} needs at least {k} classes; this task has {n_classes}"
        else:
            corpus[f"acc{k}"] = float(np.count_nonzero(ranks <= k)) / len(ranks)
    label_array = np.array(labels)
    recalls = [float(np.mean(ranks[label_array == c] <= 1)) for c in np.unique(label_array)]
    corpus["mean_per_class_recall"] = float(np.mean(recalls))
    per_sample = []
    for rank in ranks:
        row = {f"acc{k}": float(rank <= k) for k in ks if k <= n_classes}
        if np.isfinite(rank):
            row["rank"] = float(rank)
        per_sample.append(row)
    warnings = []
    n_failed = int(np.count_nonzero(~np.isfinite(ranks)))
    if n_failed:
        warnings.append(f"{n_failed} of {len(ranks)} images failed: each counts as a miss at every k")
    return MetricValues(corpus=corpus, per_sample=tuple(per_sample), unavailable=unavailable,
                        backend={key: dict(_BACKEND) for key in corpus}, warnings=tuple(warnings))


def score_zeroshot(predictions: Sequence[Any], references: Sequence[Sequence[str]], *, labels: Sequence[Any],
                   ks: Sequence[int] = (1, 5)) -> MetricValues:
    """The zero-shot task's metric: ``predictions[i]`` is image i's per-class scores (the task turns
    embeddings into cosine logits, or likelihoods into per-class means) or None when it failed;
    ``labels[i]`` (the sample's ``meta.label``) its true class index.  ``references`` (the class
    name) are not read."""
    return classification_accuracy(predictions, [int(v) for v in labels], ks)


ZEROSHOT_CLASSIFICATION = MetricSpec(
    name="zeroshot-classification", fn=score_zeroshot, version="1", primary="acc1",
    description="zero-shot classification acc@1, acc@5 and mean per-class recall as CLIP_benchmark "
                "(prompt-ensemble classifier; pessimistic ties); zero-shot tasks only",
    outputs=(Output("acc*"), Output("mean_per_class_recall", aggregation="corpus", per_sample=False)),
    sample_fields={"labels": "label"}, failed_prediction=None)
