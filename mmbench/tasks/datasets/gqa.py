"""GQA rows: questions and images kept in two configs of one hub dataset, joined on the image id.

``lmms-lab/GQA`` stores ``testdev_balanced_instructions`` (one row per question, with ``imageId``)
and ``testdev_balanced_images`` (one row per image: ``id``, ``image``) separately, so no single
``datasets`` split holds a question with its image.  :func:`gqa_rows` loads both at one pinned
revision and adds each question's image (kept undecoded).  For tests and local copies, ``path``
may be a local builder (``parquet``, ``arrow``, ``json``) with ``questions``/``images`` naming files.

No model code; ``datasets`` is imported when called.
"""

from __future__ import annotations

from typing import Any

_LOCAL = ("parquet", "arrow", "json", "csv")


def _load(path: str, which: str, split: str, revision: str | None) -> Any:
    import datasets

    if path in _LOCAL:
        ds = datasets.load_dataset(path, data_files=which, split="train")
    else:
        ds = datasets.load_dataset(path, name=which, split=split, revision=revision)
    for col, feature in ds.features.items():
        if isinstance(feature, datasets.Image):
            ds = ds.cast_column(col, datasets.Image(decode=False))
    return ds


def gqa_rows(split: str, *, path: str, questions: str, images: str, revision: str | None = None,
             join: str = "imageId", image_id: str = "id", image: str = "image") -> list[dict]:
    """The question rows of ``questions`` (a config of hub dataset ``path``, or a local file) with
    an ``image`` cell added from the ``images`` rows whose ``image_id`` equals the question's
    ``join`` column.  A hub ``path`` needs a ``revision`` (a commit sha); a question whose image
    is missing raises ValueError naming it."""
    if path not in _LOCAL and not revision:
        raise ValueError(f"hub dataset {path!r} must pin a revision (a commit sha)")
    by_id = {str(r[image_id]): r[image] for r in _load(path, images, split, revision)}
    rows = []
    for row in _load(path, questions, split, revision):
        row = dict(row)
        key = str(row.get(join))
        if key not in by_id:
            raise ValueError(f"question {row.get('id')!r}: image {key!r} is not in {images!r}")
        row["image"] = by_id[key]
        rows.append(row)
    return rows
