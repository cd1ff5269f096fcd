"""Pin a hub task's dataset revision: ``mmbench pin <task>`` writes the commit sha into its file.

A task that loads a hub dataset must name the commit it reads (``dataset.revision``), so a
result always means the same data; ``mmbench eval`` refuses ``revision: null``.  This looks up
the dataset's current commit (``huggingface_hub.HfApi().dataset_info(path).sha``; a gated
dataset needs ``HF_TOKEN``) and replaces the ``revision:`` line of the task file in place,
keeping every comment and the rest of the file as written.  A task that is already pinned is
left alone unless ``force``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError

_REVISION_LINE = re.compile(r"^(?P<indent>[ \t]+)revision:[ \t]*(?P<value>[^#\n]*?)[ \t]*(?P<comment>#.*)?$",
                            re.MULTILINE)
_SHA = re.compile(r"^[0-9a-f]{40}$")


def pin_task_file(path: str | Path, *, api: Any = None, force: bool = False) -> tuple[str, str | None]:
    """Write the hub dataset's current commit into the task file at ``path``; return
    ``(sha, previous revision or None)``.  ``api`` is an ``HfApi``-like object (tests pass a fake)."""
    import yaml

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    dataset = data.get("dataset") if isinstance(data, dict) else None
    if not isinstance(dataset, dict) or not dataset.get("path") or dataset.get("loader"):
        raise MMBenchError(f"{path}: not a hub task (it needs `dataset: {{path: <hub id>}}` and no loader)")
    hub_id = str(dataset["path"])
    if hub_id in ("json", "csv", "parquet", "imagefolder", "webdataset", "text", "arrow"):
        raise MMBenchError(f"{path}: dataset {hub_id!r} is local files, nothing to pin")
    previous = dataset.get("revision")
    if previous and not force:
        raise MMBenchError(f"{path}: already pinned to {previous} (pass --force to move it to the current commit)")
    matches = list(_REVISION_LINE.finditer(text))
    if len(matches) != 1:
        raise MMBenchError(f"{path}: expected one `revision:` line under `dataset:`, found {len(matches)}")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        sha = api.dataset_info(hub_id).sha
    except Exception as exc:  # noqa: BLE001 - offline, gated, missing: all end here with the hub's reason
        raise MMBenchError(f"{path}: cannot look up the current commit of {hub_id!r} on the hub: "
                           f"{type(exc).__name__}: {exc}") from None
    if not isinstance(sha, str) or not _SHA.match(sha):
        raise MMBenchError(f"{path}: the hub returned {sha!r} for {hub_id!r}, not a commit sha")
    m = matches[0]
    line = f'{m.group("indent")}revision: "{sha}"' + (f'  {m.group("comment")}' if m.group("comment") else "")
    path.write_text(text[:m.start()] + line + text[m.end():], encoding="utf-8")
    return sha, previous
