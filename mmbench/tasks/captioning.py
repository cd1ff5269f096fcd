"""Captioning: one image in, one caption out, scored against reference captions.

Columns (``columns:`` in the task file maps them to dataset columns):
``id`` (see :meth:`~mmbench.tasks.base.Task.sample_id`), ``image``, ``references`` (a
list of strings, a single string, or a list of ``{"raw": ...}`` / ``{"caption": ...}``
objects as in the Karpathy split files).  An empty reference string is a sample error.
The prompt is plain text (no placeholders).

Scoring: failed samples (undecodable image, model error) are scored as an empty
caption, so the sample set (and CIDEr-D's document frequencies) never depends on
which samples failed; they are counted in ``n_failed``.  Samples whose row is
unusable (no references) cannot be scored and are left out, also counted.
"""

from __future__ import annotations

from typing import Any, Mapping

from mmbench.errors import DataError
from mmbench.tasks.base import Task
from mmbench.types import Sample


def _as_references(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        out = []
        for i, item in enumerate(value):
            if isinstance(item, dict) and isinstance(item.get("raw", item.get("caption")), str):
                item = item.get("raw", item.get("caption"))
            if not isinstance(item, str):
                raise ValueError(f"reference {i} is {type(item).__name__}, not a string")
            if not item.strip():
                raise ValueError(f"reference {i} is an empty string")
            out.append(item)
        return out
    raise ValueError(f"expected a list of strings, got {type(value).__name__}")


class CaptioningTask(Task):
    family = "captioning"
    fields = ("id", "image", "references")

    def row_to_sample(self, index: int, row: Mapping[str, Any]) -> Sample:
        sid = self.sample_id(index, row)
        ref_col = self.column("references")
        try:
            image = self.image(row, sid)
            ref_value = self.value(row, "references")
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
