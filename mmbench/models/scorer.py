"""Scorer models: the embedding model a consistency metric (CLIPScore) scores with, loaded once.

Metrics never import model code: the runner and ``mmbench score`` pass :func:`load_embedder`
to the metric, which calls it with the scorer named by the task.
"""

from __future__ import annotations

from typing import Any

from mmbench.errors import MMBenchError

_EMBEDDERS: dict[tuple[str, str], Any] = {}


def load_embedder(spec: str, device: str = "auto") -> Any:
    """An embedding adapter for ``spec`` (a scorer such as CLIPScore's), loaded once per
    process and device; a model that cannot embed is a clear error."""
    from mmbench.models.resolve import load_model

    key = (spec, device)
    if key not in _EMBEDDERS:
        model = load_model(spec, device=device)
        if "embed" not in model.capabilities:
            raise MMBenchError(f"scorer {spec!r} ({model.adapter}) cannot embed images and texts: CLIPScore "
                               "needs a CLIP-style model (e.g. easyvqa-clip, openai/clip-vit-base-patch32)")
        _EMBEDDERS[key] = model
    return _EMBEDDERS[key]
