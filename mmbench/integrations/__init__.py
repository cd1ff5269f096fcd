"""mmbench inside other tools: a ``transformers`` Trainer callback
(:class:`mmbench.integrations.trainer.MMBenchCallback`, imported from its module so that this
package needs no transformers) and the official metrics as Hugging Face ``evaluate`` modules
that load offline from a local folder (:func:`evaluate_module_path`).
"""

from __future__ import annotations

from pathlib import Path

from mmbench.errors import MMBenchError

_METRICS_DIR = Path(__file__).resolve().parent / "evaluate_metrics"
#: mmbench metric name -> the folder of its evaluate module
EVALUATE_MODULES = {"vqa-accuracy": "vqa_accuracy", "coco-caption": "coco_caption"}


def evaluate_module_path(name: str) -> str:
    """The folder of the ``evaluate`` module for mmbench metric ``name`` (``vqa-accuracy``,
    ``coco-caption``), for ``evaluate.load(path)``: the hub's copies of metric scripts are not
    reachable offline (``evaluate.load("bleu")`` fails), a local folder is.

    >>> Path(evaluate_module_path("vqa-accuracy")).name
    'vqa_accuracy'
    """
    if name not in EVALUATE_MODULES:
        raise MMBenchError(f"no evaluate module for {name!r}; there are: {', '.join(EVALUATE_MODULES)}")
    return str(_METRICS_DIR / EVALUATE_MODULES[name])
