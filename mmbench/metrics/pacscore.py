"""PAC-S and RefPAC-S (Sarto et al., CVPR 2023, aimagelab/pacscore) from CLIP features.

PAC-S is CLIPScore's formula with the PAC-S checkpoint (a CLIP fine-tuned with positive
augmentations; it loads like any CLIP) and weight ``w = 2.0``, as the official
``compute_metrics.py`` calls ``PACScore(..., w=2.0)``:

* captions are prefixed with ``"A photo depicts "`` (``CapDataset``'s prefix) and L2-normalised
  with the images;
* ``PAC-S = w * max(cos(image, caption), 0)`` per caption, the corpus value the mean;
* ``RefPAC-S = 2 * PAC-S * ref / (PAC-S + ref)`` (harmonic mean) with ``ref`` the largest
  cosine between the caption and one of its references (unclipped, unscaled: ``RefPACScore``).

So PAC-S is :func:`mmbench.metrics.clipscore.score_clipscore` with ``w = 2.0`` (the same
float64 arithmetic and input checks); the values are checked against the official functions,
run unmodified on built features, in ``tests/data/pacs`` (README there).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from mmbench.metrics.clipscore import clipscore_metric, score_clipscore
from mmbench.metrics.spec import MetricSpec, Output
from mmbench.types import ImageRef, MetricValues

__all__ = ["PACS_W", "score_pacs", "pacs_metric"]

#: the official weight (compute_metrics.py: PACScore(..., w=2.0))
PACS_W = 2.0
_NAMES = {"CLIPScore": "PAC-S", "RefCLIPScore": "RefPAC-S"}


def _rename(values: MetricValues, extra: dict[str, str] | None = None) -> MetricValues:
    def key(k: str) -> str:
        return _NAMES.get(k, k)

    backend = {key(k): {**dict(v), "reference": "aimagelab/pacscore", "w": repr(PACS_W), **(extra or {})}
               for k, v in values.backend.items()}
    return MetricValues(corpus={key(k): v for k, v in values.corpus.items()},
                        per_sample=tuple({key(k): v for k, v in ps.items()} for ps in values.per_sample),
                        unavailable={key(k): v.replace("CLIPScore", "PAC-S") for k, v in values.unavailable.items()},
                        backend=backend,
                        warnings=tuple(w.replace("RefCLIPScore", "RefPAC-S").replace("CLIPScore", "PAC-S")
                                       for w in values.warnings))


def score_pacs(image_feats, caption_feats, reference_feats: Sequence[Any] | None = None) -> MetricValues:
    """PAC-S (and RefPAC-S with references) from features of the PAC-S CLIP (captions encoded
    with the ``"A photo depicts "`` prefix), as :class:`MetricValues` keyed ``PAC-S``/``RefPAC-S``."""
    return _rename(score_clipscore(image_feats, caption_feats, reference_feats, w=PACS_W))


def pacs_metric(predictions: Sequence[str], references: Sequence[Sequence[str]], *,
                images: Sequence[ImageRef | None], load_embedder: Callable[[str, str], Any], scorer: str,
                sample_ids: Sequence[str] | None = None, device: str = "auto", with_references: bool = True,
                batch_size: int = 64, required: bool = False) -> MetricValues:
    """The ``pac-s`` task metric: :func:`~mmbench.metrics.clipscore.clipscore_metric` with w = 2.0 and
    the scorer named by the task (a PAC-S checkpoint folder; there is no default: none is offline)."""
    values = clipscore_metric(predictions, references, images=images, load_embedder=load_embedder,
                              sample_ids=sample_ids, scorer=scorer, device=device, with_references=with_references,
                              batch_size=batch_size, required=required, w=PACS_W)
    return _rename(values)


PAC_S = MetricSpec(
    name="pac-s", fn=pacs_metric, version="1", primary="PAC-S",
    description="PAC-S and RefPAC-S (Sarto et al. 2023, as aimagelab/pacscore: w = 2.0) of captions, with the "
                "PAC-S CLIP checkpoint named by the task (recorded in the fingerprint)",
    outputs=(Output("PAC-S"), Output("RefPAC-S")), needs_images=True, run_options=("device", "load_embedder"))
