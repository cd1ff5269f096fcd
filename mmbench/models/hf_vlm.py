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

Prefix reuse (on by default; ``--model-arg prefix_reuse=false`` turns it off): requests
about one image share the tokens up to where their prompts part (the template, the image's
tokens, the common start of the questions).  For the families in :data:`PREFIX_REUSE` a
batch's shared prefixes are run once (vision tower included) and every prompt, or every
scored continuation, continues from a copy of its prefix's key/value cache
(:mod:`mmbench.models.prefix`).  Greedy outputs equal the unshared path's (tested per
family on the tiny fixtures; likelihoods agree within 1e-4, float rounding from other
matrix shapes, as between batch sizes).  Other families, and sampling or beam search, run
every prompt whole; :data:`NO_PREFIX_REUSE` says why for the families that cannot share.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any, Sequence

from mmbench.errors import ModelLoadError
from mmbench.models.hf import HFAdapter
from mmbench.images import image_content_key
from mmbench.models import kv_cache, prefix
from mmbench.models.likelihood import ScoreRows, ScoringMixin, sum_logprobs
from mmbench.types import GenerateRequest

# processors that want one list of images per text instead of a flat list
_NESTED_IMAGES = {"idefics2", "idefics3", "smolvlm", "mllama", "gemma3"}
# families prompted with the plain text (no chat template in their checkpoints); the processor adds the images
_PLAIN_PROMPT = {"blip-2", "instructblip", "paligemma"}


#: families whose processor changes the prompt's end (PaliGemma adds "\n"): not scored
_NO_SCORING = {"paligemma"}

#: families whose prompts share a prefix's key/value cache: images enter as tokens of the
#: prompt, attention over the text is causal and positions are one number per token, so the
#: prefix's keys and values do not depend on what follows it (each is tested equal to the
#: unshared path in tests/test_prefix_reuse.py)
PREFIX_REUSE = frozenset({"llava", "llava_next", "idefics2", "idefics3", "gemma3"})
#: families that run every prompt whole, and why (any type in neither set does too: untested)
NO_PREFIX_REUSE = {
    "paligemma": "prefix-LM attention: image tokens attend to the whole prompt, so their states differ per question",
    "instructblip": "its Q-Former reads the question, so the image features differ per question",
    "blip-2": "its generate() always runs the vision tower and the Q-Former from pixel values",
    "mllama": "images enter through cross-attention layers with a per-token mask, not as prompt tokens",
    "qwen2_vl": "3-D rotary positions (rope deltas) computed over the whole prompt at prefill",
    "qwen2_5_vl": "3-D rotary positions (rope deltas) computed over the whole prompt at prefill",
    "qwen3_vl": "3-D rotary positions (rope deltas) computed over the whole prompt at prefill",
}


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

    @property
    def shares_prefixes(self) -> bool:
        """Whether this model runs what prompts share once (:data:`PREFIX_REUSE`, unless switched off)."""
        return self.prefix_reuse and self.model_type in PREFIX_REUSE and self._image_token_ids() is not None

    @property
    def auto_batch_cpu(self) -> int:
        """``--batch-size auto`` on a CPU: 32 when prefixes are shared (a batch then holds the questions
        of about three easy-VQA images; measured on the 221M LLaVA of benchmarks/prefix_reuse.py:
        7.0-7.5 samples/s at 32, 5.8-6.0 at 16, 6.4 at 64), else the default."""
        return 32 if self.shares_prefixes else super().auto_batch_cpu

    def _process(self, texts: list[str], images: Sequence[list[Any]], side: str) -> dict[str, Any]:
        """The processor's tensors for ``texts`` (images in the family's nesting), padded on ``side``."""
        nested = self.model_type in _NESTED_IMAGES
        batch_images = [list(imgs) for imgs in images] if nested else [im for imgs in images for im in imgs]
        return dict(self.processor(text=texts, images=batch_images or None, padding=True, padding_side=side,
                                   return_tensors="pt"))

    def _generate_inputs(self, requests: Sequence[GenerateRequest], images: Sequence[list[Any]]) -> Any:
        texts = [self.render_prompt(r.prompt, len(imgs)) for r, imgs in zip(requests, images)]
        inputs = self._process(texts, images, "left")
        gen = requests[0].generation
        if self.shares_prefixes and gen.num_beams == 1 and not gen.do_sample:  # greedy: equal outputs
            ids, mask = inputs["input_ids"], inputs["attention_mask"].bool()
            rows = [ids[r][mask[r]].tolist() for r in range(len(texts))]
            shared = self._shared_prefixes(rows, texts, images, latest=[len(row) - 1 for row in rows])
            if shared is not None:
                ids, mask = prefix.continuation_inputs(rows, shared["__plan__"], shared, self._pad_id, side="left")
                if self._fits_window(ids.shape[1] + gen.max_new_tokens):
                    shared["__continuation__"] = (ids, mask)
                    return shared
        return inputs

    def _generate_outputs(self, requests: Sequence[GenerateRequest], inputs: Any) -> list[str]:
        import torch

        with torch.inference_mode():
            if "__plan__" in inputs:  # continue every prompt from its shared prefix's cache
                ids, mask = inputs["__continuation__"]
                gen = requests[0].generation  # room for the rows' own tokens and the new ones
                room = ids.shape[1] - int(inputs["attention_mask"].shape[1]) + gen.max_new_tokens
                cache = self._prefill(inputs, room if self.grows_cache(gen) else None)
                kwargs = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device),
                          prefix.cache_kwarg(self.model): cache}
            else:
                kwargs = self.to_device(inputs)
                ids = inputs["input_ids"]
                cache = self.growing_cache(requests[0].generation)
                if cache is not None:
                    kwargs[prefix.cache_kwarg(self.model)] = cache
            out = self.model.generate(**kwargs, **self.generation_kwargs(requests[0].generation))
        new_tokens = out[:, ids.shape[1]:]
        return [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    # -- shared prefixes ----------------------------------------------------------
    def _image_token_ids(self) -> set[int] | None:
        """The ids of the tokens the model replaces with image features (from its config)."""
        config = self.model.config if hasattr(self, "model") else None
        found = {getattr(config, name, None) for name in ("image_token_id", "image_token_index")} - {None}
        return {int(i) for i in found} or None

    def _fits_window(self, width: int) -> bool:
        """Whether ``width`` columns (prefix, padding, own tokens, new tokens) fit in the model's
        sliding attention window, if it has one (Gemma 3, Mistral).  The window counts columns,
        and the padding between a row's prefix and its own tokens moves them apart, so a shared
        layout wider than the window would let a token see less than it does alone: such a batch
        runs unshared."""
        config = self.model.config
        window = getattr(getattr(config, "get_text_config", lambda: config)(), "sliding_window", None)
        return not window or width <= int(window)

    @property
    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else 0)

    def _shared_prefixes(self, rows: list[list[int]], texts: list[str], images: Sequence[list[Any]], *,
                         latest: list[int]) -> dict[str, Any] | None:
        """The prefill inputs of ``rows`` grouped by shared prefix (:func:`prefix.plan_prefixes`),
        one representative per group processed again with its images, or None when no two rows
        share a prefix (batch size 1, say) or a row cannot share (its image is its last token)."""
        image_tokens = self._image_token_ids()
        keys = [image_content_key(imgs) for imgs in images]
        earliest = [prefix.last_image_token_end(row, image_tokens) for row in rows]
        plan = prefix.plan_prefixes(rows, keys, earliest=earliest, latest=latest)
        if plan is None or plan.n_groups == len(rows):
            return None
        reps = self._process([texts[r] for r in plan.reps], [images[r] for r in plan.reps], "right")
        for g, r in enumerate(plan.reps):  # the same text tokenizes the same way: a broken processor would show here
            if reps["input_ids"][g, :len(rows[r])].tolist() != rows[r]:
                raise ValueError("the processor tokenized a prompt differently in a smaller batch")
        shared = prefix.prefill_inputs(reps, plan.prefix_len, self._pad_id)
        if "position_ids" not in inspect.signature(self.model.forward).parameters:
            shared.pop("position_ids")
        shared["__plan__"] = plan
        return shared

    def _prefill(self, inputs: dict[str, Any], room: int | None = None) -> Any:
        """Run each group's prefix once (images included) and copy its cache to the group's rows;
        with ``room``, into buffers that decoding fills in place (:mod:`mmbench.models.kv_cache`)."""
        tensors = self.to_device({k: v for k, v in inputs.items() if not k.startswith("__")})
        if "logits_to_keep" in inspect.signature(self.model.forward).parameters:
            tensors["logits_to_keep"] = 1  # the prefix's logits are never read
        out = self.model(**tensors, use_cache=True)
        cache, owner = prefix.output_cache(out), inputs["__plan__"].owner
        if room is None:
            return prefix.expand_cache(cache, owner)
        return kv_cache.make_room(cache, room, rows=owner)

    # -- likelihood ---------------------------------------------------------------
    def _score_inputs(self, rows: ScoreRows) -> Any:
        import torch

        contexts = [self.render_prompt(c, len(imgs)) for c, imgs in zip(rows.context, rows.images)]
        texts = [c + cont for c, cont in zip(contexts, rows.continuation)]
        full = self._process(texts, rows.images, "right")
        context_ids = self._process(contexts, rows.images, "right")
        ids, mask = full["input_ids"], full["attention_mask"]
        target = torch.zeros_like(ids, dtype=torch.bool)
        starts, lengths = [], []  # per row: first scored position, number of tokens
        for r in range(ids.shape[0]):
            n_ctx, n_all = int(context_ids["attention_mask"][r].sum()), int(mask[r].sum())
            if int(mask[r, :n_all].sum()) != n_all:
                raise ValueError("the processor did not pad on the right")
            # the first position where the whole text's tokens leave the context's (a merge across the boundary)
            same = ids[r, :n_ctx] == context_ids["input_ids"][r, :n_ctx]
            start = n_ctx if bool(same.all()) else int((~same).nonzero()[0])
            target[r, start:n_all] = True
            starts.append(start)
            lengths.append(n_all)
        if self.shares_prefixes:
            shared = self._shared_score_inputs(ids, lengths, starts, target, texts, rows.images)
            if shared is not None:
                return shared
        full["__target__"] = target
        return full

    def _shared_score_inputs(self, ids: Any, lengths: list[int], starts: list[int], target: Any, texts: list[str],
                             images: Sequence[list[Any]]) -> dict[str, Any] | None:
        """Score rows that share a context from its cache: each group's prefix ends before the
        position that predicts its first scored token, so every scored token's prediction is made
        in the row's own part; None when a batch cannot share."""
        import torch

        token_rows = [ids[r, :n].tolist() for r, n in enumerate(lengths)]
        shared = self._shared_prefixes(token_rows, texts, images, latest=[s - 1 for s in starts])
        if shared is None:
            return None
        plan = shared["__plan__"]
        cont_ids, cont_mask = prefix.continuation_inputs(token_rows, plan, shared, self._pad_id, side="right")
        if not self._fits_window(cont_ids.shape[1]):
            return None
        width = shared["input_ids"].shape[1]
        own_target = torch.zeros((len(token_rows), cont_ids.shape[1] - width), dtype=torch.bool)
        for r, n in enumerate(lengths):
            p = plan.prefix_len[plan.owner[r]]
            own_target[r, :n - p] = target[r, p:n]
        shared["__continuation__"] = (cont_ids, cont_mask, own_target)
        return shared

    def _score_rows(self, inputs: Any) -> list[tuple[float, int]]:
        if "__plan__" in inputs:
            ids, mask, target = inputs["__continuation__"]
            width = inputs["input_ids"].shape[1]
            own = ids[:, width:].to(self.device)
            logits = self.model(input_ids=own, attention_mask=mask.to(self.device),
                                position_ids=prefix.positions(mask)[:, width:].to(self.device),
                                **{prefix.cache_kwarg(self.model): self._prefill(inputs)}).logits
            return sum_logprobs(logits, own, target)
        target = inputs.pop("__target__")
        try:
            tensors = self.to_device(inputs)
            logits = self.model(**tensors).logits
        finally:
            inputs["__target__"] = target
        return sum_logprobs(logits, tensors["input_ids"], target)
