"""What every embedding adapter shares: split a batch into image and text requests, encode
each kind with its own tower, L2-normalise in float32, return vectors in request order.

Subclasses implement four hooks: :meth:`EmbeddingAdapter._image_inputs` /
:meth:`EmbeddingAdapter._text_inputs` (CPU preprocessing, run ahead by the runner's
prefetch) and :meth:`EmbeddingAdapter._encode_images` / :meth:`EmbeddingAdapter._encode_texts`
(the model, returning an ``(n, d)`` tensor).
"""

from __future__ import annotations

from typing import Any, Sequence

from mmbench.models.base import ModelAdapter
from mmbench.types import EmbedRequest


class EmbeddingAdapter(ModelAdapter):
    capabilities = frozenset({"embed"})

    def _preprocess(self, requests: Sequence[EmbedRequest], images: Sequence[list[Any]]) -> Any:
        image_rows = [i for i, r in enumerate(requests) if r.images]
        text_rows = [i for i, r in enumerate(requests) if not r.images]
        inputs: dict[str, Any] = {"image_rows": image_rows, "text_rows": text_rows}
        if any(len(images[i]) != 1 for i in image_rows):
            raise ValueError("an embedding request takes one image")
        if image_rows:
            inputs["image"] = self._image_inputs([images[i][0] for i in image_rows])
        if text_rows:
            texts = [requests[i].text for i in text_rows]
            if any(not isinstance(t, str) for t in texts):
                raise ValueError("an embedding request has neither an image nor a text")
            inputs["text"] = self._text_inputs(texts)
        return inputs

    def _forward(self, requests: Sequence[EmbedRequest], inputs: Any) -> list[Any]:
        import torch

        out: list[Any] = [None] * len(requests)
        with torch.inference_mode():
            for rows, key, encode in ((inputs["image_rows"], "image", self._encode_images),
                                      (inputs["text_rows"], "text", self._encode_texts)):
                if rows:
                    feats = encode(inputs[key]).float()
                    feats = feats / feats.norm(dim=-1, keepdim=True)
                    for row, vec in zip(rows, feats.cpu().numpy()):
                        out[row] = vec
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
