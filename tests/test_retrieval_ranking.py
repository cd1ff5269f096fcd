"""Retrieval precision@k, R-precision and mAP (mmbench.metrics.retrieval_ranking): against a
brute-force sort with the pessimistic tie rule (ties, groups, every block size), against
scikit-learn's average_precision_score where there are no ties (tests/data/retrieval_ranking),
through the retrieval task metric (failures) and the ``mmbench score retrieval --json`` keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.metrics import retrieval_ranking
from mmbench.metrics.retrieval import RETRIEVAL_RECALL, retrieval_metrics, retrieval_ranks, score_retrieval
from mmbench.metrics.retrieval_ranking import ranking_quality

SKLEARN = json.loads((Path(__file__).parent / "data" / "retrieval_ranking" / "sklearn_ap.json").read_text())


def brute_force(scores: np.ndarray, correct: np.ndarray, ks) -> dict[str, float]:
    """One query: sort by score (descending), incorrect before correct among equal scores."""
    order = np.lexsort((correct, -scores))  # last key first: -score, then correct (False first)
    hits = correct[order]
    m, n = int(correct.sum()), len(scores)
    positions = np.flatnonzero(hits) + 1
    out = {f"P@{k}": np.count_nonzero(positions <= min(k, n)) / min(k, n) for k in ks}
    if m == 0:
        return {**out, "AP": 0.0, "R-precision": 0.0}
    out["AP"] = float(np.mean(np.arange(1, m + 1) / positions))
    out["R-precision"] = np.count_nonzero(positions <= m) / m
    return out


def check_against_brute_force(images, texts, mapping, groups, ks, chunk_size):
    got = ranking_quality(images, texts, mapping, ks, normalize=False, chunk_size=chunk_size, image_groups=groups)
    key = np.arange(len(images)) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    text_key = key[np.asarray(mapping)]
    scores = texts @ images.T
    for t in range(len(texts)):
        want = brute_force(scores[t], key == text_key[t], ks)
        for name, value in want.items():
            assert got["t2i"][name][t] == pytest.approx(value, abs=1e-12), (name, t)
    for i in range(len(images)):
        want = brute_force(scores[:, i], text_key == key[i], ks)
        for name, value in want.items():
            assert got["i2t"][name][i] == pytest.approx(value, abs=1e-12), (name, i)


@pytest.mark.parametrize("chunk_size", [1, 3, 4096])
@pytest.mark.parametrize("seed", range(6))
def test_brute_force_with_ties(seed, chunk_size):
    """Small integer embeddings, raw dot products: many exact ties, scored exactly."""
    rng = np.random.default_rng(seed)
    n_images = int(rng.integers(2, 9))
    counts = rng.integers(0, 5, n_images)
    counts[0] = max(counts[0], 1)
    mapping = np.repeat(np.arange(n_images), counts)
    images = rng.integers(-1, 2, (n_images, 3)).astype(np.float64)
    texts = rng.integers(-1, 2, (len(mapping), 3)).astype(np.float64)
    groups = None if seed % 2 else list(rng.integers(0, 3, n_images))
    check_against_brute_force(images, texts, mapping, groups, (1, 2, 5, 50), chunk_size)


def test_all_tied_is_the_worst_ranking():
    """Constant embeddings: every correct item after every incorrect one (AP = mean j/(N-m+j))."""
    images, texts = np.ones((4, 2)), np.ones((8, 2))
    mapping = [0, 0, 1, 1, 2, 2, 3, 3]
    got = ranking_quality(images, texts, mapping, (1, 8))
    assert got["i2t"]["AP"] == pytest.approx(np.full(4, (1 / 7 + 2 / 8) / 2))
    assert got["t2i"]["AP"] == pytest.approx(np.full(8, 1 / 4))
    assert got["i2t"]["P@1"].tolist() == [0.0] * 4 and got["i2t"]["P@8"].tolist() == [0.25] * 4
    assert got["i2t"]["R-precision"].tolist() == [0.0] * 4


def test_large_groups_take_the_sorting_path(monkeypatch):
    """Queries with more correct items than _SORT_ABOVE sort their row; both paths agree."""
    rng = np.random.default_rng(7)
    images = rng.integers(-2, 3, (40, 3)).astype(np.float64)
    mapping = np.repeat(np.arange(40), 3)
    texts = rng.integers(-2, 3, (120, 3)).astype(np.float64)
    groups = [i % 2 for i in range(40)]  # 20 images, 60 captions per group
    check_against_brute_force(images, texts, mapping, groups, (1, 10, 60), 7)
    sorted_path = ranking_quality(images, texts, mapping, (1, 10), normalize=False, image_groups=groups)
    monkeypatch.setattr(retrieval_ranking, "_SORT_ABOVE", 1000)
    counting_path = ranking_quality(images, texts, mapping, (1, 10), normalize=False, image_groups=groups)
    for d in ("t2i", "i2t"):
        for name in ("AP", "R-precision", "P@1", "P@10"):
            np.testing.assert_array_equal(sorted_path[d][name], counting_path[d][name])


@pytest.mark.parametrize("case", SKLEARN["cases"], ids=lambda c: c["name"])
def test_average_precision_equals_sklearn_without_ties(case):
    got = ranking_quality(np.array(case["images"]), np.array(case["texts"]), case["text_to_image"], (1,),
                          image_groups=case["image_groups"], chunk_size=5)
    for direction in ("t2i", "i2t"):
        want = [0.0 if v is None else v for v in case["average_precision"][direction]]
        np.testing.assert_allclose(got[direction]["AP"], want, rtol=0, atol=1e-12)


def test_one_correct_item_reduces_to_recall_and_reciprocal_rank():
    case = SKLEARN["cases"][2]
    images, texts, mapping = np.array(case["images"]), np.array(case["texts"]), case["text_to_image"]
    values = retrieval_metrics(images, texts, mapping, (1, 5))
    text_ranks, image_ranks = retrieval_ranks(images, texts, mapping)
    assert values.corpus["t2i_R-precision"] == values.corpus["t2i_R@1"]
    assert values.corpus["t2i_mAP"] == pytest.approx(np.mean(1 / text_ranks), abs=1e-12)
    assert values.corpus["i2t_mAP"] == pytest.approx(np.mean(1 / image_ranks), abs=1e-12)
    assert values.corpus["t2i_P@5"] == pytest.approx(values.corpus["t2i_R@5"] / 5, abs=1e-12)
    for key in values.corpus:
        assert RETRIEVAL_RECALL.output(key) is not None, key


def test_task_metric_counts_failures_as_zero_and_matches_the_array_function():
    rng = np.random.default_rng(3)
    preds = [{"image": rng.standard_normal(4), "texts": [rng.standard_normal(4) for _ in range(n)]}
             for n in (2, 3, 1, 2)]
    refs = [["c"] * len(p["texts"]) for p in preds]
    full = score_retrieval(preds, refs, ks=(1, 2))
    images = np.stack([p["image"] for p in preds])
    texts = np.stack([t for p in preds for t in p["texts"]])
    mapping = np.repeat(np.arange(4), [len(p["texts"]) for p in preds])
    direct = retrieval_metrics(images, texts, mapping, (1, 2))
    for key, value in direct.corpus.items():
        assert full.corpus[key] == pytest.approx(value, abs=1e-6), key
    # per image: its own i2t values; their mean is the corpus value
    assert np.mean([s["i2t_mAP"] for s in full.per_sample]) == pytest.approx(full.corpus["i2t_mAP"])
    failed = score_retrieval([preds[0], None, preds[2], preds[3]], refs, ks=(1, 2))
    ok = score_retrieval([preds[0], preds[2], preds[3]], [refs[0], refs[2], refs[3]], ks=(1, 2))
    assert failed.per_sample[1]["i2t_mAP"] == 0.0 and failed.per_sample[1]["t2i_mAP"] == 0.0
    assert failed.corpus["i2t_mAP"] == pytest.approx(ok.corpus["i2t_mAP"] * 3 / 4)
    assert failed.corpus["t2i_mAP"] == pytest.approx(ok.corpus["t2i_mAP"] * 5 / 8)


def test_score_retrieval_json_prints_precision_and_map(tmp_path):
    case = SKLEARN["cases"][0]
    np.save(tmp_path / "I.npy", np.array(case["images"], dtype=np.float32))
    np.save(tmp_path / "T.npy", np.array(case["texts"], dtype=np.float32))
    (tmp_path / "M.json").write_text(json.dumps(case["text_to_image"]))
    result = CliRunner().invoke(app, ["score", "retrieval", "--json", "--image-embeddings", str(tmp_path / "I.npy"),
                                      "--text-embeddings", str(tmp_path / "T.npy"),
                                      "--text-to-image", str(tmp_path / "M.json")])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("i2t_P@1", "t2i_P@1", "i2t_P@5", "i2t_mAP", "t2i_mAP", "i2t_R-precision", "t2i_R-precision"):
        assert key in got
    want = case["average_precision"]
    assert got["i2t_mAP"] == pytest.approx(np.mean(want["i2t"]), abs=1e-6)
    assert got["t2i_mAP"] == pytest.approx(np.mean(want["t2i"]), abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_the_ranking_pass_yields_recalls_ranks_exactly(seed):
    """score_retrieval and retrieval_metrics take recall's ranks from the ranking pass (one pass over
    the scores); they must equal retrieval_ranks', ties, caption-less images and groups included."""
    from mmbench.metrics.retrieval import retrieval_ranks
    from mmbench.metrics.retrieval_ranking import ranking_quality

    rng = np.random.default_rng(seed)
    n_images, n_texts = 17, 40
    # few distinct values: many exactly tied scores
    images = rng.integers(-2, 3, size=(n_images, 4)).astype(np.float32)
    texts = rng.integers(-2, 3, size=(n_texts, 4)).astype(np.float32)
    images[np.all(images == 0, axis=1)] = 1.0
    texts[np.all(texts == 0, axis=1)] = 1.0
    mapping = rng.integers(0, n_images - 3, size=n_texts)  # the last images have no caption
    groups = [None, [i // 3 for i in range(n_images)]][seed % 2]
    expected = retrieval_ranks(images, texts, mapping, image_groups=groups, chunk_size=5)
    quality = ranking_quality(images, texts, mapping, (1, 5), image_groups=groups, chunk_size=5)
    assert quality["t2i"]["rank"].tolist() == expected[0].tolist()
    assert quality["i2t"]["rank"].tolist() == expected[1].tolist()
    assert np.isinf(expected[1]).any() or groups is not None
