"""Text-to-image pipelines from diffusers: ``GenerateImageRequest`` -> a PNG image.

Any pipeline ``DiffusionPipeline.from_pretrained`` loads (a local ``save_pretrained`` folder
with ``model_index.json``, or a hub id) is served.  What determines the images is in the
fingerprint: the pipeline's files by content (every file of the folder or hub snapshot,
:func:`~mmbench.models.base.hash_weights`; a hub id without a local snapshot is refused), the
pipeline class, dtype, number of steps, guidance scale, height and width, the scheduler class and
its full config.  Each request brings its own seed (the runner derives it from ``--seed`` and the
request id), and the adapter gives every request its own ``torch.Generator``, so an image does not
depend on its batch; on a CPU the same seed gives the same image at any batch size within float
rounding (tested: pixel values equal to within 2/255 on the tiny pipeline).

Model arguments (``--model-arg k=v``): ``steps``, ``guidance_scale``, ``height``, ``width``
(default: the pipeline's own defaults, read from its ``__call__`` signature and its denoiser's
``sample_size``), ``scheduler`` (a diffusers scheduler class name, built from the pipeline's
scheduler config), ``scheduler_config`` (a JSON object of scheduler config overrides),
``random_init`` (true: the pipeline's architecture with random weights, seeded by
``init_seed``, a baseline; the fingerprint then hashes the random weights), ``clean_caption``
(DeepFloyd IF only: its caption cleaning, which needs bs4 and ftfy; default false).

A pipeline whose ``model_index.json`` names code outside diffusers and transformers (a custom
pipeline or component) is refused unless ``--trust-remote-code``.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Sequence

from mmbench.errors import ModelLoadError
from mmbench.models.base import ModelAdapter, hash_state_dict, hash_weights, pick_dtype
from mmbench.types import GenerateImageRequest

#: libraries a pipeline's components may come from without --trust-remote-code
TRUSTED_LIBRARIES = {"diffusers", "transformers", None}


def check_model_index(index: dict[str, Any], where: str, trust_remote_code: bool) -> str:
    """The pipeline class named by ``model_index.json``; refuse (one line) a custom pipeline or a
    component from another library unless ``trust_remote_code``."""
    import diffusers

    cls_name = index.get("_class_name")
    if not isinstance(cls_name, str) or not cls_name:
        raise ModelLoadError(f"{where}: model_index.json has no _class_name: not a diffusers pipeline")
    if trust_remote_code:
        return cls_name
    if not hasattr(diffusers, cls_name):
        raise ModelLoadError(f"{where}: pipeline class {cls_name!r} is not part of diffusers (custom code); "
                             "mmbench never runs a checkpoint's code unless you pass --trust-remote-code")
    for key, value in index.items():
        if key.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        if value[0] not in TRUSTED_LIBRARIES:
            raise ModelLoadError(f"{where}: component {key!r} comes from {value[0]!r}, not diffusers or "
                                 "transformers (custom code); pass --trust-remote-code to allow it")
    return cls_name


class DiffusersPipeline(ModelAdapter):
    """A diffusers text-to-image pipeline (``adapter: diffusers``)."""

    adapter = "diffusers"
    capabilities = frozenset({"generate_image"})
    fingerprint_identifies_content = True

    def __init__(self, name: str, *, path: str | None = None, device: str = "auto", dtype: str = "auto",
                 revision: str | None = None, trust_remote_code: bool = False, steps: int | None = None,
                 guidance_scale: float | None = None, height: int | None = None, width: int | None = None,
                 scheduler: str | None = None, scheduler_config: dict[str, Any] | None = None,
                 random_init: bool = False, init_seed: int = 0, clean_caption: bool | None = None, **_: Any):
        super().__init__(name, device=device, dtype=dtype)
        if not path:
            raise ModelLoadError("the diffusers adapter needs a pipeline: pass --model <folder or hub id>")
        for key, value in (("steps", steps), ("height", height), ("width", width), ("init_seed", init_seed)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0
                                      or (key != "init_seed" and value == 0)):
                raise ModelLoadError(f"--model-arg {key} must be a positive integer, not {value!r}")
        if guidance_scale is not None and (isinstance(guidance_scale, bool)
                                           or not isinstance(guidance_scale, (int, float))):
            raise ModelLoadError(f"--model-arg guidance_scale must be a number, not {guidance_scale!r}")
        if scheduler_config is not None and not isinstance(scheduler_config, dict):
            raise ModelLoadError("--model-arg scheduler_config must be a JSON object, e.g. "
                                 "scheduler_config='{\"timestep_spacing\": \"trailing\"}'")
        if not isinstance(random_init, bool):
            raise ModelLoadError(f"--model-arg random_init takes true or false, not {random_init!r}")
        self.path, self.revision, self.trust_remote_code = str(path), revision, trust_remote_code
        self.torch_dtype = pick_dtype(dtype, self.device)
        self.dtype_name = str(self.torch_dtype).replace("torch.", "")
        folder = self._local_folder()
        index_file = folder / "model_index.json"
        try:
            index = json.loads(index_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"cannot read {index_file}: {exc}") from None
        cls_name = check_model_index(index, self.path, trust_remote_code)
        self.pipe = self._load(folder, random_init, init_seed)
        if scheduler is not None or scheduler_config:
            self.pipe.scheduler = self._scheduler(scheduler, scheduler_config or {})
        call = inspect.signature(type(self.pipe).__call__).parameters
        for needed in ("prompt", "generator", "num_inference_steps"):
            if needed not in call:
                raise ModelLoadError(f"{self.path}: {type(self.pipe).__name__}.__call__ takes no {needed!r}: "
                                     "not a text-to-image pipeline mmbench can drive")
        self.guided = "guidance_scale" in call
        # DeepFloyd IF cleans captions with bs4 and ftfy when they are installed (another text than
        # without them): off unless asked for, so the images never depend on what else is installed
        if clean_caption is not None and not isinstance(clean_caption, bool):
            raise ModelLoadError(f"--model-arg clean_caption takes true or false, not {clean_caption!r}")
        self.clean_caption = bool(clean_caption) if "clean_caption" in call else None
        self.steps = steps if steps is not None else _default(call, "num_inference_steps")
        self.guidance_scale = (float(guidance_scale) if guidance_scale is not None
                               else _default(call, "guidance_scale") if self.guided else None)
        size = self._default_size()
        self.height, self.width = height or size, width or size
        if self.height is None or self.width is None:
            raise ModelLoadError(f"{self.path}: cannot tell the pipeline's image size; pass --model-arg height=H "
                                 "--model-arg width=W")
        self.pipe.set_progress_bar_config(disable=True)
        self.n_parameters = sum(p.numel() for m in self._modules() for p in m.parameters())
        weights = (hash_state_dict(_Components(self._modules())) if random_init else hash_weights(folder))
        self.fingerprint_info = {
            "path": self.path, "pipeline": cls_name, "diffusers": _version("diffusers"), "dtype": self.dtype_name,
            **weights,
            **({"random_init": True, "init_seed": init_seed} if random_init else {}),
            **({"hub_id": self.path} if not Path(self.path).is_dir() else {}),
            "steps": self.steps, "guidance_scale": self.guidance_scale, "height": self.height, "width": self.width,
            **({"clean_caption": self.clean_caption} if self.clean_caption is not None else {}),
            "scheduler": type(self.pipe.scheduler).__name__,
            "scheduler_config": json.loads(json.dumps(dict(self.pipe.scheduler.config), default=str)),
            "n_parameters": self.n_parameters}

    # -- loading ------------------------------------------------------------
    def _local_folder(self) -> Path:
        local = Path(self.path).expanduser()
        if local.is_dir():
            return local
        from huggingface_hub import snapshot_download

        try:  # honours HF_HUB_OFFLINE: offline, only a cached snapshot
            return Path(snapshot_download(self.path, revision=self.revision))
        except Exception as exc:  # noqa: BLE001 - every hub failure is one clear loading error
            raise ModelLoadError(f"cannot get the pipeline {self.path!r} from the hub or its local cache "
                                 f"({type(exc).__name__}: {exc}); download it once on a connected machine "
                                 f"(`huggingface-cli download {self.path}`) or pass a local folder") from None

    def _load(self, folder: Path, random_init: bool, init_seed: int) -> Any:
        import torch
        from diffusers import DiffusionPipeline

        import warnings

        from diffusers.utils import logging as diffusers_logging

        bars = diffusers_logging.is_progress_bar_enabled()
        diffusers_logging.disable_progress_bar()  # mmbench shows its own progress
        try:
            with warnings.catch_warnings():  # newer diffusers rename torch_dtype to dtype; older take only torch_dtype
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                pipe = DiffusionPipeline.from_pretrained(str(folder), torch_dtype=self.torch_dtype,
                                                         trust_remote_code=self.trust_remote_code,
                                                         local_files_only=True)
        except (OSError, ValueError, KeyError, ImportError, TypeError) as exc:
            raise ModelLoadError(f"cannot load the diffusers pipeline {self.path!r}: {exc}") from None
        finally:
            if bars:
                diffusers_logging.enable_progress_bar()
        if random_init:  # the same architecture, fresh weights (seeded): the random-weight baseline
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(init_seed)
                for module in _modules_of(pipe):
                    for sub in module.modules():
                        if sub is not module and hasattr(sub, "reset_parameters"):
                            sub.reset_parameters()
                    if hasattr(module, "init_weights"):  # transformers models' own initialisation
                        module.init_weights()
        for module in _modules_of(pipe):
            module.eval()
        return pipe.to(self.device)

    def _modules(self) -> list[Any]:
        return _modules_of(self.pipe)

    def _scheduler(self, name: str | None, overrides: dict[str, Any]) -> Any:
        import diffusers

        cls = type(self.pipe.scheduler) if name is None else getattr(diffusers, str(name), None)
        if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
            known = sorted(n for n in dir(diffusers) if n.endswith("Scheduler"))
            raise ModelLoadError(f"--model-arg scheduler={name!r} is not a diffusers scheduler; one of: "
                                 f"{', '.join(known)}")
        unknown = sorted(set(overrides) - set(inspect.signature(cls.__init__).parameters))
        if unknown:
            raise ModelLoadError(f"--model-arg scheduler_config: {cls.__name__} takes no {', '.join(unknown)}")
        return cls.from_config(self.pipe.scheduler.config, **overrides)

    def _default_size(self) -> int | None:
        if getattr(self.pipe, "default_sample_size", None):
            return int(self.pipe.default_sample_size) * int(getattr(self.pipe, "vae_scale_factor", 1) or 1)
        denoiser = getattr(self.pipe, "unet", None) or getattr(self.pipe, "transformer", None)
        size = getattr(getattr(denoiser, "config", None), "sample_size", None)
        if isinstance(size, (list, tuple)):
            size = size[0]
        if not isinstance(size, int):
            return None
        return size * int(getattr(self.pipe, "vae_scale_factor", 1) or 1)

    def info(self) -> dict[str, Any]:
        return {"device": self.device, "dtype": self.dtype_name, "n_parameters": self.n_parameters}

    # -- inference ----------------------------------------------------------
    def _forward(self, requests: Sequence[GenerateImageRequest], inputs: Any) -> list[Any]:
        import torch

        gen_device = "cpu" if not self.device.startswith("cuda") else self.device
        generators = [torch.Generator(gen_device).manual_seed(int(r.seed)) for r in requests]
        kwargs: dict[str, Any] = {"prompt": [r.prompt for r in requests], "generator": generators,
                                  "num_inference_steps": self.steps, "height": self.height, "width": self.width,
                                  "output_type": "pil"}
        if self.clean_caption is not None:
            kwargs["clean_caption"] = self.clean_caption
        if self.guided:
            kwargs["guidance_scale"] = self.guidance_scale
            if any(r.negative_prompt for r in requests):
                kwargs["negative_prompt"] = [r.negative_prompt or "" for r in requests]
        with torch.inference_mode():
            out = self.pipe(**kwargs)
        images = out.images if hasattr(out, "images") else out[0]
        if len(images) != len(requests):
            raise RuntimeError(f"the pipeline returned {len(images)} images for {len(requests)} prompts")
        return list(images)


def _version(package: str) -> str:
    from importlib import metadata

    return metadata.version(package)


def _default(params: Any, key: str) -> Any:
    value = params[key].default if key in params else None
    return None if value is inspect.Parameter.empty else value


def _modules_of(pipe: Any) -> list[Any]:
    import torch

    return [m for _, m in sorted(pipe.components.items()) if isinstance(m, torch.nn.Module)]


class _Components:
    """The state dicts of several modules as one (names prefixed by the module's index), for hashing."""

    def __init__(self, modules: list[Any]):
        self.modules = modules

    def state_dict(self) -> dict[str, Any]:
        return {f"{i}.{k}": v for i, m in enumerate(self.modules) for k, v in m.state_dict().items()}
