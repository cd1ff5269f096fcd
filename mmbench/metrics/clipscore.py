"""CLIPScore and RefCLIPScore (Hessel et al., EMNLP 2021) from precomputed CLIP features.

This module never runs a model: the caller encodes images and texts and passes
the feature arrays.  To get numbers comparable with the paper and with the
official script (jmhessel/clipscore ``clipscore.py``):

* encode with CLIP ViT-B/32 (images resized to 224 with bicubic resampling,
  centre-cropped, CLIP's mean/std normalisation);
* prefix every candidate caption **and** every reference with
  :data:`CLIPSCORE_PROMPT` (``"A photo depicts "``, note the trailing space;
  the caption follows as is, no lower-casing) and let the tokenizer truncate to
  CLIP's 77 tokens.

Definitions, as the official code computes them (checked against it in
``tests/data/clipscore``):

* every feature row is L2-normalised;
* ``CLIPScore = w * max(cos(image, caption), 0)`` with ``w = 2.5``; the corpus
  value is the mean of the per-caption values (so it lies in [0, w]; the paper
  reports it x 100);
* ``ref = max over the caption's references of cos(caption, reference)``, neither
  clipped at 0 nor scaled by ``w`` (the paper's formula clips it at 0, the
  official code does not; with real CLIP features the cosine between two captions
  is positive, so the two agree in practice);
* ``RefCLIPScore = 2 * CLIPScore * ref / (CLIPScore + ref)`` (harmonic mean) per
  caption, and the corpus value is the mean of those.

Differences from the official code, all deliberate:

* features are normalised and multiplied in float64 (the official code works in
  the array's own dtype: float32 on CPU, float16 for CLIP on a GPU).  For float32
  features the two agree to ~1e-7; for float16 features to ~1e-3;
* where ``CLIPScore + ref == 0`` (both zero, in practice) the harmonic mean is
  taken as 0; the official code divides by zero (NaN);
* bad input (NaN/inf, an all-zero row, a caption without references) raises
  ``ValueError`` naming the row, where the official code returns NaN or fails an
  assertion.

Worked example: image ``[1, 0]``, caption ``[1, 1]`` (cosine 0.7071) gives
CLIPScore 2.5 x 0.7071 = 1.7678; with one reference equal to the caption,
ref = 1 and RefCLIPScore = 2 x 1.7678 x 1 / 2.7678 = 1.2774.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from mmbench.errors import DataError, MMBenchError
from mmbench.metrics.spec import MetricSpec, Output
from mmbench.types import EmbedRequest, ImageRef, MetricValues

__all__ = ["CLIPSCORE_PROMPT", "CLIPSCORE_W", "clip_score", "ref_clip_score", "score_clipscore", "clipscore_metric",
           "clipscore_features", "PAPER_SCORER"]

#: Text the caller must put before every candidate and reference caption before encoding.
CLIPSCORE_PROMPT = "A photo depicts "
#: The paper's rescaling weight.
CLIPSCORE_W = 2.5


def clip_score(image_feats, caption_feats, *, w: float = CLIPSCORE_W) -> tuple[float, np.ndarray]:
    """Reference-free CLIPScore.

    Args:
        image_feats: ``(n, d)`` CLIP image features, one row per caption's image.
        caption_feats: ``(n, d)`` CLIP text features of ``CLIPSCORE_PROMPT + caption``.
        w: rescaling weight (2.5 in the paper).

    Returns:
        ``(corpus_mean, per_caption)``; ``per_caption[i] = w * max(cos_i, 0)`` as float64.
    """
    _check_w(w)
    images = _unit_rows(image_feats, "image_feats")
    captions = _unit_rows(caption_feats, "caption_feats")
    if images.shape != captions.shape:
        raise ValueError(f"image_feats has shape {images.shape} but caption_feats has shape {captions.shape}: "
                         f"give one image feature row per caption, of the same dimension")
    per = w * np.maximum(np.einsum("nd,nd->n", images, captions), 0.0)
    return float(per.mean()), per


def ref_clip_score(image_feats, caption_feats, reference_feats: Sequence[np.ndarray], *,
                   w: float = CLIPSCORE_W) -> tuple[float, np.ndarray, float, np.ndarray]:
    """CLIPScore and RefCLIPScore.

    Args:
        image_feats, caption_feats, w: as for :func:`clip_score`.
        reference_feats: one entry per caption: an ``(m_i, d)`` array of the CLIP
            text features of its ``m_i >= 1`` references (each encoded with
            ``CLIPSCORE_PROMPT`` too), or a ``(d,)`` array for a single reference.

    Returns:
        ``(clipscore_mean, clipscore_per, refclipscore_mean, refclipscore_per)``.
    """
    clip_per, _, ref_per = _with_references(image_feats, caption_feats, reference_feats, w)
    return float(clip_per.mean()), clip_per, float(ref_per.mean()), ref_per


def _with_references(image_feats, caption_feats, reference_feats, w) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(CLIPScore per caption, best reference cosine per caption, RefCLIPScore per caption)."""
    _, clip_per = clip_score(image_feats, caption_feats, w=w)
    ref = _max_reference_cosine(_unit_rows(caption_feats, "caption_feats"), reference_feats)
    return clip_per, ref, _harmonic_mean(clip_per, ref)


def score_clipscore(image_feats, caption_feats, reference_feats: Sequence[np.ndarray] | None = None, *,
                    w: float = CLIPSCORE_W) -> MetricValues:
    """CLIPScore (and RefCLIPScore when references are given) as :class:`MetricValues`.

    ``corpus``: ``{"CLIPScore": mean, "RefCLIPScore": mean}`` (the latter only with
    references; otherwise it is listed in ``unavailable``).  ``per_sample``: one
    ``{"CLIPScore": ..., "RefCLIPScore": ...}`` per caption, in input order.
    ``warnings`` counts captions whose best reference cosine is negative (the
    official formula, reproduced here, is not meaningful there).
    """
    backend = {"implementation": "mmbench.metrics.clipscore (numpy float64)",
               "reference": "jmhessel/clipscore", "w": repr(float(w)), "prompt": CLIPSCORE_PROMPT}
    if reference_feats is None:
        mean, per = clip_score(image_feats, caption_feats, w=w)
        return MetricValues(corpus={"CLIPScore": mean},
                            per_sample=tuple({"CLIPScore": float(v)} for v in per),
                            unavailable={"RefCLIPScore": "no reference features given"},
                            backend={"CLIPScore": backend})

    per, ref, ref_per = _with_references(image_feats, caption_feats, reference_feats, w)
    warnings = []
    negative = int(np.count_nonzero(ref < 0))
    if negative:
        warnings.append(f"{negative} of {len(ref)} captions have a negative best cosine with their references; "
                        "RefCLIPScore follows the official code (no clipping) and is not meaningful for them")
    return MetricValues(corpus={"CLIPScore": float(per.mean()), "RefCLIPScore": float(ref_per.mean())},
                        per_sample=tuple({"CLIPScore": float(a), "RefCLIPScore": float(b)}
                                         for a, b in zip(per, ref_per)),
                        backend={"CLIPScore": backend, "RefCLIPScore": backend},
                        warnings=tuple(warnings))


# ----------------------------------------------------------------------------- with a scorer model

#: the paper's scorer (CLIP ViT-B/32), the default of ``mmbench score consistency``
PAPER_SCORER = "openai/clip-vit-base-patch32"


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
    """Image, caption and per-caption reference features from ``model`` (anything with
    ``embed(list[EmbedRequest]) -> list[ModelOutput]``): texts prefixed with
    :data:`CLIPSCORE_PROMPT`, each distinct text encoded once."""
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
                     images: Sequence[ImageRef | None], load_embedder: Callable[[str, str], Any],
                     sample_ids: Sequence[str] | None = None, scorer: str = PAPER_SCORER, device: str = "auto",
                     with_references: bool = True, batch_size: int = 64, required: bool = False,
                     w: float = CLIPSCORE_W) -> MetricValues:
    """The ``clipscore`` task metric: CLIPScore of each caption against its image, and
    RefCLIPScore against its references (``with_references``; samples without references
    make it unavailable rather than partial).

    ``load_embedder(scorer, device)`` returns the scorer model (an embedding adapter) or
    raises :class:`MMBenchError`; the runner injects it, so this module never loads a model.
    A scorer that cannot be loaded (not in the offline cache, say) makes both metrics
    unavailable with the reason and a warning, so the run's other metrics and predictions
    are still written (as METEOR without Java); ``required=True`` raises instead.  The
    scorer's name and fingerprint hash go into the metric backend (and so into the task
    fingerprint): runs scored by different CLIPs never share a leaderboard group.  ``w``: the
    rescaling weight (2.5, the paper's; :mod:`mmbench.metrics.pacscore` passes PAC-S's 2.0)."""
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
        model = load_embedder(scorer, device)
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
    values = score_clipscore(image_feats, caption_feats, ref_feats, w=w)
    scorer_info = {"scorer": scorer, "scorer_hash": model.fingerprint()["hash"]}
    backend = {k: {**dict(v), **scorer_info} for k, v in values.backend.items()}
    unavailable = dict(values.unavailable)
    if missing:
        unavailable["RefCLIPScore"] = "some samples have no references"
    elif not with_references:
        unavailable["RefCLIPScore"] = "disabled (with_references: false)"
    return MetricValues(corpus=values.corpus, per_sample=values.per_sample, unavailable=unavailable,
                        backend=backend, warnings=values.warnings)


CLIPSCORE = MetricSpec(
    name="clipscore", fn=clipscore_metric, version="1", primary="CLIPScore",
    description="CLIPScore and RefCLIPScore (Hessel et al. 2021, as jmhessel/clipscore) of captions, "
                "with the scorer model named by the task (recorded in the fingerprint)",
    outputs=(Output("CLIPScore"), Output("RefCLIPScore")),
    needs_images=True, run_options=("device", "load_embedder"))


# ----------------------------------------------------------------------------- helpers


def _check_w(w: float) -> None:
    if isinstance(w, bool) or not isinstance(w, (int, float, np.floating, np.integer)) or not np.isfinite(w) \
            or w <= 0:
        raise ValueError(f"w must be a positive number, got {w!r}")


def _unit_rows(x, name: str, *, allow_vector: bool = False) -> np.ndarray:
    """float64 copy of ``x`` with every row scaled to unit L2 norm; errors name the row."""
    arr = np.asarray(x)
    if allow_vector and arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows x dimension), got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if len(arr) == 0:
        raise ValueError(f"{name} is empty: nothing to score")
    arr = arr.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if len(bad):
        raise ValueError(f"{name} row {bad[0]} has NaN or infinite values" + _more(bad))
    norms = np.sqrt(np.einsum("nd,nd->n", arr, arr))
    bad = np.flatnonzero(norms == 0)
    if len(bad):
        raise ValueError(f"{name} row {bad[0]} is all zeros and cannot be L2-normalised" + _more(bad))
    return arr / norms[:, None]


def _more(bad: np.ndarray) -> str:
    return f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else ""


def _max_reference_cosine(captions: np.ndarray, reference_feats: Sequence[np.ndarray]) -> np.ndarray:
    """Per caption, the largest cosine with one of its references (unclipped, unscaled)."""
    if isinstance(reference_feats, np.ndarray) and reference_feats.ndim == 2:
        raise ValueError("reference_feats must be a sequence with one (m_i, d) array per caption, "
                         "not a single 2-D array (for one reference per caption use list(array[:, None, :]) "
                         "or a 3-D array)")
    if len(reference_feats) != len(captions):
        raise ValueError(f"reference_feats has {len(reference_feats)} entries but there are {len(captions)} "
                         f"captions: give one array of reference features per caption")
    refs = []
    for i, r in enumerate(reference_feats):
        if np.size(r) == 0:
            raise ValueError(f"reference_feats[{i}] is empty: caption {i} has no reference "
                             "(RefCLIPScore needs at least one)")
        refs.append(_unit_rows(r, f"reference_feats[{i}]", allow_vector=True))
    for i, r in enumerate(refs):
        if r.shape[1] != captions.shape[1]:
            raise ValueError(f"reference_feats[{i}] has dimension {r.shape[1]} but caption_feats has "
                             f"dimension {captions.shape[1]}")
    counts = np.array([len(r) for r in refs])
    owner = np.repeat(np.arange(len(refs)), counts)
    cosines = np.einsum("nd,nd->n", np.concatenate(refs), captions[owner])
    return np.maximum.reduceat(cosines, np.concatenate(([0], np.cumsum(counts)[:-1])))


def _harmonic_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    total = a + b
    out = np.zeros_like(total)
    np.divide(2 * a * b, total, out=out, where=total != 0)
    return out
