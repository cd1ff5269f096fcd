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

from typing import Sequence

import numpy as np

from mmbench.types import MetricValues

__all__ = ["CLIPSCORE_PROMPT", "CLIPSCORE_W", "clip_score", "ref_clip_score", "score_clipscore"]

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
