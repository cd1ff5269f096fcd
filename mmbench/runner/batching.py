"""Batches: order requests so batches hold similar lengths, and overlap each batch's CPU
work (image decoding, processor) with the model's work on the previous one where that hides
it (a GPU or served model; not a CPU that torch already fills)."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.models.base import is_out_of_memory
from mmbench.types import EmbedRequest, ImageRef, ScoreRequest


def batching_key(req: Any, by_image: bool = False) -> tuple:
    """Images before texts for embedding requests; score requests after generate requests (an
    adapter serves a mixed batch, but apart they batch better), by total text (context and
    continuations: a request is that many rows); within a kind, longest text first.

    ``by_image`` (for an adapter that computes what requests share once, ``shares_prefixes``):
    within a kind, requests about one image next to each other (:func:`image_order`), and equal
    texts next to each other, so that what they share falls in one batch."""
    if isinstance(req, EmbedRequest):
        if by_image:
            return (0, image_order(req.images)) if req.images else (1, -len(req.text or ""), req.text or "")
        return (0 if req.images else 1, -len(req.text or ""))
    if isinstance(req, ScoreRequest):
        size = -(len(req.prompt or "") * len(req.continuations) + sum(len(c) for c in req.continuations))
        return (2, image_order(req.images), size) if by_image else (2, size)
    size = -len(req.prompt or req.question or "")
    return (0, image_order(req.images), size) if by_image else (0, size)


def image_order(images: tuple[ImageRef, ...]) -> tuple:
    """A sort key equal for requests naming the same image files or bytes; the same in every
    process (torchrun ranks sort alike).  Bytes are keyed by their length and ends, not hashed
    (a VQAv2-size task holds gigabytes of them): a rare tie only interleaves two images."""
    return tuple((ref.path or "", len(ref.data or b""), (ref.data or b"")[:32], (ref.data or b"")[-32:])
                 for ref in images)


def share_key(req: Any) -> tuple:
    """What a sharing model computes once for a run of requests: their images (a text for a
    text embedding request)."""
    if isinstance(req, EmbedRequest) and not req.images:
        return ("text", req.text)
    return image_order(req.images)


def group_end(requests: list[Any], start: int, size: int) -> int:
    """The end of the batch from ``start``: ``start + size``, moved back to where one
    :func:`share_key` run ends and the next begins, unless one run fills the whole batch.

    >>> group_end([EmbedRequest(str(i), text=t) for i, t in enumerate("aabbbc")], 0, 4)
    2
    """
    end = min(start + size, len(requests))
    if end == len(requests):
        return end
    cut, after = end, share_key(requests[end])
    while cut > start and share_key(requests[cut - 1]) == after:
        cut -= 1
    return cut if cut > start else end


def overlapped_batches(model: Any, requests: list[Any], batch_size: int | str, timer: dict[str, Any]):
    """Yield ``(batch, outputs)`` in order.

    The next batch's CPU work (image decoding, processor) runs in a background thread while
    the model runs the current one; ``timer`` collects the time spent waiting for data and
    in the model.  With ``batch_size="auto"`` the run starts large (64 on CUDA, on CPU the
    adapter's ``auto_batch_cpu``, 16 unless it says otherwise) and halves on out-of-memory,
    retrying the same samples, so none is lost;
    ``timer["batch_size"]`` is the size it settled on (and where a later call with the same
    ``timer`` starts).  For an adapter that computes what
    requests about one image share once (``shares_prefixes``), a batch ends where one image's
    requests end (:func:`group_end`), so none of them is split over two batches unless they
    alone fill one.

    An adapter that schedules requests itself (``schedules_batches = True``: vLLM's continuous
    batching) gets the whole list as one batch, or ``model.max_batch`` requests at a time when
    it sets one; ``batch_size`` is not used for it.

    The next batch is prepared in the background only where that hides work
    (:func:`prefetch_in_background`); otherwise each batch is prepared just before it runs.
    """
    import torch

    own = bool(getattr(model, "schedules_batches", False))
    auto = batch_size == "auto" and not own
    if own:
        size = max(1, getattr(model, "max_batch", None) or len(requests))
    else:
        # auto: a size an earlier chunk of the task settled on, else a large start
        size = (timer.get("batch_size") or (64 if torch.cuda.is_available() else getattr(model, "auto_batch_cpu", 16))
                if auto else int(batch_size))
    timer["batch_size"] = size
    if not requests:
        return
    grouped = bool(getattr(model, "shares_prefixes", False))

    def end_of(first: int) -> int:
        return group_end(requests, first, size) if grouped else first + size

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmbench-prefetch") if prefetch_in_background(
            model) else _Inline() as pool:
        start, end = 0, end_of(0)
        future = pool.submit(model.prepare, requests[0:end])
        while start < len(requests):
            batch = requests[start:end]
            t0 = time.perf_counter()
            prepared = future.result()
            timer["data_wait_s"] += time.perf_counter() - t0
            nxt, nxt_end = end, end_of(end)
            future = pool.submit(model.prepare, requests[nxt:nxt_end]) if nxt < len(requests) else None
            t0 = time.perf_counter()
            try:
                outputs = model.run(prepared)
            except Exception as exc:  # noqa: BLE001
                if not is_out_of_memory(exc):
                    raise
                if own:
                    raise MMBenchError(f"out of memory with {size} requests handed to the engine at once: "
                                       "set --model-arg max_batch=N to hand it fewer") from None
                if not auto or size == 1:
                    raise MMBenchError(f"out of memory at batch size {size}: use a smaller --batch-size or "
                                       "--batch-size auto") from None
                size //= 2
                timer["batch_size"] = size
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                if future is not None and not isinstance(future, _Deferred):
                    future.result()  # let the prefetch finish; its batch boundaries are stale
                end = end_of(start)
                future = pool.submit(model.prepare, requests[start:end])
                continue
            finally:
                timer["forward_s"] += time.perf_counter() - t0
            yield batch, outputs
            start, end = nxt, nxt_end


def prefetch_in_background(model: Any) -> bool:
    """Whether preparing the next batch in a background thread hides its time.

    Not when the model computes on a CPU whose every core torch's intra-op threads already
    use: the thread then takes a core from them mid-operator (their threads wait for each
    other at every operator).  Measured on 2 cores (benchmarks/README.md): 3-4% more model time
    at batch size 1 (a 239M captioner) and 10% fewer questions/s at batch size 32 (a 221M LLaVA)
    than preparing inline, which costs only the preparation itself.  An adapter
    may decide by setting ``prefetch_in_background`` (True or False); a model on a GPU or
    served elsewhere (``device`` not ``cpu``), or torch left with fewer threads than the
    process's cores (``--threads``), prefetches in the background."""
    own = getattr(model, "prefetch_in_background", None)
    if own is not None:
        return bool(own)
    if not str(getattr(model, "device", "cpu")).startswith("cpu"):
        return True
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return torch.get_num_threads() < cores


class _Deferred:
    """A call with a ``Future``'s ``result()``, made in this thread when the result is first asked for
    (so preparing a batch inline counts as waiting for data, as it is)."""

    def __init__(self, fn: Any, args: tuple) -> None:
        self.fn, self.args, self.done, self.value = fn, args, False, None

    def result(self) -> Any:
        if not self.done:
            self.value, self.done = self.fn(*self.args), True
        return self.value


class _Inline:
    """``ThreadPoolExecutor``'s ``submit`` for :func:`overlapped_batches`, without a thread."""

    def __enter__(self) -> "_Inline":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def submit(self, fn: Any, *args: Any) -> _Deferred:
        return _Deferred(fn, args)
