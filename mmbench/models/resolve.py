"""Turn ``--model`` into a loaded adapter.

``--model`` may be

* a registered adapter name (``mmbench list models``), e.g. ``easyvqa-captioner``;
* a local directory written by ``save_pretrained`` (a fine-tuned checkpoint), or a
  PEFT/LoRA adapter directory (``adapter_config.json``), loaded on top of the base
  model it names;
* a Hugging Face hub id (``org/name``), read from the local cache when
  ``HF_HUB_OFFLINE=1`` - failing at once, with a clear message, if absent.

The adapter family is chosen from the checkpoint's ``config.json`` (``model_type``)
unless ``adapter=`` forces one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from mmbench.catalog import MODELS
from mmbench.errors import ModelLoadError

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
    if model_type in CAPTIONER_TYPES:
        return "hf-captioner"
    if model_type in EMBEDDING_TYPES:
        return "hf-embed"
    if model_type in VLM_TYPES:
        return "hf-vlm"
    if any(a.endswith("ForConditionalGeneration") or a.endswith("ForImageTextToText") for a in archs):
        return "hf-vlm"
    raise ModelLoadError(
        f"cannot tell which adapter serves {spec!r} (model_type {model_type!r}, architectures {archs}). "
        f"Pass --adapter with one of: {', '.join(MODELS.names())}.")


def load_model(spec: str, *, adapter: str | None = None, device: str = "auto", dtype: str = "auto",
               revision: str | None = None, trust_remote_code: bool = False, **model_args: Any):
    """Resolve ``spec`` and return a ready :class:`~mmbench.models.base.ModelAdapter`."""
    if adapter is None and spec in MODELS:
        entry = MODELS.entry(spec)
        cls = entry.load()
        kwargs = {**entry.options, **model_args}
        return cls(name=spec, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                   revision=revision, **kwargs)

    if adapter is not None and getattr(MODELS.get(adapter), "resolves_own_path", False):
        # e.g. open_clip: --model is a name that library resolves itself
        return MODELS.get(adapter)(name=spec, path=spec, device=device, dtype=dtype, revision=revision,
                                   trust_remote_code=trust_remote_code, **model_args)

    peft_dir: str | None = None
    base_spec = spec
    adapter_cfg_path, _ = fetch_config_file(spec, "adapter_config.json", revision, required=False)
    if adapter_cfg_path is not None:
        adapter_cfg = _read_json(adapter_cfg_path)
        base_spec = adapter_cfg.get("base_model_name_or_path")
        if not base_spec:
            raise ModelLoadError(f"{adapter_cfg_path} does not name its base model (base_model_name_or_path)")
        peft_dir = spec if Path(spec).is_dir() else str(adapter_cfg_path.parent)
    config_path, _ = fetch_config_file(base_spec, "config.json", None if peft_dir else revision)
    if config_path is None:
        raise ModelLoadError(f"{base_spec!r} has no config.json: not a transformers checkpoint")
    config = _read_json(config_path)
    if config.get("auto_map") and not trust_remote_code:
        raise ModelLoadError(
            f"{base_spec!r} needs its own Python code (config.json has auto_map). mmbench never runs a "
            "checkpoint's code unless you pass --trust-remote-code.")
    adapter_name = adapter or adapter_for_config(config, base_spec)
    cls = MODELS.get(adapter_name)
    name = spec.rstrip("/").split("/")[-1] if Path(spec).is_dir() else spec
    return cls(name=name, path=base_spec, device=device, dtype=dtype, revision=None if peft_dir else revision,
               trust_remote_code=trust_remote_code, peft_adapter=peft_dir, **model_args)
