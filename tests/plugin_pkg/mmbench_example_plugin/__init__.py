"""An example mmbench plugin: a model adapter, a metric and a folder of tasks."""

import time
from pathlib import Path

from mmbench.models.base import ModelAdapter
from mmbench.types import MetricValues

TASK_DIR = str(Path(__file__).parent / "tasks")


class EchoCaptioner(ModelAdapter):
    """Captions every image with its width and height (a model with no weights).

    Test knobs: ``delay`` seconds of sleep per batch, and ``log``, a file to which the id of
    every sample it computes is appended (to check what a resumed run recomputes).
    """

    adapter = "example-echo"

    def __init__(self, name, delay=0.0, log=None, **kwargs):
        super().__init__(name, device="cpu")
        self.delay, self.log = float(delay), log

    def _generate_batch(self, requests, images):
        if self.delay:
            time.sleep(self.delay)
        if self.log:
            with open(self.log, "a", encoding="utf-8") as fh:
                fh.write("".join(f"{r.id}\n" for r in requests))
        return [f"an image of {imgs[0].width} by {imgs[0].height} pixels" for imgs in images]


def mean_length(predictions, references, **options):
    """Mean number of whitespace tokens per prediction."""
    lengths = [float(len(p.split())) for p in predictions]
    return MetricValues(corpus={"mean_length": sum(lengths) / len(lengths)},
                        per_sample=tuple({"length": n} for n in lengths))
