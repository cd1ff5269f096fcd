"""Paired significance tests for two models scored on the same samples.  Pure functions over NumPy arrays.

Conventions (the same as :mod:`mmbench.leaderboard.stats`, whose bootstrap intervals
:mod:`mmbench.compare` reuses):

* **Pairs.**  ``a[i]`` and ``b[i]`` are the base's and the candidate's score on sample ``i``;
  ``units[i]`` is its resampling unit (the image; several questions on one image move together).
* **Differences** are ``candidate - base``.
* **Two-sided** tests throughout.

Tests:

* :func:`mcnemar_exact` - binary outcomes (right/wrong per sample).  The exact McNemar test
  is the two-sided binomial test of the discordant pairs: of the ``b + c`` samples where
  the models disagree, is the number the candidate gets right (``c``) compatible with
  Binomial(b + c, 1/2)?  It treats samples as independent pairs (no clustering by image).
* :func:`paired_randomization_test` - graded scores (VQA accuracy, CIDEr-D, CLIPScore) and
  corpus statistics of summed per-sample statistics (corpus BLEU from n-gram counts).
  Under the null hypothesis the two systems are exchangeable on each unit, so each
  replicate swaps the base's and candidate's statistics on a random set of units and
  recomputes ``statistic(candidate totals) - statistic(base totals)``.  For a mean this
  is the sign-flip permutation test on per-unit differences, clustered by image; for BLEU it
  is approximate randomization (Riezler & Maxwell, 2005).  With ``2**U <= n_resamples``
  every swap pattern is enumerated (exact p-value, ``#{|T| >= |T_obs|} / 2**U``); otherwise
  ``n_resamples`` random patterns give ``(1 + #{|T_r| >= |T_obs|}) / (1 + n_resamples)``.
  Written here rather than with ``scipy.stats.permutation_test`` because the same code must
  resample a statistic of summed vectors (corpus BLEU), not only a mean of one array, with
  the leaderboard's deterministic seeding.
* :func:`holm` - Holm's step-down adjustment (statsmodels ``multipletests(method="holm")``).

>>> mcnemar_exact([1, 1, 1, 0], [1, 0, 0, 0]).p_value
0.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

_MAX_CELLS = 4_000_000  # swap-pattern matrix cells held at once (~32 MB as float)
_REL_TOL = 1e-9  # |T_r| >= |T_obs| counts replicates equal to the observed value up to rounding


@dataclass(frozen=True)
class McNemar:
    """``to_wrong``: pairs the base got right and the candidate wrong; ``to_correct``: the reverse."""

    to_wrong: int
    to_correct: int
    p_value: float


@dataclass(frozen=True)
class Randomization:
    """``n_resamples``: replicates drawn (``2**U`` when ``exact``)."""

    observed: float
    p_value: float
    n_resamples: int
    exact: bool


def is_binary(*arrays: np.ndarray) -> bool:
    """True when every value of every array is 0 or 1 (and there is at least one value)."""
    values = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    return values.size > 0 and bool(np.all((values == 0.0) | (values == 1.0)))


def mcnemar_exact(base: Sequence[float], candidate: Sequence[float]) -> McNemar:
    """Exact two-sided McNemar test of two paired 0/1 outcome vectors.

    ``p = binomtest(to_correct, to_wrong + to_correct, 0.5).pvalue`` (1.0 with no discordant pair).
    """
    from scipy.stats import binomtest

    a, b = np.asarray(base, dtype=float), np.asarray(candidate, dtype=float)
    if a.shape != b.shape:
        raise ValueError("base and candidate differ in length")
    if not is_binary(a, b):
        raise ValueError("McNemar needs 0/1 outcomes")
    to_wrong = int(np.sum((a == 1) & (b == 0)))
    to_correct = int(np.sum((a == 0) & (b == 1)))
    n = to_wrong + to_correct
    p = 1.0 if n == 0 else float(binomtest(to_correct, n, 0.5, alternative="two-sided").pvalue)
    return McNemar(to_wrong, to_correct, min(p, 1.0))


def _unit_sums(stats: np.ndarray, units: Sequence[str]) -> np.ndarray:
    order: dict[str, int] = {}
    idx = np.fromiter((order.setdefault(u, len(order)) for u in units), dtype=np.int64, count=len(units))
    out = np.zeros((len(order), stats.shape[1]))
    np.add.at(out, idx, stats)
    return out


def _swap_patterns(n_units: int, *, n_resamples: int, seed: int, key: int):
    """Yield chunks of 0/1 matrices ``S`` (``S[r, u] = 1``: swap unit ``u`` in replicate ``r``) and whether
    they enumerate all ``2**n_units`` patterns."""
    exact = n_units < 63 and 2 ** n_units <= n_resamples
    total = 2 ** n_units if exact else n_resamples
    chunk = max(1, _MAX_CELLS // max(n_units, 1))
    rng = None if exact else np.random.default_rng([seed, key, 1])  # not the bootstrap's stream
    for start in range(0, total, chunk):
        rows = min(chunk, total - start)
        if exact:
            codes = np.arange(start, start + rows, dtype=np.int64)[:, None]
            yield (codes >> np.arange(n_units, dtype=np.int64)[None, :]) & 1, True
        else:
            yield rng.integers(0, 2, size=(rows, n_units)), False


def paired_randomization_test(base_stats: np.ndarray, candidate_stats: np.ndarray, units: Sequence[str],
                              statistic: Callable[[np.ndarray], np.ndarray] | None = None, *,
                              n_resamples: int = 2000, seed: int = 0, key: int = 0) -> Randomization:
    """Two-sided paired randomization test of ``statistic(candidate) - statistic(base)``.

    ``base_stats`` and ``candidate_stats`` are ``(n,)`` per-sample scores (``statistic``
    None: the difference of means, i.e. the clustered sign-flip test) or ``(n, d)``
    per-sample statistics that ``statistic`` maps, summed, to the metric (``(..., d) ->
    (...)``; corpus BLEU from n-gram counts).  Rows with NaN in either are left out.
    Same ``seed``, ``key`` and units -> the same replicates.
    """
    a, b = np.asarray(base_stats, dtype=float), np.asarray(candidate_stats, dtype=float)
    if a.shape != b.shape or len(a) != len(units):
        raise ValueError("base, candidate and units differ in length")
    if statistic is None:
        a, b = np.stack([a, np.ones_like(a)], axis=1), np.stack([b, np.ones_like(b)], axis=1)
        statistic = _mean_of_totals
    keep = ~(np.isnan(a).any(axis=1) | np.isnan(b).any(axis=1))
    if not keep.any():
        raise ValueError("no sample has both scores")
    units = [u for u, k in zip(units, keep) if k]
    ua, ub = _unit_sums(a[keep], units), _unit_sums(b[keep], units)
    ta, tb = ua.sum(axis=0), ub.sum(axis=0)
    observed = float(statistic(tb) - statistic(ta))
    delta = ub - ua  # swapping unit u moves delta[u] from the candidate's totals to the base's
    threshold = abs(observed) * (1 - _REL_TOL) - 1e-12
    hits = drawn = 0
    exact = False
    for s, exact in _swap_patterns(len(ua), n_resamples=n_resamples, seed=seed, key=key):
        moved = s.astype(float) @ delta
        t = statistic(tb - moved) - statistic(ta + moved)
        hits += int(np.sum(np.abs(t) >= threshold))
        drawn += len(s)
    p = hits / drawn if exact else (1 + hits) / (1 + drawn)
    return Randomization(observed=observed, p_value=float(min(p, 1.0)), n_resamples=drawn, exact=exact)


def _mean_of_totals(totals: np.ndarray) -> np.ndarray:
    return totals[..., 0] / totals[..., 1]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels ``multipletests(p, method="holm")``), in input order.

    >>> [round(p, 6) for p in holm([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]
    """
    if len(p_values) == 0:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(list(p_values), method="holm")[1]]
