"""The model-adapter contract and the parts every adapter shares.

An adapter turns a batch of :class:`~mmbench.types.GenerateRequest` into one
:class:`~mmbench.types.ModelOutput` per request, in the same order.  Image
decoding, device and dtype choice, and the per-sample isolation of failures live
here once: a request whose image cannot be decoded gets an error output and the
rest of its batch still runs.  Adapters never import tasks.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

from mmbench.errors import MMBenchError
from mmbench.images import load_image
from mmbench.types import GenerateRequest, ModelOutput


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MMBenchError(f"--device {device} requested but CUDA is not available")
    return device


def pick_dtype(dtype: str, device: str):
    """``auto``: bfloat16 on GPUs that support it, float32 otherwise (CPU fp16 is slow and lossy)."""
    import torch

    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in table:
        raise MMBenchError(f"unknown dtype {dtype!r}; choose auto, float32, bfloat16 or float16")
    return table[dtype]


def hash_weights(directory: str | Path, full_limit_bytes: int = 2 << 30) -> dict[str, Any]:
    """A fingerprint of the weight files in ``directory``.

    Files are hashed in full up to ``full_limit_bytes`` in total; beyond that (multi-GB
    checkpoints) each file contributes its size and its first and last MiB, and the
    fingerprint says ``"partial": true``.
    """
    directory = Path(directory)
    files = sorted(p for p in directory.iterdir()
                   if p.is_file() and p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".json"))
    total = sum(p.stat().st_size for p in files)
    partial = total > full_limit_bytes
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode())
        size = p.stat().st_size
        h.update(str(size).encode())
        with p.open("rb") as fh:
            if not partial or size <= 2 << 20:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            else:
                h.update(fh.read(1 << 20))
                fh.seek(-(1 << 20), 2)
                h.update(fh.read(1 << 20))
    return {"weights_sha256": h.hexdigest()[:16], "partial": partial, "bytes": total}


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, MMBenchError) else f"{exc.__class__.__name__}: {exc}"


class ModelAdapter:
    """Base class.  Subclasses implement :meth:`_generate_batch` (and :meth:`load`)."""

    #: the adapter family (recorded in results)
    adapter = "base"

    def __init__(self, name: str, *, device: str = "auto", dtype: str = "auto", **_: Any):
        self.name = name
        self.device = pick_device(device)
        self.dtype_name = dtype
        self.fingerprint_info: dict[str, Any] = {}

    # -- identity -----------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        fp = {"adapter": self.adapter, "name": self.name, **self.fingerprint_info}
        fp["hash"] = hashlib.sha256(json.dumps(fp, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return fp

    def render_prompt(self, prompt: str | None, n_images: int = 1) -> str | None:
        """The exact text the model sees for ``prompt`` (chat template applied), for fingerprints."""
        return prompt

    def info(self) -> dict[str, Any]:
        return {"device": self.device, "dtype": self.dtype_name}

    # -- inference ----------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> list[ModelOutput]:
        """Answer every request, in order.  Never raises for one bad sample."""
        outputs: dict[str, ModelOutput] = {}
        ready: list[tuple[GenerateRequest, list[Any]]] = []
        for req in requests:
            try:
                ready.append((req, [load_image(ref) for ref in req.images]))
            except Exception as exc:  # noqa: BLE001 - recorded per sample, not swallowed
                outputs[req.id] = ModelOutput(req.id, error=_describe(exc))
        if ready:
            try:
                texts = self._generate_batch([r for r, _ in ready], [imgs for _, imgs in ready])
            except Exception as exc:  # noqa: BLE001
                if len(ready) == 1:
                    req = ready[0][0]
                    outputs[req.id] = ModelOutput(req.id, error=_describe(exc))
                else:  # isolate the failing sample(s): retry one by one
                    for req, imgs in ready:
                        try:
                            outputs[req.id] = ModelOutput(req.id, text=self._generate_batch([req], [imgs])[0])
                        except Exception as one_exc:  # noqa: BLE001
                            outputs[req.id] = ModelOutput(req.id, error=_describe(one_exc))
            else:
                for (req, _), text in zip(ready, texts):
                    outputs[req.id] = ModelOutput(req.id, text=text)
        return [outputs[r.id] for r in requests]

    def _generate_batch(self, requests: Sequence[GenerateRequest], images: Sequence[list[Any]]) -> list[str]:
        raise NotImplementedError
