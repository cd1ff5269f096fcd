"""``mmbench score retrieval``: recall@k, precision@k, R-precision and mAP both ways from embedding files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmbench.errors import DataError
from mmbench.types import MetricValues

RETRIEVAL_JSON_KEYS = ("t2i_R@1", "t2i_R@5", "t2i_R@10", "i2t_R@1", "i2t_R@5", "i2t_R@10",
                       "t2i_P@1", "t2i_P@5", "t2i_P@10", "i2t_P@1", "i2t_P@5", "i2t_P@10",
                       "t2i_mAP", "i2t_mAP", "t2i_R-precision", "i2t_R-precision")


def load_embeddings(path: str | Path) -> Any:
    """A 2-D ``.npy`` array (never unpickled: object arrays are refused)."""
    import numpy as np

    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError("file not found", source=str(path)) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"not a readable .npy array of numbers: {exc}", source=str(path)) from None
    if not isinstance(array, np.ndarray):
        raise DataError("expected one array (.npy), got an archive (.npz)", source=str(path))
    return array


def score_retrieval_files(image_embeddings: str | Path, text_embeddings: str | Path, text_to_image: str | Path,
                          *, image_groups: str | Path | None = None,
                          ks: tuple[int, ...] = (1, 5, 10)) -> MetricValues:
    """Recall@k, precision@k, R-precision and mAP both ways from precomputed embeddings (see
    :mod:`mmbench.metrics.retrieval` and :mod:`mmbench.metrics.retrieval_ranking`).

    ``text_to_image`` is a JSON list giving the image row of each text row; ``image_groups``
    an optional JSON list with one group label per image row.  Errors name the file and row.
    """
    from mmbench.metrics.retrieval import retrieval_metrics
    from mmbench.tasks.retrieval import read_json_list

    images = load_embeddings(image_embeddings)
    texts = load_embeddings(text_embeddings)
    mapping = read_json_list(text_to_image)
    for row, value in enumerate(mapping):
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(f"entry {row} is {value!r}, not an integer image row", source=str(text_to_image))
    groups = read_json_list(image_groups) if image_groups is not None else None
    if groups is not None:
        for row, value in enumerate(groups):
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise DataError(f"entry {row} is {value!r}, not a string or integer group label",
                                source=str(image_groups))
    if len(mapping) != (len(texts) if texts.ndim else 0):
        raise DataError(f"has {len(mapping)} entries but {text_embeddings} has {len(texts) if texts.ndim else 0} "
                        "rows: give the image row of every text row", source=str(text_to_image))
    try:
        return retrieval_metrics(images, texts, mapping, ks, names=(str(image_embeddings), str(text_embeddings)),
                                image_groups=groups)
    except ValueError as exc:
        raise DataError(str(exc)) from None
