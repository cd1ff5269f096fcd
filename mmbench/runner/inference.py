"""Inference: the prediction cache, sharding over processes, batches, and gathering outputs."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from mmbench.cache import PredictionCache, decode_output, encode_output, request_hash
from mmbench.distributed import DistContext
from mmbench.errors import MMBenchError
from mmbench.images import DEFAULT_MAX_PIXELS
from mmbench.runner.batching import batching_key, overlapped_batches
from mmbench.runner.plan import Plan
from mmbench.tasks.base import Task
from mmbench.types import GenerateImageRequest

ProgressFactory = Callable[[str, int], Callable[[int], None]]


@dataclass
class Inference:
    """What the model produced for a plan.

    ``raw``: request id -> output (text, embedding, scores or PNG bytes); ``errors``: sample id -> why it
    failed (row errors included); ``pending``: the requests that were not in the cache
    (computed by this run, over all processes); ``model_s``: wall time of the model loop
    (the slowest process); ``timer``: ``batch_size``, ``data_wait_s``, ``forward_s``.
    """

    raw: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: sample id -> the full traceback of a code error (kept in failures/<task>.jsonl)
    tracebacks: dict[str, str] = field(default_factory=dict)
    n_cached: int = 0
    pending: list[Any] = field(default_factory=list)
    model_s: float = 0.0
    timer: dict[str, Any] = field(default_factory=dict)


def run_inference(task: Task, plan: Plan, model: Any, *, batch_size: int | str, on_error: str,
                  progress: ProgressFactory, cache: PredictionCache | None = None,
                  ctx: DistContext | None = None, advance: Callable[[int], None] | None = None,
                  timer: dict[str, Any] | None = None) -> Inference:
    """Serve the plan's requests: from the cache where it has them, else in batches (this
    process's shard under torchrun); every finished batch is cached at once, so a crash
    loses at most the batch in flight.  With several processes every rank ends with every
    output.

    ``advance``: a progress bar to move (one step per row error and per request) instead of
    making one; ``timer``: a dict to add the time spent to (a streamed task's chunks share one:
    its ``batch_size`` is where an automatic batch size starts)."""
    inf = Inference(errors=dict(plan.row_errors))
    requests, owner = plan.requests, plan.owner
    model_hash = model.fingerprint()["hash"]
    task_key = cache_task_key(task, plan.rendered_prompt)
    hashes = {rid: request_hash(req) for rid, req in requests.items()}
    if cache is not None:
        hit = cache.get_many(model_hash, task_key, list(hashes.values()))
        for rid, h in hashes.items():
            if h not in hit:
                continue
            value = decode_output(requests[rid], hit[h])
            if isinstance(requests[rid], GenerateImageRequest):
                value = cache.get_image(value)  # None: its file is gone or damaged, so it is recomputed
                if value is None:
                    continue
            inf.raw[rid] = value
    inf.n_cached = len(inf.raw)
    if ctx is not None:
        ctx.barrier()  # every rank has read the cache before any rank writes to it: same pending list everywhere
    # similar requests together, longest first, so batches hold similar lengths (less padding), or
    # requests about one image together for a model that computes what they share once; outputs are
    # keyed by id, so the order never changes a result
    by_image = bool(getattr(model, "shares_prefixes", False))
    inf.pending = sorted((r for r in requests.values() if r.id not in inf.raw),
                         key=lambda r: batching_key(r, by_image))
    mine = ctx.shard(inf.pending, contiguous=by_image) if ctx is not None else inf.pending
    own_bar = advance is None
    if own_bar:
        advance = progress(f"{task.name} ({model.name})", len(inf.errors) + inf.n_cached + len(mine))
    advance(len(inf.errors) + inf.n_cached)
    t_model = time.perf_counter()
    inf.timer = timer if timer is not None else {"data_wait_s": 0.0, "forward_s": 0.0}
    for batch, outputs in overlapped_batches(model, mine, batch_size, inf.timer):
        done = []
        for out in outputs:
            if out.ok:
                inf.raw[out.id] = out.value  # text, embedding, scores or PNG bytes
                if cache is not None and out.image is not None:
                    cache.put_image(out.image)  # the file first: a row never names a missing image
                done.append((hashes[out.id], owner[out.id], encode_output(out)))
            else:
                inf.errors.setdefault(owner[out.id], out.error or "unknown error")
                if out.traceback:
                    inf.tracebacks.setdefault(owner[out.id], out.traceback)
        if cache is not None and done:
            cache.put_many(model_hash, task_key, done)  # a finished batch survives any later crash
        if on_error == "fail" and any(owner[r.id] in inf.errors for r in batch):
            bad = next(owner[r.id] for r in batch if owner[r.id] in inf.errors)
            raise MMBenchError(f"task {task.name}: sample {bad!r} failed: {inf.errors[bad]}")
        advance(len(batch))
    inf.model_s = time.perf_counter() - t_model
    if ctx is not None:  # every rank gets every output; the merged dicts do not depend on rank order
        for part in ctx.all_gather({"raw": inf.raw, "errors": inf.errors, "tracebacks": inf.tracebacks,
                                    "model_s": inf.model_s}):
            inf.raw.update(part["raw"])
            inf.errors.update(part["errors"])
            inf.tracebacks.update(part["tracebacks"])
            inf.model_s = max(inf.model_s, part["model_s"])
        if not own_bar:
            advance(len(inf.pending) - len(mine))  # the other ranks' requests, on a bar over all of them
    return inf


def cache_task_key(task: Task, rendered_prompt: str | None) -> str:
    """What a cached output depends on besides the model and the request: the task definition and data,
    and the torch and transformers versions (a model's outputs can change between releases: Idefics3's
    image positions did between transformers 4.57 and 5, say), so a cache shared across versions is
    never read by the wrong one."""
    import torch

    from mmbench.images import max_image_pixels
    from mmbench.runner.provenance import package_version

    blob = json.dumps([task.name, task.config.definition_hash(), task.provenance, rendered_prompt,
                       torch.__version__, package_version("transformers")]
                      # a pixel limit other than the default changes how the largest images decode
                      + ([max_image_pixels()] if max_image_pixels() != DEFAULT_MAX_PIXELS else []),
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


#: embeddings from batch size 1 and batch size N count as equal within this max-abs difference
#: (float32 kernels pick different reduction orders for different shapes)
EMBEDDING_TOLERANCE = 1e-4
#: log-likelihood sums (ScoreRequest) from batch size 1 and batch size N count as equal within this
#: absolute difference (docs/likelihood.md: padding is masked out, so only float noise remains)
SCORE_TOLERANCE = 1e-4


#: generated images (GenerateImageRequest) from batch size 1 and batch size N count as equal when no
#: pixel value differs by more than this (of 255): batched kernels round differently, and the
#: difference grows over the denoising steps (docs/text-to-image.md)
PIXEL_TOLERANCE = 2


def _pixel_diff(png_a: bytes, png_b: bytes) -> int:
    """The largest per-channel difference between two PNG images (255 when their sizes differ)."""
    import io

    import numpy as np
    from PIL import Image

    a, b = (np.asarray(Image.open(io.BytesIO(x)).convert("RGB"), dtype=np.int16) for x in (png_a, png_b))
    return 255 if a.shape != b.shape else int(np.abs(a - b).max())


def check_batch_invariance(model: Any, requests: list[Any], batch_size: int) -> dict[str, Any]:
    """Run ``requests`` one at a time and in batches of ``batch_size``; report how many outputs differ.

    Greedy decoding should not depend on batch composition; when it does (padding bugs,
    non-deterministic kernels), scores move with batch size and this says by how much.
    Embeddings differ when some value moves by more than ``EMBEDDING_TOLERANCE``; the
    largest difference seen is reported as ``max_abs_embedding_diff``.
    """
    def run(batch: list[Any]) -> list[Any]:
        return model.run(model.prepare(batch))

    import numpy as np

    size = max(batch_size, 2)
    single = [out for req in requests for out in run([req])]
    batched = [out for i in range(0, len(requests), size) for out in run(requests[i:i + size])]
    diffs = []
    max_diff = 0.0
    max_score_diff = 0.0
    max_pixel_diff = 0
    for a, b in zip(single, batched):
        if a.scores is not None and b.scores is not None:
            counts = [n for _, n in a.scores] == [n for _, n in b.scores]
            diff = max((abs(x - y) for (x, _), (y, _) in zip(a.scores, b.scores)), default=0.0)
            max_score_diff = max(max_score_diff, diff)
            if diff > SCORE_TOLERANCE or not counts:
                diffs.append((a.id, f"scores differ by {diff:.3g}" + ("" if counts else " (token counts)"), ""))
        elif a.image is not None and b.image is not None:
            diff = _pixel_diff(a.image, b.image)
            max_pixel_diff = max(max_pixel_diff, diff)
            if diff > PIXEL_TOLERANCE:
                diffs.append((a.id, f"image differs by {diff} (of 255) in some pixel", ""))
        elif a.embedding is not None and b.embedding is not None:
            diff = float(np.max(np.abs(a.embedding - b.embedding)))
            max_diff = max(max_diff, diff)
            if diff > EMBEDDING_TOLERANCE:
                diffs.append((a.id, f"embedding differs by {diff:.3g}", ""))
        elif (a.text, a.error) != (b.text, b.error):
            diffs.append((a.id, a.text, b.text))
    report = {"n_checked": len(requests), "batch_size": size, "mismatches": len(diffs),
              "mismatch_rate": len(diffs) / len(requests) if requests else 0.0,
              "examples": [{"id": i, "batch_1": a, "batched": b} for i, a, b in diffs[:5]]}
    if any(out.image is not None for out in single):
        report["max_abs_pixel_diff"] = max_pixel_diff
        report["pixel_tolerance"] = PIXEL_TOLERANCE
    if any(out.embedding is not None for out in single):
        report["max_abs_embedding_diff"] = max_diff
        report["embedding_tolerance"] = EMBEDDING_TOLERANCE
    if any(out.scores is not None for out in single):
        report["max_abs_score_diff"] = max_score_diff
        report["score_tolerance"] = SCORE_TOLERANCE
    return report
