"""mmbench.compare.stats against reference values made by other code (tests/data/compare/make_reference.py:
statsmodels' McNemar, scipy's exact permutation_test, enumeration in Fractions; each case records how)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from mmbench.compare.stats import holm, is_binary, mcnemar_exact, paired_randomization_test

REF = json.loads((Path(__file__).parent / "data" / "compare" / "reference.json").read_text())


@pytest.mark.parametrize("case", REF["mcnemar"], ids=lambda c: c["name"])
def test_mcnemar_matches_statsmodels(case):
    result = mcnemar_exact(case["base"], case["candidate"])
    assert (result.to_wrong, result.to_correct) == (case["to_wrong"], case["to_correct"])
    assert result.p_value == pytest.approx(case["p_value"], rel=1e-12)
    assert result.p_value == pytest.approx(float(Fraction(case["p_value_exact_fraction"])), rel=1e-12)


@pytest.mark.parametrize("case", REF["signflip"], ids=lambda c: c["name"])
def test_sign_flip_matches_scipy_exact_permutation(case):
    result = paired_randomization_test(np.array(case["base"]), np.array(case["candidate"]), case["units"],
                                       n_resamples=2000)
    assert result.exact and result.n_resamples == 2 ** len(set(case["units"]))
    assert result.observed == pytest.approx(case["observed"], abs=1e-12)
    assert result.p_value == pytest.approx(case["p_value"], rel=1e-12)
    assert result.p_value == pytest.approx(float(Fraction(case["p_value_exact_fraction"])), rel=1e-12)


@pytest.mark.parametrize("case", REF["bleu"], ids=lambda c: c["metric"])
def test_bleu_randomization_matches_scipy_exact_permutation(case):
    from mmbench.metrics.caption import bleu_from_statistics, caption_bleu_statistics

    k = int(case["metric"][-1]) - 1
    sa = caption_bleu_statistics(case["base"], case["references"])
    sb = caption_bleu_statistics(case["candidate"], case["references"])
    units = [str(i) for i in range(len(sa))]
    result = paired_randomization_test(sa, sb, units, lambda t: bleu_from_statistics(t)[..., k], n_resamples=2000)
    assert result.exact
    assert result.observed == pytest.approx(case["observed"], rel=1e-12)
    assert result.p_value == pytest.approx(case["p_value"], rel=1e-12)


def test_randomized_p_value_is_seeded_and_bounded():
    rng = np.random.default_rng(0)
    a = rng.random(300)
    b = a + rng.normal(0.05, 0.2, 300)
    units = [str(i // 2) for i in range(300)]  # 150 images, two samples each: random patterns
    r1 = paired_randomization_test(a, b, units, n_resamples=500, seed=3, key=9)
    r2 = paired_randomization_test(a, b, units, n_resamples=500, seed=3, key=9)
    assert not r1.exact and r1.n_resamples == 500 and r1 == r2
    assert 1 / 501 <= r1.p_value <= 1
    assert r1.p_value < 0.05  # a clear shift


def test_nan_pairs_are_left_out():
    a = np.array([0.0, np.nan, 0.5, 1.0])
    b = np.array([1.0, 0.2, np.nan, 1.0])
    r = paired_randomization_test(a, b, list("abcd"))
    assert r.observed == pytest.approx(0.5) and r.n_resamples == 4  # samples a and d: 2 units


def test_holm_by_hand():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # 0.5*2 = 1.0; 0.9*1 raised to 1.0 (monotone)
    assert holm([]) == []


def test_is_binary():
    assert is_binary([0, 1, 1], [1.0, 0.0])
    assert not is_binary([0, 0.3, 1])
    assert not is_binary([])


def test_mcnemar_refuses_graded_values():
    with pytest.raises(ValueError):
        mcnemar_exact([0.3, 1.0], [1.0, 0.0])
