"""The run: load the model once, run each task, write ``results.json``."""

from __future__ import annotations

import os
import random
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from mmbench import __version__, distributed
from mmbench.cache import PredictionCache
from mmbench.catalog import build_task, include_tasks
from mmbench.distributed import DistContext
from mmbench.errors import MMBenchError
from mmbench.images import image_limits
from mmbench.io import atomic_write_json, atomic_write_jsonl
from mmbench.metrics.java import meteor_session
from mmbench.results import RunResult, TaskResult
from mmbench.runner.config import EvalConfig, default_output_dir
from mmbench.runner.inference import check_batch_invariance, run_inference
from mmbench.runner.plan import plan_requests
from mmbench.runner.preflight import preflight
from mmbench.runner.provenance import environment, reset_peak_memory, torch_threads, torch_threads_set
from mmbench.runner.scoring import TaskRun
from mmbench.tasks.base import Task

ProgressFactory = Callable[[str, int], Callable[[int], None]]


def _no_progress(_: str, __: int) -> Callable[[int], None]:
    return lambda n: None


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def evaluate(config: EvalConfig | None = None, *, progress: ProgressFactory | None = None,
             loaded_model: Any = None, **overrides: Any) -> dict[str, Any]:
    """Run ``config`` (or keyword overrides of it, or of the defaults); return the results dict
    that is also written to ``<output>/results.json``.  The caller's config is never changed.

    ``loaded_model``: a ready :class:`~mmbench.models.base.ModelAdapter` to evaluate instead
    of loading ``config.model`` (a model in memory, e.g. inside a training loop:
    ``HFAdapter.from_loaded``); it runs in this process only, and its name is recorded as
    ``config.model``."""
    cfg = (config or EvalConfig()).with_overrides(**overrides)
    if loaded_model is not None:
        cfg = cfg.with_overrides(model=loaded_model.name)
    cfg = cfg.validated()
    with torch_threads_set(cfg.threads), image_limits(cfg.max_image_pixels):
        run, rank = _evaluate(cfg, progress or _no_progress, loaded_model)
    out = run.to_json()
    if rank:
        out["rank"] = rank  # not written: only rank 0's results are the run's
    return out


def evaluate_default_suite(config: EvalConfig | None = None, *, progress: ProgressFactory | None = None
                           ) -> list[dict[str, Any]]:
    """The offline default run: each reference model on its easy-VQA tasks (``catalog.DEFAULT_SUITE``),
    with the other settings of ``config``; run folders ``<output>/<model>``."""
    from mmbench.catalog import DEFAULT_SUITE

    base = config or EvalConfig()
    root = Path(base.output or default_output_dir("default"))
    return [evaluate(base.with_overrides(model=model, tasks=list(tasks), output=str(root / model)),
                     progress=progress) for model, tasks in DEFAULT_SUITE]


def _evaluate(cfg: EvalConfig, progress: ProgressFactory, ready_model: Any = None) -> tuple[RunResult, int]:
    for path in cfg.include:
        include_tasks(path)
    # fail on a bad name or task file before loading a model; task files name registered loaders unless trusted
    tasks: list[Task] = [build_task(name, trust_remote_code=cfg.trust_remote_code) for name in cfg.tasks]
    if ready_model is None:
        preflight(tasks, cfg)  # unknown --model-arg keys, a model that cannot serve a task: before weights load
    out_dir = Path(cfg.output or default_output_dir(cfg.model))
    _seed_everything(cfg.seed)

    from mmbench.models.resolve import load_model
    from mmbench.models.scorer import load_embedder, load_scorer

    ctx = distributed.setup() if ready_model is None else None
    device = cfg.device
    if ctx is not None and device == "auto":
        import torch

        device = f"cuda:{ctx.local_rank}" if torch.cuda.is_available() else "cpu"
    if ctx is not None and not ctx.is_main:
        progress = _no_progress
    t0 = time.perf_counter()
    loaded = progress(f"loading model {cfg.model}", 1)
    model = ready_model if ready_model is not None else load_model(
        cfg.model, adapter=cfg.adapter, device=device, dtype=cfg.dtype, revision=cfg.revision,
        trust_remote_code=cfg.trust_remote_code, quantize=cfg.quantize,
        **({"compile": True} if cfg.compile else {}), **cfg.model_args)
    loaded(1)
    load_s = time.perf_counter() - t0
    for task in tasks:  # before any work: a captioner cannot run retrieval, a CLIP cannot caption
        if task.needs not in model.capabilities:
            raise MMBenchError(
                f"task {task.name!r} ({task.family}) needs a model that can {task.needs}; model {model.name!r} "
                f"({model.adapter}) serves: {', '.join(sorted(model.capabilities))}")
    run = RunResult(
        model={"name": model.name, "fingerprint": model.fingerprint(), **model.info()},
        tasks={},
        mmbench_version=__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config=cfg.as_dict() | {"output": str(out_dir)},
        environment=environment(),
        seed=cfg.seed,
        n_processes=ctx.world_size if ctx else 1,
        torch_threads=torch_threads(),
        timing={"model_load_s": round(load_s, 3)},
    )
    cache = PredictionCache(cfg.cache_dir) if cfg.cache else None
    run.cache = str(cache.path) if cache else None
    lock = lock_output(out_dir) if ctx is None or ctx.is_main else None
    if lock is not None:
        moved = move_previous_run(out_dir)
        if moved is not None:
            run.notes.append(f"an earlier run in {out_dir} was moved to {moved}")
    run_options = {"tokenizer": cfg.tokenizer, "meteor": cfg.meteor, "device": cfg.device,
                   "load_embedder": load_embedder, "load_scorer": load_scorer}
    ok = False
    # METEOR's JVM (~7 s to start) starts now, beside inference, and serves every task of the run
    jvm = meteor_session() if _needs_meteor(tasks, cfg) and (ctx is None or ctx.is_main) else nullcontext()
    try:
        with jvm:
            _run_tasks(tasks, run, model, cfg, out_dir, progress, cache, ctx, run_options)
        run.timing["wall_s"] = round(time.perf_counter() - t0, 3)
        if ctx is None or ctx.is_main:
            atomic_write_json(out_dir / "results.json", run.to_json())
        ok = True
    finally:
        if cache is not None:
            cache.close()
        if lock is not None:
            lock.release()
        if ctx is not None:
            ctx.close(ok=ok)
    return run, ctx.rank if ctx is not None else 0


def _needs_meteor(tasks: list[Task], cfg: EvalConfig) -> bool:
    """Whether some task's metric asks for the ``meteor`` run option (and it is not switched off)."""
    return cfg.meteor is not False and any("meteor" in spec.run_options for task in tasks
                                           for spec, _ in task.metrics)


def _run_tasks(tasks: list[Task], run: RunResult, model: Any, cfg: EvalConfig, out_dir: Path,
               progress: ProgressFactory, cache: PredictionCache | None, ctx: DistContext | None,
               run_options: dict[str, Any]) -> None:
    for task in tasks:
        run.tasks[task.name] = run_task(task, model, cfg, out_dir, progress, cache, ctx, run_options)
        if ctx is None or ctx.is_main:  # a later crash keeps what is done (and the cache resumes the rest)
            atomic_write_json(out_dir / "results.json", run.to_json())


#: samples a streamed task (:attr:`Task.streams`) loads, runs and scores at a time
STREAM_CHUNK = 8192


def run_task(task: Task, model: Any, cfg: EvalConfig, out_dir: Path, progress: ProgressFactory,
             cache: PredictionCache | None = None, ctx: DistContext | None = None,
             run_options: dict[str, Any] | None = None) -> TaskResult:
    """Evaluate one task; with ``ctx`` (several processes) each rank computes its shard and rank 0
    scores and writes.  Other ranks return a stub result (family and sample count only).

    A task that :attr:`~mmbench.tasks.base.Task.streams` is loaded, run, scored and written
    :data:`STREAM_CHUNK` samples at a time (so memory does not grow with its size; every
    whole-data check, ids included, runs before the first chunk); any other task is one chunk."""
    t_start = time.perf_counter()
    memory_window = reset_peak_memory()
    if run_options is None:
        from mmbench.models.scorer import load_embedder, load_scorer

        run_options = {"tokenizer": cfg.tokenizer, "meteor": cfg.meteor, "device": cfg.device,
                       "load_embedder": load_embedder, "load_scorer": load_scorer}
    rows = task.open_rows(limit=cfg.limit)
    size = STREAM_CHUNK if task.streams else None
    if size is not None and cfg.on_error == "fail" and len(rows) > size:
        for samples in task.sample_chunks(rows, size):  # a bad row stops the run before any inference
            _fail_on_row_error(task, {s.id: s.error for s in samples if s.error is not None})
    main = ctx is None or ctx.is_main
    state = TaskRun(task, model, cfg, run_options, progress)
    invariance: dict[str, Any] | None = None
    n_samples, bar = 0, None

    def chunks() -> Iterator[dict[str, Any]]:
        nonlocal invariance, n_samples, bar
        for samples in task.sample_chunks(rows, size):
            if not samples:
                raise MMBenchError(f"task {task.name!r} has no samples")
            n_samples += len(samples)
            plan = plan_requests(task, samples, model, seed=cfg.seed)
            if cfg.on_error == "fail":
                _fail_on_row_error(task, plan.row_errors)
            if bar is None:  # one bar over the task, a step per row error and per request
                bar = progress(f"{task.name} ({model.name})",
                               len(rows) if size is not None else len(plan.row_errors) + len(plan.requests))
            inf = run_inference(task, plan, model, batch_size=cfg.batch_size, on_error=cfg.on_error,
                                progress=progress, cache=cache, ctx=ctx, advance=bar, timer=state.timer)
            if not main:
                continue  # rank 0 scores and writes
            if cfg.check_batch_invariance and invariance is None:
                invariance = check_batch_invariance(model, list(plan.requests.values())[:16],
                                                    int(state.timer["batch_size"]))
            yield from state.add(plan, inf, out_dir)

    if not main:
        for _ in chunks():
            pass
        return TaskResult(family=task.family, fingerprint={}, n_samples=n_samples)
    atomic_write_jsonl(out_dir / f"predictions/{task.name}.jsonl", chunks())
    return state.result(out_dir, t_start=t_start, memory_window=memory_window, batch_invariance=invariance)


def _fail_on_row_error(task: Task, row_errors: dict[str, str]) -> None:
    if row_errors:
        sid, error = next(iter(row_errors.items()))
        raise MMBenchError(f"task {task.name}: sample {sid!r} failed: {error}")


#: what a run writes into its folder; anything else there is the user's and stays put
RUN_FILES = ("results.json", "predictions", "failures", "images")


def move_previous_run(out_dir: Path) -> Path | None:
    """Move an earlier run's files out of ``out_dir`` into ``<out_dir>.previous-<time>`` (never
    overwrite them, never leave its predictions beside the new run's); return where, or None."""
    found = [out_dir / name for name in RUN_FILES if (out_dir / name).exists()]
    if not found:
        return None
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = out_dir.with_name(f"{out_dir.name}.previous-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = out_dir.with_name(f"{out_dir.name}.previous-{stamp}-{n}")
    target.mkdir(parents=True)
    for path in found:
        path.rename(target / path.name)
    return target


def lock_output(out_dir: Path) -> Any:
    """Hold an exclusive lock on the run folder, so two runs never interleave their files there
    (``filelock``: the same behaviour on every platform).  Returns the held lock; call ``release()``."""
    from filelock import FileLock, Timeout

    out_dir.mkdir(parents=True, exist_ok=True)
    owner_file = out_dir / ".mmbench.lock.owner"
    lock = FileLock(str(out_dir / ".mmbench.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            owner = owner_file.read_text(encoding="utf-8").strip() or "another process"
        except OSError:
            owner = "another process"
        raise MMBenchError(f"the output folder {out_dir} is in use by a running evaluation ({owner}); "
                           "choose another --output") from None
    owner_file.write_text(f"pid {os.getpid()}", encoding="utf-8")
    return _HeldLock(lock, owner_file)


class _HeldLock:
    """A held run-folder lock; ``release()`` (or ``close()``) frees it and removes the owner note."""

    def __init__(self, lock: Any, owner_file: Path):
        self._lock, self._owner_file = lock, owner_file

    def release(self) -> None:
        try:
            self._owner_file.unlink()
        except FileNotFoundError:
            pass
        self._lock.release()

    close = release
