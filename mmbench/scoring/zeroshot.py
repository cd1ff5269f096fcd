"""``mmbench score zeroshot``: acc@1, acc@5 and mean per-class recall from saved embeddings or class scores."""

from __future__ import annotations

from pathlib import Path

from mmbench.errors import DataError
from mmbench.scoring.retrieval import load_embeddings
from mmbench.types import MetricValues

ZEROSHOT_JSON_KEYS = ("acc1", "acc5", "mean_per_class_recall")


def score_zeroshot_files(labels: str | Path, *, image_embeddings: str | Path | None = None,
                         class_embeddings: str | Path | None = None, class_scores: str | Path | None = None,
                         ks: tuple[int, ...] = (1, 5)) -> MetricValues:
    """Zero-shot classification metrics (:mod:`mmbench.metrics.zeroshot`) from a run's files.

    Either ``image_embeddings`` (images x d) and ``class_embeddings`` (classes x d, one row per
    class, already averaged over templates and normalised: the classifier), scored by cosine
    similarity; or ``class_scores`` (images x classes, higher = more likely, as a likelihood
    run writes).  ``labels``: a JSON list with the true class index of each image row.
    """
    from mmbench.metrics.zeroshot import class_logits, classification_accuracy
    from mmbench.tasks.retrieval import read_json_list

    truth = read_json_list(labels)
    for row, value in enumerate(truth):
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(f"entry {row} is {value!r}, not an integer class index", source=str(labels))
    if class_scores is not None:
        if image_embeddings is not None or class_embeddings is not None:
            raise DataError("give --class-scores, or --image-embeddings with --class-embeddings, not both")
        scores, source = load_embeddings(class_scores), str(class_scores)
    else:
        if image_embeddings is None or class_embeddings is None:
            raise DataError("give --image-embeddings and --class-embeddings (or --class-scores)")
        images, classes = load_embeddings(image_embeddings), load_embeddings(class_embeddings)
        try:
            scores = class_logits(images, classes)
        except ValueError as exc:
            raise DataError(f"{exc} ({image_embeddings}, {class_embeddings})") from None
        source = str(image_embeddings)
    if scores.ndim != 2:
        raise DataError(f"expected a 2-D array, got shape {scores.shape}", source=source)
    if len(truth) != len(scores):
        raise DataError(f"has {len(truth)} labels but {source} has {len(scores)} rows", source=str(labels))
    bad = next((r for r, v in enumerate(truth) if not 0 <= v < scores.shape[1]), None)
    if bad is not None:
        raise DataError(f"entry {bad} is {truth[bad]}, not a class index (0..{scores.shape[1] - 1})",
                        source=str(labels))
    try:
        return classification_accuracy(list(scores), truth, ks, n_classes=scores.shape[1])
    except ValueError as exc:
        raise DataError(str(exc), source=source) from None
