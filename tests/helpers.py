"""Small local datasets and task files for end-to-end tests."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

CAPTIONS = [["a red square", "a red block"], ["a blue circle", "a round blue shape"],
            ["a green square", "a green block"], ["a blue square", "a square that is blue"],
            ["a red circle", "a round red shape"], ["a green circle", "a round green shape"]]


def make_caption_task(root: Path, *, metric: str = "coco-caption", n: int = 6, bad_rows: bool = False,
                      name: str = "tiny_caption", prompt: str | None = None) -> Path:
    """Write ``n`` PNGs, a JSONL of rows and a task YAML into ``root``; return the task folder.

    With ``bad_rows`` two more rows are added: one whose image file is missing and one
    without references.
    """
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        rng = np.random.RandomState(i)
        Image.fromarray((rng.rand(32, 32, 3) * 255).astype("uint8")).save(data / f"img{i}.png")
        rows.append({"image_id": f"img{i}", "image": f"img{i}.png", "captions": CAPTIONS[i % len(CAPTIONS)]})
    if bad_rows:
        rows.append({"image_id": "no_file", "image": "missing.png", "captions": ["a thing"]})
        rows.append({"image_id": "no_refs", "image": "img0.png"})
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = root / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / f"{name}.yaml").write_text(textwrap.dedent(f"""
        name: {name}
        family: captioning
        description: tiny local caption fixture
        dataset:
          path: json
          data_files: ../data/test.jsonl
          split: train
          columns: {{references: captions}}
        generation: {{max_new_tokens: 6}}
        metrics: [{metric}]
    """) + (f"prompt: {json.dumps(prompt)}\n" if prompt else ""))
    return tasks


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
