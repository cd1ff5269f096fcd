"""``compare_runs``: one base run against one or more candidates, task by task (the shape is in
:mod:`mmbench.compare`'s docstring)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mmbench.compare.cost import compare_cost
from mmbench.compare.flips import find_flips
from mmbench.compare.metrics import Pairing, compare_metric
from mmbench.compare.samples import read_predictions
from mmbench.compare.stats import holm
from mmbench.errors import MMBenchError
from mmbench.leaderboard.tables import fingerprint_differences
from mmbench.results import RunResult

LEVEL = 0.95
ALPHA = 0.05


def identity(run: RunResult) -> dict[str, Any]:
    """Who a run is: model name, run folder, results file, model hash and, for a PEFT/LoRA run,
    its base model and adapter."""
    fp = run.model.get("fingerprint") if isinstance(run.model.get("fingerprint"), dict) else {}
    peft = fp.get("peft_adapter") if isinstance(fp.get("peft_adapter"), dict) else None
    return {"name": run.model_name, "run": run.run_id, "results": str(run.path) if run.path else None,
            "model_hash": fp.get("hash"), "base_model": fp.get("path") if peft else None,
            "weights_sha256": fp.get("weights_sha256"),
            "peft_adapter": None if peft is None else {"path": fp.get("peft_adapter_path"),
                                                       "weights_sha256": peft.get("weights_sha256"),
                                                       "bytes": peft.get("bytes")}}


def relation(base: dict[str, Any], cand: dict[str, Any]) -> str | None:
    """One sentence when the candidate is the base model plus a PEFT adapter (or the reverse)."""
    for a, b, name in ((base, cand, "candidate"), (cand, base, "base")):
        if b["peft_adapter"] and not a["peft_adapter"]:
            same = a["weights_sha256"] is not None and a["weights_sha256"] == b["weights_sha256"]
            return (f"the {name} is {b['base_model'] or 'a base model'} with the PEFT adapter "
                    f"{b['peft_adapter']['path']} (adapter weights {b['peft_adapter']['weights_sha256']}); its base "
                    + ("weights are the other run's (same weights hash)" if same
                       else "weights hash differs from the other run's or was not recorded"))
    return None


def _load(run: RunResult | str | Path) -> RunResult:
    return run if isinstance(run, RunResult) else RunResult.load(run)


def _labels(runs: Sequence[RunResult]) -> list[str]:
    labels: list[str] = []
    for run in runs:
        label, n = run.run_id, 2
        while label in labels:
            label, n = f"{run.run_id} ({n})", n + 1
        labels.append(label)
    return labels


def compare_pair(base: RunResult, cand: RunResult, *, seed: int, n_boot: int, threshold: float,
                 max_items: int) -> dict[str, Any]:
    """One candidate's entry (before Holm): tasks, refused, tasks in one run only, cost."""
    common = [t for t in base.tasks if t in cand.tasks]
    entry: dict[str, Any] = {"model": identity(cand), "relation": relation(identity(base), identity(cand)),
                             "tasks": {}, "refused": {},
                             "only_in_base": [t for t in base.tasks if t not in cand.tasks],
                             "only_in_candidate": [t for t in cand.tasks if t not in base.tasks]}
    if not common:
        raise MMBenchError(f"{cand.path or cand.model_name} has no task in common with the base "
                           f"({', '.join(base.tasks)} vs {', '.join(cand.tasks)})")
    for task in common:
        tb, tc = base.tasks[task], cand.tasks[task]
        if tb.fingerprint_hash != tc.fingerprint_hash or not tb.fingerprint_hash:
            entry["refused"][task] = {"reasons": fingerprint_differences(tb.fingerprint, tc.fingerprint),
                                      "base_fingerprint": tb.fingerprint_hash,
                                      "candidate_fingerprint": tc.fingerprint_hash}
            continue
        sb, sc = read_predictions(base.predictions_path(task)), read_predictions(cand.predictions_path(task))
        pair = Pairing(sb, sc) if sb is not None and sc is not None else None
        notes = []
        if pair is None:
            notes.append("no predictions file for " + " and ".join(
                n for n, s in (("the base", sb), ("the candidate", sc)) if s is None)
                + ": values only, no intervals, tests or flips")
        elif len(pair) < max(len(sb.ids), len(sc.ids)):
            notes.append(f"{len(pair)} samples in both runs (base {len(sb.ids)}, candidate {len(sc.ids)})")
        metrics = {m: compare_metric(task, m, tb, tc, pair, seed=seed, n_boot=n_boot)
                   for m in tb.metrics if m in tc.metrics}
        flips = find_flips(tb, pair, threshold=threshold, max_items=max_items) if pair else {
            "metric": None, "rule": "no predictions", "to_correct": 0, "to_wrong": 0,
            "items": {"to_correct": [], "to_wrong": []}, "truncated": False, "by_category": {}}
        if tb.limit is not None:  # equal fingerprints: equal limits
            notes.append(f"evaluated on a subset (--limit {tb.limit})")
        entry["tasks"][task] = {"metrics": metrics, "flipped_to_correct": flips["to_correct"],
                                "flipped_to_wrong": flips["to_wrong"], "n": len(pair) if pair else None,
                                "family": tb.family, "primary_metric": tb.primary_metric,
                                "fingerprint_hash": tb.fingerprint_hash, "flips": flips, "notes": notes}
    if not entry["tasks"]:
        raise MMBenchError(f"{cand.path or cand.model_name}: no comparable task: "
                           + "; ".join(f"{t}: {', '.join(r['reasons'])}" for t, r in entry["refused"].items()))
    entry["cost"] = compare_cost(base, cand, list(entry["tasks"]))
    return entry


def _apply_holm(candidates: dict[str, Any]) -> int:
    """Holm across every test in this comparison (all candidates, tasks, metrics); set
    ``p_value_holm`` and ``verdict``.  Returns the number of tests."""
    rows = [row for c in candidates.values() for t in c["tasks"].values() for row in t["metrics"].values()
            if row["p_value"] is not None]
    for row, adjusted in zip(rows, holm([r["p_value"] for r in rows])):
        row["p_value_holm"] = adjusted
    for c in candidates.values():
        for t in c["tasks"].values():
            for row in t["metrics"].values():
                row["verdict"] = verdict(row)
    return len(rows)


def verdict(row: dict[str, Any]) -> str | None:
    """"better" / "worse" (Holm-adjusted p < 0.05, by the metric's recorded direction),
    "no significant difference", or None without a test."""
    if row["p_value_holm"] is None or row["higher_is_better"] is None:
        return None
    if row["p_value_holm"] >= ALPHA or not row["difference"]:
        return "no significant difference"
    return "better" if (row["difference"] > 0) == row["higher_is_better"] else "worse"


def compare_runs(base: RunResult | str | Path, candidates: Sequence[RunResult | str | Path], *, seed: int = 0,
                 n_boot: int = 2000, flip_threshold: float = 0.0, max_items: int = 200,
                 task_data: bool = True) -> dict[str, Any]:
    """Compare each candidate with ``base`` (run folders, results files or loaded runs).

    Tasks are compared only when their fingerprint hashes are equal; others are listed under
    ``refused`` with what differs.  A candidate with no task in common, or with no comparable
    task, raises :class:`MMBenchError`.  ``task_data``: rebuild the tasks' samples for the
    questions and thumbnails of flipped items (:mod:`mmbench.compare.taskdata`).
    """
    if n_boot < 100:
        raise MMBenchError("--n-boot must be at least 100")
    if not candidates:
        raise MMBenchError("give at least one candidate run")
    if max_items < 0:
        raise MMBenchError("--max-items must be at least 0")
    base_run = _load(base)
    runs = [_load(c) for c in candidates]
    out: dict[str, Any] = {"base": identity(base_run), "candidates": {}, "thumbnails": {}}
    cache: dict[str, Any] = {}
    for label, run in zip(_labels(runs), runs):
        entry = compare_pair(base_run, run, seed=seed, n_boot=n_boot, threshold=flip_threshold, max_items=max_items)
        if task_data:
            from mmbench.compare.taskdata import attach

            attach(entry["tasks"], {t: base_run.tasks[t].fingerprint for t in entry["tasks"]}, out["thumbnails"],
                   cache)
        out["candidates"][label] = entry
    n_tests = _apply_holm(out["candidates"])
    out["settings"] = {"seed": seed, "n_boot": n_boot, "level": LEVEL, "alpha": ALPHA,
                       "flip_threshold": flip_threshold, "max_items": max_items, "n_tests": n_tests,
                       "multiple_testing": f"Holm across all {n_tests} tests of this comparison (every candidate, "
                                           "task and metric with a test)"}
    return out
