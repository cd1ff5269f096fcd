"""Text-only causal language models (GPT-2, Llama, Qwen2, ...) through ``AutoModelForCausalLM``.

The request's prompt is rendered with the tokenizer's chat template when it has one (one user
turn, generation prompt added), else passed as the plain text; batches are left-padded and
generated with the request's settings (greedy by default); only the new tokens are decoded.

The model never sees the request's images: used on an image task directly it is a *blind*
text-only baseline (the question alone).  Its main use is as the reasoner of a Socratic
pipeline (:mod:`mmbench.models.socratic`), which puts an image description into the prompt.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from mmbench.models.hf import HFAdapter
from mmbench.models.prefix import cache_kwarg
from mmbench.types import GenerateRequest


class HFCausalLM(HFAdapter):
    adapter = "hf-lm"
    auto_class = "AutoModelForCausalLM"

    def load_processor(self) -> Any:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.path, **self._hub_kwargs())
        self._setup_tokenizer(tokenizer)
        return tokenizer

    def _setup_tokenizer(self, tokenizer: Any) -> None:
        tokenizer.padding_side = "left"  # generation continues every row from its last real token
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.chat_template = getattr(tokenizer, "chat_template", None)

    def _after_load(self) -> None:
        if not hasattr(self, "chat_template"):  # from_loaded: the tokenizer did not come through load_processor
            self._setup_tokenizer(self.tokenizer)

    def render_prompt(self, prompt: str | None, n_images: int = 1) -> str | None:
        """The chat template applied to one user turn, or the plain prompt when there is none."""
        if not self.chat_template:
            return prompt or ""
        return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt or ""}],
                                                  add_generation_prompt=True, tokenize=False)

    def fingerprint(self) -> dict[str, Any]:
        self.fingerprint_info["chat_template_sha256"] = (
            None if not self.chat_template else hashlib.sha256(str(self.chat_template).encode()).hexdigest()[:16])
        return super().fingerprint()

    def _preprocess(self, requests: Sequence[GenerateRequest], images: Sequence[list[Any]]) -> Any:
        texts = [self.render_prompt(r.prompt) for r in requests]
        # a chat template writes its own special tokens (BOS); a plain prompt gets the tokenizer's defaults
        return dict(self.tokenizer(texts, padding=True, return_tensors="pt",
                                   add_special_tokens=not self.chat_template))

    def _forward(self, requests: Sequence[GenerateRequest], inputs: Any) -> list[str]:
        import torch

        tok = self.tokenizer
        gen = requests[0].generation
        kwargs = self.to_device(inputs)
        cache = self.growing_cache(gen)
        if cache is not None:  # filled in place, not torch.cat-copied at every token (mmbench.models.kv_cache)
            kwargs[cache_kwarg(self.model)] = cache
        with torch.inference_mode():
            out = self.model.generate(**kwargs, **self.generation_kwargs(gen), pad_token_id=tok.pad_token_id)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in tok.batch_decode(new_tokens, skip_special_tokens=True)]
