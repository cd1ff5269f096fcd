"""Bootstrap confidence intervals and paired-bootstrap ties, resampling images (clusters).

Pure functions over NumPy arrays.  Conventions:

* **Units.**  ``units[i]`` names the resampling unit of sample ``i`` (the image when several
  questions share one).  A replicate draws ``U`` units with replacement and takes the mean
  over all samples of the drawn units (the cluster bootstrap of the sample mean).
* **Seeding.**  Replicates come from ``numpy.random.default_rng([seed, key])``; with the same
  ``seed``, ``key`` and number of units every call draws the *same* resamples, so the CIs of
  all models in a comparable group and their paired differences use identical resamples,
  and a result never depends on what else is on the leaderboard.
* **Intervals.**  Percentile intervals (2.5 %, 97.5 % for ``level=0.95``).

>>> import numpy as np
>>> lo, hi = bootstrap_mean_ci(np.array([0., 1., 1., 1.]), ["a", "b", "c", "d"], seed=0, n_boot=200)
>>> lo <= 0.75 <= hi
True
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

_MAX_CELLS = 4_000_000  # replicate-weights matrix cells held at once (~32 MB)


def stable_key(*parts: object) -> int:
    """A 63-bit integer from ``parts`` that is the same on every machine and Python run."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _unit_index(units: Sequence[str]) -> tuple[np.ndarray, int]:
    """Map unit names to 0..U-1 in order of first appearance."""
    order: dict[str, int] = {}
    idx = np.fromiter((order.setdefault(u, len(order)) for u in units), dtype=np.int64, count=len(units))
    return idx, len(order)


def _replicate_weights(n_units: int, *, seed: int, key: int, n_boot: int):
    """Yield ``(start, W)``: chunks of the replicate count matrix (``W[b, u]`` = how often replicate
    ``start + b`` drew unit ``u``).  Same ``seed``, ``key``, ``n_units`` -> same draws."""
    rng = np.random.default_rng([seed, key])
    chunk = max(1, _MAX_CELLS // max(n_units, 1))
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        draws = rng.integers(0, n_units, size=(rows, n_units)) + (np.arange(rows) * n_units)[:, None]
        yield start, np.bincount(draws.ravel(), minlength=rows * n_units).reshape(rows, n_units).astype(float)


def _replicate_means(values: np.ndarray, units: Sequence[str], *, seed: int, key: int, n_boot: int) -> np.ndarray:
    """``n_boot`` cluster-bootstrap means of ``values`` (NaN entries are left out).

    Each replicate draws ``U`` units with replacement; their counts ``W`` (shape ``n_boot x U``) weight the per-unit
    sums and counts: ``mean_b = W_b . sums / W_b . counts``.
    """
    values = np.asarray(values, dtype=float)
    idx, n_units = _unit_index(units)
    ok = ~np.isnan(values)
    sums = np.bincount(idx[ok], weights=values[ok], minlength=n_units)
    counts = np.bincount(idx[ok], minlength=n_units).astype(float)
    out = np.empty(n_boot)
    for start, w in _replicate_weights(n_units, seed=seed, key=key, n_boot=n_boot):
        den = w @ counts
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + len(w)] = np.where(den > 0, (w @ sums) / np.where(den > 0, den, 1), np.nan)
    return out


def bootstrap_statistic_ci(stats: np.ndarray, units: Sequence[str], statistic, *, seed: int = 0, key: int = 0,
                           n_boot: int = 1000, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile CI of a corpus metric that is a function of summed per-sample statistics.

    ``stats`` is ``(n_samples, d)``; ``statistic`` maps summed statistics ``(..., d)`` to the
    metric (``(...)``), e.g. corpus BLEU from n-gram counts.  Each replicate sums the
    statistics of the drawn units (with multiplicity) and applies ``statistic``, so the
    interval is of the corpus value itself.  Same draws as :func:`bootstrap_mean_ci`.
    """
    stats = np.asarray(stats, dtype=float)
    if stats.ndim != 2 or len(stats) != len(units):
        raise ValueError("stats must be (n_samples, d) with one unit per sample")
    if len(stats) == 0:
        return None
    idx, n_units = _unit_index(units)
    per_unit = np.zeros((n_units, stats.shape[1]))
    np.add.at(per_unit, idx, stats)
    out = np.empty(n_boot)
    for start, w in _replicate_weights(n_units, seed=seed, key=key, n_boot=n_boot):
        out[start:start + len(w)] = statistic(w @ per_unit)
    return _percentiles(out, level)


def _percentiles(reps: np.ndarray, level: float) -> tuple[float, float] | None:
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return None
    alpha = (1 - level) / 2
    lo, hi = np.quantile(reps, [alpha, 1 - alpha])
    return float(lo), float(hi)


def bootstrap_mean_ci(values: np.ndarray, units: Sequence[str], *, seed: int = 0, key: int = 0,
                      n_boot: int = 1000, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile CI of the mean of ``values`` under the cluster bootstrap over ``units``.

    Returns ``(low, high)``, or None when no value is present.
    """
    if len(values) != len(units):
        raise ValueError("values and units differ in length")
    if len(values) == 0 or np.all(np.isnan(values)):
        return None
    return _percentiles(_replicate_means(values, units, seed=seed, key=key, n_boot=n_boot), level)


def paired_difference_ci(a: np.ndarray, b: np.ndarray, units: Sequence[str], *, seed: int = 0, key: int = 0,
                         n_boot: int = 1000, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile CI of ``mean(a) - mean(b)`` resampling the same units for both.

    ``a[i]`` and ``b[i]`` are two models' scores on the same sample; samples where
    either is NaN are left out.  Equals the cluster bootstrap of the per-sample
    differences, so two identical score vectors give exactly ``(0.0, 0.0)``.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not (len(a) == len(b) == len(units)):
        raise ValueError("a, b and units differ in length")
    diff = a - b
    if len(diff) == 0 or np.all(np.isnan(diff)):
        return None
    return _percentiles(_replicate_means(diff, units, seed=seed, key=key, n_boot=n_boot), level)


def is_tie(diff_ci: tuple[float, float] | None) -> bool | None:
    """True when the two-sided interval of a difference contains 0 (not significant); None if unknown."""
    if diff_ci is None:
        return None
    return diff_ci[0] <= 0.0 <= diff_ci[1]


def align(ids_a: Sequence[str], ids_b: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays selecting the sample ids both runs have, in ``ids_a``'s order."""
    pos_b = {sid: i for i, sid in enumerate(ids_b)}
    ia = [i for i, sid in enumerate(ids_a) if sid in pos_b]
    return np.asarray(ia, dtype=np.int64), np.asarray([pos_b[ids_a[i]] for i in ia], dtype=np.int64)
