"""Run tasks against a model and write the run folder.

``evaluate(model=..., tasks=[...])`` is what ``mmbench eval`` calls.  For each task:
load samples -> build requests -> batched generation -> parse -> score -> write
``predictions/<task>.jsonl``; then ``results.json`` for the whole run.  Scoring
reads only predictions and references, so ``mmbench score`` can re-score a run
without the model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from mmbench import __version__, distributed
from mmbench.cache import PredictionCache, decode_output, encode_output, request_hash
from mmbench.catalog import DEFAULT_MODEL, DEFAULT_TASKS, build_task, include_tasks
from mmbench.distributed import DistContext
from mmbench.errors import MMBenchError
from mmbench.io import atomic_write_json, atomic_write_jsonl
from mmbench.models.base import is_out_of_memory
from mmbench.results import SCHEMA_VERSION, record_to_json
from mmbench.tasks.base import Task, text_hash
from mmbench.types import EmbedRequest, SampleRecord

ProgressFactory = Callable[[str, int], Callable[[int], None]]


@dataclass
class EvalConfig:
    """Everything that determines a run (stored in results.json as ``config``)."""

    model: str = DEFAULT_MODEL
    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    adapter: str | None = None
    batch_size: int | str = 8  # or "auto"
    device: str = "auto"
    dtype: str = "auto"
    limit: int | None = None
    seed: int = 0
    output: str | None = None
    include: list[str] = field(default_factory=list)
    on_error: str = "continue"
    tokenizer: str = "ptb"
    meteor: bool | None = None
    cache: bool = True
    cache_dir: str | None = None
    check_batch_invariance: bool = False
    compile: bool = False
    trust_remote_code: bool = False
    revision: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    #: torch CPU threads (None: torch's default, one per core).  Never changes a score, only speed.
    threads: int | None = None


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_output_dir(model: str) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model.rstrip("/").split("/")[-1])
    return str(Path("runs") / f"{stamp}-{safe}")


def _no_progress(_: str, __: int) -> Callable[[int], None]:
    return lambda n: None


def evaluate(config: EvalConfig | None = None, *, progress: ProgressFactory | None = None,
             **overrides: Any) -> dict[str, Any]:
    """Run ``config`` (or keyword overrides of the defaults); return the results dict also written to disk."""
    cfg = config or EvalConfig()
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise TypeError(f"unknown option {key!r}")
        setattr(cfg, key, value)
    if cfg.on_error not in ("continue", "fail"):
        raise MMBenchError(f"--on-error must be 'continue' or 'fail', not {cfg.on_error!r}")
    if cfg.batch_size != "auto":
        try:
            cfg.batch_size = int(cfg.batch_size)
        except (TypeError, ValueError):
            raise MMBenchError(f"--batch-size must be a whole number or 'auto', not {cfg.batch_size!r}") from None
        if cfg.batch_size < 1:
            raise MMBenchError("--batch-size must be at least 1")
    progress = progress or _no_progress
    with _torch_threads_set(cfg.threads):
        return _evaluate(cfg, progress)


@contextlib.contextmanager
def _torch_threads_set(threads: int | None):
    """``torch.set_num_threads(threads)`` for the duration of a run, then the caller's setting again."""
    if threads is None:
        yield
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise MMBenchError(f"--threads must be a whole number of at least 1, not {threads!r}")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _evaluate(cfg: EvalConfig, progress: ProgressFactory) -> dict[str, Any]:
    for path in cfg.include:
        include_tasks(path)
    tasks: list[Task] = [build_task(name) for name in cfg.tasks]  # fail on a bad name before loading a model
    out_dir = Path(cfg.output or default_output_dir(cfg.model))
    _seed_everything(cfg.seed)

    from mmbench.models.resolve import load_model

    ctx = distributed.setup()
    device = cfg.device
    if ctx is not None and device == "auto":
        import torch

        device = f"cuda:{ctx.local_rank}" if torch.cuda.is_available() else "cpu"
    if ctx is not None and not ctx.is_main:
        progress = _no_progress
    t0 = time.perf_counter()
    loaded = progress(f"loading model {cfg.model}", 1)
    model = load_model(cfg.model, adapter=cfg.adapter, device=device, dtype=cfg.dtype, revision=cfg.revision,
                       trust_remote_code=cfg.trust_remote_code,
                       **({"compile": True} if cfg.compile else {}), **cfg.model_args)
    loaded(1)
    load_s = time.perf_counter() - t0
    for task in tasks:  # before any work: a captioner cannot run retrieval, a CLIP cannot caption
        if task.needs not in model.capabilities:
            raise MMBenchError(
                f"task {task.name!r} ({task.family}) needs a model that can {task.needs}; model {model.name!r} "
                f"({model.adapter}) serves: {', '.join(sorted(model.capabilities))}")
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "mmbench_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": asdict(cfg) | {"output": str(out_dir)},
        "model": {"name": model.name, "fingerprint": model.fingerprint(), **model.info()},
        "environment": _environment(),
        "seed": cfg.seed,
        "n_processes": ctx.world_size if ctx else 1,
        "torch_threads": _torch_threads(),
        "timing": {"model_load_s": round(load_s, 3)},
        "tasks": {},
    }
    cache = PredictionCache(cfg.cache_dir) if cfg.cache else None
    results["cache"] = str(cache.path) if cache else None
    lock = _lock_output(out_dir) if ctx is None or ctx.is_main else None
    try:
        for task in tasks:
            results["tasks"][task.name] = run_task(task, model, cfg, out_dir, progress, cache, ctx)
    finally:
        if cache is not None:
            cache.close()
        if lock is not None:
            lock.close()
    results["timing"]["wall_s"] = round(time.perf_counter() - t0, 3)
    if ctx is None or ctx.is_main:
        atomic_write_json(out_dir / "results.json", results)
    else:
        results["rank"] = ctx.rank  # not written: only rank 0's results are the run's
    return results


def evaluate_default_suite(config: EvalConfig | None = None, *, progress: ProgressFactory | None = None
                           ) -> list[dict[str, Any]]:
    """The offline default run: each reference model on its easy-VQA task (``catalog.DEFAULT_SUITE``),
    with the other settings of ``config``; run folders ``<output>/<model>``."""
    from mmbench.catalog import DEFAULT_SUITE

    base = config or EvalConfig()
    root = Path(base.output or default_output_dir("default"))
    runs = []
    for model, tasks in DEFAULT_SUITE:
        cfg = EvalConfig(**{**asdict(base), "model": model, "tasks": list(tasks), "output": str(root / model)})
        runs.append(evaluate(cfg, progress=progress))
    return runs


def run_task(task: Task, model: Any, cfg: EvalConfig, out_dir: Path, progress: ProgressFactory,
             cache: PredictionCache | None = None, ctx: DistContext | None = None) -> dict[str, Any]:
    """Evaluate one task; with ``ctx`` (several processes) each rank computes its shard and rank 0
    scores and writes.  Other ranks return the task's entry without writing files."""
    t_start = time.perf_counter()
    task_window = _reset_peak_memory()
    samples = task.load_samples(limit=cfg.limit)
    if not samples:
        raise MMBenchError(f"task {task.name!r} has no samples")
    # one or more requests per sample (a retrieval sample asks for its image and each caption)
    by_sample = {s.id: list(task.build_requests(s, model.name)) for s in samples if s.error is None}
    requests: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for sid, reqs in by_sample.items():
        for req in reqs:
            if req.id in requests:
                raise MMBenchError(f"task {task.name}: two requests share the id {req.id!r} "
                                   f"(samples {owner[req.id]!r} and {sid!r})")
            requests[req.id] = req
            owner[req.id] = sid
    model.check_serves(list(requests.values()))
    raw: dict[str, Any] = {}
    errors: dict[str, str] = {s.id: s.error for s in samples if s.error is not None}
    if errors and cfg.on_error == "fail":
        first = next(iter(errors.items()))
        raise MMBenchError(f"task {task.name}: sample {first[0]!r} failed: {first[1]}")
    rendered = model.render_prompt(task.prompt_for(model.name), 1)
    model_hash = model.fingerprint()["hash"]
    task_key = cache_task_key(task, rendered)
    hashes = {rid: request_hash(req) for rid, req in requests.items()}
    if cache is not None:
        hit = cache.get_many(model_hash, task_key, list(hashes.values()))
        raw.update({rid: decode_output(requests[rid], hit[h]) for rid, h in hashes.items() if h in hit})
    n_cached = len(raw)
    if ctx is not None:
        ctx.barrier()  # every rank has read the cache before any rank writes to it: same pending list everywhere
    # similar requests together, longest first, so batches hold similar lengths (less padding);
    # outputs are keyed by id, so the order never changes a result
    pending = sorted((r for r in requests.values() if r.id not in raw), key=_batching_key)
    mine = ctx.shard(pending) if ctx is not None else pending
    advance = progress(f"{task.name} ({model.name})", len(errors) + n_cached + len(mine))
    advance(len(errors) + n_cached)
    t_model = time.perf_counter()
    timer: dict[str, Any] = {"data_wait_s": 0.0, "forward_s": 0.0}
    for batch, outputs in _overlapped(model, mine, cfg.batch_size, timer):
        done = []
        for out in outputs:
            if out.ok:
                raw[out.id] = out.text if out.embedding is None else out.embedding
                done.append((hashes[out.id], owner[out.id], encode_output(out)))
            else:
                errors.setdefault(owner[out.id], out.error or "unknown error")
        if cache is not None and done:
            cache.put_many(model_hash, task_key, done)  # a finished batch survives any later crash
        if cfg.on_error == "fail" and any(owner[r.id] in errors for r in batch):
            bad = next(owner[r.id] for r in batch if owner[r.id] in errors)
            raise MMBenchError(f"task {task.name}: sample {bad!r} failed: {errors[bad]}")
        advance(len(batch))
    model_s = time.perf_counter() - t_model
    if ctx is not None:  # every rank gets every output; the merged dicts do not depend on rank order
        for part in ctx.all_gather({"raw": raw, "errors": errors, "model_s": model_s}):
            raw.update(part["raw"])
            errors.update(part["errors"])
            model_s = max(model_s, part["model_s"])
    if ctx is not None and not ctx.is_main:
        return {"family": task.family, "n_samples": len(samples), "rank": ctx.rank}  # rank 0 scores and writes
    invariance = None
    if cfg.check_batch_invariance:
        invariance = check_batch_invariance(model, list(requests.values())[:16], int(timer["batch_size"]))
    predictions = [
        task.collect(s, [raw[r.id] for r in by_sample[s.id]])
        if s.id in by_sample and s.id not in errors and all(r.id in raw for r in by_sample[s.id]) else None
        for s in samples]
    scoring = {"tokenizer": cfg.tokenizer, "meteor": cfg.meteor, "device": cfg.device}
    t_score = time.perf_counter()
    advance_scoring = progress(f"{task.name}: scoring", 1)
    values = task.score(samples, predictions, scoring)
    advance_scoring(1)
    score_s = time.perf_counter() - t_score
    records = []
    for s, pred, scores in zip(samples, predictions, values.per_sample or [{}] * len(samples)):
        prompt = getattr((by_sample.get(s.id) or [None])[0], "prompt", None)
        text = raw.get(s.id)
        records.append(SampleRecord(
            id=s.id, prompt_hash=text_hash(prompt), raw_output=text if isinstance(text, str) else None,
            prediction=task.record_prediction(pred), references=s.references, scores=scores,
            error=errors.get(s.id), meta=dict(s.meta)))
    pred_rel = f"predictions/{task.name}.jsonl"
    artifacts: list[str] = []
    if ctx is None or ctx.is_main:
        atomic_write_jsonl(out_dir / pred_rel, (record_to_json(r) for r in records))
        artifacts = task.write_artifacts(out_dir, samples, predictions)
    warnings = list(values.warnings)
    if cfg.limit is not None:
        warnings.append(f"--limit {cfg.limit}: scored on a subset; corpus metrics (CIDEr-D document frequencies, "
                        "retrieval galleries) are not comparable with full-set results")
    wall = time.perf_counter() - t_start
    return {
        "family": task.family,
        "fingerprint": task.fingerprint(samples, model_name=model.name, rendered_prompt=rendered,
                                        scoring={k: v for k, v in values.backend.items()}, limit=cfg.limit),
        "n_samples": len(samples),
        "n_failed": len(errors),
        "n_scored": sum(1 for s in samples if s.error is None),
        "n_requests": len(requests),
        "n_computed": len(pending),
        "n_cached": n_cached,
        "metrics": dict(values.corpus),
        "metrics_unavailable": dict(values.unavailable),
        "metric_backends": {k: dict(v) for k, v in values.backend.items()},
        "warnings": warnings,
        "failures": _summarise_failures(errors),
        "batch_size": timer["batch_size"],
        "batch_size_requested": cfg.batch_size,
        "timing": {"wall_s": round(wall, 3), "inference_s": round(model_s, 3),
                   "model_s": round(timer["forward_s"], 3), "data_wait_s": round(timer["data_wait_s"], 3),
                   "score_s": round(score_s, 3),
                   # samples (not requests: a retrieval sample is 1 + n_captions requests) per second
                   "samples_per_s": round(len({owner[r.id] for r in pending}) / model_s, 3)
                   if pending and model_s > 0 else None,
                   "requests_per_s": round(len(pending) / model_s, 3) if pending and model_s > 0 else None},
        "memory": _memory(task_window),
        **({"batch_invariance": invariance} if invariance is not None else {}),
        "predictions": pred_rel,
        **({"artifacts": artifacts} if artifacts else {}),
    }


def _batching_key(req: Any) -> tuple[int, int]:
    """Images before texts for embedding requests; within a kind, longest text first."""
    if isinstance(req, EmbedRequest):
        return (0 if req.images else 1, -len(req.text or ""))
    return (0, -len(req.prompt or req.question or ""))


def _overlapped(model: Any, requests: list[Any], batch_size: int | str, timer: dict[str, Any]):
    """Yield ``(batch, outputs)`` in order.

    The next batch's CPU work (image decoding, processor) runs in a background thread while
    the model runs the current one; ``timer`` collects the time spent waiting for data and
    in the model.  With ``batch_size="auto"`` the run starts large (64 on CUDA, 16 on CPU)
    and halves on out-of-memory, retrying the same samples, so none is lost;
    ``timer["batch_size"]`` is the size it settled on.
    """
    import torch

    auto = batch_size == "auto"
    size = (64 if torch.cuda.is_available() else 16) if auto else int(batch_size)
    timer["batch_size"] = size
    if not requests:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmbench-prefetch") as pool:
        start = 0
        future = pool.submit(model.prepare, requests[0:size])
        while start < len(requests):
            batch = requests[start:start + size]
            t0 = time.perf_counter()
            prepared = future.result()
            timer["data_wait_s"] += time.perf_counter() - t0
            nxt = start + size
            future = pool.submit(model.prepare, requests[nxt:nxt + size]) if nxt < len(requests) else None
            t0 = time.perf_counter()
            try:
                outputs = model.run(prepared)
            except Exception as exc:  # noqa: BLE001
                if not is_out_of_memory(exc):
                    raise
                if not auto or size == 1:
                    raise MMBenchError(f"out of memory at batch size {size}: use a smaller --batch-size or "
                                       "--batch-size auto") from None
                size //= 2
                timer["batch_size"] = size
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                if future is not None:
                    future.result()  # let the prefetch finish; its batch boundaries are stale
                future = pool.submit(model.prepare, requests[start:start + size])
                continue
            finally:
                timer["forward_s"] += time.perf_counter() - t0
            yield batch, outputs
            start = nxt


def _lock_output(out_dir: Path) -> Any:
    """Hold an exclusive lock on the run folder, so two runs never interleave their files there."""
    import fcntl

    out_dir.mkdir(parents=True, exist_ok=True)
    handle = open(out_dir / ".mmbench.lock", "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise MMBenchError(f"the output folder {out_dir} is in use by a running evaluation ({owner}); "
                           "choose another --output") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


#: embeddings from batch size 1 and batch size N count as equal within this max-abs difference
#: (float32 kernels pick different reduction orders for different shapes)
EMBEDDING_TOLERANCE = 1e-4


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
    for a, b in zip(single, batched):
        if a.embedding is not None and b.embedding is not None:
            diff = float(np.max(np.abs(a.embedding - b.embedding)))
            max_diff = max(max_diff, diff)
            if diff > EMBEDDING_TOLERANCE:
                diffs.append((a.id, f"embedding differs by {diff:.3g}", ""))
        elif (a.text, a.error) != (b.text, b.error):
            diffs.append((a.id, a.text, b.text))
    report = {"n_checked": len(requests), "batch_size": size, "mismatches": len(diffs),
              "mismatch_rate": len(diffs) / len(requests) if requests else 0.0,
              "examples": [{"id": i, "batch_1": a, "batched": b} for i, a, b in diffs[:5]]}
    if any(out.embedding is not None for out in single):
        report["max_abs_embedding_diff"] = max_diff
        report["embedding_tolerance"] = EMBEDDING_TOLERANCE
    return report


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _reset_peak_memory() -> bool:
    """Start a task's peak-memory window: Linux resets the process's RSS high-water mark when
    "5" is written to /proc/self/clear_refs (and CUDA keeps its own).  False where that is
    not possible: the peak is then the process's since it started."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _memory(task_window: bool = False) -> dict[str, Any]:
    """Peak resident memory (and GPU memory) of the task when ``task_window`` (see
    :func:`_reset_peak_memory`), else of the process so far; ``peak_rss_scope`` says which."""
    import resource
    import re

    import torch

    peak_kb = None
    if task_window:
        try:
            with open("/proc/self/status", encoding="ascii") as fh:
                found = re.search(r"VmHWM:\s+(\d+) kB", fh.read())
            peak_kb = int(found.group(1)) if found else None
        except OSError:
            peak_kb = None
    scope = "task" if peak_kb is not None else "process"
    if peak_kb is None:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    mem: dict[str, Any] = {"peak_rss_mb": round(peak_kb / 1024, 1), "peak_rss_scope": scope}
    if torch.cuda.is_available():
        mem["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return mem


def cache_task_key(task: Task, rendered_prompt: str | None) -> str:
    """What a cached output depends on besides the model and the request: the task definition and data,
    and the torch and transformers versions (a model's outputs can change between releases: Idefics3's
    image positions did between transformers 4.57 and 5, say), so a cache shared across versions is
    never read by the wrong one."""
    import torch
    import transformers

    blob = json.dumps([task.name, task.config.definition_hash(), task.provenance, rendered_prompt,
                       torch.__version__, transformers.__version__], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _summarise_failures(errors: dict[str, str], keep: int = 20) -> list[dict[str, str]]:
    return [{"id": k, "error": v} for k, v in list(errors.items())[:keep]]


def _environment() -> dict[str, Any]:
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def task_names(tasks: Sequence[str] | str) -> list[str]:
    if isinstance(tasks, str):
        tasks = [tasks]
    return [t.strip() for item in tasks for t in item.split(",") if t.strip()]
