"""Hugging Face image captioners: VisionEncoderDecoder (ViT+GPT-2), BLIP, GIT.

Greedy by default; the decoding settings come from the request (the task's
``generation:``), never from a checkpoint's ``generation_config`` defaults, so a
run is reproducible from its fingerprint.  A request with ``prompt_is_prefix``
conditions BLIP/GIT on the prompt text and strips it from the output.

Score requests (:class:`~mmbench.types.ScoreRequest`): the decoder's log-likelihood of the
continuation after its start token and the prompt (a caption prefix, usually none), i.e.
``log p(continuation | image, prefix)``: the start token (``decoder_start_token_id`` for
ViT+GPT-2, BLIP's ``[DEC]``, GIT's ``[CLS]``), then the prefix's and the continuation's
tokens, each tokenized on its own without special tokens; no end token is scored.

A score request's candidates share its image, and so do requests about one image: with
``prefix_reuse`` (the default) each distinct image of a batch (by pixel content) is encoded
once and its encoder output serves all its rows (ViT+GPT-2: the encoder's hidden states;
BLIP: the vision tower's; GIT: its image features, which the model's own forward repeats over
rows when every image has as many rows).  Scores equal the per-row path's within float
rounding (tested: within 1e-4, as between batch sizes).
"""

from __future__ import annotations

from typing import Any, Sequence

from mmbench.images import image_content_key
from mmbench.models.hf import HFAdapter
from mmbench.models.likelihood import ScoreRows, ScoringMixin, right_pad, sum_logprobs
from mmbench.types import GenerateRequest


class HFCaptioner(ScoringMixin, HFAdapter):
    adapter = "hf-captioner"
    capabilities = frozenset({"generate", "score"})

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

    def _generate_inputs(self, requests: Sequence[GenerateRequest], images: Sequence[list[Any]]) -> Any:
        prefixes = [r.prompt if r.prompt_is_prefix and r.prompt else None for r in requests]
        pil = [imgs[0] for imgs in images]
        if any(prefixes):
            self.tokenizer.padding_side = "left"
            inputs = self.processor(images=pil, text=[p or "" for p in prefixes], padding=True, return_tensors="pt")
        else:
            inputs = self.processor(images=pil, return_tensors="pt")
        return dict(inputs), prefixes

    def _generate_outputs(self, requests: Sequence[GenerateRequest], inputs: Any) -> list[str]:
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


    # -- likelihood ---------------------------------------------------------------
    def _start_token(self) -> int:
        config = self.model.config
        kind = config.model_type
        if kind == "vision-encoder-decoder":
            start = config.decoder_start_token_id
        elif kind == "blip":
            start = config.text_config.bos_token_id  # [DEC]: what generate starts from
        else:  # GIT: [CLS]
            start = getattr(self.model.generation_config, "bos_token_id", None) or config.bos_token_id
        if start is None:
            raise ValueError(f"{self.path!r} names no decoder start token; cannot score continuations")
        return int(start)

    def _score_inputs(self, rows: ScoreRows) -> Any:
        tok = self.tokenizer
        start = self._start_token()
        sequences, targets = [], []
        for context, cont in zip(rows.context, rows.continuation):
            prefix = tok(context, add_special_tokens=False)["input_ids"] if context else []
            ids = tok(cont, add_special_tokens=False)["input_ids"]
            sequences.append([start, *prefix, *ids])
            targets.append([False] * (1 + len(prefix)) + [True] * len(ids))
        # one pixel tensor per distinct image (by content; per row without prefix_reuse); rows index into it
        image_index, distinct, keys = [], {}, {}
        for r, imgs in enumerate(rows.images):
            if self.prefix_reuse:  # a request's rows share one list of images: hash it once
                key = keys.setdefault(id(imgs), image_content_key(imgs[:1]))
            else:
                key = r
            image_index.append(distinct.setdefault(key, (len(distinct), imgs[0]))[0])
        pixels = self.processor.image_processor(images=[im for _, im in distinct.values()],
                                                return_tensors="pt")["pixel_values"]
        # GIT repeats the features of n images over the rows (row q gets image q % n): put the rows
        # in that order when every image has as many rows, and the model encodes each image once
        order = _image_major(image_index, len(distinct)) if self.model.config.model_type == "git" else None
        order = order if order is not None and self.prefix_reuse else list(range(len(sequences)))
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        input_ids, mask, target = right_pad([sequences[r] for r in order], [targets[r] for r in order], pad)
        return {"input_ids": input_ids, "attention_mask": mask, "target": target, "pixel_values": pixels,
                "image_index": [image_index[r] for r in order], "order": order}

    @property
    def shares_prefixes(self) -> bool:
        return self.prefix_reuse

    def _score_rows(self, inputs: Any) -> list[tuple[float, int]]:
        import torch

        ids = inputs["input_ids"].to(self.device)
        mask = inputs["attention_mask"].to(self.device)
        pixels = inputs["pixel_values"].to(self.device, self.torch_dtype)
        index = torch.tensor(inputs["image_index"], device=self.device)
        kind = self.model.config.model_type
        if kind == "vision-encoder-decoder":  # encode each image once, then decode every row
            encoded = self.model.encoder(pixel_values=pixels).last_hidden_state[index]
            logits = self.model(encoder_outputs=(encoded,), decoder_input_ids=ids,
                                decoder_attention_mask=mask).logits
        elif kind == "blip":  # BlipForConditionalGeneration.forward, with the vision tower once per image
            encoded = self.model.vision_model(pixel_values=pixels).last_hidden_state[index]
            logits = self.model.text_decoder(input_ids=ids, attention_mask=mask,
                                             encoder_hidden_states=encoded).logits
        elif kind == "git":
            per_row = pixels if _is_image_major(inputs["image_index"], pixels.shape[0]) else pixels[index]
            logits = self.model(input_ids=ids, attention_mask=mask, pixel_values=per_row).logits
            logits = logits[:, -ids.shape[1]:]  # GIT's logits cover the image tokens first
        else:
            logits = self.model(input_ids=ids, attention_mask=mask, pixel_values=pixels[index]).logits
        scores = sum_logprobs(logits, ids, inputs["target"])
        out: list[Any] = [None] * len(scores)
        for position, row in enumerate(inputs["order"]):
            out[row] = scores[position]
        return out


def _image_major(image_index: list[int], n_images: int) -> list[int] | None:
    """An order of the rows in which row ``q`` shows image ``q % n_images`` (the j-th rows of every
    image, then the (j+1)-th ...), or None when the images do not all have as many rows.

    >>> _image_major([0, 0, 1, 1], 2)
    [0, 2, 1, 3]
    """
    rows: list[list[int]] = [[] for _ in range(n_images)]
    for r, i in enumerate(image_index):
        rows[i].append(r)
    if n_images == 0 or len({len(r) for r in rows}) != 1:
        return None
    return [rows[i][j] for j in range(len(rows[0])) for i in range(n_images)]


def _is_image_major(image_index: list[int], n_images: int) -> bool:
    """Whether row ``q`` shows image ``q % n_images`` for every row (and there are fewer images than rows)."""
    return n_images < len(image_index) and all(i == q % n_images for q, i in enumerate(image_index))


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
