"""Turn ``--model`` into a loaded adapter.

``--model`` may be

* a registered adapter name (``mmbench list models``), e.g. ``easyvqa-captioner``;
* a local directory written by ``save_pretrained`` (a fine-tuned checkpoint), or a
  PEFT/LoRA adapter directory (``adapter_config.json``), loaded on top of the base
  model it names;
* a Hugging Face hub id (``org/name``), read from the local cache when
  ``HF_HUB_OFFLINE=1`` - failing at once, with a clear message, if absent.

The adapter family is chosen from the checkpoint's ``config.json`` (``model_type``)
unless ``adapter=`` forces one.  :func:`resolve_model` does all of that without reading
weights, so an unknown ``--model-arg`` key is refused (:func:`check_model_args`) before
the model loads, and ``mmbench validate`` can render a model's prompts (:func:`prompt_renderer`).
"""

from __future__ import annotations

import inspect
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mmbench.catalog import MODELS
from mmbench.errors import ModelLoadError
from mmbench.models.base import ModelAdapter
from mmbench.models.quantize import check_quantization, checkpoint_quantization, quant_method

# The model types each adapter is known to serve: every one is built tiny from its config and
# evaluated end to end in the tests (tests/fixtures/tiny_*.py, tests/test_vlm_families.py).
CAPTIONER_TYPES = {"vision-encoder-decoder", "blip", "git"}
VLM_TYPES = {"llava", "llava_next", "idefics2", "idefics3", "paligemma", "gemma3", "mllama", "blip-2",
             "instructblip"}
# Not listed, because their processors cannot be built or loaded here, so nothing tests them:
# llava_onevision, qwen2_vl, qwen2_5_vl, qwen3_vl, internvl and smolvlm processors require a video
# processor, which needs torchvision (not importable beside the CPU torch build; smolvlm also needs
# num2words). Their checkpoints still reach hf-vlm through the *ForConditionalGeneration
# architecture rule in adapter_for_config, untested.
EMBEDDING_TYPES = {"clip", "siglip", "siglip2", "chinese_clip", "altclip", "align", "metaclip_2"}
# Text-only causal LMs (hf-lm): any checkpoint whose architecture is a *ForCausalLM / *LMHeadModel
# class; these types also when config.json names no architecture. GPT-2 and Llama are tested
# (tests/fixtures/tiny_lms.py).
LM_TYPES = {"gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi", "phi3", "gpt_neox", "opt",
            "smollm3", "olmo", "olmo2"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def fetch_config_file(spec: str, filename: str, revision: str | None = None,
                      required: bool = True) -> tuple[Path | None, str | None]:
    """Return ``(local path of filename, hub commit sha or None)`` for a directory or hub id.

    A file the repo does not have gives ``(None, None)``.  Offline, a file missing from
    the cache raises, unless ``required`` is False (then it may simply not exist)."""
    local = Path(spec).expanduser()
    if local.is_dir():
        path = local / filename
        return (path if path.is_file() else None), None
    if not _HUB_ID.match(spec):
        raise ModelLoadError(
            f"--model {spec!r} is not a registered model, not an existing directory, and not a hub id "
            f"(org/name). Registered models: {', '.join(MODELS.names())}.")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        path = Path(hf_hub_download(spec, filename, revision=revision))
    except LocalEntryNotFoundError:  # (a subclass of EntryNotFoundError: catch it first)
        if not required:
            return None, None
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise ModelLoadError(
            f"model {spec!r} is not in the local Hugging Face cache"
            + (" and the hub is offline (HF_HUB_OFFLINE=1)" if offline else " and the hub cannot be reached")
            + ". Download it once on a connected machine (`huggingface-cli download "
            + spec + "`), or pass a local directory.") from None
    except EntryNotFoundError:
        return None, None
    except RepositoryNotFoundError:
        raise ModelLoadError(f"hub model {spec!r} does not exist (or needs authentication)") from None
    except OSError as exc:
        raise ModelLoadError(f"cannot fetch {filename} of {spec!r}: {exc}") from None
    parts = path.parts
    sha = parts[parts.index("snapshots") + 1] if "snapshots" in parts else None
    return path, sha


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from None


def adapter_for_config(config: dict[str, Any], spec: str) -> str:
    model_type = config.get("model_type", "")
    archs = config.get("architectures") or []
    if model_type == "vilt" or any(a.endswith("ForQuestionAnswering") for a in archs):
        return "hf-vqa"
    if "BlipForImageTextRetrieval" in archs:
        return "hf-itm"
    if model_type in CAPTIONER_TYPES:
        return "hf-captioner"
    if model_type in EMBEDDING_TYPES:
        return "hf-embed"
    if model_type in VLM_TYPES:
        return "hf-vlm"
    if any(a.endswith("ForConditionalGeneration") or a.endswith("ForImageTextToText") for a in archs):
        return "hf-vlm"
    if any(a.endswith("ForCausalLM") or a.endswith("LMHeadModel") for a in archs) or (
            not archs and model_type in LM_TYPES):
        return "hf-lm"
    raise ModelLoadError(
        f"cannot tell which adapter serves {spec!r} (model_type {model_type!r}, architectures {archs}). "
        f"Pass --adapter with one of: {', '.join(MODELS.names())}.")


@dataclass(frozen=True)
class ResolvedModel:
    """What ``--model`` names, found without reading any weights (config files at most).

    ``cls`` is the adapter class (or factory); ``kwargs`` what :func:`load_model` passes it
    besides ``device``, ``dtype`` and the user's model arguments; ``fixed`` the keyword names
    that come from mmbench's own options (``--device``, ``--model``...), never from
    ``--model-arg``.
    """

    adapter: str
    cls: Any
    kwargs: dict[str, Any]
    fixed: frozenset[str]
    #: what config.json's ``quantization_config`` says (:func:`~mmbench.models.quantize.checkpoint_quantization`)
    quantization: dict[str, Any] | None = None


#: the option that sets each argument load_model passes every adapter itself
_FIXED_BY = {"name": "--model", "path": "--model", "peft_adapter": "--model", "device": "--device",
             "dtype": "--dtype", "revision": "--revision", "trust_remote_code": "--trust-remote-code",
             "quantize": "--quantize"}
_ALWAYS_FIXED = frozenset({"name", "device", "dtype", "revision", "trust_remote_code", "quantize"})


def resolve_model(spec: str, *, adapter: str | None = None, revision: str | None = None,
                  trust_remote_code: bool = False) -> ResolvedModel:
    """The adapter for ``spec`` and its loading arguments; reads config.json (and
    adapter_config.json for a PEFT directory), never weights."""
    if adapter is None and spec in MODELS:
        entry = MODELS.entry(spec)
        # registry options (a reference model's path=) are defaults that --model-arg may override
        return ResolvedModel(spec, entry.load(), {"name": spec, "revision": revision,
                                                  "trust_remote_code": trust_remote_code, **entry.options},
                             _ALWAYS_FIXED, _local_quantization(entry.options.get("path")))

    if adapter is not None and getattr(MODELS.get(adapter), "resolves_own_path", False):
        # e.g. open_clip: --model is a name that library resolves itself
        return ResolvedModel(adapter, MODELS.get(adapter), {"name": spec, "path": spec, "revision": revision,
                                                            "trust_remote_code": trust_remote_code},
                             _ALWAYS_FIXED | {"path"})

    index_path, _ = fetch_config_file(spec, "model_index.json", revision, required=False)
    if index_path is not None:  # a diffusers pipeline (text-to-image): no config.json at its root
        from mmbench.models.diffusers_adapter import check_model_index

        check_model_index(_read_json(index_path), spec, trust_remote_code)
        adapter_name = adapter or "diffusers"
        name = spec.rstrip("/").split("/")[-1] if Path(spec).is_dir() else spec
        return ResolvedModel(adapter_name, MODELS.get(adapter_name),
                             {"name": name, "path": spec, "revision": revision, "trust_remote_code": trust_remote_code},
                             _ALWAYS_FIXED | {"path"})
    peft_dir: str | None = None
    base_spec = spec
    adapter_cfg_path, _ = fetch_config_file(spec, "adapter_config.json", revision, required=False)
    if adapter_cfg_path is not None:
        adapter_cfg = _read_json(adapter_cfg_path)
        base_spec = adapter_cfg.get("base_model_name_or_path")
        if not base_spec:
            raise ModelLoadError(f"{adapter_cfg_path} does not name its base model (base_model_name_or_path)")
        peft_dir = spec if Path(spec).is_dir() else str(adapter_cfg_path.parent)
        base_spec = _peft_base(base_spec, Path(peft_dir))
    config_path, _ = fetch_config_file(base_spec, "config.json", None if peft_dir else revision)
    if config_path is None:
        raise ModelLoadError(f"{base_spec!r} has no config.json: not a transformers checkpoint")
    config = _read_json(config_path)
    if config.get("auto_map") and not trust_remote_code:
        raise ModelLoadError(
            f"{base_spec!r} needs its own Python code (config.json has auto_map). mmbench never runs a "
            "checkpoint's code unless you pass --trust-remote-code.")
    adapter_name = adapter or adapter_for_config(config, base_spec)
    name = spec.rstrip("/").split("/")[-1] if Path(spec).is_dir() else spec
    return ResolvedModel(adapter_name, MODELS.get(adapter_name),
                         {"name": name, "path": base_spec, "revision": None if peft_dir else revision,
                          "trust_remote_code": trust_remote_code, "peft_adapter": peft_dir},
                         _ALWAYS_FIXED | {"path", "peft_adapter"}, checkpoint_quantization(config))


def _peft_base(base: str, adapter_dir: Path) -> str:
    """Where a PEFT adapter's ``base_model_name_or_path`` points: a registered model with a local
    checkpoint (``easyvqa-vilt``) is that checkpoint; a relative path is taken relative to the
    adapter's folder first (so an adapter shipped beside its base works from any working
    directory), then as given; anything else is a hub id or a path, as written."""
    if base in MODELS and MODELS.entry(base).options.get("path"):
        return str(MODELS.entry(base).options["path"])
    if not Path(base).is_absolute() and (adapter_dir / base).is_dir():
        return str((adapter_dir / base).resolve())
    return base


def _local_quantization(path: Any) -> dict[str, Any] | None:
    """The quantization a registered model's local checkpoint folder records, if any."""
    config = Path(str(path)) / "config.json" if path else None
    return checkpoint_quantization(_read_json(config)) if config is not None and config.is_file() else None


def accepted_model_args(cls: Any) -> frozenset[str] | None:
    """The keyword arguments an adapter class (or factory) takes, read from its ``__init__``
    signatures; None when that cannot be told.

    An ``__init__`` with ``**kwargs`` hands the rest to the next ``__init__`` in the MRO
    (``super().__init__(name, **kwargs)``), so the walk goes on; it ends at an ``__init__``
    without ``**kwargs``, or at :class:`~mmbench.models.base.ModelAdapter`, whose ``**_``
    takes (and ignores) the arguments load_model passes every adapter.  A class may list keys
    it reads out of ``**kwargs`` itself in ``extra_model_args`` (a tuple of names), or set it to
    None to accept any key (a pass-through adapter).

    Introspection rather than a declared list in every adapter: the signature is what the code
    accepts, so the check cannot drift from it, and a third-party adapter (the example plugin's
    ``EchoCaptioner(name, delay=0.0, log=None, **kwargs)``) is checked without declaring anything.

    >>> sorted(accepted_model_args(ModelAdapter))
    ['device', 'dtype', 'name']
    """
    extra = getattr(cls, "extra_model_args", ())
    if extra is None:
        return None
    names: set[str] = set(extra)
    inits = ([klass.__dict__["__init__"] for klass in cls.__mro__
              if klass is not object and "__init__" in klass.__dict__] if isinstance(cls, type) else [cls])
    for init in inits:
        try:
            params = list(inspect.signature(init).parameters.values())
        except (TypeError, ValueError):  # a builtin without a signature: cannot tell
            return None
        names.update(p.name for p in params
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", "cls"))
        if not any(p.kind is p.VAR_KEYWORD for p in params) or init is ModelAdapter.__init__:
            return frozenset(names)
    return None  # **kwargs that reach no known end (a factory, a foreign base class)


def check_model_args(resolved: ResolvedModel, model_args: dict[str, Any]) -> None:
    """Refuse, in one line, a model argument the adapter does not take (it used to be ignored
    silently) or one that an mmbench option sets; listing the keys it accepts."""
    fixed = sorted(k for k in model_args if k in resolved.fixed)
    if fixed:
        key = fixed[0]
        raise ModelLoadError(f"--model-arg {key} is not a model argument: {_FIXED_BY.get(key, 'mmbench')} "
                             f"sets it")
    accepted = accepted_model_args(resolved.cls)
    if accepted is None:
        return
    unknown = sorted(set(model_args) - accepted)
    if unknown:
        takes = sorted(accepted - resolved.fixed)
        label = getattr(resolved.cls, "__name__", str(resolved.cls))
        raise ModelLoadError(
            f"unknown --model-arg {', '.join(unknown)} for {resolved.adapter!r} ({label}); "
            f"it accepts: {', '.join(takes) if takes else 'none'}"
            + (" (--compile is for adapters that take compile: the HF ones)" if "compile" in unknown else ""))


def check_quantize(resolved: ResolvedModel, quantize: str | None, device: str = "auto") -> None:
    """Refuse, before any weights are read, a ``--quantize`` (or a pre-quantized checkpoint) that
    cannot run: unknown method, CUDA-only method without CUDA, missing library, an adapter that
    does not take ``quantize`` (only the HF ones do)."""
    if quantize is not None:
        quant_method(quantize)  # unknown: list the methods first
        accepted = accepted_model_args(resolved.cls)
        if accepted is not None and "quantize" not in accepted:
            raise ModelLoadError(f"--quantize is for the Hugging Face adapters; {resolved.adapter!r} cannot be "
                                 "quantized")
    if quantize is None and resolved.quantization is None:
        return
    from mmbench.models.base import pick_device

    check_quantization(quantize, resolved.quantization, pick_device(device))


def load_model(spec: str, *, adapter: str | None = None, device: str = "auto", dtype: str = "auto",
               revision: str | None = None, trust_remote_code: bool = False, quantize: str | None = None,
               **model_args: Any):
    """Resolve ``spec`` and return a ready :class:`~mmbench.models.base.ModelAdapter`.

    ``model_args`` (``--model-arg``) are checked against what the adapter accepts, and
    ``quantize`` (``--quantize``, :data:`~mmbench.models.quantize.METHODS`) against the
    device, before any weights are read (:func:`check_model_args`, :func:`check_quantize`)."""
    resolved = resolve_model(spec, adapter=adapter, revision=revision, trust_remote_code=trust_remote_code)
    check_model_args(resolved, model_args)
    check_quantize(resolved, quantize, device)
    return resolved.cls(device=device, dtype=dtype, **{**resolved.kwargs, **model_args},
                        **({"quantize": quantize} if quantize is not None else {}))


def prompt_renderer(resolved: ResolvedModel) -> Callable[[str | None, int], str | None] | None:
    """The model's :meth:`~mmbench.models.base.ModelAdapter.render_prompt` without its weights,
    or None when rendering needs the loaded model.  An adapter that does not override
    ``render_prompt`` sends the prompt as is; one with a ``prompt_renderer`` classmethod (the HF
    adapters: processor and chat template only) builds it from the loading arguments."""
    cls = resolved.cls
    if not isinstance(cls, type):
        return None
    if getattr(cls, "render_prompt", None) is ModelAdapter.render_prompt:
        return lambda prompt, n_images=1: prompt
    factory = getattr(cls, "prompt_renderer", None)
    return factory(**resolved.kwargs) if factory is not None else None
