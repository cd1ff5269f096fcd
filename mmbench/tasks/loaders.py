"""Which code a task file may run: the dataset-loader registry and the resolution of the
``loader:`` and ``class:`` hooks.

A task file is data.  Its ``loader:`` names a *registered* dataset loader (built-ins
below, third parties through the ``mmbench.dataset_loaders`` entry-point group) and its
``class:`` a registered task family (``mmbench.task_families``).  An import string
``"module:attr"`` is accepted only when it is the target of a registered entry, or when
the run trusts remote code (``--trust-remote-code``): otherwise ``loader: "torch.hub:load"``
plus ``loader_kwargs`` would run any ``hubconf.py`` with arguments from the YAML.

A loader is called as ``fn(split=<split>, **loader_kwargs)`` and returns a list of dict rows.

>>> DATASET_LOADERS.entry("easyvqa-captions").target
'mmbench.tasks.datasets.easyvqa:caption_rows'
"""

from __future__ import annotations

from typing import Any, Callable

from mmbench.errors import DataError, MMBenchError
from mmbench.registry import Registry

DATASET_LOADERS = Registry("dataset loader", "mmbench.dataset_loaders")
for _name, _target, _description in (
    ("easyvqa-captions", "mmbench.tasks.datasets.easyvqa:caption_rows",
     "easy-VQA images with 5 derived captions each (easy-vqa package; offline)"),
    ("easyvqa-retrieval", "mmbench.tasks.datasets.easyvqa:retrieval_rows",
     "easy-VQA images and captions, grouped by colour-shape pair (offline)"),
    ("easyvqa-questions", "mmbench.tasks.datasets.easyvqa_questions:question_rows",
     "easy-VQA questions, one answer each, with answer types (offline)"),
    ("easyvqa-consistency", "mmbench.tasks.datasets.easyvqa_questions:consistency_rows",
     "groups of rephrased easy-VQA questions (offline)"),
    ("vqa-rephrasings", "mmbench.tasks.datasets.vqa_rephrasings:rephrasing_rows",
     "VQA-Rephrasings val from the official JSON release in $VQA_REPHRASINGS_DIR"),
    ("easyvqa-mc", "mmbench.tasks.datasets.easyvqa_mc:mc_rows",
     "easy-VQA colour and shape questions with options (offline)"),
    ("easyvqa-pope", "mmbench.tasks.datasets.easyvqa_pope:pope_rows",
     "easy-VQA POPE-style yes/no presence questions, random/popular/adversarial negatives (offline)"),
    ("easyvqa-zeroshot", "mmbench.tasks.datasets.easyvqa_zeroshot:zeroshot_rows",
     "easy-VQA test images labelled by colour-shape (24 classes), shape or colour (offline)"),
    ("sugarcrepe", "mmbench.tasks.datasets.compositionality:sugarcrepe_rows",
     "SugarCrepe's seven splits from the official JSON ($SUGARCREPE_DIR) and COCO val2017 ($COCO_VAL2017_DIR)"),
    ("aro", "mmbench.tasks.datasets.compositionality:aro_rows",
     "ARO VG-Relation/VG-Attribution ($ARO_DIR, boxes cropped) and COCO/Flickr30k order (exported test cases)"),
    ("easyvqa-t2i-prompts", "mmbench.tasks.datasets.easyvqa_t2i:t2i_prompt_rows",
     "easy-VQA canonical captions ('a red circle') as text-to-image prompts, several per class (offline)"),
    ("gqa", "mmbench.tasks.datasets.gqa:gqa_rows",
     "GQA questions joined with their images from a second config of the same hub dataset (lmms-lab/GQA)"),
):
    DATASET_LOADERS.register(_name, _target, description=_description)


def resolve_hook(registry: Registry, value: str, *, trust_remote_code: bool, where: str, key: str) -> Any:
    """``registry.resolve(value)``, with a failure as a :class:`DataError` naming the task file and key."""
    try:
        return registry.resolve(value, trust_remote_code=trust_remote_code)
    except MMBenchError as exc:
        raise DataError(str(exc), source=where, field=key) from None


def resolve_loader(name: str, *, trust_remote_code: bool = False, where: str | None = None) -> Callable[..., Any]:
    """The row function a task file's ``loader:`` names (see the module docstring)."""
    return resolve_hook(DATASET_LOADERS, name, trust_remote_code=trust_remote_code, where=where or "",
                        key="dataset.loader")


def loader_module(name: str) -> str:
    """The top-level package a loader's code lives in (for the package version in provenance)."""
    if name in DATASET_LOADERS:
        target = DATASET_LOADERS.entry(name).target
        if isinstance(target, str):
            return target.split(":")[0].split(".")[0]
        return getattr(target, "__module__", "").split(".")[0]
    return name.split(":")[0].split(".")[0]
