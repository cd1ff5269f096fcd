"""Expected zero-shot classification values from CLIP_benchmark's own code, run unmodified.

    git --git-dir <CLIP_benchmark clone> archive 48de38c1689fa6d8b4dd53e3370c669c3bb18117 \
        clip_benchmark/metrics/zeroshot_classification.py | tar x -C /tmp/official/CLIP_benchmark
    python tests/data/zeroshot/make_cases.py /tmp/official/CLIP_benchmark/clip_benchmark/metrics/zeroshot_classification.py

(scikit-learn is needed by the official file, and numpy < 2.4: its ``accuracy`` calls ``float()`` on
a one-element array, which numpy 2.4 refuses; these values were made with numpy 2.2.6 in a scratch
virtual environment.)  For each case the official
``evaluate(model, dataloader, tokenizer, classnames, templates, "cpu", amp=False)`` runs with a
stand-in model whose ``encode_image`` returns its input and whose ``encode_text`` looks the
prompt up in a table of text embeddings (the tokenizer turns each prompt string into its row
number), and a dataloader of ``(image embeddings, labels)`` batches whose ``dataset.classes``
are the class names.  Everything else is the official code: ``zero_shot_classifier`` (filled
templates, normalise, mean, normalise), ``run_classification`` (normalised images times the
classifier, x100), ``accuracy`` (topk) and scikit-learn's ``balanced_accuracy_score``.  The
stored classifier is the official one (classes x d).  Random float32 inputs: no tied scores.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch


def load_official(path: str):
    spec = importlib.util.spec_from_file_location("official_zeroshot_classification", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StandIn(torch.nn.Module):
    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table

    def encode_image(self, x):
        return x

    def encode_text(self, tokens):
        return self.table[tokens]


class Loader(list):
    pass


def case(official, name, n_classes, n_templates, counts, dim, seed, batch=7):
    rng = np.random.default_rng(seed)
    classnames = [f"class {c}" for c in range(n_classes)]
    templates = ["a photo of a {c}.", "a {c}", "itap of the {c}", "a drawing of a {c}", "{c}!"][:n_templates]
    prompts = [t.format(c=c) for c in classnames for t in templates]
    centres = rng.standard_normal((n_classes, dim))
    text = np.concatenate([centres[c] + 0.8 * rng.standard_normal((n_templates, dim)) for c in range(n_classes)])
    labels = np.repeat(np.arange(n_classes), counts)
    rng.shuffle(labels)
    images = centres[labels] + 1.5 * rng.standard_normal((len(labels), dim))
    text, images = text.astype(np.float32), images.astype(np.float32)
    row = {p: i for i, p in enumerate(prompts)}
    tokenizer = lambda texts: torch.tensor([row[t] for t in texts])  # noqa: E731
    loader = Loader((torch.from_numpy(images[i:i + batch]), torch.from_numpy(labels[i:i + batch]))
                    for i in range(0, len(labels), batch))
    loader.dataset = type("D", (), {"classes": classnames})()
    model = StandIn(torch.from_numpy(text))
    metrics = official.evaluate(model, loader, tokenizer, classnames, templates, "cpu", amp=False)
    classifier = official.zero_shot_classifier(model, tokenizer, classnames, templates, "cpu", amp=False)
    return {"name": name, "classnames": classnames, "templates": templates,
            "text_emb": text.reshape(n_classes, n_templates, dim).tolist(), "image_emb": images.tolist(),
            "labels": labels.tolist(), "official_classifier": classifier.T.numpy().tolist(),
            "expected": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}}


def main(path: str) -> None:
    official = load_official(path)
    cases = [
        case(official, "10 classes x 3 templates", 10, 3, [4] * 10, 8, 0),
        case(official, "uneven classes, one empty", 7, 2, [9, 1, 0, 5, 3, 6, 2], 6, 1),
        case(official, "4 classes (no acc5)", 4, 2, [5, 5, 4, 6], 5, 2),
        case(official, "12 classes x 5 templates", 12, 5, [3, 7, 1, 4, 4, 2, 8, 5, 1, 6, 2, 3], 16, 3),
        case(official, "one template", 6, 1, [6] * 6, 4, 4),
    ]
    out = {"official": "LAION-AI/CLIP_benchmark 48de38c1689fa6d8b4dd53e3370c669c3bb18117, "
                       "clip_benchmark/metrics/zeroshot_classification.py (git blob "
                       "9c70e1e2f5fa7eb3a3b0429319412bf93070245e), run unmodified",
           "environment": f"torch {torch.__version__}, numpy {np.__version__}",
           "command": "python tests/data/zeroshot/make_cases.py <official zeroshot_classification.py>",
           "cases": cases}
    Path(__file__).with_name("cases.json").write_text(json.dumps(out) + "\n")
    for c in cases:
        print(c["name"], c["expected"], file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
