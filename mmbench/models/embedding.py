"""What every embedding adapter shares: split a batch into image and text requests, encode
each kind with its own tower, L2-normalise in float32, return vectors in request order.

Subclasses implement four hooks: :meth:`EmbeddingAdapter._image_inputs` /
:meth:`EmbeddingAdapter._text_inputs` (CPU preprocessing, run ahead by the runner's
prefetch) and :meth:`EmbeddingAdapter._encode_images` / :meth:`EmbeddingAdapter._encode_texts`
(the model, returning an ``(n, d)`` tensor).

With ``prefix_reuse`` (the default) a batch's equal inputs are encoded once: images keyed by
their pixels (:func:`~mmbench.images.image_content_key`), texts by their string; every
request gets the vector of its input's one encoding.  The runner puts equal inputs next to
each other (:func:`~mmbench.runner.batching.batching_key`), so a task encodes each distinct
input once per batch that holds it (a caption repeated over many images: about once).
"""

from __future__ import annotations

from typing import Any, Sequence

from mmbench.images import image_content_key
from mmbench.models.base import ModelAdapter
from mmbench.types import EmbedRequest


class EmbeddingAdapter(ModelAdapter):
    capabilities = frozenset({"embed"})
    prefix_reuse = True  # encode equal inputs of a batch once
    #: ``--batch-size auto`` on a CPU: an image tower's matrices grow with the batch (ViT-B/32:
    #: 50 tokens an image), so 64 inputs use the cores better than 16; open_clip ViT-B/32 on 772
    #: images + 772 captions, interleaved on 2 cores: model loop 41.5-43.1 s at 64 vs 46.7-48.6 s at 16
    #: (benchmarks/README.md, vs_clip_benchmark.py)
    auto_batch_cpu = 64

    @property
    def shares_prefixes(self) -> bool:
        return self.prefix_reuse

    def _preprocess(self, requests: Sequence[EmbedRequest], images: Sequence[list[Any]]) -> Any:
        image_rows = [i for i, r in enumerate(requests) if r.images]
        text_rows = [i for i, r in enumerate(requests) if not r.images]
        if any(len(images[i]) != 1 for i in image_rows):
            raise ValueError("an embedding request takes one image")
        texts = [requests[i].text for i in text_rows]
        if any(not isinstance(t, str) for t in texts):
            raise ValueError("an embedding request has neither an image nor a text")
        reuse = self.prefix_reuse
        image_take, image_from = _distinct(image_rows, [image_content_key(images[i]) for i in image_rows]
                                           if reuse else image_rows)
        text_take, text_from = _distinct(text_rows, texts if reuse else text_rows)
        inputs: dict[str, Any] = {"image_rows": image_rows, "text_rows": text_rows,
                                  "image_from": image_from, "text_from": text_from}
        if image_rows:
            inputs["image"] = self._image_inputs([images[i][0] for i in image_take])
        if text_rows:
            inputs["text"] = self._text_inputs([requests[i].text for i in text_take])
        return inputs

    def _forward(self, requests: Sequence[EmbedRequest], inputs: Any) -> list[Any]:
        import torch

        out: list[Any] = [None] * len(requests)
        with torch.inference_mode():
            for key, encode in (("image", self._encode_images), ("text", self._encode_texts)):
                if inputs[f"{key}_rows"]:
                    feats = encode(inputs[key]).float()
                    feats = (feats / feats.norm(dim=-1, keepdim=True)).cpu().numpy()
                    for row, source in zip(inputs[f"{key}_rows"], inputs[f"{key}_from"]):
                        out[row] = feats[source]
        return out

    # -- what embedding adapters implement --------------------------------------
    def _image_inputs(self, images: list[Any]) -> Any:
        raise NotImplementedError

    def _text_inputs(self, texts: list[str]) -> Any:
        raise NotImplementedError

    def _encode_images(self, inputs: Any) -> Any:
        raise NotImplementedError

    def _encode_texts(self, inputs: Any) -> Any:
        raise NotImplementedError


def _distinct(rows: list[int], keys: Sequence[Any]) -> tuple[list[int], list[int]]:
    """``(the first row of each distinct key, for every row the index of its key's first row
    among those)``.

    >>> _distinct([0, 1, 2, 3], ["a", "b", "a", "a"])
    ([0, 1], [0, 1, 0, 0])
    """
    first: dict[Any, int] = {}
    take: list[int] = []
    where = []
    for row, key in zip(rows, keys):
        if key not in first:
            first[key] = len(take)
            take.append(row)
        where.append(first[key])
    return take, where
