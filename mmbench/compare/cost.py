"""What the candidate costs against the base: speed, memory, size, load time, and how the model was built.

Every number comes from the two results files; a field either run lacks is null.  Each
numeric entry is ``{"base", "candidate", "difference" (candidate - base), "ratio"
(candidate / base)}``.  ``model`` lists descriptive fields side by side (dtype, device,
adapter, PEFT adapter, and ``quantization`` / ``sparsity`` where the run recorded them).
"""

from __future__ import annotations

from typing import Any

from mmbench.results import RunResult

#: model.fingerprint / model fields shown side by side when either run has them
DESCRIPTIVE = ("adapter", "dtype", "device", "quantization", "sparsity", "peft_adapter_path")


def pair(base: float | int | None, cand: float | int | None) -> dict[str, Any]:
    ok = isinstance(base, (int, float)) and isinstance(cand, (int, float)) and not isinstance(base, bool) \
        and not isinstance(cand, bool)
    return {"base": base, "candidate": cand, "difference": cand - base if ok else None,
            "ratio": cand / base if ok and base else None}


def _fp(run: RunResult) -> dict[str, Any]:
    fp = run.model.get("fingerprint")
    return fp if isinstance(fp, dict) else {}


def model_bytes(run: RunResult) -> int | None:
    """Weights size on disk (``model.fingerprint.bytes``) plus a PEFT adapter's, where recorded."""
    fp = _fp(run)
    total = fp.get("bytes") if isinstance(fp.get("bytes"), int) else None
    peft = fp.get("peft_adapter")
    if isinstance(peft, dict) and isinstance(peft.get("bytes"), int):
        total = (total or 0) + peft["bytes"]
    return total


def n_parameters(run: RunResult) -> int | None:
    n = run.n_parameters if run.n_parameters is not None else _fp(run).get("n_parameters")
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def describe(run: RunResult, key: str) -> Any:
    fp = _fp(run)
    value = fp.get(key, run.model.get(key))
    return value if isinstance(value, (str, int, float, bool, dict, list)) or value is None else str(value)


def compare_cost(base: RunResult, cand: RunResult, tasks: list[str]) -> dict[str, Any]:
    """``{"run": {"model_load_s", "wall_s", "n_parameters", "weights_bytes"}, "tasks": {task:
    {"samples_per_s", "peak_rss_mb", "peak_gpu_mb", "wall_s"}}, "model": {field: {"base",
    "candidate"}}}`` for the compared ``tasks``."""
    run = {"model_load_s": pair(base.timing.get("model_load_s"), cand.timing.get("model_load_s")),
           "wall_s": pair(base.timing.get("wall_s"), cand.timing.get("wall_s")),
           "n_parameters": pair(n_parameters(base), n_parameters(cand)),
           "weights_bytes": pair(model_bytes(base), model_bytes(cand))}
    per_task = {}
    for t in tasks:
        tb, tc = base.tasks[t], cand.tasks[t]
        per_task[t] = {"samples_per_s": pair(tb.samples_per_s, tc.samples_per_s),
                       "peak_rss_mb": pair(tb.peak_rss_mb, tc.peak_rss_mb),
                       "peak_gpu_mb": pair(tb.peak_gpu_mb, tc.peak_gpu_mb),
                       "wall_s": pair(tb.timing.get("wall_s"), tc.timing.get("wall_s"))}
    model = {}
    for key in DESCRIPTIVE:
        b, c = describe(base, key), describe(cand, key)
        if b is not None or c is not None:
            model[key] = {"base": b, "candidate": c}
    return {"run": run, "tasks": per_task, "model": model}
