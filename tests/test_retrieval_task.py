"""Retrieval through the whole harness: embedding adapters, the retrieval task, run artifacts,
``mmbench score retrieval`` and its bad-input errors.

The fixture is a local webdataset shard with the schema of the built-in hub tasks
(CLIP_benchmark's ``wds_flickr30k`` / ``wds_mscoco_captions``: ``jpg``, newline-separated
``txt``, ``__key__``), so the built-in task files are exercised with only the data path
swapped.  Expected recall values are computed independently: embeddings straight from
transformers (``get_image_features`` / ``get_text_features``), ranked by brute force.
"""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from mmbench.catalog import builtin_task_dir, include_tasks
from mmbench.cli import app
from mmbench.errors import MMBenchError
from mmbench.runner import evaluate
from tests.fixtures.tiny_models import make_clip, make_siglip, make_siglip2

# image i has CAPTION_COUNTS[i] captions (one image has none: an i2t miss that stays in the denominator)
CAPTION_COUNTS = [5, 5, 3, 0, 6, 1, 5, 2]
WORDS = ["red", "green", "blue", "circle", "square", "small", "large", "dog", "cat", "tree", "on", "a"]


def _jpeg(i: int) -> bytes:
    rng = np.random.default_rng(i)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (24 + i, 20, 3), dtype=np.uint8)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _captions(i: int) -> list[str]:
    rng = np.random.default_rng(100 + i)
    return [" ".join(rng.choice(WORDS, size=4)) + f" {i}" for _ in range(CAPTION_COUNTS[i])]


def _write_shard(path: Path, broken: int | None = None) -> None:
    with tarfile.open(path, "w") as tar:
        for i in range(len(CAPTION_COUNTS)):
            image = b"not a jpeg" if i == broken else _jpeg(i)
            for name, data in ((f"{i:06d}.jpg", image), (f"{i:06d}.txt", "\n".join(_captions(i)).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedders")
    return {"clip": make_clip(root / "clip"), "siglip": make_siglip(root / "siglip"),
            "siglip2": make_siglip2(root / "siglip2")}


def _local_task(tmp_path: Path, name: str, broken: int | None = None, builtin: str = "flickr30k_1k") -> str:
    _write_shard(tmp_path / f"{name}.tar", broken)
    (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(f"""
        include: {builtin_task_dir() / 'retrieval' / (builtin + '.yaml')}
        name: {name}
        dataset: {{path: webdataset, data_files: {{test: {name}.tar}}, revision: null}}
    """))
    include_tasks(tmp_path / f"{name}.yaml")
    return name


def _direct_embeddings(checkpoint: str, *, pad_to_max: bool) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Embeddings computed with transformers alone (not through mmbench's adapter)."""
    import torch
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(checkpoint).eval()
    processor = AutoProcessor.from_pretrained(checkpoint)
    images = [Image.open(io.BytesIO(_jpeg(i))).convert("RGB") for i in range(len(CAPTION_COUNTS))]
    texts = [c for i in range(len(CAPTION_COUNTS)) for c in _captions(i)]
    mapping = [i for i in range(len(CAPTION_COUNTS)) for _ in _captions(i)]
    with torch.no_grad():
        img = model.get_image_features(**processor(images=images, return_tensors="pt"))
        tok = processor.tokenizer(texts, padding="max_length" if pad_to_max else True, truncation=True,
                                  return_tensors="pt")
        kwargs = {"input_ids": tok["input_ids"]}
        if not pad_to_max:
            kwargs["attention_mask"] = tok["attention_mask"]
        txt = model.get_text_features(**kwargs)
    img = getattr(img, "pooler_output", img).numpy()
    txt = getattr(txt, "pooler_output", txt).numpy()
    return img, txt, mapping


def _brute_force_recall(img: np.ndarray, txt: np.ndarray, mapping: list[int], k: int) -> tuple[float, float]:
    img = img / np.linalg.norm(img, axis=1, keepdims=True)
    txt = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    scores = txt @ img.T
    t2i = np.mean([scores[t, mapping[t]] > np.sort(scores[t])[::-1][min(k, len(img)) - 1] - 1e-6
                   for t in range(len(txt))])
    hits = []
    for i in range(len(img)):
        own = [t for t in range(len(txt)) if mapping[t] == i]
        top = np.argsort(-scores[:, i], kind="stable")[:k]
        hits.append(bool(set(own) & set(top.tolist())))
    return float(t2i), float(np.mean(hits))


@pytest.mark.parametrize("kind", ["clip", "siglip", "siglip2"])
def test_dual_encoder_evaluates_through_model_dir(tmp_path, checkpoints, kind):
    """`mmbench eval --model <dir>` picks the embedding adapter from config.json and matches
    recall computed from embeddings taken straight from transformers."""
    task = _local_task(tmp_path, f"wds_{kind}")
    result = CliRunner().invoke(app, ["eval", "--model", checkpoints[kind], "--tasks", task, "--include",
                                      str(tmp_path / f"{task}.yaml"), "--output", str(tmp_path / "run"),
                                      "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["model"]["fingerprint"]["adapter"] == "hf-embed"
    entry = res["tasks"][task]
    assert entry["family"] == "retrieval" and entry["n_samples"] == 8 and entry["n_failed"] == 0
    assert entry["n_requests"] == 8 + sum(CAPTION_COUNTS)
    assert any("1 of 8 images have no caption" in w for w in entry["warnings"])
    img, txt, mapping = _direct_embeddings(checkpoints[kind], pad_to_max=kind.startswith("siglip"))
    for k in (1, 5):
        t2i, i2t = _brute_force_recall(img, txt, mapping, k)
        assert entry["metrics"][f"t2i_R@{k}"] == pytest.approx(t2i, abs=1e-12)
        assert entry["metrics"][f"i2t_R@{k}"] == pytest.approx(i2t, abs=1e-12)
    # the run's embeddings equal the direct ones, and re-scoring them reproduces the run
    run_img = np.load(tmp_path / "run" / f"predictions/{task}.image_embeddings.npy")
    np.testing.assert_allclose(run_img, img / np.linalg.norm(img, axis=1, keepdims=True), atol=1e-5)
    rescored = CliRunner().invoke(app, [
        "score", "retrieval", "--json",
        "--image-embeddings", str(tmp_path / "run" / f"predictions/{task}.image_embeddings.npy"),
        "--text-embeddings", str(tmp_path / "run" / f"predictions/{task}.text_embeddings.npy"),
        "--text-to-image", str(tmp_path / "run" / f"predictions/{task}.text_to_image.json")])
    assert rescored.exit_code == 0, rescored.output
    values = json.loads(rescored.stdout.strip().splitlines()[-1])
    assert list(values) == ["t2i_R@1", "t2i_R@5", "t2i_R@10", "i2t_R@1", "i2t_R@5", "i2t_R@10",
                            "t2i_P@1", "t2i_P@5", "t2i_P@10", "i2t_P@1", "i2t_P@5", "i2t_P@10",
                            "t2i_mAP", "i2t_mAP", "t2i_R-precision", "i2t_R-precision"]
    assert all(values[key] == entry["metrics"][key] for key in values)


@pytest.mark.parametrize("builtin", ["flickr30k_1k", "coco_karpathy_5k"])
def test_builtin_hub_tasks_read_the_webdataset_schema(tmp_path, builtin):
    """The built-in hub tasks pin a revision and read CLIP_benchmark's webdataset columns; with the
    data path swapped for a local shard of the same schema they load every image and caption."""
    from mmbench.catalog import build_task
    from mmbench.tasks.config import load_task_config

    cfg = load_task_config(builtin_task_dir() / "retrieval" / f"{builtin}.yaml")
    assert len(cfg.dataset.revision) == 40 and cfg.dataset.path.startswith("clip-benchmark/wds_")
    task = build_task(_local_task(tmp_path, f"local_{builtin}", builtin=builtin))
    samples = task.load_samples()
    assert [s.id for s in samples] == [f"{i:06d}" for i in range(len(CAPTION_COUNTS))]
    assert [list(s.references) for s in samples] == [_captions(i) for i in range(len(CAPTION_COUNTS))]
    assert task.provenance["data_files_sha256"]


def test_scores_do_not_move_with_batch_size_and_resume_from_cache(tmp_path, checkpoints):
    task = _local_task(tmp_path, "wds_batch")
    include = [str(tmp_path / "wds_batch.yaml")]
    one = evaluate(model=checkpoints["clip"], tasks=[task], include=include, batch_size=1, cache=False,
                   output=str(tmp_path / "b1"), check_batch_invariance=True)["tasks"][task]
    many = evaluate(model=checkpoints["clip"], tasks=[task], include=include, batch_size="auto",
                    output=str(tmp_path / "auto"))["tasks"][task]
    assert one["metrics"] == many["metrics"]
    if not torch.cuda.is_available():  # an embedder starts "auto" at 64 requests on a CPU (32 at most of one tower)
        assert (one["batch_size"], many["batch_size"]) == (1, 64)
    assert one["batch_invariance"]["mismatches"] == 0
    again = evaluate(model=checkpoints["clip"], tasks=[task], include=include, batch_size=5,
                     output=str(tmp_path / "again"))["tasks"][task]
    assert again["n_cached"] == again["n_requests"] and again["n_computed"] == 0
    assert again["metrics"] == many["metrics"]


def test_broken_image_is_a_counted_miss_never_a_gain(tmp_path, checkpoints):
    task = _local_task(tmp_path, "wds_broken", broken=2)
    entry = evaluate(model=checkpoints["clip"], tasks=[task], include=[str(tmp_path / "wds_broken.yaml")],
                     output=str(tmp_path / "run"))["tasks"][task]
    assert entry["n_failed"] == 1 and entry["failures"][0]["id"] == "000002"
    assert any("1 images failed" in w for w in entry["warnings"])
    # the denominators keep the failed image and its 3 captions: recompute on the survivors by brute force
    img, txt, mapping = _direct_embeddings(checkpoints["clip"], pad_to_max=False)
    keep_img = [i for i in range(8) if i != 2]
    keep_txt = [t for t, i in enumerate(mapping) if i != 2]
    sub_map = [keep_img.index(mapping[t]) for t in keep_txt]
    for k in (1, 5, 10):
        t2i, i2t = _brute_force_recall(img[keep_img], txt[keep_txt], sub_map, k)
        assert entry["metrics"][f"t2i_R@{k}"] == pytest.approx(t2i * len(keep_txt) / len(mapping), abs=1e-12)
        assert entry["metrics"][f"i2t_R@{k}"] == pytest.approx(i2t * 7 / 8, abs=1e-12)
    assert entry["metrics"]["i2t_R@10"] < 1.0  # the failed image can never be a hit


def test_model_task_capability_mismatch_fails_before_any_work(tmp_path, checkpoints):
    task = _local_task(tmp_path, "wds_caps")
    with pytest.raises(MMBenchError, match="needs a model that can embed"):
        evaluate(model="easyvqa-majority", tasks=[task], include=[str(tmp_path / "wds_caps.yaml")],
                 output=str(tmp_path / "a"))
    with pytest.raises(MMBenchError, match="needs a model that can generate"):
        evaluate(model=checkpoints["clip"], tasks=["easyvqa_caption"], output=str(tmp_path / "b"))
    assert not (tmp_path / "a" / "predictions").exists() and not (tmp_path / "b" / "predictions").exists()


def test_easyvqa_retrieval_groups_interchangeable_images():
    from mmbench.catalog import build_task

    task = build_task("easyvqa_retrieval")
    samples = task.load_samples()
    assert len(samples) == 888 and all(len(s.references) == 5 for s in samples)
    groups = {s.meta["group"] for s in samples}
    assert len(groups) == 24
    # a perfect "oracle" embedding (one-hot of the group) scores 1.0 everywhere: any image of the
    # right colour and shape is a hit, though hundreds tie
    index = {g: j for j, g in enumerate(sorted(groups))}
    preds = []
    for s in samples:
        vec = np.eye(24, dtype=np.float32)[index[s.meta["group"]]]
        preds.append({"image": vec, "texts": [vec] * 5})
    values = task.score(samples, preds, {})
    assert values.corpus["t2i_R@1"] == 1.0 and values.corpus["i2t_R@1"] == 1.0
    # random embeddings: with 5 captions per image, the mean of the per-image recalls (what the
    # leaderboard bootstraps over images) is exactly the corpus recall
    rng = np.random.default_rng(0)
    noisy = [{"image": rng.standard_normal(8), "texts": list(rng.standard_normal((5, 8)))} for _ in samples]
    values = task.score(samples, noisy, {})
    for key in ("t2i_R@1", "t2i_R@10", "i2t_R@5", "i2t_R@10"):
        assert 0 < values.corpus[key] < 1
        assert np.mean([p[key] for p in values.per_sample]) == pytest.approx(values.corpus[key], abs=1e-12)
    # without groups the same embeddings are all ties, and the pessimistic rule gives no credit
    from mmbench.metrics.retrieval import retrieval_recall

    img = np.stack([p["image"] for p in preds])
    plain = retrieval_recall(img, np.repeat(img, 5, axis=0), np.repeat(np.arange(888), 5), (1,))
    assert plain.corpus["t2i_R@1"] == 0.0


# ----------------------------------------------------------------------------- mmbench score retrieval


CASES = json.loads((Path(__file__).parent / "data" / "retrieval" / "cases.json").read_text())


def _cases_with_standard_ks():
    return [c for c in CASES["cases"] if {1, 5, 10} <= set(c["ks"])]


@pytest.mark.parametrize("case", _cases_with_standard_ks(), ids=lambda c: c["name"])
def test_score_retrieval_cli_equals_clip_benchmark(tmp_path, case):
    """Exact fractions from CLIP_benchmark's own recall code (tests/data/retrieval/README.md)."""
    np.save(tmp_path / "I.npy", np.asarray(case["image_emb"], dtype=np.float32))
    np.save(tmp_path / "T.npy", np.asarray(case["text_emb"], dtype=np.float32))
    (tmp_path / "M.json").write_text(json.dumps(case["text_to_image"]))
    result = CliRunner().invoke(app, ["score", "retrieval", "--image-embeddings", str(tmp_path / "I.npy"),
                                      "--text-embeddings", str(tmp_path / "T.npy"),
                                      "--text-to-image", str(tmp_path / "M.json"), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout.strip().splitlines()[-1])
    for key, (hits, total) in case["expected"]["recall"].items():
        if key in got:
            assert got[key] == hits / total, key


def _write_inputs(tmp_path: Path, image: np.ndarray, text: np.ndarray, mapping: list) -> list[str]:
    np.save(tmp_path / "I.npy", image)
    np.save(tmp_path / "T.npy", text)
    (tmp_path / "M.json").write_text(json.dumps(mapping))
    return ["score", "retrieval", "--image-embeddings", str(tmp_path / "I.npy"), "--text-embeddings",
            str(tmp_path / "T.npy"), "--text-to-image", str(tmp_path / "M.json")]


@pytest.mark.parametrize("problem, expected", [
    ("row_count", "M.json: has 4 entries but .*T.npy has 3 rows"),
    ("nan", "T.npy row 1 has NaN or infinite values"),
    ("inf_image", "I.npy row 0 has NaN or infinite values"),
    ("out_of_range", r"text_to_image\[2\] = 7 .*row 2.* is not a row of .*I.npy"),
    ("empty_gallery", "I.npy.* is empty"),
    ("not_integer", "M.json: entry 0 is 0.5, not an integer"),
    ("pickle", "not a readable .npy"),
])
def test_score_retrieval_bad_input_names_file_and_row(tmp_path, problem, expected):
    rng = np.random.default_rng(0)
    image, text, mapping = rng.standard_normal((2, 4)), rng.standard_normal((3, 4)), [0, 1, 1]
    if problem == "row_count":
        mapping = [0, 1, 1, 0]
    elif problem == "nan":
        text[1, 2] = np.nan
    elif problem == "inf_image":
        image[0, 0] = np.inf
    elif problem == "out_of_range":
        mapping = [0, 1, 7]
    elif problem == "empty_gallery":
        image = np.zeros((0, 4))
    elif problem == "not_integer":
        mapping = [0.5, 1, 1]
    args = _write_inputs(tmp_path, image, text, mapping)
    if problem == "pickle":
        np.save(tmp_path / "I.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    import re

    assert re.search(expected, " ".join(result.output.split())), result.output


def test_hub_retrieval_task_offline_fails_fast_with_a_clear_error():
    from mmbench.catalog import build_task

    with pytest.raises(MMBenchError, match="HF_HUB_OFFLINE"):
        build_task("flickr30k_1k").load_samples()


def test_grouped_run_rescored_from_its_files(tmp_path, checkpoints):
    """easyvqa_retrieval writes .image_groups.json; `mmbench score retrieval --image-groups` on the run's
    files reproduces the run, and without the groups the same embeddings score lower (shared captions tie)."""
    entry = evaluate(model=checkpoints["clip"], tasks=["easyvqa_retrieval"], limit=60,
                     output=str(tmp_path / "run"))["tasks"]["easyvqa_retrieval"]
    stem = tmp_path / "run" / "predictions" / "easyvqa_retrieval"
    args = ["score", "retrieval", "--json", "--image-embeddings", f"{stem}.image_embeddings.npy",
            "--text-embeddings", f"{stem}.text_embeddings.npy", "--text-to-image", f"{stem}.text_to_image.json"]
    grouped = CliRunner().invoke(app, [*args, "--image-groups", f"{stem}.image_groups.json"])
    assert grouped.exit_code == 0, grouped.output
    values = json.loads(grouped.stdout.strip().splitlines()[-1])
    assert all(values[k] == entry["metrics"][k] for k in values)
    plain = json.loads(CliRunner().invoke(app, args).stdout.strip().splitlines()[-1])
    assert plain["i2t_R@10"] <= values["i2t_R@10"] and plain != values
