"""Scorer models: the model a consistency metric scores with, loaded once per process.

:func:`load_embedder` gives the embedding model of CLIPScore and PAC-S, :func:`load_scorer`
the model with the "score" capability of VQAScore (a generative VLM) and ITM (a BLIP ITM
head).  Metrics never import model code: the runner and ``mmbench score`` pass these
functions to the metric (run options ``load_embedder`` / ``load_scorer``), which calls them
with the scorer named by the task.
"""

from __future__ import annotations

from typing import Any

from mmbench.errors import MMBenchError

_LOADED: dict[tuple[str, str, str], Any] = {}


def _load_serving(spec: str, device: str, capability: str, refusal: str) -> Any:
    """``spec`` loaded once per process, device and capability; a model without ``capability``
    is refused with ``refusal`` (what the metric needs)."""
    from mmbench.models.resolve import load_model

    key = (spec, device, capability)
    if key not in _LOADED:
        model = load_model(spec, device=device)
        if capability not in model.capabilities:
            raise MMBenchError(f"scorer {spec!r} ({model.adapter}) {refusal}")
        _LOADED[key] = model
    return _LOADED[key]


def load_embedder(spec: str, device: str = "auto") -> Any:
    """An embedding adapter for ``spec`` (a scorer such as CLIPScore's), loaded once per
    process and device; a model that cannot embed is a clear error."""
    return _load_serving(spec, device, "embed", "cannot embed images and texts: CLIPScore needs a CLIP-style "
                                                "model (e.g. easyvqa-clip, openai/clip-vit-base-patch32)")


def load_scorer(spec: str, device: str = "auto") -> Any:
    """An adapter for ``spec`` that serves :class:`~mmbench.types.ScoreRequest` (a VLM or captioner
    for VQAScore, a BLIP ITM head for ITM), loaded once per process and device; a model that
    cannot score is a clear error."""
    return _load_serving(spec, device, "score", "cannot score texts by likelihood: VQAScore needs a generative "
                                                "VLM (hf-vlm), ITM a BLIP image-text-matching head (hf-itm)")
