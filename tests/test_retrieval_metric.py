"""recall@k and ranks against values produced by CLIP_benchmark's own code (tests/data/retrieval)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbench.metrics import retrieval
from mmbench.metrics.retrieval import retrieval_ranks, retrieval_recall

CASES = json.loads((Path(__file__).parent / "data" / "retrieval" / "cases.json").read_text())["cases"]
BY_NAME = {c["name"]: c for c in CASES}


def arrays(case):
    return (np.asarray(case["image_emb"], dtype=np.float32), np.asarray(case["text_emb"], dtype=np.float32),
            case["text_to_image"])


def as_ranks(values):
    return np.array([np.inf if v is None else v for v in values], dtype=np.float64)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
@pytest.mark.parametrize("chunk_size", [1, 3, 4096])
def test_matches_official(case, chunk_size):
    image, text, mapping = arrays(case)
    values = retrieval_recall(image, text, mapping, case["ks"], chunk_size=chunk_size)
    expected = case["expected"]
    for key, (num, den) in expected["recall"].items():
        assert Fraction(values.corpus[key]).limit_denominator(10**6) == Fraction(num, den), key
        assert values.corpus[key] == num / den, key
    for key in ("t2i_mean_rank", "t2i_median_rank", "i2t_mean_rank", "i2t_median_rank"):
        assert values.corpus[key] == pytest.approx(expected[key], abs=1e-12), key
    assert list(values.corpus) == ([f"t2i_R@{k}" for k in case["ks"]] + [f"i2t_R@{k}" for k in case["ks"]]
                                   + ["t2i_mean_rank", "t2i_median_rank", "i2t_mean_rank", "i2t_median_rank"])
    text_ranks, image_ranks = retrieval_ranks(image, text, mapping, chunk_size=chunk_size)
    np.testing.assert_array_equal(text_ranks, as_ranks(expected["text_ranks"]))
    np.testing.assert_array_equal(image_ranks, as_ranks(expected["image_ranks"]))
    missing = expected["images_without_caption"]
    assert any(f"{missing} of {len(image)} images have no caption" in w for w in values.warnings) == (missing > 0)


def test_official_values_were_reproduced_where_nothing_ties():
    """Without ties the expected values are the official ones, not something derived from our rule."""
    for case in CASES:
        if not case["ties"]:
            assert case["official"]["recall"] == case["expected"]["recall"], case["name"]
            assert case["official"]["text_ranks"] == case["expected"]["text_ranks"], case["name"]
            assert case["official"]["image_ranks"] == case["expected"]["image_ranks"], case["name"]


def test_tie_cases_are_pessimistic_relative_to_clip_benchmark():
    """With ties CLIP_benchmark's torch.topk picks some order; ours is the worst one, so never better."""
    tied = [c for c in CASES if c["ties"]]
    assert len(tied) == 2
    for case in tied:
        for key, (num, den) in case["expected"]["recall"].items():
            assert num <= case["official"]["recall"][key][0], (case["name"], key)
        assert case["expected"]["recall"] != case["official"]["recall"]  # the rule matters in these cases


def test_all_tied_scores_give_the_worst_ranks():
    case = BY_NAME["all_tied"]
    image, text, mapping = arrays(case)
    text_ranks, image_ranks = retrieval_ranks(image, text, mapping)
    n_images, n_texts = len(image), len(text)
    assert text_ranks.tolist() == [n_images] * n_texts
    counts = np.bincount(mapping, minlength=n_images)
    expected = [np.inf if c == 0 else n_texts - c + 1 for c in counts]
    assert image_ranks.tolist() == expected


def test_tie_rule_worked_example():
    # text 0 belongs to image 1; images 0 and 1 tie for it, image 2 scores higher: rank 1 + 1 + 1 = 3.
    image = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    text = np.array([[0.5, 0.6]])
    text_ranks, image_ranks = retrieval_ranks(image, text, [1], normalize=False)
    assert text_ranks.tolist() == [3.0]
    # image 1's only caption is text 0, the whole gallery: rank 1; images 0 and 2 have none.
    assert image_ranks.tolist() == [np.inf, 1.0, np.inf]
    # two correct captions tied with one incorrect: rank 2 (incorrect first, then the first correct one)
    text = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    _, image_ranks = retrieval_ranks(np.array([[1.0, 0.0], [0.0, 1.0]]), text, [0, 0, 1, 1])
    assert image_ranks.tolist() == [2.0, 1.0]


def brute_force_ranks(image, text, mapping):
    """Sort every query's gallery by score, incorrect items first among equals."""
    scores = text @ image.T
    positive = np.zeros(scores.shape, dtype=bool)
    positive[np.arange(len(text)), mapping] = True

    def first_correct(s, p):
        order = np.lexsort((p, -s))
        hits = np.flatnonzero(p[order])
        return float(hits[0] + 1) if len(hits) else np.inf

    return (np.array([first_correct(s, p) for s, p in zip(scores, positive)]),
            np.array([first_correct(s, p) for s, p in zip(scores.T, positive.T)]))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_matches_brute_force_on_small_integer_embeddings(data):
    """Small integer entries give many exact ties; results must not depend on chunking."""
    n_images = data.draw(st.integers(1, 7), label="n_images")
    n_texts = data.draw(st.integers(1, 12), label="n_texts")
    dim = data.draw(st.integers(1, 3), label="dim")
    cells = st.integers(-2, 2)
    image = np.array(data.draw(st.lists(st.lists(cells, min_size=dim, max_size=dim),
                                        min_size=n_images, max_size=n_images)), dtype=np.float64)
    text = np.array(data.draw(st.lists(st.lists(cells, min_size=dim, max_size=dim),
                                       min_size=n_texts, max_size=n_texts)), dtype=np.float64)
    mapping = data.draw(st.lists(st.integers(0, n_images - 1), min_size=n_texts, max_size=n_texts))
    chunk = data.draw(st.integers(1, 8), label="chunk_size")
    text_ranks, image_ranks = retrieval_ranks(image, text, mapping, normalize=False, chunk_size=chunk)
    want_text, want_image = brute_force_ranks(image, text, np.array(mapping))
    np.testing.assert_array_equal(text_ranks, want_text)
    np.testing.assert_array_equal(image_ranks, want_image)
    values = retrieval_recall(image, text, mapping, (1, 2), normalize=False, chunk_size=chunk)
    assert values.corpus["t2i_R@1"] == np.mean(want_text <= 1)
    assert values.corpus["i2t_R@2"] == np.mean(want_image <= 2)


def test_block_size_is_capped_by_score_count(monkeypatch):
    case = BY_NAME["medium_random_counts"]
    image, text, mapping = arrays(case)
    monkeypatch.setattr(retrieval, "_MAX_BLOCK_SCORES", 50)  # 1 query per block for both directions
    assert retrieval._block_rows(4096, len(text)) == 1
    text_ranks, image_ranks = retrieval_ranks(image, text, mapping)
    np.testing.assert_array_equal(text_ranks, as_ranks(case["expected"]["text_ranks"]))
    np.testing.assert_array_equal(image_ranks, as_ranks(case["expected"]["image_ranks"]))


def test_normalize_false_ranks_raw_dot_products():
    image = np.array([[1.0, 0.0], [0.0, 3.0]])
    text = np.array([[1.0, 0.5]])
    assert retrieval_ranks(image, text, [0])[0].tolist() == [1.0]                   # cosine: 0.89 vs 0.45
    assert retrieval_ranks(image, text, [0], normalize=False)[0].tolist() == [2.0]  # dot: 1.0 vs 1.5


def test_k_larger_than_gallery_is_clamped_with_a_warning():
    image = np.eye(3, dtype=np.float32)
    text = np.eye(3, dtype=np.float32)[[0, 1, 2, 2]]
    values = retrieval_recall(image, text, [0, 1, 2, 2], ks=(1, 4, 10))
    assert values.corpus["t2i_R@10"] == 1.0 and values.corpus["i2t_R@10"] == 1.0
    assert values.corpus["t2i_R@4"] == 1.0
    text_msgs = [w for w in values.warnings if w.startswith("t2i_R@")]
    assert text_msgs == ["t2i_R@4: k=4 is larger than the gallery of 3 images; clamped to 3",
                         "t2i_R@10: k=10 is larger than the gallery of 3 images; clamped to 3"]
    assert [w for w in values.warnings if w.startswith("i2t_R@")] == [
        "i2t_R@10: k=10 is larger than the gallery of 4 texts; clamped to 4"]


def test_captionless_images_count_as_misses_and_are_reported():
    image = np.eye(4, dtype=np.float32)
    text = np.eye(4, dtype=np.float32)[[0, 1]]
    values = retrieval_recall(image, text, [0, 1], ks=(1,))
    assert values.corpus["i2t_R@1"] == 0.5           # 2 hits out of 4 images
    assert values.corpus["i2t_mean_rank"] == 1.0      # over the 2 images with captions
    assert any(w.startswith("2 of 4 images have no caption") for w in values.warnings)
    assert values.backend["i2t_R@1"]["ties"] == "pessimistic"


@pytest.mark.parametrize("kwargs, message", [
    (dict(image_emb=np.ones((2, 3)), text_emb=np.ones((3, 3)), text_to_image=[0, 1]),
     "text_to_image must have one entry per row of text_emb (3)"),
    (dict(image_emb=np.ones((2, 3)), text_emb=np.ones((2, 4)), text_to_image=[0, 1]),
     "image_emb has dimension 3 but text_emb has dimension 4"),
    (dict(image_emb=np.ones((2, 3)), text_emb=np.ones((2, 3)), text_to_image=[0, 2]),
     "text_to_image[1] = 2 (text_emb row 1) is not a row of image_emb (0..1)"),
    (dict(image_emb=np.ones((2, 3)), text_emb=np.ones((2, 3)), text_to_image=[-1, 0]),
     "text_to_image[0] = -1"),
    (dict(image_emb=np.ones((0, 3)), text_emb=np.ones((2, 3)), text_to_image=[0, 0]),
     "image_emb is empty"),
    (dict(image_emb=np.ones((2, 3)), text_emb=np.ones((0, 3)), text_to_image=[]),
     "text_emb is empty"),
    (dict(image_emb=np.ones(3), text_emb=np.ones((2, 3)), text_to_image=[0, 0]),
     "image_emb must be a 2-D array"),
    (dict(image_emb=np.ones((2, 3)), text_emb=np.ones((2, 3)), text_to_image=[0.5, 1]),
     "text_to_image must hold integer image rows"),
])
def test_bad_inputs(kwargs, message):
    with pytest.raises(ValueError) as info:
        retrieval_ranks(**kwargs)
    assert message in str(info.value)


def test_non_finite_and_zero_rows_are_named():
    image = np.ones((3, 2), dtype=np.float32)
    text = np.ones((4, 2), dtype=np.float32)
    text[2, 1] = np.nan
    text[3, 0] = np.inf
    with pytest.raises(ValueError, match=r"captions\.npy row 2 has NaN or infinite values \(and 1 more rows\)"):
        retrieval_recall(image, text, [0, 1, 2, 0], names=("images.npy", "captions.npy"))
    image[1] = 0
    with pytest.raises(ValueError, match=r"images\.npy row 1 is all zeros"):
        retrieval_recall(image, np.ones((4, 2)), [0, 1, 2, 0], names=("images.npy", "captions.npy"))
    # without normalisation a zero row is a legitimate (if useless) embedding
    retrieval_recall(image, np.ones((4, 2)), [0, 1, 2, 0], normalize=False, ks=(1,))


@pytest.mark.parametrize("ks", [(0,), (1, -5), (True,), (1.5,), ()])
def test_bad_ks(ks):
    with pytest.raises(ValueError, match="ks"):
        retrieval_recall(np.eye(2), np.eye(2), [0, 1], ks=ks)


@pytest.mark.parametrize("chunk_size", [0, -1, 2.5])
def test_bad_chunk_size(chunk_size):
    with pytest.raises(ValueError, match="chunk_size"):
        retrieval_ranks(np.eye(2), np.eye(2), [0, 1], chunk_size=chunk_size)


def test_inputs_are_not_modified_and_float64_is_kept():
    image, text, mapping = arrays(BY_NAME["one_caption_each"])
    before = image.copy(), text.copy()
    retrieval_recall(image, text, mapping)
    np.testing.assert_array_equal(image, before[0])
    np.testing.assert_array_equal(text, before[1])
    r32 = retrieval_ranks(image, text, mapping)
    r64 = retrieval_ranks(image.astype(np.float64), text.astype(np.float64), np.array(mapping))
    np.testing.assert_array_equal(r32[0], r64[0])
