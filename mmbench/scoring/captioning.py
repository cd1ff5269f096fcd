"""``mmbench score captioning``: caption predictions against references (JSON lines, a COCO
captions file, or the predictions' own), scored with :func:`mmbench.metrics.caption.score_captions`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmbench.errors import DataError
from mmbench.scoring.readers import (Rows, _id_value, _keyed, _own, _prepare, _rows, _section, _string_list,
                                     _with_warnings, read_predictions, read_records)
from mmbench.types import MetricValues


def _coco_captions(data: dict, path: Any) -> dict[str, list[str]]:
    """image id -> captions (annotation order) of a COCO captions file; its ``id`` is the annotation's."""
    images = None
    if "images" in data:
        images = {_id_value(obj, "id", where) for where, obj in _section(data, "images", path) if "id" in obj}
    refs: dict[str, list[str]] = {}
    for where, obj in _section(data, "annotations", path):
        if obj.get("image_id") is None:
            raise DataError("no image_id", source=where, field="image_id")
        sid = _id_value(obj, "image_id", where)
        if not isinstance(obj.get("caption"), str):
            raise DataError(f"caption must be a string, got {type(obj.get('caption')).__name__}", source=where,
                            sample_id=sid, field="caption")
        if images is not None and sid not in images:
            raise DataError("image_id is not in the file's images", source=where, sample_id=sid, field="image_id")
        refs.setdefault(sid, []).append(obj["caption"])
    if not refs:
        raise DataError("no references (annotations is empty)", source=str(path))
    return refs


def _caption_references(path: str | Path, own: Rows | None = None) -> tuple[dict[str, list[str]], bool]:
    """(image id -> captions, whether the file is a COCO captions file); ``own``: a predictions file's rows."""
    records = read_records(path) if own is None else own
    if isinstance(records, dict):
        if "annotations" not in records or "questions" in records:
            raise DataError(f"a JSON object with keys {sorted(records)[:6]}; expected references as JSON lines or "
                            "a COCO captions file {images, annotations: [{image_id, caption}]}", source=str(path))
        return _coco_captions(records, path), True

    def parse(obj: dict, where: str, sid: str) -> list[str]:
        return _string_list(obj, "references", "reference", where, sid)

    return _keyed(records, "captioning", parse if own is None else _own(parse), path, "references"), False


def read_caption_references(path: str | Path) -> dict[str, list[str]]:
    """image id -> reference captions, from JSON lines or a COCO captions file."""
    return _caption_references(path)[0]


def score_captioning(predictions: str | Path, references: str | Path | None = None, *, tokenizer: str = "ptb",
                     meteor: bool | None = None, spice: bool | None = None) -> MetricValues:
    """Score caption predictions (JSON lines or a COCO results array) against references (JSON
    lines or a COCO captions file); see :mod:`mmbench.scoring`.  Without ``references``, each
    prediction line must carry its own ``references`` list, as mmbench's ``predictions/<task>.jsonl``
    files do, and the result is the run's numbers.
    """
    rows = _rows(predictions, "predictions")
    preds = read_predictions(predictions, "captioning", rows=rows)
    own = references is None
    refs, coco = _caption_references(predictions, rows) if own else _caption_references(references)
    ids, notes = _prepare(preds, refs, own, predictions, references, coco, "captions")
    if coco and len(ids) < len(refs):
        notes.append(f"scored the {len(ids)} image(s) of the predictions, of {len(refs)} in {references} "
                     "(as COCOEvalCap does)")
    from mmbench.metrics.caption import score_captions

    values = score_captions([preds[i][0] or "" for i in ids], [refs[i] for i in ids], tokenizer=tokenizer,
                            meteor=meteor, spice=spice)
    return _with_warnings(values, *notes)
