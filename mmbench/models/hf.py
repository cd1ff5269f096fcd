"""Loading shared by the Hugging Face adapters: checkpoint, processor, PEFT, fingerprint."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mmbench.errors import ModelLoadError
from mmbench.models import kv_cache
from mmbench.models.base import ModelAdapter, hash_state_dict, hash_weights, pick_dtype
from mmbench.models.quantize import weight_sparsity


class HFAdapter(ModelAdapter):
    """Loads ``path`` (a directory or hub id) with ``model_class()``; optional PEFT adapter on top.

    ``prefix_reuse`` (default true; ``--model-arg prefix_reuse=false``): compute what requests
    share once where the family allows it (a chat VLM's shared prompt prefix, a captioner's
    image encoding, an embedder's repeated inputs; :attr:`shares_prefixes`).  Outputs are those
    of the unshared path (greedy text equal, numbers within float rounding), so the setting is
    recorded in results (``model.prefix_reuse``) but not in the fingerprint.
    """

    fingerprint_identifies_content = True  # weights and config hashes, or hub id + revision
    prefix_reuse = True  # an in-memory model (from_loaded) shares too

    def __init__(self, name: str, *, path: str | None = None, device: str = "auto", dtype: str = "auto",
                 revision: str | None = None, trust_remote_code: bool = False, peft_adapter: str | None = None,
                 compile: bool = False, quantize: str | None = None, prefix_reuse: bool = True, **kwargs: Any):
        super().__init__(name, device=device, dtype=dtype)
        if not isinstance(prefix_reuse, bool):
            raise ModelLoadError(f"--model-arg prefix_reuse takes true or false, not {prefix_reuse!r}")
        self.prefix_reuse = prefix_reuse
        if not path:
            raise ModelLoadError(f"adapter {self.adapter!r} needs a checkpoint: pass --model <dir or hub id>")
        self.path = str(path)
        self.revision = revision
        self.trust_remote_code = trust_remote_code
        self.torch_dtype = pick_dtype(dtype, self.device)
        self.dtype_name = str(self.torch_dtype).replace("torch.", "")
        self.extra = kwargs
        self._load(peft_adapter, quantize)
        self._compile(compile)

    @classmethod
    def from_loaded(cls, model: Any, processor: Any, *, name: str = "in-memory") -> "HFAdapter":
        """An adapter around a model and processor already in memory (a model being trained),
        with nothing read from disk.  The fingerprint hashes the model's current weights
        (:func:`~mmbench.models.base.hash_state_dict`), so outputs cached for one training step
        never serve another; call :meth:`refresh_fingerprint` after the weights change.  The
        model runs on the device and in the dtype it is in; :meth:`evaluating` puts it in eval
        mode for a run and restores its training mode after.

        ``processor``: the checkpoint's processor (for a ViT+GPT-2 captioner, which has none,
        a ``(image_processor, tokenizer)`` pair)."""
        self = cls.__new__(cls)
        first = next(model.parameters())
        ModelAdapter.__init__(self, name, device=str(first.device))
        self.path, self.revision, self.trust_remote_code, self.extra = name, None, False, {}
        self.torch_dtype = first.dtype
        self.dtype_name = str(first.dtype).replace("torch.", "")
        self.model_class(model.config)  # sets the per-family flags (ViLT's classifier)
        if isinstance(processor, (tuple, list)):
            from mmbench.models.hf_caption import _PairProcessor

            processor = _PairProcessor(*processor)
        self.model, self.processor = model, processor
        self.n_parameters = sum(p.numel() for p in model.parameters())
        self._base_info = {"model_type": getattr(model.config, "model_type", None),
                           "class": type(model).__name__}
        self.refresh_fingerprint()
        self._after_load()
        return self

    def refresh_fingerprint(self) -> None:
        """Recompute the fingerprint of an in-memory model (:meth:`from_loaded`) from its weights."""
        self.sparsity = weight_sparsity(self.model)
        self.fingerprint_info = {**self.fingerprint_info, **self._base_info, **hash_state_dict(self.model),
                                 "n_parameters": self.n_parameters, "dtype": self.dtype_name}

    @contextmanager
    def evaluating(self) -> Iterator["HFAdapter"]:
        """Eval mode for the duration (dropout off), the model's own mode restored after."""
        was_training = self.model.training
        self.model.eval()
        try:
            yield self
        finally:
            self.model.train(was_training)

    def _after_load(self) -> None:
        """Hook run once the model and processor are set, by both loading paths (from a
        checkpoint and :meth:`from_loaded`): checks and settings a family derives from them."""

    #: whether ``forward`` is wrapped in ``torch.compile`` (``--compile``)
    compiled = False

    def _compile(self, compile: bool) -> None:
        if compile:
            import torch

            # dynamic shapes: batch and sequence lengths vary; outputs are unchanged, only speed differs
            self.model.forward = torch.compile(self.model.forward, dynamic=True)
            self.fingerprint_info["compiled"] = True
            self.compiled = True

    def grows_cache(self, gen: Any) -> bool:
        """Whether ``generate`` with settings ``gen`` decodes into a cache that grows in place
        (:mod:`mmbench.models.kv_cache`); not for beam search (beams are reordered every step)
        nor for a compiled ``forward`` (inductor cannot trace views of the preallocated buffers:
        "Expected !size_bytes_is_heap_allocated_"), which keep transformers' own cache."""
        return gen.num_beams == 1 and not self.compiled

    def growing_cache(self, gen: Any) -> Any:
        """An empty growing cache for ``generate`` with settings ``gen``, or None (:meth:`grows_cache`)."""
        return kv_cache.growing_cache(self.model, gen.max_new_tokens) if self.grows_cache(gen) else None

    #: the transformers Auto class used when config.json names no importable architecture
    auto_class = "AutoModelForImageTextToText"

    # -- hooks --------------------------------------------------------------
    def model_class(self, config: Any) -> Any:
        """The class named by ``config.architectures`` (what save_pretrained recorded), else ``auto_class``."""
        import transformers

        for arch in getattr(config, "architectures", None) or []:
            if hasattr(transformers, arch):
                return getattr(transformers, arch)
        return getattr(transformers, self.auto_class)

    def load_processor(self) -> Any:
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(self.path, **self._hub_kwargs())

    @classmethod
    def prompt_renderer(cls, *, name: str = "", path: str | None = None, revision: str | None = None,
                        trust_remote_code: bool = False, **_: Any) -> Any:
        """This adapter's :meth:`render_prompt` for the checkpoint at ``path``, built from its
        config and processor files only (no weights): what ``mmbench validate --model`` shows.
        It is the method of an instance that has everything but ``self.model``, so the rendering
        is the one a run uses, not a copy of it."""
        from transformers import AutoConfig

        if not path:
            return None
        self = cls.__new__(cls)
        self.name, self.path, self.revision, self.trust_remote_code = name, str(path), revision, trust_remote_code
        try:
            self.model_class(AutoConfig.from_pretrained(self.path, **self._hub_kwargs()))  # sets model_type
            self.processor = self.load_processor()
        except ModelLoadError:
            raise
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"cannot load the processor of {self.path!r} with {self.adapter}: {exc}") from None
        return self.render_prompt

    # -- loading ------------------------------------------------------------
    def _hub_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if self.revision:
            kw["revision"] = self.revision
        if Path(self.path).is_dir():
            kw["local_files_only"] = True
        return kw

    def _load(self, peft_adapter: str | None, quantize: str | None = None) -> None:
        from transformers import AutoConfig

        from transformers.utils import logging as hf_logging

        from mmbench.models import quantize as q

        q.quiet_torchao()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # mmbench shows its own progress; restore the user's setting after
        try:
            config = AutoConfig.from_pretrained(self.path, **self._hub_kwargs())
            checkpoint_quant = q.checkpoint_quantization(config.to_dict())
            q.check_quantization(quantize, checkpoint_quant, self.device)  # before any weights are read
            cls = self.model_class(config)
            load_kw = q.load_kwargs(quantize, self.device)
            if checkpoint_quant is not None and self.device != "cpu":
                load_kw["device_map"] = {"": self.device}  # quantized weights are placed while loading
            model = cls.from_pretrained(self.path, dtype=self.torch_dtype, **load_kw, **self._hub_kwargs())
            self.processor = self.load_processor()
        except ModelLoadError:
            raise
        except (OSError, ValueError, KeyError, ImportError) as exc:
            raise ModelLoadError(f"cannot load {self.path!r} with {self.adapter}: {exc}") from None
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        info: dict[str, Any] = {"path": self.path, "model_type": getattr(config, "model_type", None),
                                "class": cls.__name__}
        if Path(self.path).is_dir():
            info.update(hash_weights(self.path))
        else:
            info["hub_id"] = self.path
            info["revision"] = self.revision or _cached_commit(self.path)
        if peft_adapter:
            try:
                from peft import PeftModel
            except ImportError:
                raise ModelLoadError("this is a PEFT/LoRA adapter; install the `peft` package "
                                     "(pip install 'mmbench[peft]')") from None
            base_info = dict(info)
            model = PeftModel.from_pretrained(model, peft_adapter, is_trainable=False)
            model = model.merge_and_unload()  # one fused model: same outputs, no adapter overhead
            info["peft_adapter"] = hash_weights(peft_adapter)  # its contents, not its location
            info["peft_adapter_path"] = peft_adapter
        model.eval()
        if "device_map" not in load_kw:  # bitsandbytes and pre-quantized models are placed while loading
            model = model.to(self.device)
        self.model = model
        self.n_parameters = sum(p.numel() for p in self.model.parameters())
        self.sparsity = q.weight_sparsity(self.model)  # before quantizing: the checkpoint's own zeros
        if quantize is not None:
            q.quantize_loaded(self.model, quantize)
            info["quantization"] = q.record(quantize)
        elif checkpoint_quant is not None:
            info["quantization"] = q.checkpoint_record(checkpoint_quant)
        info["n_parameters"] = self.n_parameters
        info["dtype"] = self.dtype_name
        if peft_adapter:  # "base X + adapter Y": the fingerprint the base alone has (same class and dtype)
            base = {**base_info, "n_parameters": self.n_parameters, "dtype": self.dtype_name,
                    **({"quantization": info["quantization"]} if "quantization" in info else {})}
            base_fp = {"adapter": self.adapter, "name": self.path, **base}
            info["base_model"] = {"path": self.path, "hash": self.fingerprint_hash(base_fp),
                                  **({"weights_sha256": base["weights_sha256"]} if "weights_sha256" in base
                                     else {"hub_id": base.get("hub_id"), "revision": base.get("revision")})}
        self.fingerprint_info = info
        self._after_load()

    def to_device(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Move processor outputs to the model's device (non-blocking from pinned memory on CUDA);
        pixel values take the model's dtype."""
        cuda = self.device.startswith("cuda")
        out = {}
        for key, value in inputs.items():
            if not hasattr(value, "to"):
                continue
            if cuda:
                value = value.pin_memory().to(self.device, non_blocking=True)
            else:
                value = value.to(self.device)
            if key == "pixel_values":
                value = value.to(self.torch_dtype)
            out[key] = value
        return out

    def generation_kwargs(self, gen: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": gen.max_new_tokens, "num_beams": gen.num_beams,
                                  "do_sample": gen.do_sample}
        if gen.do_sample and gen.temperature:
            kwargs["temperature"] = gen.temperature
        return kwargs

    def info(self) -> dict[str, Any]:
        """Recorded in results.json's ``model``: device, dtype, parameter count, weight
        sparsity (share of exact zeros, :func:`~mmbench.models.quantize.weight_sparsity`) and
        whether shared work is computed once (:attr:`shares_prefixes`)."""
        return {"device": self.device, "dtype": self.dtype_name, "n_parameters": self.n_parameters,
                "sparsity": getattr(self, "sparsity", None), "prefix_reuse": self.shares_prefixes}

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)


def _cached_commit(repo_id: str) -> str | None:
    try:
        from huggingface_hub import hf_hub_download

        p = Path(hf_hub_download(repo_id, "config.json"))
        parts = p.parts
        return parts[parts.index("snapshots") + 1] if "snapshots" in parts else None
    except Exception:  # noqa: BLE001 - provenance only
        return None
