"""The results-file format (``results.json``) and prediction lines.

``results.json`` (schema version 1)::

    {
      "schema_version": 1, "mmbench_version": "0.1.0", "created": "...",
      "config": {...the full resolved EvalConfig...},
      "model": {"name", "fingerprint": {"adapter", "hash", "weights_sha256" | "revision", ...},
                "device", "dtype", "n_parameters"},
      "environment": {"python", "torch", "transformers", ...},
      "seed": 0,
      "timing": {"model_load_s", "wall_s"},
      "tasks": {
        "<task>": {"family", "fingerprint": {"hash", "version", "prompt", "generation", "dataset",
                   "sample_ids_hash", ...}, "n_samples", "n_failed", "n_scored",
                   "metrics": {"CIDEr-D": 0.93, ...}, "metrics_unavailable": {"SPICE": "reason"},
                   "metric_backends": {"CIDEr-D": {"tokenizer": "ptb-python", ...}},
                   "warnings": [...], "failures": [{"id", "error"}], "batch_size",
                   "timing": {"wall_s", "model_s", "score_s", "samples_per_s"},
                   "predictions": "predictions/<task>.jsonl"}
      }
    }

Metric values are on their implementation's native scale (pycocoevalcap's 0-1
for captioning, CIDEr-D 0-10).
"""

from __future__ import annotations

from typing import Any

from mmbench.types import SampleRecord

SCHEMA_VERSION = 1


def record_to_json(record: SampleRecord) -> dict[str, Any]:
    """One predictions line: id, prompt hash, raw output, parsed prediction, references, scores, error."""
    return {
        "id": record.id,
        "prompt_hash": record.prompt_hash,
        "raw_output": record.raw_output,
        "prediction": record.prediction,
        "references": list(record.references),
        "scores": {k: float(v) for k, v in record.scores.items()},
        "error": record.error,
        **({"meta": dict(record.meta)} if record.meta else {}),
    }
