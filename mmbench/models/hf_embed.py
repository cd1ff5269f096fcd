"""Contrastive dual encoders through transformers: CLIP, SigLIP, and any ``AutoModel``
with ``get_image_features`` / ``get_text_features``.

Every output is the model's projected embedding, L2-normalised in float32, so the
dot product of an image and a text embedding is their cosine similarity.  The
model's own processor prepares inputs: images with its image processor, texts with
its tokenizer, truncated to the text tower's length.  SigLIP was trained on texts
padded to the full length (it pools the last position), so for SigLIP-family
models texts are padded to ``max_length``; CLIP pools at the end-of-text token, so
padding to the longest text in the batch gives the same embedding as batch size 1.

A batch may mix image and text requests; each kind goes through its own tower in
one call (:class:`~mmbench.models.embedding.EmbeddingAdapter`).
"""

from __future__ import annotations

from typing import Any

from mmbench.errors import ModelLoadError
from mmbench.models.embedding import EmbeddingAdapter
from mmbench.models.hf import HFAdapter

#: model types whose text tower pools the last position: pad texts to max_length, as in training
_PAD_TO_MAX = {"siglip", "siglip2"}


class HFEmbeddingModel(EmbeddingAdapter, HFAdapter):
    adapter = "hf-embed"
    auto_class = "AutoModel"

    def _after_load(self) -> None:
        for method in ("get_image_features", "get_text_features"):
            if not hasattr(self.model, method):
                raise ModelLoadError(f"{self.path!r} ({type(self.model).__name__}) has no {method}: "
                                     "not a dual-encoder (CLIP-style) model")
        model_type = self.fingerprint_info.get("model_type")
        self.pad_to_max = model_type in _PAD_TO_MAX
        self.max_text_tokens = _text_length(self.model.config, self.tokenizer)
        self.fingerprint_info["text_padding"] = "max_length" if self.pad_to_max else "longest"
        self.fingerprint_info["max_text_tokens"] = self.max_text_tokens

    def _image_inputs(self, images: list[Any]) -> Any:
        # everything the image processor returns: pixel_values, and for NaFlex models (SigLIP2)
        # pixel_attention_mask and spatial_shapes
        processed = self.processor(images=images, return_tensors="pt")
        return {k: v for k, v in processed.items() if k not in ("input_ids", "attention_mask")}

    def _text_inputs(self, texts: list[str]) -> Any:
        tok = self.tokenizer(texts, padding="max_length" if self.pad_to_max else True, truncation=True,
                             max_length=self.max_text_tokens, return_tensors="pt")
        inputs = {k: v for k, v in tok.items() if k in ("input_ids", "attention_mask")}
        if self.pad_to_max:  # SigLIP was trained without an attention mask over padded texts
            inputs.pop("attention_mask", None)
        return inputs

    def _encode_images(self, inputs: Any) -> Any:
        return _features(self.model.get_image_features(**self.to_device(inputs)))

    def _encode_texts(self, inputs: Any) -> Any:
        return _features(self.model.get_text_features(**self.to_device(inputs)))


def _features(result: Any) -> Any:
    """transformers 5.x returns an output object whose ``pooler_output`` is the projected
    embedding; 4.x returns the tensor itself."""
    return result if hasattr(result, "dim") else result.pooler_output


def _text_length(config: Any, tokenizer: Any) -> int:
    text_config = getattr(config, "text_config", config)
    limits = [getattr(text_config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    limits = [int(n) for n in limits if isinstance(n, int) and 0 < n < 1_000_000]
    return min(limits) if limits else 77
