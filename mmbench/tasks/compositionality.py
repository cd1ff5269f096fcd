"""Compositionality: Winoground (two images x two captions) and caption choice (one image, a
correct caption among hard negatives: SugarCrepe, ARO), for dual encoders and generative models.

Columns (``columns:`` maps them):

* Winoground (``metrics: [winoground]``): ``id``, ``images`` (two columns, ``"image_0,image_1"``),
  ``captions`` (``"caption_0,caption_1"``), optional ``tag`` (its ``collapsed_tag``).
* Caption choice (``metrics: [caption-choice]``): ``id``, ``image``, ``captions`` (a list column
  in the official option order, or comma-separated columns), optional ``correct`` (index of
  the right caption in that order, default 0), ``group`` (ARO relation / attribute pair) and
  ``split`` (SugarCrepe's seven).

Family option ``method`` (``metric_options:``): ``similarity`` (default; :class:`EmbedRequest`
for each image and caption, score = cosine) or ``likelihood`` (one :class:`ScoreRequest` per
image with every caption as a continuation; score = the summed token log-probability, or
the per-token mean with ``likelihood: mean``).  Tie rules are the official ones
(:mod:`mmbench.metrics.compositionality`).

Each sample's scores are its prediction in ``predictions/<task>.jsonl`` and in
``predictions/<task>.scores.jsonl`` (Winoground: ``{"id", "c0_i0", "c0_i1", "c1_i0", "c1_i1"}``;
caption choice: ``{"id", "scores", "correct", "group", "split"}``), the inputs of
``mmbench score winoground`` / ``mmbench score caption-choice``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mmbench.errors import DataError, MMBenchError
from mmbench.io import atomic_write_jsonl
from mmbench.tasks.base import Task
from mmbench.types import EmbedRequest, Sample

METRICS = ("winoground", "caption-choice")


class CompositionalityTask(Task):
    family = "compositionality"
    needs = "embed"
    fields = ("id", "image", "images", "captions", "correct", "group", "split", "tag")
    prompt_fields = ()
    family_options = ("method", "likelihood")

    def __init__(self, config: Any):
        super().__init__(config)
        if len(config.metrics) != 1 or config.metrics[0] not in METRICS:
            raise MMBenchError(f"task {config.name}: compositionality tasks are scored with one of "
                               f"metrics: [winoground] or [caption-choice], got {list(config.metrics)}")
        self.kind = config.metrics[0]
        where = config.where("metric_options")
        self.method = config.metric_options.get("method", "similarity")
        self.reduce = config.metric_options.get("likelihood", "sum")
        if self.method not in ("similarity", "likelihood") or self.reduce not in ("sum", "mean"):
            raise DataError(f"method must be similarity|likelihood and likelihood sum|mean, got {self.method!r}, "
                            f"{self.reduce!r}", source=where, field="metric_options")
        self.needs = "embed" if self.method == "similarity" else "score"

    # -- data ---------------------------------------------------------------
    def _columns(self, field: str) -> list[str]:
        return [c.strip() for c in self.column(field).split(",")]

    def row_to_sample(self, index: int, row: Mapping[str, Any]) -> Sample:
        sid = self.sample_id(index, row)
        try:
            if self.kind == "winoground":
                images = tuple(self._image(row.get(c), sid, c, row) for c in self._columns("images"))
                if len(images) != 2:
                    raise DataError("Winoground needs two image columns", sample_id=sid, field="images")
            else:
                images = (self._image(self.value(row, "image"), sid, self.column("image"), row),)
            captions = self._captions(row, sid)
            if self.kind == "winoground" and len(captions) != 2:
                raise DataError(f"Winoground needs two captions, got {len(captions)}", sample_id=sid,
                                field=self.column("captions"))
        except DataError as exc:
            return Sample(id=sid, error=str(exc))
        meta: dict[str, Any] = {}
        for field in ("correct", "group", "split", "tag"):
            value = self.value(row, field) if field in self.config.dataset.columns else None
            if value is not None:
                meta[field] = int(value) if field == "correct" else str(value)
        return Sample(id=sid, images=images, references=tuple(captions), meta=meta)

    def _image(self, value: Any, sid: str, column: str, row: Mapping[str, Any]) -> Any:
        if value is None:
            raise DataError("missing image", sample_id=sid, field=column)
        try:
            return self.image_ref(value, row.get("__base_dir__"))
        except ValueError as exc:
            raise DataError(str(exc), sample_id=sid, field=column) from None

    def _captions(self, row: Mapping[str, Any], sid: str) -> list[str]:
        columns = self._columns("captions")
        values = [row.get(c) for c in columns] if len(columns) > 1 else row.get(columns[0])
        if not isinstance(values, (list, tuple)) or len(values) < 2 or not all(
                isinstance(v, str) and v.strip() for v in values):
            raise DataError(f"expected at least 2 non-empty captions, got {values!r}", sample_id=sid,
                            field=self.column("captions"))
        return [v.strip() for v in values]

    # -- requests -----------------------------------------------------------
    def build_requests(self, sample: Sample, model_name: str | None) -> list[Any]:
        if self.method == "likelihood":
            from mmbench.types import ScoreRequest

            return [ScoreRequest(id=f"{sample.id}#image{k}", images=(image,), continuations=sample.references)
                    for k, image in enumerate(sample.images)]
        return ([EmbedRequest(id=f"{sample.id}#image{k}", images=(image,)) for k, image in enumerate(sample.images)]
                + [EmbedRequest(id=f"{sample.id}#text{j}", text=c) for j, c in enumerate(sample.references)])

    def score_matrix(self, sample: Sample, outputs: Sequence[Any]) -> np.ndarray:
        """``S[j, k]``: how well caption j matches image k."""
        n_images = len(sample.images)
        if self.method == "likelihood":
            columns = [[float(total) / (max(int(n), 1) if self.reduce == "mean" else 1) for total, n in out]
                       for out in outputs]
            return np.array(columns, dtype=np.float64).T
        images = np.stack([np.asarray(o, dtype=np.float64) for o in outputs[:n_images]])
        texts = np.stack([np.asarray(o, dtype=np.float64) for o in outputs[n_images:]])
        images /= np.linalg.norm(images, axis=1, keepdims=True)
        texts /= np.linalg.norm(texts, axis=1, keepdims=True)
        return texts @ images.T

    def collect(self, sample: Sample, outputs: Sequence[Any]) -> Any:
        s = self.score_matrix(sample, outputs)
        if self.kind == "winoground":
            return {f"c{j}_i{k}": float(s[j, k]) for j in range(2) for k in range(2)}
        return [float(v) for v in s[:, 0]]

    def record_prediction(self, prediction: Any) -> Any:
        return prediction  # the scores: JSON, re-scorable without the model

    def write_artifacts(self, out_dir: Any, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[str]:
        rows = []
        for s, p in zip(samples, predictions):
            if s.error is not None or p is None:
                continue
            if self.kind == "winoground":
                rows.append({"id": s.id, **p, **({"tag": s.meta["tag"]} if "tag" in s.meta else {})})
            else:
                rows.append({"id": s.id, "scores": p, "correct": s.meta.get("correct", 0),
                             **{k: s.meta[k] for k in ("group", "split") if k in s.meta}})
        if not rows:
            return []
        rel = f"predictions/{self.name}.scores.jsonl"
        atomic_write_jsonl(Path(out_dir) / rel, rows)
        return [rel]
