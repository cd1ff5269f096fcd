"""Hugging Face image captioners: VisionEncoderDecoder (ViT+GPT-2), BLIP, GIT.

Greedy by default; the decoding settings come from the request (the task's
``generation:``), never from a checkpoint's ``generation_config`` defaults, so a
run is reproducible from its fingerprint.  A request with ``prompt_is_prefix``
conditions BLIP/GIT on the prompt text and strips it from the output.
"""

from __future__ import annotations

from typing import Any, Sequence

from mmbench.models.hf import HFAdapter
from mmbench.types import GenerateRequest


class HFCaptioner(HFAdapter):
    adapter = "hf-captioner"

    def model_class(self, config: Any) -> Any:
        import transformers

        if config.model_type == "vision-encoder-decoder":
            return transformers.VisionEncoderDecoderModel
        return super().model_class(config)

    def load_processor(self) -> Any:
        from transformers import AutoImageProcessor, AutoTokenizer

        try:
            processor = super().load_processor()
        except (OSError, ValueError, TypeError, KeyError):
            processor = None
        if processor is None or not hasattr(processor, "image_processor"):
            # ViT+GPT-2 checkpoints ship an image processor and a tokenizer but no processor class
            # (AutoProcessor then returns just one of them)
            kw = self._hub_kwargs()
            processor = _PairProcessor(AutoImageProcessor.from_pretrained(self.path, **kw),
                                       AutoTokenizer.from_pretrained(self.path, **kw))
        return processor

    def _preprocess(self, requests: Sequence[GenerateRequest], images: Sequence[list[Any]]) -> Any:
        prefixes = [r.prompt if r.prompt_is_prefix and r.prompt else None for r in requests]
        pil = [imgs[0] for imgs in images]
        if any(prefixes):
            self.tokenizer.padding_side = "left"
            inputs = self.processor(images=pil, text=[p or "" for p in prefixes], padding=True, return_tensors="pt")
        else:
            inputs = self.processor(images=pil, return_tensors="pt")
        return dict(inputs), prefixes

    def _forward(self, requests: Sequence[GenerateRequest], inputs: Any) -> list[str]:
        import torch

        tensors, prefixes = inputs
        with torch.inference_mode():
            out = self.model.generate(**self.to_device(tensors), **self.generation_kwargs(requests[0].generation))
        texts = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        result = []
        for text, prefix in zip(texts, prefixes):
            text = text.strip()
            if prefix and text.lower().startswith(prefix.strip().lower()):
                text = text[len(prefix.strip()):].strip()
            result.append(text)
        return result


class _PairProcessor:
    """An image processor and a tokenizer used together, for checkpoints without a processor class."""

    def __init__(self, image_processor: Any, tokenizer: Any):
        self.image_processor = image_processor
        self.tokenizer = tokenizer

    def __call__(self, images: Any = None, text: Any = None, return_tensors: str = "pt", **kw: Any) -> dict:
        out = dict(self.image_processor(images=images, return_tensors=return_tensors))
        if text is not None:
            out.update(self.tokenizer(text, return_tensors=return_tensors, **kw))
        return out
