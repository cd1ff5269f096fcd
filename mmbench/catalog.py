"""What is registered: built-in models, tasks, metrics and task families.

Everything here is a lazy import string, so ``mmbench list`` is fast.  Third
parties add to the same registries through entry points:

.. code-block:: toml

    [project.entry-points."mmbench.models"]
    my-model = "my_pkg.adapter:MyAdapter"        # a ModelAdapter subclass or factory
    [project.entry-points."mmbench.tasks"]
    my-tasks = "my_pkg:TASK_DIR"                 # a folder (or file) of task YAML, or a Task factory
    [project.entry-points."mmbench.metrics"]
    my-metric = "my_pkg.metrics:my_metric"       # fn(predictions, references, **options) -> MetricValues
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

from mmbench.errors import DataError, MMBenchError
from mmbench.metrics.registry import METRICS as _METRICS
from mmbench.metrics.registry import describe as _describe_metric
from mmbench.registry import Registry, import_string

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"

# ---------------------------------------------------------------- metrics
# Each metric's spec lives next to its function in mmbench/metrics/ (see mmbench.metrics.registry).
METRICS = _METRICS

# ---------------------------------------------------------------- task families
FAMILIES = Registry("task family", "mmbench.task_families")
FAMILIES.register("captioning", "mmbench.tasks.captioning:CaptioningTask",
                  description="image -> caption, scored against reference captions")
FAMILIES.register("vqa", "mmbench.tasks.vqa:VQATask",
                  description="image + question -> short answer, scored against human answers")
FAMILIES.register("retrieval", "mmbench.tasks.retrieval:RetrievalTask",
                  description="embed images and captions; recall@k text-to-image and image-to-text")

# ---------------------------------------------------------------- models
MODELS = Registry("model", "mmbench.models")
MODELS.register("easyvqa-captioner", "mmbench.models.hf_caption:HFCaptioner",
                description="reference captioner (ViT+GPT-2, ~1 MB) trained on easy-VQA; the default model",
                path=str(ASSETS_DIR / "models" / "easyvqa-captioner"))
MODELS.register("easyvqa-vilt", "mmbench.models.hf_vqa:HFVQAModel",
                description="reference VQA model (tiny ViLT classifier over easy-VQA's 13 answers); default VQA model",
                path=str(ASSETS_DIR / "models" / "easyvqa-vilt"))
MODELS.register("easyvqa-majority", "mmbench.models.baselines:MajorityAnswer",
                description="baseline: always the most frequent easy-VQA train answer",
                path=str(ASSETS_DIR / "models" / "easyvqa-baselines.json"))
MODELS.register("easyvqa-question-only", "mmbench.models.baselines:QuestionOnly",
                description="baseline: the most frequent train answer for the question text (ignores the image)",
                path=str(ASSETS_DIR / "models" / "easyvqa-baselines.json"))
MODELS.register("hf-captioner", "mmbench.models.hf_caption:HFCaptioner",
                description="HF image captioners: BLIP, GIT, VisionEncoderDecoder (ViT+GPT-2); needs a path or hub id")
MODELS.register("hf-vqa", "mmbench.models.hf_vqa:HFVQAModel",
                description="HF VQA heads: BLIP-VQA (generative) and ViLT (classifier over its answer vocabulary)")
MODELS.register("openai-chat", "mmbench.models.openai_api:OpenAIChatModel",
                description="OpenAI-compatible chat endpoint with images (vLLM, SGLang, hosted): --model-arg "
                            "base_url=http://HOST:PORT/v1 --model-arg model=NAME; key from $OPENAI_API_KEY")
MODELS.register("hf-embed", "mmbench.models.hf_embed:HFEmbeddingModel",
                description="HF dual encoders (CLIP, SigLIP, any AutoModel with get_image/text_features): "
                            "L2-normalised image and text embeddings for retrieval and CLIPScore")
MODELS.register("open-clip", "mmbench.models.open_clip_adapter:OpenCLIPModel",
                description="OpenCLIP dual encoders (optional: pip install open_clip_torch): --adapter open-clip "
                            "--model ViT-B-32 --model-arg pretrained=laion2b_s34b_b79k")
MODELS.register("easyvqa-clip", "mmbench.models.hf_embed:HFEmbeddingModel",
                description="reference dual encoder (tiny CLIP) trained on easy-VQA; default retrieval model "
                            "and the easy-VQA CLIPScore scorer",
                path=str(ASSETS_DIR / "models" / "easyvqa-clip"))
MODELS.register("hf-vlm", "mmbench.models.hf_vlm:HFVisionLanguageModel",
                description="HF image-text-to-text VLMs with chat templates (LLaVA, Qwen-VL, Idefics3, SmolVLM)")

DEFAULT_MODEL = "easyvqa-captioner"
DEFAULT_TASKS = ("easyvqa_caption",)
#: what `mmbench eval` runs with no --model and no --tasks: each reference model on its easy-VQA task
DEFAULT_SUITE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("easyvqa-captioner", ("easyvqa_caption",)),
    ("easyvqa-vilt", ("easyvqa_vqa",)),
    ("easyvqa-clip", ("easyvqa_retrieval",)),
)


# ---------------------------------------------------------------- tasks
def builtin_task_dir() -> Path:
    """Built-in task YAML: ``mmbench/_builtin_tasks`` in a wheel, ``<repo>/tasks`` in a source checkout."""
    packaged = PACKAGE_DIR / "_builtin_tasks"
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / "tasks"


def register_task_files(registry: Registry, path: str | os.PathLike, source: str) -> list[str]:
    """Register every ``*.yaml``/``*.yml`` task file under ``path`` (a folder or one file)."""
    from mmbench.tasks.config import load_task_config

    path = Path(path)
    if not path.exists():
        raise DataError("task path not found", source=str(path))
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
    names = []
    for file in files:
        if file.name.startswith("_"):  # shared bases meant for include:, not tasks themselves
            continue
        cfg = load_task_config(file)
        registry.register(cfg.name, cfg, description=cfg.description, source=f"{source} {file}",
                          replace=source == "include")
        names.append(cfg.name)
    return names


def _task_entry_point(registry: Registry, ep: metadata.EntryPoint) -> None:
    source = f"entry point {ep.name} ({ep.dist.name if ep.dist else ep.value})"
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plugin must not hide the others; say so
        raise MMBenchError(f"cannot load task plugin {source}: {exc}") from exc
    if isinstance(obj, (str, os.PathLike)):
        register_task_files(registry, obj, source)
    else:
        registry.register(ep.name, obj, description=getattr(obj, "description", "") or f"from {source}",
                          source=source)


TASKS = Registry("task", "mmbench.tasks", on_entry_point=_task_entry_point)
TASKS.add_loader(lambda reg: register_task_files(reg, builtin_task_dir(), "builtin"))


def include_tasks(path: str | os.PathLike) -> list[str]:
    """Add a user folder of task YAML files (``--include``); its tasks win over built-ins of the same name."""
    TASKS._ensure_loaded()
    return register_task_files(TASKS, path, "include")


def build_task(name: str) -> Any:
    """Instantiate the task registered as ``name``."""
    from mmbench.tasks.config import TaskConfig

    obj = TASKS.get(name)
    if isinstance(obj, TaskConfig):
        cls = import_string(obj.task_class) if obj.task_class else FAMILIES.get(obj.family)
        return cls(obj)
    if isinstance(obj, type):
        return obj()
    if callable(obj) and not hasattr(obj, "load_samples"):
        return obj()
    return obj


def list_registered(kind: str, include: list[str] | None = None) -> list[tuple[str, str, str]]:
    """``(name, description, source)`` for every registered model, task or metric."""
    for path in include or []:
        include_tasks(path)
    registry = {"tasks": TASKS, "models": MODELS, "metrics": METRICS}[kind]
    return [(e.name, _describe_metric(e.name) if registry is METRICS else e.description, e.source.split(" /")[0])
            for e in registry.entries()]
