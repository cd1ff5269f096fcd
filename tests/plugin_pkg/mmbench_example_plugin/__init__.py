"""An example mmbench plugin: a model adapter, a metric and a folder of tasks."""

from pathlib import Path

from mmbench.models.base import ModelAdapter
from mmbench.types import MetricValues

TASK_DIR = str(Path(__file__).parent / "tasks")


class EchoCaptioner(ModelAdapter):
    """Captions every image with its width and height (a model with no weights)."""

    adapter = "example-echo"

    def __init__(self, name, **kwargs):
        super().__init__(name, device="cpu")

    def _generate_batch(self, requests, images):
        return [f"an image of {imgs[0].width} by {imgs[0].height} pixels" for imgs in images]


def mean_length(predictions, references, **options):
    """Mean number of whitespace tokens per prediction."""
    lengths = [float(len(p.split())) for p in predictions]
    return MetricValues(corpus={"mean_length": sum(lengths) / len(lengths)},
                        per_sample=tuple({"length": n} for n in lengths))
