"""Prompt snapshots: every built-in task's prompt for a fixed sample, compared with
tests/data/prompt_snapshots.json, so a change of prompt shows up as a reviewed diff.

Set MMBENCH_UPDATE_SNAPSHOTS=1 to rewrite the file after an intended change (and review the diff)."""

import json
import os
from pathlib import Path

from mmbench.catalog import TASKS, build_task
from mmbench.types import EmbedRequest, GenerateImageRequest, ImageRef, Sample

SNAPSHOTS = Path(__file__).parent / "data" / "prompt_snapshots.json"


def _snapshot_sample() -> Sample:
    return Sample(id="q1", images=(ImageRef(path="x.png"),), text="What color is the shape?",
                  references=("red",) * 10)


def test_prompt_snapshots():
    """Render each built-in VQA/caption task's prompt for a fixed sample; compare with the stored snapshot.
    Set MMBENCH_UPDATE_SNAPSHOTS=1 to rewrite the file after an intended change (and review the diff)."""
    rendered = {}
    for name in TASKS.names():
        entry = TASKS.entry(name)
        if not entry.source.startswith("builtin"):
            continue
        task = build_task(name)
        reqs = task.build_requests(_snapshot_sample(), "snapshot-model")
        if isinstance(reqs[0], EmbedRequest):  # retrieval: the texts that are embedded
            rendered[name] = {"embed": [r.text if r.text is not None else "<image>" for r in reqs[:3]]}
            continue
        req = reqs[0]
        if isinstance(req, GenerateImageRequest):  # text-to-image: the text the image is drawn from
            rendered[name] = {"image": {"prompt": req.prompt, "negative_prompt": req.negative_prompt}}
            continue
        if hasattr(req, "continuations"):  # ScoreRequest (likelihood): the prefix and the first candidates
            rendered[name] = {"score": {"prompt": req.prompt, "continuations": list(req.continuations[:3]),
                                        "n_continuations": len(req.continuations)}}
            continue
        rendered[name] = {"prompt": req.prompt, "question": req.question,
                          "generation": task.config.generation.as_dict()}
    if os.environ.get("MMBENCH_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.write_text(json.dumps(rendered, indent=2, sort_keys=True) + "\n")
    stored = json.loads(SNAPSHOTS.read_text())
    assert rendered == stored
