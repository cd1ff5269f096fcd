"""Compressed models: on-the-fly quantization (``--quantize``), pre-quantized checkpoints,
and the numbers a compressed model is judged by (sparsity, parameter count).

Two ways a quantized model reaches a run:

* ``--quantize METHOD`` quantizes a full-precision checkpoint while it loads
  (:data:`METHODS`).  ``int8`` / ``int4`` are torchao weight-only schemes, applied with
  torchao's own ``quantize_`` to every ``nn.Linear`` except the output head (the rule
  transformers' quantizers follow) after the weights, and any LoRA adapter, are loaded;
  ``bnb-int8`` / ``bnb-nf4`` are bitsandbytes through transformers' ``BitsAndBytesConfig``
  and need CUDA.  torchao is applied directly rather than through ``TorchAoConfig``
  because transformers 5.x's torchao loader calls ``get_input_embeddings()`` on every
  quantized layer, which dual encoders (``CLIPModel``) do not implement, so CLIP could not
  be quantized that way; ``quantize_`` is the function ``TorchAoConfig`` calls per layer.
* a checkpoint whose ``config.json`` has a ``quantization_config`` (GPTQ, AWQ,
  compressed-tensors, torchao, bitsandbytes, ...) loads as it is; what it is quantized
  with is read from that file (:func:`checkpoint_quantization`).

Either way the model's fingerprint gets a ``quantization`` entry (method, scheme, bits,
the library and its version), so a quantized run never shares a cache entry or a
leaderboard group with the full-precision one, and a method that cannot run here (no
CUDA, library missing) is refused in one line before any weights load
(:func:`check_quantization`, called by the pre-flight checks and by ``load_model``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

from mmbench.errors import ModelLoadError


@dataclass(frozen=True)
class QuantMethod:
    """One ``--quantize`` choice."""

    name: str
    library: str  # the distribution that does the work (its version is fingerprinted)
    scheme: str
    bits: int
    cuda_only: bool
    description: str


#: ``--quantize`` choices
METHODS: dict[str, QuantMethod] = {m.name: m for m in (
    QuantMethod("int8", "torchao", "int8-weight-only", 8, False,
                "torchao int8 weight-only, per-channel (CPU and GPU)"),
    QuantMethod("int4", "torchao", "int4-weight-only-g32", 4, False,
                "torchao int4 weight-only, groups of 32 (CPU and GPU; stored unpacked in int8)"),
    QuantMethod("bnb-int8", "bitsandbytes", "llm-int8", 8, True, "bitsandbytes LLM.int8() (CUDA only)"),
    QuantMethod("bnb-nf4", "bitsandbytes", "nf4", 4, True, "bitsandbytes 4-bit NF4 (CUDA only)"),
)}

#: a pre-quantized checkpoint's quant_method -> (the packages it needs, whether it needs CUDA).
#: Methods not listed are left to transformers, which names what it lacks.
CHECKPOINT_METHODS: dict[str, tuple[tuple[str, ...], bool]] = {
    "torchao": (("torchao",), False),
    "bitsandbytes": (("bitsandbytes",), True),
    "gptq": (("gptqmodel",), False),  # gptqmodel has CPU kernels; auto-gptq is not supported by transformers 5
    "awq": (("gptqmodel",), True),
    "compressed-tensors": (("compressed-tensors",), False),
    "quanto": (("optimum-quanto",), False),
    "hqq": (("hqq",), False),
    "fbgemm_fp8": (("fbgemm-gpu",), True),
    "fp8": ((), True),
    "eetq": (("eetq",), True),
    "aqlm": (("aqlm",), False),
}


def method_names() -> str:
    return ", ".join(f"{m.name} ({m.description})" for m in METHODS.values())


def quant_method(name: str) -> QuantMethod:
    """The ``--quantize`` method called ``name``, or a one-line error listing them all."""
    if name not in METHODS:
        raise ModelLoadError(f"unknown --quantize {name!r}; choose one of: {method_names()}")
    return METHODS[name]


def library_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def checkpoint_quantization(config: dict[str, Any]) -> dict[str, Any] | None:
    """What a checkpoint's ``config.json`` says it is quantized with, or None.

    >>> checkpoint_quantization({"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}})
    {'method': 'gptq', 'source': 'checkpoint', 'bits': 4, 'group_size': 128}
    """
    qc = config.get("quantization_config")
    if not isinstance(qc, dict):
        return None
    method = str(qc.get("quant_method", "unknown"))
    out: dict[str, Any] = {"method": method, "source": "checkpoint"}
    bits = qc.get("bits") or qc.get("w_bit") or qc.get("weights")
    if qc.get("load_in_4bit"):
        bits, out["scheme"] = 4, qc.get("bnb_4bit_quant_type", "fp4")
    elif qc.get("load_in_8bit"):
        bits, out["scheme"] = 8, "llm-int8"
    if method == "torchao":
        quant_type = qc.get("quant_type")
        if isinstance(quant_type, dict):  # {"default": {"_type": "Int8WeightOnlyConfig", ...}}
            types = sorted({str(v.get("_type")) for v in quant_type.values() if isinstance(v, dict)})
            out["scheme"] = ",".join(types) or None
        elif quant_type is not None:
            out["scheme"] = str(quant_type)
        scheme = str(out.get("scheme") or "")
        bits = bits or (8 if "Int8" in scheme else 4 if "Int4" in scheme else None)
    if method == "compressed-tensors":
        groups = qc.get("config_groups") or {}
        nbits = {w.get("num_bits") for g in groups.values() if isinstance(g, dict)
                 for w in [g.get("weights") or {}] if isinstance(w, dict) and w.get("num_bits")}
        bits = bits if isinstance(bits, int) else (next(iter(nbits)) if len(nbits) == 1 else sorted(nbits) or None)
        out["format"] = qc.get("format")
    if isinstance(bits, (int, list)):
        out["bits"] = bits
    if qc.get("group_size") is not None:
        out["group_size"] = qc["group_size"]
    return out


def _needs(packages: tuple[str, ...], what: str) -> None:
    missing = [p for p in packages if library_version(p) is None]
    if missing:
        raise ModelLoadError(f"{what} needs the {', '.join(missing)} package (pip install {' '.join(missing)}), "
                             "which is not installed")


def check_quantization(quantize: str | None, checkpoint: dict[str, Any] | None, device: str) -> None:
    """Refuse, in one line and before any weights load, a quantization this machine cannot run:
    an unknown ``--quantize``, a CUDA-only method on a CPU ``device``, a missing library, or
    ``--quantize`` on a checkpoint that is already quantized."""
    cuda = device.startswith("cuda")
    if quantize is not None:
        method = quant_method(quantize)
        if checkpoint is not None:
            raise ModelLoadError(f"--quantize {quantize}: the checkpoint is already quantized "
                                 f"({checkpoint['method']}); load it without --quantize")
        if method.cuda_only and not cuda:
            raise ModelLoadError(f"--quantize {quantize} ({method.library}) needs a CUDA GPU; the model would run "
                                 f"on {device}. On a CPU use --quantize int8 or int4 (torchao)")
        _needs((method.library,), f"--quantize {quantize}")
    elif checkpoint is not None:
        packages, cuda_only = CHECKPOINT_METHODS.get(checkpoint["method"], ((), False))
        if cuda_only and not cuda:
            raise ModelLoadError(f"this checkpoint is quantized with {checkpoint['method']}, which needs a CUDA GPU; "
                                 f"the model would run on {device}")
        _needs(packages, f"this checkpoint (quantized with {checkpoint['method']})")


def load_kwargs(quantize: str | None, device: str) -> dict[str, Any]:
    """Extra ``from_pretrained`` arguments for a method applied while weights load (bitsandbytes)."""
    if quantize is None or METHODS[quantize].library != "bitsandbytes":
        return {}
    import torch
    from transformers import BitsAndBytesConfig

    if quantize == "bnb-int8":
        config = BitsAndBytesConfig(load_in_8bit=True)
    else:
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                    bnb_4bit_compute_dtype=torch.bfloat16)
    return {"quantization_config": config, "device_map": {"": device}}


def quantize_loaded(model: Any, quantize: str) -> None:
    """Quantize a loaded model in place with a torchao method (bitsandbytes ones are applied
    while loading, :func:`load_kwargs`).  The output head stays in full precision."""
    method = METHODS[quantize]
    if method.library != "torchao":
        return
    import torch

    _quiet_import("torchao.quantization")
    from torchao.quantization import Int8WeightOnlyConfig, IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerGroup

    # torchao's Int4WeightOnlyConfig needs CUDA kernels (the mslk package) and has no CPU
    # packing in torchao 0.18; the intx workflow computes the same int4 groups on any device
    config = (Int8WeightOnlyConfig() if quantize == "int8"
              else IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(32)))
    head = model.get_output_embeddings() if _has_output_embeddings(model) else None

    def linear_not_head(module: Any, _fqn: str) -> bool:
        return isinstance(module, torch.nn.Linear) and module is not head and (
            quantize == "int8" or module.in_features % 32 == 0)

    quantize_(model, config, filter_fn=linear_not_head)


def _quiet_import(module: str) -> None:
    """Import ``module`` with torchao's import-time warnings silenced (a CPU build logs a
    "Failed to load" line per CUDA kernel library it ships, and torch one per registered enum);
    the loggers' levels are restored after."""
    import importlib
    import logging

    loggers = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        importlib.import_module(module)
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def quiet_torchao() -> None:
    """Import torchao (when installed) without its import-time warnings.  transformers imports it
    on every ``from_pretrained`` once it is installed (its torchao quantizer module does, at
    import), so call this before loading any model; about 3 s, once per process."""
    import sys

    if "torchao" not in sys.modules and library_version("torchao") is not None:
        try:
            _quiet_import("torchao")
            _quiet_import("torchao.prototype.safetensors.safetensors_support")  # what transformers imports
            _quiet_import("torchao.quantization")
        except Exception:  # noqa: BLE001 - a broken torchao fails later where it is used, with its own error
            pass


def _has_output_embeddings(model: Any) -> bool:
    try:
        return model.get_output_embeddings() is not None
    except (NotImplementedError, AttributeError):
        return False


def record(quantize: str) -> dict[str, Any]:
    """The fingerprint entry of an on-the-fly method."""
    method = METHODS[quantize]
    out = {"method": method.library, "source": "on-the-fly", "name": method.name, "scheme": method.scheme,
           "bits": method.bits, f"{method.library}_version": library_version(method.library)}
    if method.library == "torchao":
        out["modules"] = "nn.Linear except the output head"
    return out


def checkpoint_record(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint entry of a pre-quantized checkpoint: what config.json says, plus the
    versions of the libraries that run it."""
    packages, _ = CHECKPOINT_METHODS.get(checkpoint["method"], ((), False))
    return {**checkpoint, **{f"{p}_version": library_version(p) for p in packages}}


def weight_sparsity(model: Any) -> float | None:
    """The share of exactly-zero entries over a model's weight tensors (parameters with two or
    more dimensions: linear, convolution and embedding weights; biases and norms left out),
    the measure of a pruned model.  Quantized tensors are dequantized to count (a zero stays
    zero under symmetric quantization); None when no weight tensor can be read.

    >>> import torch
    >>> layer = torch.nn.Linear(4, 2, bias=False)
    >>> with torch.no_grad(): _ = layer.weight[0].zero_()
    >>> weight_sparsity(layer)
    0.5
    """
    import torch

    zeros = total = 0
    for param in model.parameters():
        if param.dim() < 2:
            continue
        data = param.detach()
        if type(data) is not torch.Tensor:
            try:
                data = data.dequantize()
            except Exception:  # noqa: BLE001 - a tensor subclass that cannot be read back: skipped
                continue
        if data.dim() < 2:  # bitsandbytes 4-bit packs weights into a flat tensor
            continue
        total += data.numel()
        zeros += int(data.numel() - torch.count_nonzero(data))
    return round(zeros / total, 6) if total else None
