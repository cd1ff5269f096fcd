"""The model-adapter contract and the parts every adapter shares.

An adapter turns a batch of requests into one :class:`~mmbench.types.ModelOutput`
per request, in the same order.  Requests are :class:`~mmbench.types.GenerateRequest`
(text out: captioners, VQA heads, VLMs, served models),
:class:`~mmbench.types.EmbedRequest` (a vector out: CLIP, SigLIP) or
:class:`~mmbench.types.ScoreRequest` (log-likelihoods of candidate continuations:
captioners, VLMs, ITM heads, served models with prompt logprobs) or
:class:`~mmbench.types.GenerateImageRequest` (a PNG image out: text-to-image pipelines); an adapter lists
what it serves in :attr:`ModelAdapter.capabilities`, and the runner refuses a task
whose requests the model cannot serve before any work is done.  Image
decoding, device and dtype choice, and the per-sample isolation of failures live
here once: a request whose image cannot be decoded gets an error output and the
rest of its batch still runs.  Adapters never import tasks.
"""

from __future__ import annotations

import hashlib
import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from mmbench.errors import MMBenchError
from mmbench.hashing import checkpoint_files, hash_files
from mmbench.images import load_image
from mmbench.types import EmbedRequest, GenerateImageRequest, GenerateRequest, ModelOutput, ScoreRequest

#: request type -> the capability an adapter must list to serve it
CAPABILITY = {GenerateRequest: "generate", EmbedRequest: "embed", ScoreRequest: "score",
              GenerateImageRequest: "generate_image"}

#: what each capability lets a model do, for error messages
CAPABILITY_TEXT = {"generate": "generate text (captioning, VQA)", "embed": "embed images and texts (retrieval)",
                   "score": "score candidate texts by likelihood (ScoreRequest)",
                   "generate_image": "generate images from text (text-to-image)"}


def required_capability(request: Any) -> str:
    return CAPABILITY[type(request)]


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
    """A fingerprint of a checkpoint folder's contents (weights, configs, tokenizer and processor
    files, chat templates: :func:`mmbench.hashing.checkpoint_files`), independent of where the
    folder sits.

    Files are hashed in full up to ``full_limit_bytes`` in total; beyond that (multi-GB
    checkpoints) each file contributes its size and its first and last MiB, and the
    fingerprint says ``"partial": true``.
    """
    files = checkpoint_files(directory)
    total = sum(path.stat().st_size for _, path in files)
    partial = total > full_limit_bytes
    return {"weights_sha256": hash_files(files, partial=partial)[:16], "partial": partial, "bytes": total}


def hash_state_dict(model: Any) -> dict[str, Any]:
    """A fingerprint of an in-memory model's current weights: SHA-256 over every state-dict
    entry's name, dtype, shape and bytes (in name order), so the same model after one more
    training step has another fingerprint.  Reads every byte (about 1 s per GB on a CPU)."""
    import torch

    digest = hashlib.sha256()
    total = 0
    for key, tensor in sorted(model.state_dict().items()):
        if not isinstance(tensor, torch.Tensor):
            continue
        data = tensor.detach()
        if type(data) is not torch.Tensor:  # a quantized tensor subclass: its dequantized values
            data = data.dequantize()
        data = data.cpu().contiguous()
        digest.update(f"{key}|{data.dtype}|{tuple(data.shape)}|".encode())
        raw = data.reshape(-1).view(torch.uint8).numpy() if data.numel() else b""
        digest.update(memoryview(raw))
        total += data.numel() * data.element_size()
    return {"weights_sha256": digest.hexdigest()[:16], "partial": False, "bytes": total, "in_memory": True}


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA out-of-memory (or host MemoryError): a batch-size problem, not a sample's fault."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _failure(request_id: str, exc: BaseException) -> ModelOutput:
    """An error output for one request; code errors keep their traceback (data errors say it all)."""
    tb = None if isinstance(exc, MMBenchError) else "".join(traceback.format_exception(exc))
    return ModelOutput(request_id, error=_describe(exc), traceback=tb)


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, MMBenchError) else f"{exc.__class__.__name__}: {exc}"


def png_bytes(image: Any) -> bytes:
    """A PIL image (converted to 8-bit RGB) as PNG bytes; the same pixels give the same bytes."""
    import io

    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _output(request: Any, value: Any) -> ModelOutput:
    if isinstance(request, GenerateImageRequest):
        if isinstance(value, bytes) and value.startswith(b"\x89PNG"):
            return ModelOutput(request.id, image=value)
        if hasattr(value, "convert") and hasattr(value, "size"):  # a PIL image
            return ModelOutput(request.id, image=png_bytes(value))
        return ModelOutput(request.id, error=f"the model returned {type(value).__name__}, not an image")
    if isinstance(request, EmbedRequest):
        import numpy as np

        vector = np.asarray(value, dtype=np.float32)
        if vector.ndim != 1 or not np.isfinite(vector).all():
            return ModelOutput(request.id, error=f"the model returned a non-finite or malformed embedding "
                                                 f"(shape {vector.shape}) for this {request.modality}")
        return ModelOutput(request.id, embedding=vector)
    if isinstance(request, ScoreRequest):
        import math

        scores = tuple((float(total), int(n)) for total, n in value)
        if len(scores) != len(request.continuations) or not all(math.isfinite(t) and t <= 1e-6 and n >= 0
                                                                for t, n in scores):
            return ModelOutput(request.id, error=f"the model returned malformed scores {scores!r} for "
                                                 f"{len(request.continuations)} continuation(s)")
        return ModelOutput(request.id, scores=scores)
    return ModelOutput(request.id, text=value)


@dataclass
class PreparedBatch:
    """A batch after its CPU work: the requests whose images decoded, their inputs, and failures."""

    ids: list[str]
    requests: list[GenerateRequest] = field(default_factory=list)
    images: list[list[Any]] = field(default_factory=list)
    inputs: Any = None
    failures: dict[str, ModelOutput] = field(default_factory=dict)


class ModelAdapter:
    """Base class.

    Subclasses implement either :meth:`_generate_batch` (decoded images in, texts out), or
    the split pair :meth:`_preprocess` (CPU: processor) and :meth:`_forward` (model), which
    lets the runner prepare the next batch while the model runs this one.
    """

    #: the adapter family (recorded in results)
    adapter = "base"
    #: what the adapter serves: "generate" (GenerateRequest -> text), "embed" (EmbedRequest -> vector),
    #: "score" (ScoreRequest -> log-likelihoods), "generate_image" (GenerateImageRequest -> PNG image)
    capabilities: frozenset[str] = frozenset({"generate"})
    #: True when the adapter computes what requests about one image (or repeated inputs) share
    #: once, within a batch: the runner then batches such requests together
    shares_prefixes = False
    #: where ``--batch-size auto`` starts on a CPU (it halves on out-of-memory): batching a CPU's
    #: compute-bound work gains little beyond this
    auto_batch_cpu = 16

    def __init__(self, name: str, *, device: str = "auto", dtype: str = "auto", **_: Any):
        self.name = name
        self.device = pick_device(device)
        self.dtype_name = dtype
        self.fingerprint_info: dict[str, Any] = {}

    # -- identity -----------------------------------------------------------
    #: fingerprint keys that say where or under which name a model was found, not what it computes:
    #: they are recorded but left out of the hash, so a checkpoint copied elsewhere keeps its fingerprint
    LOCATION_KEYS = frozenset({"name", "path", "peft_adapter_path"})
    #: fingerprint keys recorded for readers but derived from hashed ones (a fine-tune's base model:
    #: its hash follows from the base weights already hashed), so they are left out of the hash too
    DERIVED_KEYS = frozenset({"base_model"})
    #: True when ``fingerprint_info`` identifies everything the outputs depend on (a weights hash, a
    #: hub revision, a table's hash); otherwise the registered name stays in the hash, so two names
    #: of one adapter class never share cache entries by accident
    fingerprint_identifies_content = False

    def fingerprint(self) -> dict[str, Any]:
        """What determines this model's outputs (adapter, weights and config hashes, dtype, chat
        template, settings), with ``hash`` over everything but :attr:`LOCATION_KEYS`."""
        fp = {"adapter": self.adapter, "name": self.name, **self.fingerprint_info}
        fp["hash"] = self.fingerprint_hash(fp)
        return fp

    def fingerprint_hash(self, fp: dict[str, Any]) -> str:
        """The hash of fingerprint ``fp``: everything but location and derived keys."""
        hidden = self.LOCATION_KEYS if self.fingerprint_identifies_content else self.LOCATION_KEYS - {"name"}
        hashed = {k: v for k, v in fp.items() if k not in hidden and k not in self.DERIVED_KEYS}
        return hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def render_prompt(self, prompt: str | None, n_images: int = 1) -> str | None:
        """The exact text the model sees for ``prompt`` (chat template applied), for fingerprints."""
        return prompt

    def info(self) -> dict[str, Any]:
        return {"device": self.device, "dtype": self.dtype_name}

    # -- inference ----------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> list[ModelOutput]:
        """Answer every request, in order.  Never raises for one bad sample."""
        return self.run(self.prepare(requests))

    def embed(self, requests: Sequence[EmbedRequest]) -> list[ModelOutput]:
        """Embed every request (an image or a text), in order; ``ModelOutput.embedding`` is set."""
        return self.run(self.prepare(requests))

    def score(self, requests: Sequence[ScoreRequest]) -> list[ModelOutput]:
        """Log-likelihood of each request's continuations, in order; ``ModelOutput.scores`` is set."""
        return self.run(self.prepare(requests))

    def generate_image(self, requests: Sequence[GenerateImageRequest]) -> list[ModelOutput]:
        """One image per request, in order; ``ModelOutput.image`` holds PNG bytes."""
        return self.run(self.prepare(requests))

    def check_serves(self, requests: Sequence[Any]) -> None:
        """Raise a clear error if any request needs a capability this adapter lacks."""
        needed = {required_capability(r) for r in requests}
        missing = needed - set(self.capabilities)
        if missing:
            what = CAPABILITY_TEXT
            raise MMBenchError(
                f"model {self.name!r} ({self.adapter}) cannot {' or '.join(what[m] for m in sorted(missing))}; "
                f"it serves: {', '.join(sorted(self.capabilities))}")

    def prepare(self, requests: Sequence[GenerateRequest]) -> PreparedBatch:
        """CPU work for a batch: decode images and run the processor.  Safe to call in a
        background thread while the previous batch runs (the runner overlaps them)."""
        batch = PreparedBatch(ids=[r.id for r in requests])
        for req in requests:
            try:
                images = [load_image(ref) for ref in req.images]
            except Exception as exc:  # noqa: BLE001 - recorded per sample, not swallowed
                batch.failures[req.id] = _failure(req.id, exc)
                continue
            batch.requests.append(req)
            batch.images.append(images)
        if batch.requests:
            try:
                batch.inputs = self._preprocess(batch.requests, batch.images)
            except Exception:  # noqa: BLE001 - run() retries sample by sample to find the culprit
                batch.inputs = None
        return batch

    def run(self, batch: PreparedBatch) -> list[ModelOutput]:
        """Model work for a prepared batch; a failure is isolated to its sample(s)."""
        outputs = dict(batch.failures)
        texts: list[Any] | None = None
        if batch.requests and batch.inputs is not None:
            try:
                texts = self._forward(batch.requests, batch.inputs)
            except Exception as exc:  # noqa: BLE001
                if is_out_of_memory(exc):
                    raise  # the runner shrinks the batch; no sample is at fault
                if len(batch.requests) == 1:
                    outputs[batch.requests[0].id] = _failure(batch.requests[0].id, exc)
                    return [outputs[sid] for sid in batch.ids]
        if texts is not None:
            outputs.update({req.id: _output(req, t) for req, t in zip(batch.requests, texts)})
        else:  # isolate the failing sample(s): one by one
            for req, imgs in zip(batch.requests, batch.images):
                try:
                    outputs[req.id] = _output(req, self._forward([req], self._preprocess([req], [imgs]))[0])
                except Exception as exc:  # noqa: BLE001
                    outputs[req.id] = _failure(req.id, exc)
        return [outputs[sid] for sid in batch.ids]

    # -- what adapters implement ---------------------------------------------
    def _preprocess(self, requests: Sequence[GenerateRequest], images: Sequence[list[Any]]) -> Any:
        """Turn decoded images (and prompts) into model inputs on the CPU.  Default: the images."""
        return images

    def _forward(self, requests: Sequence[Any], inputs: Any) -> list[Any]:
        """Run the model on prepared inputs; one string (GenerateRequest) or 1-D float32 array
        (EmbedRequest) per request.  Default: ``_generate_batch``."""
        return self._generate_batch(requests, inputs)

    def _generate_batch(self, requests: Sequence[GenerateRequest], images: Sequence[list[Any]]) -> list[str]:
        """Simplest adapter hook: decoded images in, texts out (no CPU/model split)."""
        raise NotImplementedError
