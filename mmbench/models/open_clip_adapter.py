"""open_clip dual encoders (LAION's OpenCLIP: the models CLIP_benchmark evaluates).

Optional: needs ``pip install open_clip_torch`` (which needs torchvision).  Select it
with ``--adapter open-clip``; ``--model`` is the open_clip model name (``ViT-B-32``, or
``hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K``) and the pretrained weights are a
model argument::

    mmbench eval --adapter open-clip --model ViT-B-32 --model-arg pretrained=laion2b_s34b_b79k \\
        --tasks flickr30k_1k

``pretrained`` may also be a local checkpoint file (its bytes are hashed into the
fingerprint).  Images go through the model's own evaluation transform, texts through
its own tokenizer (fixed context length, so a text's embedding does not depend on its
batch); embeddings are L2-normalised in float32, like every embedding adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmbench.errors import ModelLoadError
from mmbench.hashing import file_digest
from mmbench.models.base import pick_dtype
from mmbench.models.embedding import EmbeddingAdapter


class OpenCLIPModel(EmbeddingAdapter):
    adapter = "open-clip"
    #: ``--model`` is an open_clip model name, not a Hugging Face checkpoint to resolve
    resolves_own_path = True
    fingerprint_identifies_content = True  # model name + pretrained tag (or the local file's hash)

    def __init__(self, name: str, *, path: str | None = None, pretrained: str | None = None, device: str = "auto",
                 dtype: str = "auto", **_: Any):
        super().__init__(name, device=device, dtype=dtype)
        try:
            import open_clip
        except ImportError:
            raise ModelLoadError("the open-clip adapter needs the open_clip package: pip install open_clip_torch "
                                 "(it depends on torchvision)") from None
        model_name = path or name
        self.torch_dtype = pick_dtype(dtype, self.device)
        self.dtype_name = str(self.torch_dtype).replace("torch.", "")
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained,
                                                                         device=self.device)
            self.tokenizer = open_clip.get_tokenizer(model_name)
        except (RuntimeError, ValueError, OSError, KeyError) as exc:
            raise ModelLoadError(f"open_clip cannot load {model_name!r} (pretrained={pretrained!r}): {exc}") from None
        self.model = model.to(self.torch_dtype).eval()
        self.preprocess = preprocess
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
        return {"device": self.device, "dtype": self.dtype_name, "n_parameters": self.n_parameters}

    def _image_inputs(self, images: list[Any]) -> Any:
        import torch

        return torch.stack([self.preprocess(image) for image in images])

    def _text_inputs(self, texts: list[str]) -> Any:
        return self.tokenizer(texts)

    def _encode_images(self, inputs: Any) -> Any:
        return self.model.encode_image(inputs.to(self.device, self.torch_dtype))

    def _encode_texts(self, inputs: Any) -> Any:
        return self.model.encode_text(inputs.to(self.device))
