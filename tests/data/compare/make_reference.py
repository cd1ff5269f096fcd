"""Write reference.json: expected p-values for tests/test_compare_stats.py, computed with other
code than mmbench.compare.stats uses (statsmodels' McNemar, scipy's permutation_test, and exact
enumeration in rational arithmetic).  Run from the repository root:

    python tests/data/compare/make_reference.py

Each case records the library, its version and the call that produced its value.
"""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from math import comb
from pathlib import Path

import numpy as np
import scipy
import statsmodels
from scipy.stats import permutation_test
from statsmodels.stats.contingency_tables import mcnemar

OUT = Path(__file__).with_name("reference.json")


def mcnemar_case(name, base, cand):
    a, b = np.array(base), np.array(cand)
    table = [[int(np.sum((a == 1) & (b == 1))), int(np.sum((a == 1) & (b == 0)))],
             [int(np.sum((a == 0) & (b == 1))), int(np.sum((a == 0) & (b == 0)))]]
    sm = mcnemar(table, exact=True).pvalue
    n01, n10 = table[0][1], table[1][0]
    n, k = n01 + n10, min(n01, n10)
    exact = min(Fraction(1), 2 * sum(Fraction(comb(n, i), 2 ** n) for i in range(k + 1))) if n else Fraction(1)
    return {"name": name, "base": base, "candidate": cand, "to_wrong": n01, "to_correct": n10,
            "p_value": float(sm), "p_value_exact_fraction": str(exact),
            "how": f"statsmodels {statsmodels.__version__}: "
                   "statsmodels.stats.contingency_tables.mcnemar([[a11, a10], [a01, a00]], exact=True).pvalue; "
                   "p_value_exact_fraction: 2 * sum_{i<=min(b,c)} C(b+c, i) / 2^(b+c), capped at 1, in Fractions"}


def unit_diffs(base, cand, units):
    order: dict[str, int] = {}
    for u in units:
        order.setdefault(u, len(order))
    d = [Fraction(0)] * len(order)
    for x, y, u in zip(base, cand, units):
        d[order[u]] += Fraction(str(y)) - Fraction(str(x))
    return d


def signflip_case(name, base, cand, units):
    d = unit_diffs(base, cand, units)
    n = len(base)
    obs = abs(sum(d))
    hits = sum(1 for signs in itertools.product((1, -1), repeat=len(d))
               if abs(sum(s * x for s, x in zip(signs, d))) >= obs)
    exact = Fraction(hits, 2 ** len(d))
    res = permutation_test((np.array([float(x) for x in d]),), lambda x, axis: np.sum(x, axis=axis) / n,
                           permutation_type="samples", n_resamples=np.inf, alternative="two-sided", vectorized=True)
    return {"name": name, "base": base, "candidate": cand, "units": units, "observed": float(sum(d) / n),
            "p_value": float(res.pvalue), "p_value_exact_fraction": str(exact),
            "how": f"scipy {scipy.__version__}: scipy.stats.permutation_test((per-unit sums of candidate - base,), "
                   "statistic=sum/n_samples, permutation_type='samples' (sign flips), n_resamples=np.inf (exact), "
                   "alternative='two-sided', vectorized=True).pvalue; p_value_exact_fraction: all 2^U sign "
                   "vectors enumerated in Fractions, share with |T| >= |T_obs|"}


def bleu_case(name, base_preds, cand_preds, refs, k):
    from mmbench.metrics.caption import bleu_from_statistics, caption_bleu_statistics

    sa, sb = caption_bleu_statistics(base_preds, refs), caption_bleu_statistics(cand_preds, refs)
    stats = np.vstack([sa, sb])  # rows 0..U-1 the base's, U..2U-1 the candidate's
    U = len(refs)

    def statistic(x, y, axis):  # x: rows summed for the candidate, y: for the base
        x, y = np.asarray(x), np.asarray(y)
        return bleu_from_statistics(stats[x].sum(axis=-2))[..., k] - bleu_from_statistics(stats[y].sum(axis=-2))[..., k]

    res = permutation_test((np.arange(U, 2 * U), np.arange(U)), statistic, permutation_type="samples",
                           n_resamples=np.inf, alternative="two-sided", vectorized=True)
    return {"name": name, "base": base_preds, "candidate": cand_preds, "references": refs, "metric": f"BLEU-{k + 1}",
            "observed": float(res.statistic), "p_value": float(res.pvalue),
            "how": f"scipy {scipy.__version__}: scipy.stats.permutation_test((candidate row indices, base row "
                   "indices), statistic=BLEU(sum of candidate rows' n-gram statistics) - BLEU(sum of base rows'), "
                   "permutation_type='samples' (swaps the two systems' statistics per caption), n_resamples=np.inf "
                   "(exact), alternative='two-sided', vectorized=True).pvalue; n-gram statistics from "
                   "mmbench.metrics.caption.caption_bleu_statistics, combined by bleu_from_statistics"}


def main() -> None:
    rng = np.random.default_rng(7)
    big_a = rng.integers(0, 2, 200).tolist()
    big_b = [x if rng.random() < 0.8 else 1 - x for x in big_a]
    big_b = [1 if (x == 0 and rng.random() < 0.15) else x for x in big_b]
    cases = {
        "mcnemar": [
            mcnemar_case("small", [1, 1, 1, 0, 0, 1, 0, 1, 1, 1], [1, 0, 0, 0, 1, 1, 0, 0, 0, 1]),
            mcnemar_case("one-sided discordance", [0] * 10 + [1] * 5, [1] * 10 + [1] * 5),
            mcnemar_case("no discordance", [1, 0, 1, 0], [1, 0, 1, 0]),
            mcnemar_case("random 200", big_a, big_b),
        ],
        "signflip": [
            signflip_case("graded, one sample per unit", [0.0, 0.3, 1.0, 0.6, 0.0, 1.0, 0.3, 0.9],
                          [1.0, 0.3, 1.0, 1.0, 0.6, 0.9, 0.6, 1.0], list("abcdefgh")),
            signflip_case("graded, clustered", [0.0, 0.3, 1.0, 0.6, 0.0, 1.0, 0.3, 0.9, 0.6, 0.0],
                          [1.0, 0.0, 1.0, 1.0, 0.6, 0.3, 0.6, 1.0, 0.9, 0.3],
                          ["i1", "i1", "i2", "i3", "i3", "i3", "i4", "i5", "i6", "i6"]),
            signflip_case("CIDEr-like", [0.12, 1.7, 0.0, 2.4, 0.9, 0.33, 1.1],
                          [0.5, 1.2, 0.4, 2.9, 1.6, 0.8, 1.05], list("abcdefg")),
            signflip_case("identical", [0.2, 0.5, 0.7], [0.2, 0.5, 0.7], list("abc")),
        ],
        "bleu": [
            bleu_case("captions", ["a red circle", "a blue square on white", "green", "a big yellow triangle",
                                   "the gray shape", "a teal circle here"],
                      ["a red circle", "a blue square", "a green triangle", "a yellow triangle",
                       "a gray rectangle", "a teal circle"],
                      [["a red circle", "a circle that is red"], ["a blue square", "an image of a blue square"],
                       ["a green triangle"], ["a yellow triangle", "a single yellow triangle in the picture"],
                       ["a gray rectangle"], ["a teal circle", "a circle that is teal"]], k) for k in (0, 3)
        ],
    }
    OUT.write_text(json.dumps(cases, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
