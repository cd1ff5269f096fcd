"""Per-sample files for the page's sample browser: static, loaded on demand, escaped.

``write_samples(board, out_dir)`` writes, per comparable group ``g<N>`` (numbered as the page's
tables), script chunks of ``CHUNK`` samples beside ``index.html``::

    samples/g<N>/s<k>.js        mmbenchSamples("g<N>/s<k>", [[id, category, thumb, prompt, references], ...])
    samples/g<N>/m<i>-<k>.js    mmbenchSamples("g<N>/m<i>/<k>", [{"o": raw output, "p": prediction,
                                   "s": scores, "e": error, "v": 1 right | 0 wrong | -1 failed | null,
                                   "q": prompt when it differs from the shared one} | null, ...])
    samples/g<N>/s-idx.js       {"categories": {category: [position, ...]}}
    samples/g<N>/m<i>-idx.js    {"right"|"wrong"|"failed": [position, ...], "asc": positions by score}
    thumbs/<sha256[:16]>.png|jpg

``i`` is the row's position in the group's table (best first); a sample's position is its index in
the group's id order, and chunk ``k`` of every model holds positions ``k*CHUNK ..`` like the
shared chunk ``s<k>``.  Filters and sorting work on the small index files (lists of positions),
so a page of 25 samples loads only the chunks those 25 live in.  The chunks are scripts that call a
registration function, not JSON to ``fetch()``: browsers refuse ``fetch`` of ``file://`` URLs,
and the page must work opened from disk.  Nothing is loaded until a reader opens a model's
samples, and then one chunk at a time, so a board of 200k samples opens as fast as a small one.

The rendered prompt is what the predictions line stores (``prompt``) or, when it stores only
``prompt_hash``, the prompt rebuilt from the task (``build_task`` + ``load_samples``) whose hash
equals the line's; otherwise the group shows the task's prompt template from the fingerprint
and says so.  Thumbnails (longest side ``THUMB_PX``) come from the same rebuilt task when its
sample ids hash equals the fingerprint's, deduplicated by content; otherwise none, with a note.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from pathlib import Path
from typing import Any, Iterator

from mmbench.leaderboard.load import line_id, prediction_lines, predictions_path
from mmbench.results import RunResult

log = logging.getLogger(__name__)

CHUNK = 1000
THUMB_PX = 64
MAX_TEXT = 2000          # characters of one string kept per field (the rest is cut, marked with …)
MAX_REFS = 20
CATEGORY_KEYS = ("answer_type", "category", "question_type")


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + "…"
    if isinstance(value, list):
        return [_cut(v) for v in value[:MAX_REFS]]
    return value


def js_chunk(key: str, data: Any) -> str:
    """A script that registers ``data`` under ``key``; JSON escaped like the page's embedded data."""
    from mmbench.leaderboard.html import script_json

    return f"mmbenchSamples({script_json(key)}, {script_json(data)});\n"


def _category(meta: Any) -> str | None:
    if not isinstance(meta, dict):
        return None
    for k in CATEGORY_KEYS:
        v = meta.get(k)
        if isinstance(v, (str, int)) and not isinstance(v, bool):
            return str(v)[:100]
    return None


class _TaskData:
    """The task rebuilt here, to find images and rendered prompts (or why not)."""

    def __init__(self, task: str, fingerprint: dict[str, Any]):
        self.samples: dict[str, Any] = {}
        self.task = None
        self.note: str | None = None
        try:
            from mmbench.catalog import build_task
            from mmbench.tasks.data import content_hash

            built = build_task(task)
            samples = built.load_samples(limit=fingerprint.get("limit"))
        except Exception as exc:  # any failure only costs the thumbnails: say why
            self.note = f"no thumbnails: the task's data cannot be loaded here ({type(exc).__name__}: " \
                        f"{str(exc).splitlines()[0][:200] if str(exc) else ''})"
            return
        expected = fingerprint.get("sample_ids_hash")
        if expected and content_hash([s.id for s in samples]) != expected:
            self.note = "no thumbnails: the task's data here is not the data these runs used (sample ids differ)"
            return
        self.task = built
        self.samples = {s.id: s for s in samples}
        self._prompts: dict[tuple[str, str], str | None] = {}

    def prompt(self, sid: str, model: str, prompt_hash: Any) -> str | None:
        """The prompt the task renders for ``sid`` and ``model``, if its hash is the line's."""
        sample = self.samples.get(sid)
        if self.task is None or sample is None or not isinstance(prompt_hash, str):
            return None
        try:
            from mmbench.tasks.base import text_hash

            requests = self.task.build_requests(sample, model)
            prompt = getattr(requests[0], "prompt", None) if requests else None
        except Exception:  # noqa: BLE001 - a task that cannot rebuild a prompt shows its template
            return None
        return prompt if isinstance(prompt, str) and text_hash(prompt) == prompt_hash else None


class _Thumbs:
    """Small thumbnails in ``out/thumbs``, named by their content hash, one per distinct image."""

    def __init__(self, out: Path):
        self.dir = out / "thumbs"
        self.by_source: dict[str, str | None] = {}

    def get(self, sample: Any) -> str | None:
        images = getattr(sample, "images", ()) or ()
        if not images:
            return None
        ref = images[0]
        key = ref.path or (hashlib.sha256(ref.data).hexdigest() if ref.data is not None else None)
        if key is None:
            return None
        if key not in self.by_source:
            self.by_source[key] = self._make(ref)
        return self.by_source[key]

    def _make(self, ref: Any) -> str | None:
        from mmbench.images import load_image

        try:
            img = load_image(ref)
        except Exception:  # noqa: BLE001 - a broken image has no thumbnail; the sample still shows
            return None
        img.thumbnail((THUMB_PX, THUMB_PX))
        encoded = []
        for fmt, ext, kw in (("PNG", "png", {"optimize": True}), ("JPEG", "jpg", {"quality": 85})):
            buf = io.BytesIO()
            img.save(buf, fmt, **kw)
            encoded.append((len(buf.getvalue()), ext, buf.getvalue()))
        _, ext, data = min(encoded)
        name = f"{hashlib.sha256(data).hexdigest()[:16]}.{ext}"
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / name
        if not path.exists():
            path.write_bytes(data)
        return f"thumbs/{name}"


def _verdict(line: dict, metric: str, graded: bool) -> int | None:
    if line.get("error"):
        return -1
    if graded:
        return None
    v = (line.get("scores") or {}).get(metric)
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return None
    return 1 if v >= 1 - 1e-9 else 0


def _lines(run: RunResult, task: str) -> Iterator[tuple[str, dict]]:
    path = predictions_path(run.predictions_path(task))
    if path is None:
        return
    for where, obj in prediction_lines(path):
        yield line_id(obj, where), obj


def _is_graded(runs: list[RunResult], task: str, metric: str) -> bool:
    """A metric is right/wrong when every per-sample score lies in [0, 1] (full credit = right)."""
    for run in runs:
        for _, line in _lines(run, task):
            v = (line.get("scores") or {}).get(metric)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not (0 <= v <= 1):
                return True
    return False


def write_samples(board: dict[str, Any], out: str | Path, *, thumbnails: bool = True) -> dict[str, Any]:
    """Write every group's sample chunks (and thumbnails) under ``out``; return the index the page
    embeds: ``{"g<N>": {"task", "n", "chunk", "n_chunks", "metric", "graded", "models": [...],
    "categories", "prompt_template", "notes"}}``."""
    out = Path(out)
    index: dict[str, Any] = {}
    thumbs = _Thumbs(out)
    n = 0
    for task in board["tasks"]:
        data: _TaskData | None = None
        for group in task["groups"]:
            n += 1
            key = f"g{n}"
            runs = [RunResult.load(r["results"]) for r in group["rows"]]
            fingerprint = runs[0].tasks[task["task"]].fingerprint
            if data is None and thumbnails:
                data = _TaskData(task["task"], fingerprint)
            index[key] = _write_group(key, task["task"], group, runs, fingerprint, data, thumbs, out)
    return index


def _write_group(key: str, task: str, group: dict, runs: list[RunResult], fingerprint: dict,
                 data: "_TaskData | None", thumbs: _Thumbs, out: Path) -> dict[str, Any]:
    from mmbench.io import atomic_write_text

    metric = group["primary_metric"]
    graded = _is_graded(runs, task, metric)
    folder = out / "samples" / key
    ids: list[str] = []
    seen: set[str] = set()
    shared: dict[str, list] = {}
    models = []
    notes = []
    same_data = data is not None and data.task is not None
    if data is not None and data.note:
        notes.append(data.note)
    elif data is None:
        notes.append("no thumbnails (built with --no-thumbnails)")
    any_prompt_missing = False
    per_model: list[dict[str, dict]] = []
    for i, (row, run) in enumerate(zip(group["rows"], runs)):
        records: dict[str, dict] = {}
        counts = {"right": 0, "wrong": 0, "failed": 0}
        for sid, line in _lines(run, task):
            if sid not in seen:
                seen.add(sid)
                ids.append(sid)
            prompt = line.get("prompt") if isinstance(line.get("prompt"), str) else None
            if prompt is None and same_data:
                prompt = data.prompt(sid, run.model_name, line.get("prompt_hash"))
            if sid not in shared:
                sample = data.samples.get(sid) if same_data else None
                shared[sid] = [sid, _category(line.get("meta")), thumbs.get(sample) if sample is not None else None,
                               _cut(prompt), _cut([r for r in line.get("references") or [] if isinstance(r, str)])]
            if prompt is None and line.get("prompt_hash"):
                any_prompt_missing = True
            verdict = _verdict(line, metric, graded)
            counts[{1: "right", 0: "wrong", -1: "failed"}.get(verdict, "wrong")] += verdict is not None
            rec = {"o": _cut(line.get("raw_output")), "p": _cut(line.get("prediction")),
                   "s": {k: v for k, v in (line.get("scores") or {}).items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)},
                   "e": _cut(line.get("error")), "v": verdict}
            if prompt is not None and prompt != shared[sid][3]:
                rec["q"] = _cut(prompt)
            records[sid] = rec
        per_model.append(records)
        models.append({"row": i, "label": row["model"] if [r["model"] for r in group["rows"]].count(row["model"]) == 1
                       else f"{row['model']} ({row['run']})", "available": bool(records), "counts": counts,
                       "n": len(records)})
    n_chunks = math.ceil(len(ids) / CHUNK)
    pos = {sid: j for j, sid in enumerate(ids)}
    by_category: dict[str, list[int]] = {}
    for sid in ids:
        if shared[sid][1] is not None:
            by_category.setdefault(shared[sid][1], []).append(pos[sid])
    atomic_write_text(folder / "s-idx.js", js_chunk(f"{key}/s/idx", {"categories": by_category}))
    for i, records in enumerate(per_model):
        if not records:
            continue
        lists: dict[str, list[int]] = {"right": [], "wrong": [], "failed": []}
        scored = []
        for sid, rec in records.items():
            if rec["v"] is not None:
                lists[{1: "right", 0: "wrong", -1: "failed"}[rec["v"]]].append(pos[sid])
            if metric in rec["s"]:
                scored.append((rec["s"][metric], pos[sid]))
        lists = {k: sorted(v) for k, v in lists.items()}
        lists["asc"] = [j for _, j in sorted(scored)]
        atomic_write_text(folder / f"m{i}-idx.js", js_chunk(f"{key}/m{i}/idx", lists))
    for k in range(n_chunks):
        part = ids[k * CHUNK:(k + 1) * CHUNK]
        atomic_write_text(folder / f"s{k}.js", js_chunk(f"{key}/s{k}", [shared[sid] for sid in part]))
        for i, records in enumerate(per_model):
            if records:
                atomic_write_text(folder / f"m{i}-{k}.js",
                                  js_chunk(f"{key}/m{i}/{k}", [records.get(sid) for sid in part]))
    template = fingerprint.get("prompt") if isinstance(fingerprint.get("prompt"), str) else None
    if any_prompt_missing:
        notes.append("The rendered prompt is not stored for some samples: the task's prompt template is shown.")
    if graded:
        notes.append(f"{metric} is a graded score, not right/wrong: sort by score to see the weakest samples.")
    categories = sorted({v[1] for v in shared.values() if v[1] is not None})
    return {"task": task, "n": len(ids), "chunk": CHUNK, "n_chunks": n_chunks, "metric": metric, "graded": graded,
            "higher_is_better": group["higher_is_better"].get(metric), "models": models,
            "categories": categories, "prompt_template": template, "notes": notes,
            "thumbnails": any(v[2] for v in shared.values())}
