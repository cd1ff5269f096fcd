"""A text-to-image baseline that copies a training image: ``easyvqa-t2i-nearest``.

For a prompt, it returns an easy-VQA *train* image whose canonical caption ("a red circle") is
the prompt, exactly (after lower-casing and collapsing spaces): a real image of the right class,
what a model that memorised its training set would draw.  Among the train images with that
caption it takes number ``seed mod n`` (the request's seed, derived from ``--seed`` and the
sample id), so repeated prompts get different images.  A prompt that is no train caption is a
failed sample (never a guess): the baseline exists for the easy-VQA prompt set.

It reads a JSON table written by ``scripts/train_easyvqa_t2i.py`` from the train split::

    {"split": "train", "captions": {"a red circle": ["12", "40", ...], ...}}

and the images from the ``easy-vqa`` package; the fingerprint holds the table's sha256 and the
package version.  The image is the train PNG's own bytes (64x64, where the reference model draws
32x32: the CLIPScore scorer resizes both to its 64 px input).
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from mmbench.errors import MMBenchError, ModelLoadError
from mmbench.models.base import ModelAdapter, PreparedBatch
from mmbench.types import GenerateImageRequest


def normalize_caption(text: str) -> str:
    """>>> normalize_caption("  A Red   circle ")
    'a red circle'
    """
    return " ".join(text.lower().split())


class NearestTrainImage(ModelAdapter):
    adapter = "baseline"
    capabilities = frozenset({"generate_image"})
    fingerprint_identifies_content = True  # the rule, the table's sha256 and the package version

    def __init__(self, name: str, *, path: str | None = None, device: str = "auto", dtype: str = "auto", **_: Any):
        super().__init__(name, device="cpu", dtype="none")
        if not path:
            raise ModelLoadError("NearestTrainImage needs path= (the caption table written by "
                                 "scripts/train_easyvqa_t2i.py)")
        try:
            raw = Path(path).read_bytes()
            table = json.loads(raw)
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"cannot read the caption table {path}: {exc}") from None
        captions = table.get("captions") if isinstance(table, dict) else None
        if table.get("split") != "train" or not isinstance(captions, dict) or not all(
                isinstance(v, list) and v and all(isinstance(i, str) for i in v) for v in captions.values()):
            raise ModelLoadError(f"{path}: expected {{'split': 'train', 'captions': {{caption: [image ids]}}}}")
        import easy_vqa

        self.paths = easy_vqa.get_train_image_paths()
        self.captions = {normalize_caption(k): v for k, v in captions.items()}
        self.fingerprint_info = {"path": str(path), "rule": "train image with the prompt as canonical caption",
                                 "table_sha256": hashlib.sha256(raw).hexdigest()[:16],
                                 "easy_vqa": metadata.version("easy-vqa")}

    def prepare(self, requests: Sequence[GenerateImageRequest]) -> PreparedBatch:
        return PreparedBatch(ids=[r.id for r in requests], requests=list(requests), images=[[] for _ in requests],
                             inputs=True)

    def _forward(self, requests: Sequence[GenerateImageRequest], inputs: Any) -> list[bytes]:
        out = []
        for req in requests:
            ids = self.captions.get(normalize_caption(req.prompt))
            if ids is None:
                raise MMBenchError(f"no easy-VQA train image has the caption {req.prompt!r}")
            out.append(Path(self.paths[int(ids[int(req.seed) % len(ids)])]).read_bytes())
        return out
