"""OpenCLIP CoCa (contrastive captioners): one model, two heads.

``--adapter open-clip-coca --model coca_ViT-B-32 --model-arg pretrained=mscoco_finetuned_laion2b_s13b_b90k``
serves

* **embed** (retrieval, zero-shot, CLIPScore as a scorer): CoCa's contrastive towers, as the
  ``open-clip`` adapter serves a CLIP (``encode_image`` / ``encode_text``, L2-normalised float32);
* **generate** (captioning): CoCa's captioning decoder, greedy, from the start-of-text token.

Greedy decoding is written here, not taken from ``CoCa.generate``: open_clip 3.3 switches its
``generate`` off under transformers 5 (``coca_model.py`` imports ``BeamSearchScorer``, which
transformers 5 removed, and then asserts that transformers is missing).  The loop is the one
``CoCa.generate`` runs with ``generation_type="top_k", top_k=1`` (its logits warper keeps only the
most likely token, so its ``multinomial`` draw is the argmax): the image encoded once, the decoder
re-run on the growing text each step, the end token barred until ``min_seq_len`` tokens (start
token included; open_clip's default 5), finished rows padded.  ``tests/test_open_clip_coca.py``
checks token-for-token equality with ``CoCa.generate`` (its transformers names restored).  The
request's ``max_new_tokens`` bounds the new tokens; beam search and sampling are refused.

Fingerprint: besides the ``open-clip`` adapter's (model name, pretrained tag or local file hash,
open_clip version), a SHA-256 of the loaded state dict (so a pretrained *tag* is pinned to the
bytes it resolved to) and of the model config (``open_clip.get_model_config``), and ``min_seq_len``.
A custom architecture is an open_clip model config JSON passed as ``--model-arg
model_config=path/NAME.json`` (registered with ``open_clip.add_model_config``; ``--model NAME``);
its content, not its path, is in the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

from mmbench.errors import ModelLoadError
from mmbench.models.base import hash_state_dict
from mmbench.models.open_clip_adapter import OpenCLIPModel
from mmbench.models.torchvision_shim import import_open_clip
from mmbench.types import GenerateRequest


class OpenCLIPCoCa(OpenCLIPModel):
    adapter = "open-clip-coca"
    capabilities = frozenset({"embed", "generate"})

    def __init__(self, name: str, *, path: str | None = None, pretrained: str | None = None,
                 model_config: str | None = None, min_seq_len: int | str = 5, device: str = "auto",
                 dtype: str = "auto", **kwargs: Any):
        try:
            open_clip, _ = import_open_clip()
        except ImportError as exc:
            raise ModelLoadError(f"the open-clip-coca adapter needs open_clip: pip install open_clip_torch ({exc})") \
                from None
        model_name = path or name
        if model_config is not None:
            config_path = Path(model_config)
            if not config_path.is_file() or config_path.suffix != ".json":
                raise ModelLoadError(f"model_config {model_config!r} is not an open_clip model config .json file")
            if config_path.stem != model_name:
                raise ModelLoadError(f"model_config {config_path.name} registers model {config_path.stem!r}, but "
                                     f"--model is {model_name!r}")
            open_clip.add_model_config(config_path)
        try:
            self.min_seq_len = int(min_seq_len)
        except ValueError:
            raise ModelLoadError(f"min_seq_len must be an integer, not {min_seq_len!r}") from None
        super().__init__(name, path=path, pretrained=pretrained, device=device, dtype=dtype, **kwargs)
        if not isinstance(self.model, open_clip.CoCa):
            raise ModelLoadError(f"{model_name!r} is a {type(self.model).__name__}, not a CoCa model: use "
                                 "--adapter open-clip for contrastive-only models")
        tok = self.tokenizer
        if not all(hasattr(tok, a) for a in ("sot_token_id", "eot_token_id", "decode")):
            raise ModelLoadError(f"{model_name!r}: captioning needs open_clip's CLIP tokenizer (start/end tokens, "
                                 f"decode); this model's is a {type(tok).__name__}")
        config = open_clip.get_model_config(model_name)
        self.fingerprint_info.update(
            state_dict_sha256=hash_state_dict(self.model)["weights_sha256"],
            model_config_sha256=hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16],
            min_seq_len=self.min_seq_len, decoding="greedy (argmax), open_clip CoCa.generate top_k=1")

    # -- requests: embed (the base's hooks) or generate ----------------------
    def _preprocess(self, requests: Sequence[Any], images: Sequence[list[Any]]) -> Any:
        if not isinstance(requests[0], GenerateRequest):
            return super()._preprocess(requests, images)
        for req, imgs in zip(requests, images):
            if not isinstance(req, GenerateRequest):
                raise ValueError("a batch mixes caption and embedding requests")
            if len(imgs) != 1:
                raise ValueError(f"CoCa captions one image per request, got {len(imgs)}")
            if req.prompt_is_prefix and req.prompt:
                raise ValueError("CoCa captioning from a text prefix is not supported by open-clip-coca")
            gen = req.generation
            if gen.do_sample or gen.num_beams != 1:
                raise ValueError(f"open-clip-coca decodes greedily; the task asks for num_beams={gen.num_beams}, "
                                 f"do_sample={gen.do_sample}")
        budgets = {r.generation.max_new_tokens for r in requests}
        if len(budgets) != 1:
            raise ValueError(f"a batch with different max_new_tokens {sorted(budgets)}")
        return {"pixels": self._image_inputs([imgs[0] for imgs in images]), "max_new_tokens": budgets.pop()}

    def _forward(self, requests: Sequence[Any], inputs: Any) -> list[Any]:
        if not isinstance(requests[0], GenerateRequest):
            return super()._forward(requests, inputs)
        tokens = greedy_caption_tokens(self.model, inputs["pixels"].to(self.device, self.torch_dtype),
                                       inputs["max_new_tokens"], sot=self.tokenizer.sot_token_id,
                                       eot=self.tokenizer.eot_token_id, min_seq_len=self.min_seq_len)
        return [self.decode(row) for row in tokens.tolist()]

    def decode(self, ids: list[int]) -> str:
        """The new tokens up to (not including) the end token, as text."""
        eot = self.tokenizer.eot_token_id
        ids = ids[:ids.index(eot)] if eot in ids else ids
        return self.tokenizer.decode(ids).strip()


def greedy_caption_tokens(model: Any, pixels: Any, max_new_tokens: int, *, sot: int, eot: int,
                          min_seq_len: int = 5) -> Any:
    """``(n, <= max_new_tokens)`` new token ids: CoCa's greedy decoding (module docstring).  A row
    that has emitted ``eot`` (or the pad token) continues with ``model.pad_id``, as in ``CoCa.generate``."""
    import torch

    with torch.inference_mode():
        image_latent, image_embs = model._encode_image(pixels)
        out = torch.full((pixels.shape[0], 1), sot, dtype=torch.long, device=pixels.device)
        done = torch.zeros(pixels.shape[0], dtype=torch.bool, device=pixels.device)
        for _ in range(max_new_tokens):
            logits = model(pixels, out, image_latent=image_latent, image_embs=image_embs,
                           output_labels=False)["logits"][:, -1].float()
            if out.shape[1] < min_seq_len:  # transformers' MinLengthLogitsProcessor, as CoCa.generate applies it
                logits[:, eot] = -float("inf")
            step = torch.where(done, torch.full_like(done, model.pad_id, dtype=torch.long), logits.argmax(dim=-1))
            out = torch.cat([out, step[:, None]], dim=1)
            done |= (step == eot) | (step == model.pad_id)  # CoCa.generate ends a row at either
            if done.all():
                break
    return out[:, 1:]
