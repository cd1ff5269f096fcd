"""``mmbench compare``: is a candidate (a fine-tune, a quantized or LoRA model) better or worse than
its base, where, significantly, and at what cost?

``compare_runs(base, candidates)`` is the one computation (:mod:`.core`); ``write_report``
writes ``compare.json``, ``compare.md`` and ``compare.html``.  Modules: :mod:`.samples`
(read predictions), :mod:`.stats` (McNemar, paired randomization, Holm), :mod:`.metrics`
(per-metric rows: which test), :mod:`.flips` (items that flipped), :mod:`.cost`,
:mod:`.taskdata` (questions and thumbnails), :mod:`.report` (terminal, Markdown), :mod:`.html`.
See docs/compare.md.

The result (and ``compare.json``, and ``--json``), the same shape for one or several candidates::

    {"base": {"name", "run", "results", "model_hash", "base_model", "weights_sha256", "peft_adapter"},
     "candidates": {"<candidate run folder name>": {
         "model": {...as base...}, "relation": "the candidate is <base> with the PEFT adapter ..." | null,
         "tasks": {"<task>": {
             "metrics": {"<metric>": {"base", "candidate", "difference", "ci_low", "ci_high", "test",
                                      "p_value", "p_value_holm",
                                      "higher_is_better", "aggregation", "n", "n_resamples", "verdict", "notes",
                                      "discordant"?: {"to_correct", "to_wrong"}, "exact_enumeration"?}},
             "flipped_to_correct": int, "flipped_to_wrong": int, "n": int | null,
             "family", "primary_metric", "fingerprint_hash", "notes": [...],
             "flips": {"metric", "rule", "to_correct", "to_wrong", "truncated",
                       "items": {"to_correct": [item], "to_wrong": [item]},
                       "by_category": {field: {value: {"n", "to_correct", "to_wrong"}}}}}},
         "refused": {"<task>": {"reasons": [...], "base_fingerprint", "candidate_fingerprint"}},
         "only_in_base": [...], "only_in_candidate": [...],
         "cost": {"run": {...}, "tasks": {...}, "model": {...}}}},
     "settings": {"seed", "n_boot", "level", "alpha", "flip_threshold", "max_items", "n_tests",
                  "multiple_testing"}}

with ``item = {"id", "unit", "question", "prompt_hash", "base": {"prediction", "raw_output",
"error", "score"}, "candidate": {...}, "references", "meta"}``.  The in-memory result also
has ``"thumbnails": {task: {sample id: data URI}}``, which only the HTML page uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmbench.compare.core import compare_runs

__all__ = ["compare_runs", "write_report"]


def write_report(result: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``compare.json``, ``compare.md`` and ``compare.html`` into ``out_dir``; return their paths."""
    from mmbench.compare.html import to_html
    from mmbench.compare.report import finite, json_view, to_markdown
    from mmbench.io import atomic_write_json, atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "compare.json", "markdown": out / "compare.md", "html": out / "compare.html"}
    atomic_write_json(paths["json"], finite(json_view(result)))
    atomic_write_text(paths["markdown"], to_markdown(result))
    atomic_write_text(paths["html"], to_html(result))
    return paths
