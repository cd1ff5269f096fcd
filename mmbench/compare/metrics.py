"""One task's metrics, base against candidate: values, difference, paired interval and paired test.

Which test a corpus key gets follows from what ``results.json`` records about it
(``metric_info``: ``higher_is_better``, ``aggregation``) and from its per-sample values:

=====================================================  =========================================================
key                                                     test (``test`` in the output)
=====================================================  =========================================================
count or diagnostic (``aggregation`` "count", or        none: ``"none (count or diagnostic)"``
``higher_is_better`` null)
mean of per-sample values, all of them 0 or 1           ``"mcnemar-exact"`` (exact McNemar on discordant pairs)
(exact match, correct retrieval at k)
mean of graded per-sample values (VQA accuracy,         ``"sign-flip"`` (paired permutation, units swapped)
CIDEr-D, CLIPScore)
a per-category mean (``exact_match/shape``)             as its per-sample key, on the category's samples
corpus BLEU-1..4 (captioning)                           ``"randomization-bleu"``: swap units' n-gram statistics
other corpus statistics (METEOR, median ranks,          none: ``"none (corpus statistic)"``
consistency)
=====================================================  =========================================================

Intervals are percentile intervals of ``candidate - base`` under the paired cluster
bootstrap over units (the leaderboard's replicates: :mod:`mmbench.leaderboard.stats`,
key ``stable_key(task, fingerprint hash, metric)``).  Differences are always ``candidate - base``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mmbench.compare.samples import TaskSamples, subset_rows
from mmbench.compare.stats import is_binary, mcnemar_exact, paired_randomization_test
from mmbench.leaderboard.stats import bootstrap_statistic_ci, paired_difference_ci, stable_key
from mmbench.results import TaskResult

NO_TEST_COUNT = "none (count or diagnostic)"
NO_TEST_CORPUS = "none (corpus statistic)"
NO_TEST_SAMPLES = "none (no per-sample values)"


def empty_row(base: float | None, candidate: float | None, info: dict[str, Any]) -> dict[str, Any]:
    diff = None if base is None or candidate is None else candidate - base
    return {"base": base, "candidate": candidate, "difference": diff, "ci_low": None, "ci_high": None,
            "test": None, "p_value": None, "p_value_holm": None, "n_resamples": None,
            "higher_is_better": info.get("higher_is_better"), "aggregation": info.get("aggregation"),
            "n": None, "verdict": None, "notes": []}


def compare_metric(task: str, metric: str, base: TaskResult, cand: TaskResult, pair: "Pairing | None", *,
                   seed: int, n_boot: int) -> dict[str, Any]:
    """The row of one corpus key (see the module docstring); ``pair`` is None without predictions."""
    info = base.metric_info.get(metric) or cand.metric_info.get(metric) or {}
    row = empty_row(base.metrics.get(metric), cand.metrics.get(metric), info)
    if row["difference"] is None:
        row["notes"].append("not reported by both runs")
        return row
    aggregation = info.get("aggregation", "mean")
    if info.get("higher_is_better") is None or aggregation == "count":
        row["test"] = NO_TEST_COUNT
        return row
    if pair is None:
        row["test"] = NO_TEST_SAMPLES
        row["notes"].append("a predictions file is missing")
        return row
    key = stable_key(task, base.fingerprint_hash, metric)
    if aggregation == "corpus":
        if base.family == "captioning" and metric in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"):
            _corpus_bleu(row, metric, pair, key=key, seed=seed, n_boot=n_boot)
        else:
            row["test"] = NO_TEST_CORPUS
            row["notes"].append("a corpus statistic that is not rebuilt from per-sample values here: reported "
                                "without an interval or a test")
        return row
    values = pair.values(metric, row["base"])
    if values is None:
        row["test"] = NO_TEST_SAMPLES
        row["notes"].append("the predictions files hold no per-sample values for it")
        return row
    a, b, units = values
    if not len(a):
        row["test"] = NO_TEST_SAMPLES
        row["notes"].append("no sample has a value in both runs")
        return row
    row["n"] = len(a)
    ci = paired_difference_ci(b, a, units, seed=seed, key=key, n_boot=n_boot)
    if ci is not None:
        row["ci_low"], row["ci_high"] = ci
    if is_binary(a, b):
        result = mcnemar_exact(a, b)
        row.update(test="mcnemar-exact", p_value=result.p_value, discordant={"to_correct": result.to_correct,
                                                                             "to_wrong": result.to_wrong})
    else:
        result = paired_randomization_test(a, b, units, n_resamples=n_boot, seed=seed, key=key)
        row.update(test="sign-flip", p_value=result.p_value, n_resamples=result.n_resamples,
                   exact_enumeration=result.exact)
    for name, reported, col in (("base", row["base"], a), ("candidate", row["candidate"], b)):
        if not math.isclose(float(np.mean(col)), reported, rel_tol=1e-6, abs_tol=1e-9):
            row["notes"].append(f"the {name}'s per-sample mean ({np.mean(col):.4f}) differs from its reported "
                                "value: the interval and test are of the per-sample mean")
    return row


def _corpus_bleu(row: dict[str, Any], metric: str, pair: "Pairing", *, key: int, seed: int, n_boot: int) -> None:
    """Corpus BLEU resampled from per-caption n-gram statistics (as the leaderboard's intervals are)."""
    from mmbench.metrics.caption import bleu_from_statistics, caption_bleu_statistics

    k = int(metric[-1]) - 1
    stats = []
    for samples, index, reported in ((pair.base, pair.ib, row["base"]), (pair.cand, pair.ic, row["candidate"])):
        preds = [samples.lines[i]["prediction"] or "" for i in index]
        refs = [samples.lines[i]["references"] for i in index]
        if not all(refs) or any(samples.lines[i]["n_references"] > len(samples.lines[i]["references"])
                                for i in index):
            row["test"] = NO_TEST_SAMPLES
            row["notes"].append("the predictions lines lack their references")
            return
        try:
            s = caption_bleu_statistics(preds, refs)
        except ValueError as exc:
            row["test"] = NO_TEST_SAMPLES
            row["notes"].append(f"n-gram statistics not computed ({exc})")
            return
        if not math.isclose(float(bleu_from_statistics(s.sum(axis=0))[k]), reported, rel_tol=1e-9, abs_tol=1e-12):
            row["test"] = NO_TEST_CORPUS
            row["notes"].append("corpus BLEU re-derived from the predictions does not equal the reported value")
            return
        stats.append(s)
    sa, sb = stats
    d = sa.shape[1]
    statistic = lambda t: bleu_from_statistics(t)[..., k]  # noqa: E731
    ci = bootstrap_statistic_ci(np.hstack([sb, sa]), pair.units,
                                lambda t: statistic(t[..., :d]) - statistic(t[..., d:]),
                                seed=seed, key=key, n_boot=n_boot)
    if ci is not None:
        row["ci_low"], row["ci_high"] = ci
    result = paired_randomization_test(sa, sb, pair.units, statistic, n_resamples=n_boot, seed=seed, key=key)
    row.update(test="randomization-bleu", p_value=result.p_value, n_resamples=result.n_resamples,
               exact_enumeration=result.exact, n=len(sa))


class Pairing:
    """The samples both runs have, in the base's order: ``ib``/``ic`` index the base's and the
    candidate's lines; units are the base's."""

    def __init__(self, base: TaskSamples, cand: TaskSamples):
        from mmbench.leaderboard.stats import align

        self.base, self.cand = base, cand
        self.ib, self.ic = align(base.ids, cand.ids)
        self.units = [base.units[i] for i in self.ib]
        self.ids = [base.ids[i] for i in self.ib]

    def __len__(self) -> int:
        return len(self.ib)

    def values(self, metric: str, base_reported: float) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
        """``(base values, candidate values, units)`` of ``metric`` on the samples where both have one,
        or None.  A per-category key (``exact_match/shape``) is its per-sample key on the category."""
        a, b = self.base.column(metric, self.ib), self.cand.column(metric, self.ic)
        mask = np.ones(len(self), dtype=bool)
        if a is None or b is None or np.all(np.isnan(a)):
            found = subset_rows(self.base, metric, base_reported)
            if found is None:
                return None
            source, rows = found
            a, b = self.base.column(source, self.ib), self.cand.column(source, self.ic)
            if b is None:
                return None
            mask = rows[self.ib]
        keep = mask & ~np.isnan(a) & ~np.isnan(b)
        return a[keep], b[keep], [u for u, k in zip(self.units, keep) if k]
