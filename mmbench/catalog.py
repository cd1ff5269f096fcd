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
    [project.entry-points."mmbench.dataset_loaders"]
    my-rows = "my_pkg.data:rows"                 # fn(split, **loader_kwargs) -> list of dict rows
    [project.entry-points."mmbench.task_families"]
    my-family = "my_pkg.tasks:MyTask"            # a Task subclass, named by a task file's class:

A task file's ``loader:`` and ``class:`` resolve only to registered names (see
:mod:`mmbench.tasks.loaders`): an import string needs ``trust_remote_code``.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

from mmbench.errors import DataError
from mmbench.metrics.registry import METRICS as _METRICS
from mmbench.metrics.registry import describe as _describe_metric
from mmbench.registry import Registry
from mmbench.tasks.config import builtin_task_dir
from mmbench.tasks.loaders import DATASET_LOADERS, resolve_hook, resolve_loader

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"

# ---------------------------------------------------------------- metrics
# Each metric's spec lives next to its function in mmbench/metrics/ (see mmbench.metrics.registry).
METRICS = _METRICS

# ---------------------------------------------------------------- dataset loaders
# DATASET_LOADERS (imported above from mmbench.tasks.loaders, where the built-ins are listed):
# the row functions a task file's `loader:` may name; plugins add theirs by entry point.

# ---------------------------------------------------------------- task families
FAMILIES = Registry("task family", "mmbench.task_families")
FAMILIES.register("captioning", "mmbench.tasks.captioning:CaptioningTask",
                  description="image -> caption, scored against reference captions")
FAMILIES.register("vqa", "mmbench.tasks.vqa:VQATask",
                  description="image + question -> short answer, scored against human answers")
FAMILIES.register("retrieval", "mmbench.tasks.retrieval:RetrievalTask",
                  description="embed images and captions; recall@k text-to-image and image-to-text")
FAMILIES.register("multiple-choice", "mmbench.tasks.multiple_choice:MultipleChoiceTask",
                  description="image(s) + question + lettered options -> one option; optional circular evaluation")
FAMILIES.register("likelihood-choice", "mmbench.tasks.likelihood_choice:LikelihoodChoiceTask",
                  description="image + candidate texts -> the most likely candidate (ScoreRequest log-likelihoods)")
FAMILIES.register("zeroshot", "mmbench.tasks.zeroshot:ZeroShotTask",
                  description="image -> one of a set of class names, by prompt-ensemble similarity or likelihood")
FAMILIES.register("text-to-image", "mmbench.tasks.text_to_image:TextToImageTask",
                  description="prompt -> image, scored for prompt-image consistency (CLIPScore, VQAScore), "
                              "per category")
FAMILIES.register("compositionality", "mmbench.tasks.compositionality:CompositionalityTask",
                  description="Winoground (2 images x 2 captions) and caption choice among hard negatives (SugarCrepe, "
                              "ARO), by similarity or likelihood")

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
MODELS.register("easyvqa-always-yes", "mmbench.models.baselines:ConstantAnswer",
                description="baseline: always 'yes' (what POPE's precision and yes_ratio catch)")
MODELS.register("easyvqa-always-a", "mmbench.models.baselines:ConstantAnswer",
                description="baseline: always option 'A' (position bias; what circular evaluation catches)",
                answer="A")
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
MODELS.register("open-clip-coca", "mmbench.models.open_clip_coca:OpenCLIPCoCa",
                description="OpenCLIP CoCa (optional: pip install open_clip_torch): contrastive embeddings and "
                            "greedy captions; --model coca_ViT-B-32 --model-arg pretrained=<tag or file>")
MODELS.register("easyvqa-clip", "mmbench.models.hf_embed:HFEmbeddingModel",
                description="reference dual encoder (tiny CLIP) trained on easy-VQA; default retrieval model "
                            "and the easy-VQA CLIPScore scorer",
                path=str(ASSETS_DIR / "models" / "easyvqa-clip"))
MODELS.register("hf-vlm", "mmbench.models.hf_vlm:HFVisionLanguageModel",
                description="HF image-text-to-text VLMs with chat templates (LLaVA, Qwen-VL, Idefics3, SmolVLM)")
MODELS.register("hf-itm", "mmbench.models.hf_itm:HFImageTextMatching",
                description="HF image-text matching heads (BLIP BlipForImageTextRetrieval): P(match) of a text with "
                            "an image, for the ITM consistency score")
MODELS.register("hf-lm", "mmbench.models.hf_lm:HFCausalLM",
                description="HF text-only causal LMs (GPT-2, Llama, Qwen2, ...; chat template if the tokenizer has "
                            "one): a blind text baseline, or a Socratic pipeline's reasoner")
MODELS.register("vllm", "mmbench.models.vllm_adapter:VLLMVisionLanguageModel",
                description="generative VLMs in process on vLLM's engine (optional: pip install 'mmbench[vllm]'): "
                            "--adapter vllm --model <checkpoint>; whole shards scheduled by vLLM; docs/vllm.md")
MODELS.register("socratic", "mmbench.models.socratic:SocraticPipeline",
                description="Socratic pipeline: --model-arg describer=<model> (captioner or VLM) writes what it "
                            "sees, --model-arg reasoner=<model> (text LM) answers from it; docs/socratic.md")
MODELS.register("easyvqa-socratic", "mmbench.models.socratic:SocraticPipeline",
                description="reference Socratic pipeline: easyvqa-captioner describes, easyvqa-reasoner (tiny "
                            "Llama trained on easy-VQA prompts) answers from the description; docs/socratic.md",
                describer="easyvqa-captioner", reasoner=str(ASSETS_DIR / "models" / "easyvqa-reasoner"))

MODELS.register("diffusers", "mmbench.models.diffusers_adapter:DiffusersPipeline",
                description="diffusers text-to-image pipelines (DiffusionPipeline.from_pretrained: a folder with "
                            "model_index.json or a hub id); steps, guidance, scheduler, size in the fingerprint")
MODELS.register("easyvqa-t2i", "mmbench.models.diffusers_adapter:DiffusersPipeline",
                description="reference text-to-image model (tiny pixel-space IFPipeline, 32x32) trained on "
                            "easy-VQA's train images",
                path=str(ASSETS_DIR / "models" / "easyvqa-t2i"), steps=25, guidance_scale=7.0)
MODELS.register("easyvqa-t2i-random", "mmbench.models.diffusers_adapter:DiffusersPipeline",
                description="baseline: easyvqa-t2i's architecture with random weights (init_seed 0)",
                path=str(ASSETS_DIR / "models" / "easyvqa-t2i"), steps=25, guidance_scale=7.0, random_init=True)
MODELS.register("easyvqa-t2i-nearest", "mmbench.models.t2i_baselines:NearestTrainImage",
                description="baseline: an easy-VQA train image whose canonical caption is the prompt",
                path=str(ASSETS_DIR / "models" / "easyvqa-t2i-nearest.json"))

DEFAULT_MODEL = "easyvqa-captioner"
DEFAULT_TASKS = ("easyvqa_caption",)
#: what `mmbench eval` runs with no --model and no --tasks: each reference model on its easy-VQA task
DEFAULT_SUITE: tuple[tuple[str, tuple[str, ...]], ...] = (
    # easyvqa_zeroshot_lm (the captioner classifying by likelihood, ~2 min on 2 cores) is on the published
    # board, not in the default run, which stays a quick offline check
    ("easyvqa-captioner", ("easyvqa_caption", "easyvqa_caption_vqascore")),
    ("easyvqa-vilt", ("easyvqa_vqa", "easyvqa_mc", "easyvqa_pope")),
    ("easyvqa-clip", ("easyvqa_retrieval", "easyvqa_zeroshot")),
)


# ---------------------------------------------------------------- tasks
def register_task_files(registry: Registry, path: str | os.PathLike, source: str) -> list[str]:
    """Register every ``*.yaml``/``*.yml`` task file under ``path`` (a folder or one file).

    Two files of one folder defining the same task name are an error naming both (an
    ``include`` folder's tasks replace built-ins of the same name, never each other)."""
    from mmbench.tasks.config import load_task_config

    path = Path(path)
    if not path.exists():
        raise DataError("task path not found", source=str(path))
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
    configs = {}
    for file in files:
        if file.name.startswith("_"):  # shared bases meant for include:, not tasks themselves
            continue
        cfg = load_task_config(file)
        if cfg.name in configs:
            raise DataError(f"task {cfg.name!r} is defined twice, here and in {configs[cfg.name].where('name')}",
                            source=cfg.where("name"), field="name")
        configs[cfg.name] = cfg
    for name, cfg in configs.items():
        registry.register(name, cfg, description=cfg.description, source=f"{source} {cfg.source}",
                          replace=source == "include")
    return list(configs)


def _task_entry_point(registry: Registry, ep: metadata.EntryPoint) -> None:
    """A plugin's task folder (or Task factory).  If it fails to load, the registry logs it once
    and registers it as broken, so built-in tasks still run."""
    source = f"entry point {ep.name} ({ep.dist.name if ep.dist else ep.value})"
    obj = ep.load()
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


def build_task(name: str, *, trust_remote_code: bool = False) -> Any:
    """Instantiate the task registered as ``name``.

    A task file's ``class:`` must name a registered task family (``FAMILIES``, or an import string
    equal to one's target) and its ``loader:`` a registered dataset loader (``DATASET_LOADERS``);
    any other import string is refused with a :class:`DataError` naming the file and key, unless
    ``trust_remote_code`` (``--trust-remote-code``): a task file is data, not a program."""
    from mmbench.tasks.config import TaskConfig

    obj = TASKS.get(name)
    if isinstance(obj, TaskConfig):
        if obj.task_class:
            cls = resolve_hook(FAMILIES, obj.task_class, trust_remote_code=trust_remote_code,
                               where=obj.where("class"), key="class")
        else:
            cls = resolve_hook(FAMILIES, obj.family, trust_remote_code=False, where=obj.where("family"),
                               key="family")
        if obj.dataset.loader:  # fail before any model is loaded
            resolve_loader(obj.dataset.loader, trust_remote_code=trust_remote_code,
                           where=obj.where("dataset.loader"))
        task = cls(obj)
        task.trust_remote_code = trust_remote_code
        return task
    if isinstance(obj, type):
        return obj()
    if callable(obj) and not hasattr(obj, "load_samples"):
        return obj()
    return obj


def list_registered(kind: str, include: list[str] | None = None) -> list[tuple[str, str, str]]:
    """``(name, description, source)`` for every registered model, task or metric."""
    for path in include or []:
        include_tasks(path)
    registry = {"tasks": TASKS, "models": MODELS, "metrics": METRICS, "loaders": DATASET_LOADERS}[kind]
    return [(e.name, _describe_metric(e.name) if registry is METRICS else
             f"{e.description}; {data_source(e.target)}" if registry is TASKS and data_source(e.target) else
             e.description, e.source.split(" /")[0])
            for e in registry.entries()]


def data_source(config: Any) -> str:
    """Where a task file's data comes from, for ``mmbench list tasks``: ``data: <hub id>[/<config>]@<revision
    (12 hex)> <split>``, ``data: loader <name> <split>`` (with the hub id and revision a loader is given),
    or ``data: <builder> <split> (local files)``; empty for a task that is not a task file.

    >>> from mmbench.tasks.config import DatasetConfig
    >>> data_source(type("C", (), {"dataset": DatasetConfig(path="lmms-lab/POPE", revision="4db1276663dfa5eb", split="test")})())
    'data: lmms-lab/POPE@4db1276663df test'
    """
    ds = getattr(config, "dataset", None)
    if ds is None:
        return ""
    if ds.loader:
        kw = dict(ds.loader_kwargs)
        hub = f" {kw['path']}@{str(kw['revision'])[:12]}" if kw.get("path") and kw.get("revision") else ""
        return f"data: loader {ds.loader}{hub} {ds.split}"
    if ds.revision:
        return f"data: {ds.path}{'/' + ds.name if ds.name else ''}@{ds.revision[:12]} {ds.split}"
    return f"data: {ds.path} {ds.split}" + (" (local files)" if ds.data_files else "")
