"""Image-text retrieval: embed every image and every caption, rank, report recall@k both ways.

Columns (``columns:`` maps them): ``id``, ``image``, ``captions`` (a list of
strings, or one string of newline-separated captions as in CLIP_benchmark's
webdataset shards), optional ``group`` (images with equal groups are
interchangeable, see :mod:`mmbench.metrics.retrieval`).  An image may have no
caption: it stays in the gallery and counts as an image-to-text miss, as in
CLIP_benchmark, and the result says how many there were.

Each sample asks the model for ``1 + n_captions`` embeddings (:class:`EmbedRequest`
ids ``<id>#image`` and ``<id>#text<j>``).  The task's ``prompt``, if set, is a
template for the text side (``"a photo of {caption}"``); by default captions are
embedded as they are.

Failures: a sample any of whose embeddings failed is counted in ``n_failed``; its
image and its captions count as misses in both directions (they stay in the recall
denominators) and are left out of the galleries, so a failure can never raise a
score.

The run folder gets ``predictions/<task>.image_embeddings.npy``,
``.text_embeddings.npy`` and ``.text_to_image.json`` (plus ``.image_groups.json``
with groups), exactly the inputs of ``mmbench score retrieval``, so a run can be
re-scored without the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mmbench.errors import DataError, MMBenchError
from mmbench.io import atomic_write_json
from mmbench.metrics.retrieval import stack_embeddings
from mmbench.tasks.base import Task
from mmbench.types import EmbedRequest, Sample

METRIC = "retrieval-recall"


def _captions(value: Any) -> list[str]:
    if isinstance(value, str):
        # one newline-separated text (CLIP_benchmark shards): an empty text is an image without captions
        return [line.strip() for line in value.split("\n") if line.strip()]
    if isinstance(value, (list, tuple)):
        for j, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(f"caption {j} is {type(item).__name__}, not a string")
            if not item.strip():
                raise ValueError(f"caption {j} is empty")
        return [item.strip() for item in value]
    raise ValueError(f"expected a list of captions, got {type(value).__name__}")


class RetrievalTask(Task):
    family = "retrieval"
    needs = "embed"
    fields = ("id", "image", "captions", "group")
    prompt_fields = ("caption",)

    def __init__(self, config: Any):
        super().__init__(config)
        # the predictions are embeddings: only a metric that reads embeddings can score them
        if list(config.metrics) != [METRIC]:
            raise MMBenchError(f"task {config.name}: retrieval tasks are scored with metrics: [{METRIC}], "
                               f"got {list(config.metrics)}")

    def row_to_sample(self, index: int, row: Mapping[str, Any]) -> Sample:
        sid = self.sample_id(index, row)
        try:
            image = self.image(row, sid)
            raw = self.value(row, "captions")
            try:
                captions = [] if raw is None else _captions(raw)
            except ValueError as exc:
                raise DataError(str(exc), sample_id=sid, field=self.column("captions")) from None
        except DataError as exc:
            return Sample(id=sid, error=str(exc))
        group = self.value(row, "group")
        meta = {"group": str(group)} if group is not None else {}
        return Sample(id=sid, images=(image,), references=tuple(captions), meta=meta)

    def caption_text(self, caption: str, model_name: str | None) -> str:
        template = self.prompt_for(model_name)
        return template.format(caption=caption) if template else caption

    def build_requests(self, sample: Sample, model_name: str | None) -> list[EmbedRequest]:
        return [EmbedRequest(id=f"{sample.id}#image", images=sample.images)] + [
            EmbedRequest(id=f"{sample.id}#text{j}", text=self.caption_text(c, model_name))
            for j, c in enumerate(sample.references)]

    def collect(self, sample: Sample, outputs: Sequence[Any]) -> dict[str, Any]:
        return {"image": outputs[0], "texts": list(outputs[1:])}

    def record_prediction(self, prediction: Any) -> None:
        return None  # embeddings are written as .npy artifacts, not into the JSONL

    def write_artifacts(self, out_dir: Any, samples: Sequence[Sample], predictions: Sequence[Any]) -> list[str]:
        ok = [i for i, s in enumerate(samples) if s.error is None and predictions[i] is not None]
        if not ok:
            return []
        images, texts, mapping = stack_embeddings([predictions[i] for i in ok])
        stem = f"predictions/{self.name}"
        files = {f"{stem}.image_embeddings.npy": images, f"{stem}.text_embeddings.npy": texts}
        for rel, array in files.items():
            path = Path(out_dir) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, array)
            tmp.replace(path)
        atomic_write_json(Path(out_dir) / f"{stem}.text_to_image.json", mapping.tolist())
        atomic_write_json(Path(out_dir) / f"{stem}.image_ids.json", [samples[i].id for i in ok])
        written = [*files, f"{stem}.text_to_image.json", f"{stem}.image_ids.json"]
        if any("group" in samples[i].meta for i in ok):
            atomic_write_json(Path(out_dir) / f"{stem}.image_groups.json",
                              [samples[i].meta.get("group", samples[i].id) for i in ok])
            written.append(f"{stem}.image_groups.json")
        return written


def read_json_list(path: str | Path) -> list[Any]:
    """A JSON file holding a list (the text-to-image mapping, image groups)."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read: {exc}", source=str(path)) from None
    if not isinstance(value, list):
        raise DataError(f"expected a JSON list, got {type(value).__name__}", source=str(path))
    return value
