"""Captioning: one image in, one caption out, scored against reference captions.

Columns (``columns:`` in the task file maps them to dataset columns):
``id`` (falls back to the row index), ``image``, ``references`` (a list of
strings, a single string, or a list of ``{"raw": ...}`` / ``{"caption": ...}``
objects as in the Karpathy split files).

Scoring: failed samples (undecodable image, model error) are scored as an empty
caption, so the sample set (and CIDEr-D's document frequencies) never depends on
which samples failed; they are counted in ``n_failed``.  Samples whose row is
unusable (no references) cannot be scored and are left out, also counted.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from mmbench.catalog import METRICS
from mmbench.data import to_image_ref
from mmbench.errors import DataError
from mmbench.tasks.base import Task
from mmbench.types import MetricValues, Sample


def _as_references(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict) and isinstance(item.get("raw", item.get("caption")), str):
                out.append(item.get("raw", item.get("caption")))
            else:
                raise ValueError(f"reference {i} is {type(item).__name__}, not a string")
        return out
    raise ValueError(f"expected a list of strings, got {type(value).__name__}")


class CaptioningTask(Task):
    family = "captioning"

    def row_to_sample(self, index: int, row: Mapping[str, Any]) -> Sample:
        sid = self.sample_id(index, row)
        img_col, ref_col = self.column("image"), self.column("references")
        base_dir = row.get("__base_dir__")
        try:
            image_value, ref_value = self.value(row, "image"), self.value(row, "references")
            if image_value is None:
                raise DataError("missing image", sample_id=sid, field=img_col)
            try:
                image = to_image_ref(image_value, base_dir)
            except ValueError as exc:
                raise DataError(str(exc), sample_id=sid, field=img_col) from None
            if ref_value is None:
                raise DataError("missing references", sample_id=sid, field=ref_col)
            try:
                refs = _as_references(ref_value)
            except ValueError as exc:
                raise DataError(str(exc), sample_id=sid, field=ref_col) from None
            if not refs:
                raise DataError("no reference captions", sample_id=sid, field=ref_col)
        except DataError as exc:
            return Sample(id=sid, error=str(exc))
        return Sample(id=sid, images=(image,), references=tuple(refs))

    def score(self, samples: Sequence[Sample], predictions: Sequence[str | None],
              options: Mapping[str, Any]) -> MetricValues:
        keep = [i for i, s in enumerate(samples) if s.error is None]
        preds = ["" if predictions[i] is None else predictions[i] for i in keep]
        refs = [list(samples[i].references) for i in keep]
        corpus: dict[str, float] = {}
        unavailable: dict[str, str] = {}
        backend: dict[str, dict[str, str]] = {}
        warnings: list[str] = []
        per_sample: list[dict[str, float]] = [{} for _ in samples]
        for metric_name in self.config.metrics:
            fn = METRICS.get(metric_name)
            kwargs = dict(self.config.metric_options.get(metric_name, {}) or {})
            kwargs.update({k: v for k, v in options.items() if v is not None})
            values: MetricValues = fn(preds, refs, **kwargs)
            corpus.update(values.corpus)
            unavailable.update(values.unavailable)
            backend.update({k: dict(v) for k, v in values.backend.items()})
            warnings.extend(values.warnings)
            for j, scores in zip(keep, values.per_sample):
                per_sample[j].update(scores)
        return MetricValues(corpus=corpus, per_sample=tuple(per_sample), unavailable=unavailable,
                            backend=backend, warnings=tuple(warnings))
