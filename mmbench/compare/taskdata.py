"""Questions and image thumbnails for flipped items, from the task's own data when it can be rebuilt.

Predictions lines keep a prompt hash, not the question, and no image.  When the task is
registered here (built-in or installed; never code named by a results file: no
``--include`` folder, no ``trust_remote_code``) its samples are rebuilt with
``build_task(name).load_samples(limit)`` and used only if their ids hash to the run's
``fingerprint.sample_ids_hash`` (the same data).  Otherwise the report says why and shows
what the lines have.  Thumbnails are small PNGs as ``data:`` URIs (no external resources).
"""

from __future__ import annotations

import base64
import io
from typing import Any

THUMBNAIL_PX = 96


def load_task_samples(task: str, fingerprint: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``({sample id: Sample}, None)``, or ``({}, reason)`` when the data is not available."""
    try:
        from mmbench.catalog import build_task
        from mmbench.tasks.data import content_hash

        built = build_task(task, trust_remote_code=False)
        samples = built.load_samples(limit=fingerprint.get("limit"))
    except Exception as exc:  # any loader failure only costs the display: say why
        return {}, f"task data not available ({type(exc).__name__}: {str(exc)[:200]})"
    expected = fingerprint.get("sample_ids_hash")
    if expected and content_hash([s.id for s in samples]) != expected:
        return {}, "the task's data here is not the data the runs used (sample ids differ): questions and images not shown"
    return {s.id: s for s in samples}, None


def thumbnail(sample: Any, px: int = THUMBNAIL_PX) -> str | None:
    """A ``data:image/png;base64,...`` thumbnail of the sample's first image, or None."""
    if not getattr(sample, "images", None):
        return None
    try:
        from mmbench.images import load_image

        img = load_image(sample.images[0]).copy()
        img.thumbnail((px, px))
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=True)
    except Exception:  # a broken image: no thumbnail, the row still shows
        return None
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def attach(tasks: dict[str, dict[str, Any]], fingerprints: dict[str, dict[str, Any]],
           thumbnails: dict[str, dict[str, str]], cache: dict[str, Any]) -> None:
    """Fill ``question`` in the flipped items of ``tasks`` (one candidate's task entries) and
    ``thumbnails[task][sample id]``; add a note to a task whose data is not available.
    ``cache`` keeps each task's samples for the next candidate."""
    for name, entry in tasks.items():
        items = [it for kind in ("to_correct", "to_wrong") for it in entry["flips"]["items"][kind]]
        if not items:
            continue
        if name not in cache:
            cache[name] = load_task_samples(name, fingerprints[name])
        samples, reason = cache[name]
        if reason:
            entry["notes"].append(reason)
            continue
        shown = thumbnails.setdefault(name, {})
        for it in items:
            sample = samples.get(it["id"])
            if sample is None:
                continue
            it["question"] = sample.text
            if it["id"] not in shown:
                uri = thumbnail(sample)
                if uri:
                    shown[it["id"]] = uri
