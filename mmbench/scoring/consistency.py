"""``mmbench score consistency``: CLIPScore / RefCLIPScore (or PAC-S, VQAScore, ITM: ``method``) of
a predictions file, or of prompt/image pairs from a text-to-image system, read from files.

Methods (:data:`METHODS`): ``clipscore`` and ``pacs`` score with an embedding model
(:func:`~mmbench.models.scorer.load_embedder`; PAC-S with the PAC-S CLIP checkpoint and w = 2.0),
``vqascore`` with a generative VLM and ``itm`` with a BLIP ITM head, both through
:func:`~mmbench.models.scorer.load_scorer` (the "score" capability).

The metric is :func:`mmbench.metrics.clipscore.clipscore_metric` (equal to
jmhessel/clipscore); the scorer, an embedding adapter (any CLIP-style model, e.g.
``openai/clip-vit-base-patch32`` as in the paper, or the offline ``easyvqa-clip``), is
loaded by :func:`mmbench.models.scorer.load_embedder`.  This module only reads the
files and finds the images.  An image or text the scorer cannot embed is an error naming
the sample: a CLIPScore computed over a silently shrunk set would not be comparable.
"""

from __future__ import annotations

from pathlib import Path

from mmbench.errors import DataError, MMBenchError
from mmbench.metrics.clipscore import PAPER_SCORER, clipscore_metric
from mmbench.metrics.pacscore import pacs_metric
from mmbench.metrics.vqascore import itm_metric, vqascore_metric
from mmbench.models.scorer import load_embedder, load_scorer
from mmbench.types import ImageRef, MetricValues

#: --method -> (metric spec name, corpus key, reference-based key or None)
METHODS = {"clipscore": ("clipscore", "CLIPScore", "RefCLIPScore"), "pacs": ("pac-s", "PAC-S", "RefPAC-S"),
           "vqascore": ("vqascore", "VQAScore", None), "itm": ("itm-score", "ITMScore", None)}


def _score(method: str, captions: list[str], refs: list[list[str]], images: list[ImageRef], ids: list[str], *,
           scorer: str, with_references: bool, device: str, batch_size: int) -> MetricValues:
    """One consistency method over texts and their images; the scorer must load (``required``)."""
    common = dict(images=images, sample_ids=ids, scorer=scorer, device=device, batch_size=batch_size, required=True)
    if method == "clipscore":
        return clipscore_metric(captions, refs, load_embedder=load_embedder, with_references=with_references,
                                **common)
    if method == "pacs":
        return pacs_metric(captions, refs, load_embedder=load_embedder, with_references=with_references, **common)
    if method == "vqascore":
        return vqascore_metric(captions, refs, load_scorer=load_scorer, **common)
    if method == "itm":
        return itm_metric(captions, refs, load_scorer=load_scorer, **common)
    raise MMBenchError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


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
    from mmbench.scoring.readers import _line_id

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
                            references: bool = True, device: str = "auto", batch_size: int = 64,
                            method: str = "clipscore") -> MetricValues:
    """CLIPScore (and RefCLIPScore) of a predictions file, or CLIPScore of prompt/image pairs;
    ``method`` (:data:`METHODS`) picks PAC-S/RefPAC-S, VQAScore or ITM instead.

    * ``predictions``: JSONL of ``{image_id, prediction[, references]}`` (mmbench's own
      ``predictions/<task>.jsonl`` works as is), with the images from ``images`` or ``task``.
      RefCLIPScore needs every line to carry ``references``.
    * ``pairs``: JSONL of ``{"image": path, "prompt": text}`` (e.g. a text-to-image system's
      outputs; paths relative to the file); CLIPScore of each image against its prompt.
    """
    if (predictions is None) == (pairs is None):
        raise MMBenchError("give either --predictions (captions) or --pairs (prompt/image pairs)")
    if method not in METHODS:
        raise MMBenchError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    _, _, ref_key = METHODS[method]
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
        values = _score(method, captions, [[] for _ in ids], image_refs, ids, scorer=scorer, with_references=False,
                        device=device, batch_size=batch_size)
        unavailable = {ref_key: "prompt/image pairs have no references"} if ref_key else {}
        return MetricValues(values.corpus, values.per_sample, unavailable, values.backend, values.warnings)

    from mmbench.scoring.readers import read_predictions

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
    values = _score(method, captions, refs_list or [[] for _ in ids], [table[s] for s in ids], ids, scorer=scorer,
                    with_references=references and refs_list is not None, device=device, batch_size=batch_size)
    failed = sum(1 for sid in ids if preds[sid][0] is None)
    warnings = values.warnings + ((f"{failed} recorded failure(s) scored as empty captions",) if failed else ())
    if references and refs_list is None and ref_key:
        unavailable = {**values.unavailable, ref_key: "not every prediction line has references"}
    else:
        unavailable = dict(values.unavailable)
    return MetricValues(values.corpus, values.per_sample, unavailable, values.backend, warnings)
