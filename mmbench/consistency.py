"""CLIPScore / RefCLIPScore with a scorer model: on a captioning run, a predictions file,
or prompt/image pairs from a text-to-image system.

The arithmetic is :mod:`mmbench.metrics.clipscore` (equal to jmhessel/clipscore);
this module runs the scorer, an embedding adapter (``mmbench list models``: any
CLIP-style model, e.g. ``openai/clip-vit-base-patch32`` as in the paper, or the
offline ``easyvqa-clip``).  Every candidate caption and reference is prefixed with
``"A photo depicts "`` before encoding, as the official script does.  The scorer's
name and fingerprint hash are recorded in the metric backend, so they enter the
task fingerprint and two runs scored by different CLIPs never share a leaderboard
group.

An image or text the scorer cannot embed is an error naming the sample: a CLIPScore
computed over a silently shrunk set would not be comparable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mmbench.errors import DataError, MMBenchError
from mmbench.metrics.clipscore import CLIPSCORE_PROMPT, score_clipscore
from mmbench.types import EmbedRequest, ImageRef, MetricValues

#: the paper's scorer (CLIP ViT-B/32), the default of ``mmbench score consistency``
PAPER_SCORER = "openai/clip-vit-base-patch32"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
_SCORERS: dict[tuple[str, str], Any] = {}


def load_scorer(spec: str, device: str = "auto") -> Any:
    """The embedding adapter ``spec`` (loaded once per process and device)."""
    key = (spec, device)
    if key not in _SCORERS:
        from mmbench.models.resolve import load_model

        model = load_model(spec, device=device)
        if "embed" not in model.capabilities:
            raise MMBenchError(f"scorer {spec!r} ({model.adapter}) cannot embed images and texts: CLIPScore "
                               "needs a CLIP-style model (e.g. easyvqa-clip, openai/clip-vit-base-patch32)")
        _SCORERS[key] = model
    return _SCORERS[key]


def _embed(model: Any, requests: list[EmbedRequest], batch_size: int, what: str) -> np.ndarray:
    rows: list[np.ndarray] = []
    for start in range(0, len(requests), batch_size):
        for out in model.embed(requests[start:start + batch_size]):
            if not out.ok:
                raise DataError(f"the CLIPScore scorer could not embed this {what}: {out.error}",
                                sample_id=out.id.rsplit("#", 1)[0])
            rows.append(out.embedding)
    return np.stack(rows) if rows else np.zeros((0, 1), dtype=np.float32)


def clipscore_features(model: Any, images: Sequence[ImageRef], captions: Sequence[str],
                       references: Sequence[Sequence[str]] | None, ids: Sequence[str], batch_size: int = 64
                       ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray] | None]:
    """Image, caption and per-caption reference features (texts prefixed, each distinct text encoded once)."""
    image_reqs = [EmbedRequest(id=f"{sid}#image", images=(ref,)) for sid, ref in zip(ids, images)]
    image_feats = _embed(model, image_reqs, batch_size, "image")
    texts: dict[str, str] = {}  # prefixed text -> the id of a sample that uses it (for errors)
    for sid, caption in zip(ids, captions):
        texts.setdefault(CLIPSCORE_PROMPT + caption, sid)
    for sid, refs in zip(ids, references or []):
        for ref in refs:
            texts.setdefault(CLIPSCORE_PROMPT + ref, sid)
    order = list(texts)
    text_reqs = [EmbedRequest(id=f"{texts[t]}#text{k}", text=t) for k, t in enumerate(order)]
    feats = dict(zip(order, _embed(model, text_reqs, batch_size, "text")))
    caption_feats = np.stack([feats[CLIPSCORE_PROMPT + c] for c in captions])
    ref_feats = None if references is None else [np.stack([feats[CLIPSCORE_PROMPT + r] for r in refs])
                                                 for refs in references]
    return image_feats, caption_feats, ref_feats


def clipscore_metric(predictions: Sequence[str], references: Sequence[Sequence[str]], *,
                     images: Sequence[ImageRef | None], sample_ids: Sequence[str] | None = None,
                     scorer: str = PAPER_SCORER, device: str = "auto", with_references: bool = True,
                     batch_size: int = 64, required: bool = False) -> MetricValues:
    """The ``clipscore`` task metric: CLIPScore of each caption against its image, and
    RefCLIPScore against its references (``with_references``; samples without references
    make it unavailable rather than partial).

    A scorer that cannot be loaded (not in the offline cache, say) makes both metrics
    unavailable with the reason and a warning, so the run's other metrics and predictions
    are still written (as METEOR without Java); ``required=True`` raises instead."""
    ids = list(sample_ids) if sample_ids is not None else [str(i) for i in range(len(predictions))]
    if not len(ids) == len(images) == len(predictions) == len(references):
        raise ValueError(f"predictions ({len(predictions)}), references ({len(references)}), images ({len(images)}) "
                         f"and sample_ids ({len(ids)}) must have the same length")
    if not predictions:
        return MetricValues(corpus={}, unavailable={"CLIPScore": "no captions to score"})
    for sid, ref in zip(ids, images):
        if ref is None:
            raise DataError("CLIPScore needs the sample's image, and it has none", sample_id=sid, field="image")
    try:
        model = load_scorer(scorer, device)
    except MMBenchError as exc:
        if required:
            raise
        reason = f"the CLIPScore scorer {scorer!r} could not be loaded: {exc}"
        return MetricValues(corpus={}, unavailable={"CLIPScore": reason, "RefCLIPScore": reason},
                            warnings=(reason,))
    refs = [list(r) for r in references] if with_references else None
    missing = with_references and any(not r for r in references)
    if missing:
        refs = None
    image_feats, caption_feats, ref_feats = clipscore_features(model, list(images), list(predictions), refs, ids,
                                                               batch_size)
    values = score_clipscore(image_feats, caption_feats, ref_feats)
    scorer_info = {"scorer": scorer, "scorer_hash": model.fingerprint()["hash"]}
    backend = {k: {**dict(v), **scorer_info} for k, v in values.backend.items()}
    unavailable = dict(values.unavailable)
    if missing:
        unavailable["RefCLIPScore"] = "some samples have no references"
    elif not with_references:
        unavailable["RefCLIPScore"] = "disabled (with_references: false)"
    return MetricValues(corpus=values.corpus, per_sample=values.per_sample, unavailable=unavailable,
                        backend=backend, warnings=values.warnings)


# ----------------------------------------------------------------------------- files


def _image_from_dir(directory: Path, sid: str) -> ImageRef:
    for suffix in _IMAGE_SUFFIXES:
        path = directory / f"{sid}{suffix}"
        if path.is_file():
            return ImageRef(path=str(path))
    raise DataError(f"no image file named {sid}.<png|jpg|...> in {directory}", sample_id=sid, field="image")


def _images_for(ids: list[str], images: str | None, task: str | None) -> dict[str, ImageRef]:
    if (images is None) == (task is None):
        raise MMBenchError("give the images with exactly one of --images (a folder of <id>.<ext> files, or a "
                           "JSONL of {image_id, image}) or --task (the task the predictions came from)")
    if task is not None:
        from mmbench.catalog import build_task

        samples = {s.id: s for s in build_task(task).load_samples()}
        out = {}
        for sid in ids:
            if sid not in samples or not samples[sid].images:
                raise DataError(f"not a sample of task {task} (or it has no image)", sample_id=sid, field="image")
            out[sid] = samples[sid].images[0]
        return out
    path = Path(images)
    if path.is_dir():
        return {sid: _image_from_dir(path, sid) for sid in ids}
    from mmbench.io import read_jsonl
    from mmbench.scoring import _line_id

    table: dict[str, ImageRef] = {}
    for lineno, obj in read_jsonl(path):
        where = f"{path}:{lineno}"
        sid = _line_id(obj, where)
        value = obj.get("image")
        if not isinstance(value, str) or not value:
            raise DataError("image must be a file path", source=where, sample_id=sid, field="image")
        full = Path(value) if Path(value).is_absolute() else path.parent / value
        table[sid] = ImageRef(path=str(full))
    missing = [sid for sid in ids if sid not in table]
    if missing:
        raise DataError(f"{len(missing)} prediction id(s) have no image (first: {missing[0]!r})", source=str(path),
                        sample_id=missing[0], field="image")
    return {sid: table[sid] for sid in ids}


def score_consistency_files(*, predictions: str | Path | None = None, images: str | None = None,
                            task: str | None = None, pairs: str | Path | None = None, scorer: str = PAPER_SCORER,
                            references: bool = True, device: str = "auto", batch_size: int = 64) -> MetricValues:
    """CLIPScore (and RefCLIPScore) of a predictions file, or CLIPScore of prompt/image pairs.

    * ``predictions``: JSONL of ``{image_id, prediction[, references]}`` (mmbench's own
      ``predictions/<task>.jsonl`` works as is), with the images from ``images`` or ``task``.
      RefCLIPScore needs every line to carry ``references``.
    * ``pairs``: JSONL of ``{"image": path, "prompt": text}`` (e.g. a text-to-image system's
      outputs; paths relative to the file); CLIPScore of each image against its prompt.
    """
    if (predictions is None) == (pairs is None):
        raise MMBenchError("give either --predictions (captions) or --pairs (prompt/image pairs)")
    from mmbench.io import read_jsonl

    if pairs is not None:
        ids, captions, refs_list, image_refs = [], [], None, []
        for lineno, obj in read_jsonl(pairs):
            where = f"{pairs}:{lineno}"
            sid = str(obj.get("id", lineno))
            image, prompt = obj.get("image"), obj.get("prompt")
            if not isinstance(image, str) or not image:
                raise DataError("image must be a file path", source=where, sample_id=sid, field="image")
            if not isinstance(prompt, str):
                raise DataError("prompt must be a string", source=where, sample_id=sid, field="prompt")
            ids.append(sid)
            captions.append(prompt)
            image_refs.append(ImageRef(path=str(Path(image) if Path(image).is_absolute()
                                                else Path(pairs).parent / image)))
        if not ids:
            raise DataError("no pairs (the file is empty)", source=str(pairs))
        values = clipscore_metric(captions, [[] for _ in ids], images=image_refs, sample_ids=ids, scorer=scorer,
                                  device=device, with_references=False, batch_size=batch_size, required=True)
        return MetricValues(values.corpus, values.per_sample, {"RefCLIPScore": "prompt/image pairs have no references"},
                            values.backend, values.warnings)

    from mmbench.scoring import read_predictions

    preds = read_predictions(predictions)
    ids = list(preds)
    refs_list: list[list[str]] | None = []
    for lineno, obj in read_jsonl(predictions):
        value = obj.get("references")
        if not (isinstance(value, list) and value and all(isinstance(r, str) for r in value)):
            refs_list = None
            break
        refs_list.append(value)
    table = _images_for(ids, images, task)
    captions = [preds[sid][0] or "" for sid in ids]
    values = clipscore_metric(captions, refs_list or [[] for _ in ids], images=[table[s] for s in ids],
                              sample_ids=ids, scorer=scorer, device=device,
                              with_references=references and refs_list is not None, batch_size=batch_size,
                              required=True)
    failed = sum(1 for sid in ids if preds[sid][0] is None)
    warnings = values.warnings + ((f"{failed} recorded failure(s) scored as empty captions",) if failed else ())
    if references and refs_list is None:
        unavailable = {**values.unavailable, "RefCLIPScore": "not every prediction line has references"}
    else:
        unavailable = dict(values.unavailable)
    return MetricValues(values.corpus, values.per_sample, unavailable, values.backend, warnings)
