"""CLIPScore / RefCLIPScore against values produced by jmhessel/clipscore's own code (tests/data/clipscore)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmbench.metrics.clipscore import CLIPSCORE_PROMPT, clip_score, ref_clip_score, score_clipscore

CASES = json.loads((Path(__file__).parent / "data" / "clipscore" / "cases.json").read_text())["cases"]
BY_NAME = {c["name"]: c for c in CASES}
# float32 features: the official code works in float32, mmbench in float64.  float16 features
# (CLIP on a GPU): the official code normalises in float16, so it is only ~1e-3 close.
TOLERANCE = {"float32": 1e-6, "float16": 1e-3}


def arrays(case):
    dtype = np.dtype(case["dtype"])
    return (np.asarray(case["image_feats"], dtype=dtype), np.asarray(case["caption_feats"], dtype=dtype),
            [np.asarray(r, dtype=dtype) for r in case["reference_feats"]])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_official(case):
    image, caption, refs = arrays(case)
    official = case["official"]
    tol = TOLERANCE[case["dtype"]]
    mean, per = clip_score(image, caption, w=case["w"])
    assert mean == pytest.approx(official["CLIPScore"], abs=tol)
    np.testing.assert_allclose(per, official["CLIPScore_per"], rtol=0, atol=tol)

    mean2, per2, ref_mean, ref_per = ref_clip_score(image, caption, refs, w=case["w"])
    assert mean2 == mean and np.array_equal(per2, per)
    want = np.array([0.0 if v is None else v for v in official["RefCLIPScore_per"]])  # NaN (0/0) -> 0 here
    np.testing.assert_allclose(ref_per, want, rtol=0, atol=tol)
    assert ref_mean == pytest.approx(want.mean(), abs=tol)
    if official["RefCLIPScore"] is not None:
        assert ref_mean == pytest.approx(official["RefCLIPScore"], abs=tol)


def test_official_nan_becomes_zero():
    """0/0 in the harmonic mean: the official code gives NaN, we give 0 (the limit for non-negative terms)."""
    case = BY_NAME["zero_and_exact"]
    assert case["official"]["RefCLIPScore"] is None and case["official"]["RefCLIPScore_per"][0] is None
    _, per, ref_mean, ref_per = ref_clip_score(*arrays(case))
    assert per[0] == 0.0 and ref_per[0] == 0.0
    assert np.isfinite(ref_mean)


def test_hand_computed_values():
    image = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    caption = np.array([[1.0, 1.0], [0.0, 2.0], [-1.0, 0.0]])
    mean, per = clip_score(image, caption)
    np.testing.assert_allclose(per, [2.5 / np.sqrt(2), 2.5, 0.0])   # the last cosine is -1: clipped
    assert mean == pytest.approx((2.5 / np.sqrt(2) + 2.5) / 3)
    # references: best cosine 1 (one of two), 0.6 (unclipped), -1 for the third (official: unclipped too)
    refs = [np.array([[1.0, 1.0], [1.0, -1.0]]), np.array([0.8, 0.6]), np.array([[1.0, 0.0]])]
    _, _, _, ref_per = ref_clip_score(image, caption, refs)
    a = 2.5 / np.sqrt(2)
    np.testing.assert_allclose(ref_per, [2 * a / (a + 1), 2 * 2.5 * 0.6 / 3.1, 0.0])
    _, per_w1 = clip_score(image, caption, w=1.0)
    np.testing.assert_allclose(per_w1, per / 2.5)


def test_features_are_scale_invariant_and_inputs_unchanged():
    image, caption, refs = arrays(BY_NAME["clip_like_float32"])
    before = image.copy()
    base = ref_clip_score(image, caption, refs)
    scaled = ref_clip_score(image * 7, caption * 0.1, [r * 3 for r in refs])
    np.testing.assert_allclose(base[1], scaled[1], atol=1e-6)
    np.testing.assert_allclose(base[3], scaled[3], atol=1e-6)
    np.testing.assert_array_equal(image, before)
    assert base[1].dtype == np.float64


def test_score_clipscore_metric_values():
    image, caption, refs = arrays(BY_NAME["clip_like_float32"])
    values = score_clipscore(image, caption, refs)
    mean, per, ref_mean, ref_per = ref_clip_score(image, caption, refs)
    assert values.corpus == {"CLIPScore": mean, "RefCLIPScore": ref_mean}
    assert [s["CLIPScore"] for s in values.per_sample] == per.tolist()
    assert [s["RefCLIPScore"] for s in values.per_sample] == ref_per.tolist()
    assert values.backend["CLIPScore"]["prompt"] == CLIPSCORE_PROMPT == "A photo depicts "
    assert values.warnings == () and not values.unavailable

    alone = score_clipscore(image, caption)
    assert alone.corpus == {"CLIPScore": mean}
    assert "RefCLIPScore" in alone.unavailable
    assert alone.per_sample[0] == {"CLIPScore": per[0]}


def test_negative_reference_cosines_are_reported():
    case = BY_NAME["independent_gaussian"]
    negative = sum(v < 0 for v in case["official"]["max_reference_cosine_per"])
    assert negative == 3
    values = score_clipscore(*arrays(case))
    assert values.warnings == (f"3 of 12 captions have a negative best cosine with their references; "
                               "RefCLIPScore follows the official code (no clipping) and is not meaningful for them",)


def test_references_as_3d_array_and_single_vectors():
    image, caption, _ = arrays(BY_NAME["clip_like_w1"])
    refs3 = np.stack([caption * 2 + 0.1, caption - 0.1], axis=1)   # (n, 2, d)
    a = ref_clip_score(image, caption, refs3)
    b = ref_clip_score(image, caption, list(refs3))
    np.testing.assert_array_equal(a[3], b[3])
    single = ref_clip_score(image, caption, [row for row in caption])  # each reference = the caption itself
    np.testing.assert_allclose(single[3], 2 * single[1] / (single[1] + 1))


@pytest.mark.parametrize("call, message", [
    (lambda: clip_score(np.ones((2, 3)), np.ones((3, 3))), "image_feats has shape (2, 3) but caption_feats"),
    (lambda: clip_score(np.ones((2, 3)), np.ones((2, 4))), "image_feats has shape (2, 3)"),
    (lambda: clip_score(np.ones(3), np.ones((1, 3))), "image_feats must be a 2-D array"),
    (lambda: clip_score(np.ones((0, 3)), np.ones((0, 3))), "image_feats is empty"),
    (lambda: clip_score(np.array([[1.0, 0], [np.nan, 1]]), np.ones((2, 2))),
     "image_feats row 1 has NaN or infinite values"),
    (lambda: clip_score(np.ones((2, 2)), np.array([[1.0, 0], [0, 0]])), "caption_feats row 1 is all zeros"),
    (lambda: clip_score(np.ones((2, 2)), np.ones((2, 2)), w=0), "w must be a positive number"),
    (lambda: ref_clip_score(np.ones((2, 2)), np.ones((2, 2)), [np.ones((1, 2))]),
     "reference_feats has 1 entries but there are 2 captions"),
    (lambda: ref_clip_score(np.ones((2, 2)), np.ones((2, 2)), [np.ones((1, 2)), np.ones((0, 2))]),
     "reference_feats[1] is empty: caption 1 has no reference"),
    (lambda: ref_clip_score(np.ones((2, 2)), np.ones((2, 2)), [np.ones((1, 2)), np.ones((2, 3))]),
     "reference_feats[1] has dimension 3"),
    (lambda: ref_clip_score(np.ones((2, 2)), np.ones((2, 2)), [np.ones((1, 2)), np.array([[1, np.inf]])]),
     "reference_feats[1] row 0 has NaN or infinite values"),
    (lambda: ref_clip_score(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2))),
     "not a single 2-D array"),
])
def test_bad_inputs(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
