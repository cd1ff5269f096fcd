"""open_clip dual encoders (LAION's OpenCLIP: the models CLIP_benchmark evaluates).

Optional: needs ``pip install open_clip_torch``; where torchvision cannot be imported (a CPU
torch build without a matching torchvision), open_clip is imported over a PIL-only stand-in for
the few torchvision names it uses (:mod:`mmbench.models.torchvision_shim`: the same pixels as
torchvision's PIL path).  CoCa models: :mod:`mmbench.models.open_clip_coca`.  Select it
with ``--adapter open-clip``; ``--model`` is the open_clip model name (``ViT-B-32``, or
``hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K``) and the pretrained weights are a
model argument::

    mmbench eval --adapter open-clip --model ViT-B-32 --model-arg pretrained=laion2b_s34b_b79k \\
        --tasks flickr30k_1k

``pretrained`` may also be a local checkpoint file (its bytes are hashed into the
fingerprint).  Images go through the model's own evaluation transform, texts through
its own tokenizer; embeddings are L2-normalised in float32, like every embedding adapter.

Texts are padded to the longest in their batch, not to the full context (77 tokens for
CLIP), when the model's text tower allows it without changing an embedding: open_clip's
``CLIP`` class (its own ``encode_text``) with a causal attention mask and pooling at the
end-of-text token (``argmax``/``eos``).  There the pooled position attends only to the
positions before it, so the padding after it never reaches the embedding, and cutting
it off leaves the embedding equal within float rounding
(``tests/test_open_clip_text_padding.py``, run where open_clip is installed).  Captions
are short (COCO's are about 15 tokens), so this removes most of the text tower's work;
the runner's length-sorted batches keep the padding small.  Any other text tower
(custom towers, ``last`` pooling, no causal mask) gets the full context, as before;
``results.json`` says which (``model.text_padding``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from mmbench.errors import ModelLoadError
from mmbench.hashing import file_digest
from mmbench.models.base import pick_dtype
from mmbench.models.embedding import EmbeddingAdapter
from mmbench.models.torchvision_shim import import_open_clip


class OpenCLIPModel(EmbeddingAdapter):
    adapter = "open-clip"
    #: ``--model`` is an open_clip model name, not a Hugging Face checkpoint to resolve
    resolves_own_path = True
    fingerprint_identifies_content = True  # model name + pretrained tag (or the local file's hash)

    def __init__(self, name: str, *, path: str | None = None, pretrained: str | None = None, device: str = "auto",
                 dtype: str = "auto", **_: Any):
        super().__init__(name, device=device, dtype=dtype)
        try:  # over a PIL-only torchvision stand-in where torchvision does not import (torchvision_shim)
            open_clip, _ = import_open_clip()
        except ImportError as exc:
            raise ModelLoadError(f"the open-clip adapter needs the open_clip package: pip install open_clip_torch "
                                 f"({exc})") from None
        model_name = path or name
        self.torch_dtype = pick_dtype(dtype, self.device)
        self.dtype_name = str(self.torch_dtype).replace("torch.", "")
        try:
            with _no_weight_init() if pretrained else contextlib.nullcontext():
                model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained,
                                                                             device=self.device)
            self.tokenizer = open_clip.get_tokenizer(model_name)
        except (RuntimeError, ValueError, OSError, KeyError) as exc:
            raise ModelLoadError(f"open_clip cannot load {model_name!r} (pretrained={pretrained!r}): {exc}") from None
        self.model = model.to(self.torch_dtype).eval()
        self.preprocess = preprocess
        self.trims_text = _trims_text(open_clip, self.model)
        self.n_parameters = sum(p.numel() for p in self.model.parameters())
        info: dict[str, Any] = {"open_clip_model": model_name, "pretrained": pretrained,
                                "open_clip_version": getattr(open_clip, "__version__", None),
                                "n_parameters": self.n_parameters, "dtype": self.dtype_name}
        if pretrained and Path(pretrained).is_file():  # a local checkpoint: its bytes, not its location
            info["weights_sha256"] = file_digest(pretrained)[:16]
            info["pretrained"] = "local file"
            info["path"] = pretrained
        self.fingerprint_info = info

    def info(self) -> dict[str, Any]:
        return {"device": self.device, "dtype": self.dtype_name, "n_parameters": self.n_parameters,
                "text_padding": "longest" if self.trims_text else "context"}

    def _image_inputs(self, images: list[Any]) -> Any:
        import torch

        return torch.stack([self.preprocess(image) for image in images])

    def _text_inputs(self, texts: list[str]) -> Any:
        tokens = self.tokenizer(texts)
        if self.trims_text:  # up to the last pooled position of the batch: the rest is padding
            tokens = tokens[:, :int(_pooled_positions(self.model, tokens).max()) + 1]
        return tokens

    def _encode_images(self, inputs: Any) -> Any:
        return self.model.encode_image(inputs.to(self.device, self.torch_dtype))

    def _encode_texts(self, inputs: Any) -> Any:
        if self.trims_text and inputs.shape[1] < self.model.positional_embedding.shape[0]:
            return _encode_text_prefix(self.model, inputs.to(self.device))
        return self.model.encode_text(inputs.to(self.device))


@contextlib.contextmanager
def _no_weight_init() -> Iterator[None]:
    """Skip ``torch.nn.init``'s random initialisation while a model whose weights are loaded
    next is built (as transformers' ``no_init_weights`` does): open_clip initialises every
    parameter randomly before it loads a checkpoint over them, which costs seconds for a
    ViT-B-32 (7.8 s vs 0.8 s under load on 2 cores) and more for larger models.  Safe because
    open_clip loads a full checkpoint with ``strict=True``: a parameter the checkpoint lacks is
    an error, so no uninitialised value survives.  Used only when ``pretrained`` is given."""
    import torch

    names = [n for n in dir(torch.nn.init) if n.endswith("_") and not n.startswith("_")
             and callable(getattr(torch.nn.init, n))]
    saved = {n: getattr(torch.nn.init, n) for n in names}
    try:
        for n in names:
            setattr(torch.nn.init, n, _keep)
        yield
    finally:
        for n, fn in saved.items():
            setattr(torch.nn.init, n, fn)


def _keep(tensor: Any, *args: Any, **kwargs: Any) -> Any:
    return tensor


def _trims_text(open_clip: Any, model: Any) -> bool:
    """Whether ``model``'s text embeddings survive cutting the padding off (module docstring)."""
    clip_class = getattr(getattr(open_clip, "model", None), "CLIP", None)
    return (clip_class is not None and isinstance(model, clip_class)
            and type(model).encode_text is clip_class.encode_text  # the forward _encode_text_prefix mirrors
            and getattr(model, "attn_mask", None) is not None  # causal
            and getattr(model, "text_pool_type", None) in ("argmax", "eos")
            and (model.text_pool_type == "argmax" or getattr(model, "text_eos_id", None) is not None))


def _pooled_positions(model: Any, tokens: Any) -> Any:
    """The position each row's embedding is read from (open_clip's ``text_global_pool``)."""
    if model.text_pool_type == "argmax":
        return tokens.argmax(dim=-1)
    return (tokens == model.text_eos_id).int().argmax(dim=-1)


def _encode_text_prefix(model: Any, tokens: Any) -> Any:
    """open_clip ``CLIP.encode_text`` (3.x) on ``tokens`` shorter than the context: the
    positional embedding and the causal mask cut to their length.  open_clip has no
    option for this (its ``encode_text`` adds the full-length positional embedding), so
    its few lines are mirrored here; :func:`_trims_text` admits only models whose
    ``encode_text`` is that method."""
    import torch
    from open_clip.transformer import text_global_pool

    n = tokens.shape[1]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:n].to(cast_dtype)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:n, :n]))
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    if model.text_projection is None:
        return x
    return model.text_projection(x) if isinstance(model.text_projection, torch.nn.Linear) else x @ model.text_projection
