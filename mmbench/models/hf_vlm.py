"""Generative vision-language models through transformers' image-text-to-text classes.

LLaVA-style, Qwen-VL, Idefics3/SmolVLM and similar: the request's prompt is put in a
user turn after its images, rendered with the processor's chat template, and
generated greedily in left-padded batches; only the new tokens are decoded.
BLIP-2, InstructBLIP and PaliGemma checkpoints ship no chat template: their
processors put the image tokens in front of the plain prompt, which is passed as is.

Score requests (:class:`~mmbench.types.ScoreRequest`): the user turn (images, then the
prompt) rendered with the generation prompt, the continuation appended as the start of the
assistant's answer, and ``log p(continuation tokens | everything before)`` summed.  The
context and the whole text are tokenized by the processor (so image tokens expand as in
generation), right-padded; the continuation's tokens are those after the context's (as
lm-evaluation-harness takes them; a token merged across the boundary counts as the
continuation's).  PaliGemma's processor appends a newline to the prompt, so it cannot be
scored this way: it serves generation only.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from mmbench.errors import ModelLoadError
from mmbench.models.hf import HFAdapter
from mmbench.models.likelihood import ScoreRows, ScoringMixin, sum_logprobs
from mmbench.types import GenerateRequest

# processors that want one list of images per text instead of a flat list
_NESTED_IMAGES = {"idefics2", "idefics3", "smolvlm", "mllama"}
# families prompted with the plain text (no chat template in their checkpoints); the processor adds the images
_PLAIN_PROMPT = {"blip-2", "instructblip", "paligemma"}


#: families whose processor changes the prompt's end (PaliGemma adds "\n"): not scored
_NO_SCORING = {"paligemma"}


class HFVisionLanguageModel(ScoringMixin, HFAdapter):
    adapter = "hf-vlm"
    capabilities = frozenset({"generate", "score"})

    def model_class(self, config: Any) -> Any:
        self.model_type = config.model_type
        if self.model_type in _NO_SCORING:
            self.capabilities = frozenset({"generate"})
        return super().model_class(config)

    def load_processor(self) -> Any:
        processor = super().load_processor()
        self.chat_template = getattr(processor, "chat_template", None) or getattr(
            getattr(processor, "tokenizer", None), "chat_template", None)
        if self.chat_template is None and self.model_type not in _PLAIN_PROMPT:
            raise ModelLoadError(f"{self.path!r} has no chat template; mmbench needs one to prompt a VLM "
                                 "(add chat_template.jinja to the checkpoint)")
        processor.tokenizer.padding_side = "left"
        return processor

    def _after_load(self) -> None:
        if not hasattr(self, "chat_template"):  # from_loaded: the processor did not come through load_processor
            self.chat_template = getattr(self.processor, "chat_template", None) or getattr(
                getattr(self.processor, "tokenizer", None), "chat_template", None)
            self.processor.tokenizer.padding_side = "left"

    def _messages(self, prompt: str | None, n_images: int) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
        content.append({"type": "text", "text": prompt or ""})
        return [{"role": "user", "content": content}]

    def render_prompt(self, prompt: str | None, n_images: int = 1) -> str | None:
        if self.chat_template is None:  # a _PLAIN_PROMPT family
            return prompt or ""
        return self.processor.apply_chat_template(self._messages(prompt, n_images), add_generation_prompt=True,
                                                  tokenize=False)

    def fingerprint(self) -> dict[str, Any]:
        self.fingerprint_info["chat_template_sha256"] = (
            None if self.chat_template is None else hashlib.sha256(str(self.chat_template).encode()).hexdigest()[:16])
        return super().fingerprint()

    def _generate_inputs(self, requests: Sequence[GenerateRequest], images: Sequence[list[Any]]) -> Any:
        texts = [self.render_prompt(r.prompt, len(imgs)) for r, imgs in zip(requests, images)]
        nested = self.model_type in _NESTED_IMAGES
        batch_images = [list(imgs) for imgs in images] if nested else [im for imgs in images for im in imgs]
        return dict(self.processor(text=texts, images=batch_images, padding=True, return_tensors="pt"))

    def _generate_outputs(self, requests: Sequence[GenerateRequest], inputs: Any) -> list[str]:
        import torch

        with torch.inference_mode():
            out = self.model.generate(**self.to_device(inputs), **self.generation_kwargs(requests[0].generation))
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    # -- likelihood ---------------------------------------------------------------
    def _score_inputs(self, rows: ScoreRows) -> Any:
        import torch

        contexts = [self.render_prompt(c, len(imgs)) for c, imgs in zip(rows.context, rows.images)]
        nested = self.model_type in _NESTED_IMAGES

        def process(texts: list[str]) -> dict:
            batch_images = [list(i) for i in rows.images] if nested else [im for i in rows.images for im in i]
            return dict(self.processor(text=texts, images=batch_images or None, padding=True,
                                       padding_side="right", return_tensors="pt"))

        full = process([c + cont for c, cont in zip(contexts, rows.continuation)])
        context_ids = process(contexts)
        ids, mask = full["input_ids"], full["attention_mask"]
        target = torch.zeros_like(ids, dtype=torch.bool)
        for r in range(ids.shape[0]):
            n_ctx, n_all = int(context_ids["attention_mask"][r].sum()), int(mask[r].sum())
            if int(mask[r, :n_all].sum()) != n_all:
                raise ValueError("the processor did not pad on the right")
            # the first position where the whole text's tokens leave the context's (a merge across the boundary)
            same = ids[r, :n_ctx] == context_ids["input_ids"][r, :n_ctx]
            start = n_ctx if bool(same.all()) else int((~same).nonzero()[0])
            target[r, start:n_all] = True
        full["__target__"] = target
        return full

    def _score_rows(self, inputs: Any) -> list[tuple[float, int]]:
        target = inputs.pop("__target__")
        try:
            tensors = self.to_device(inputs)
            logits = self.model(**tensors).logits
        finally:
            inputs["__target__"] = target
        return sum_logprobs(logits, tensors["input_ids"], target)
