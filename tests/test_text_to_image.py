"""Text-to-image: the diffusers adapter end to end through evaluate() on a tiny local IF pipeline
(fingerprint, cache, resume, images in the run folder, seeds independent of batch size), the
text-to-image family on a local PartiPrompts-shaped shard with categories, the copy-a-train-image
baseline, the leaderboard, and bad input."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers")

from mmbench.catalog import build_task, builtin_task_dir, include_tasks  # noqa: E402
from mmbench.errors import MMBenchError, ModelLoadError  # noqa: E402
from mmbench.runner import evaluate  # noqa: E402
from tests.fixtures.tiny_t2i import make_tiny_if_pipeline  # noqa: E402

PROMPTS = [("a red circle", "circle"), ("a blue triangle", "triangle"), ("a green rectangle", "rectangle"),
           ("a red circle", "circle"), ("a cat in the image", "animals")]


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory):
    return make_tiny_if_pipeline(tmp_path_factory.mktemp("tiny-if") / "pipe")


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    """A local shard of PartiPrompts' schema (Prompt, Category, Challenge, Note) and a task file that
    includes the built-in parti_prompts.yaml, scored offline by easyvqa-clip."""
    root = tmp_path_factory.mktemp("parti")
    with open(root / "parti.jsonl", "w") as fh:
        for prompt, category in PROMPTS:
            fh.write(json.dumps({"Prompt": prompt, "Category": category, "Challenge": "Basic", "Note": ""}) + "\n")
    (root / "parti.yaml").write_text(textwrap.dedent(f"""
        include: {builtin_task_dir() / 'text_to_image' / 'parti_prompts.yaml'}
        name: local_parti
        dataset: {{path: json, data_files: {{train: {root / 'parti.jsonl'}}}, revision: null}}
        metric_options:
          clipscore: {{scorer: easyvqa-clip, with_references: false}}
    """))
    include_tasks(root / "parti.yaml")
    return root


def _run(pipe_dir, shard, tmp_path, name, **kw):
    args = dict(model=pipe_dir, tasks=["local_parti"], include=[str(shard / "parti.yaml")],
                output=str(tmp_path / name), model_args={"steps": 2}, threads=1)
    args.update(kw)
    return evaluate(**args)


def _pixels(run_dir: Path, sid: str) -> np.ndarray:
    return np.asarray(Image.open(run_dir / "images" / "local_parti" / f"{sid}.png").convert("RGB"), dtype=np.int16)


def test_end_to_end_images_fingerprint_cache_and_resume(pipe_dir, shard, tmp_path):
    cache = tmp_path / "cache"
    first = _run(pipe_dir, shard, tmp_path, "a", cache_dir=str(cache))
    task = first["tasks"]["local_parti"]
    fp = first["model"]["fingerprint"]
    assert (fp["adapter"], fp["pipeline"], fp["steps"], fp["height"], fp["width"]) == ("diffusers", "IFPipeline", 2, 8, 8)
    assert fp["scheduler"] == "DDPMScheduler" and fp["scheduler_config"]["timestep_spacing"] == "trailing"
    assert fp["guidance_scale"] == 7.0 and fp["clean_caption"] is False and len(fp["weights_sha256"]) == 16
    assert (task["n_samples"], task["n_failed"], task["n_computed"], task["n_cached"]) == (5, 0, 5, 0)
    assert task["primary_metric"] == "CLIPScore"
    assert task["metric_info"]["CLIPScore/circle"] == {"metric": "text-to-image", "higher_is_better": True,
                                                       "aggregation": "mean"}
    lines = [json.loads(x) for x in (tmp_path / "a" / "predictions" / "local_parti.jsonl").read_text().splitlines()]
    assert [x["prediction"] for x in lines] == [f"images/local_parti/{i}.png" for i in range(5)]
    assert [x["meta"]["prompt"] for x in lines] == [p for p, _ in PROMPTS]
    scores = [x["scores"]["CLIPScore"] for x in lines]
    assert task["metrics"]["CLIPScore"] == pytest.approx(np.mean(scores))
    assert task["metrics"]["CLIPScore/circle"] == pytest.approx((scores[0] + scores[3]) / 2)
    assert task["metrics"]["CLIPScore/animals"] == pytest.approx(scores[4])
    for i in range(5):
        img = Image.open(tmp_path / "a" / "images" / "local_parti" / f"{i}.png")
        assert img.size == (8, 8)
    # re-scored from the predictions file alone (prediction + meta.prompt), the run's CLIPScore
    from mmbench.scoring.consistency import score_consistency_files

    pairs = tmp_path / "a" / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"id": x["id"], "image": x["prediction"], "prompt": x["meta"]["prompt"]}) + "\n"
                             for x in lines))
    rescored = score_consistency_files(pairs=pairs, scorer="easyvqa-clip", device="cpu")
    assert rescored.corpus["CLIPScore"] == pytest.approx(task["metrics"]["CLIPScore"], abs=1e-9)
    # the same prompt twice, two sample ids: two seeds, two images
    assert not np.array_equal(_pixels(tmp_path / "a", "0"), _pixels(tmp_path / "a", "3"))

    # a second run is served from the cache (images from content-addressed files), byte-identical
    again = _run(pipe_dir, shard, tmp_path, "b", cache_dir=str(cache))["tasks"]["local_parti"]
    assert (again["n_cached"], again["n_computed"]) == (5, 0) and again["metrics"] == task["metrics"]
    for i in range(5):
        name = f"images/local_parti/{i}.png"
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes()

    # resume: an image file lost from the cache is recomputed (never served), the others are read
    stored = sorted((cache / "images").rglob("*.png"))
    assert len(stored) == 5
    stored[0].unlink()
    resumed = _run(pipe_dir, shard, tmp_path, "c", cache_dir=str(cache))["tasks"]["local_parti"]
    assert (resumed["n_cached"], resumed["n_computed"]) == (4, 1) and resumed["metrics"] == task["metrics"]

    # what determines the images is in the fingerprint: steps, guidance, scheduler
    other = _run(pipe_dir, shard, tmp_path, "d", cache_dir=str(cache),
                 model_args={"steps": 3, "guidance_scale": 2.0, "scheduler": "DDIMScheduler"})
    ofp = other["model"]["fingerprint"]
    assert ofp["hash"] != fp["hash"] and other["tasks"]["local_parti"]["n_cached"] == 0
    assert (ofp["steps"], ofp["guidance_scale"], ofp["scheduler"]) == (3, 2.0, "DDIMScheduler")
    # the same pipeline in another folder: the same fingerprint (content, not location)
    moved = make_tiny_if_pipeline(tmp_path / "elsewhere")
    from mmbench.models.resolve import load_model

    assert load_model(moved, steps=2).fingerprint()["hash"] == fp["hash"]


def test_images_do_not_depend_on_batch_size_and_follow_the_seed(pipe_dir, shard, tmp_path):
    one = _run(pipe_dir, shard, tmp_path, "bs1", batch_size=1, cache=False)
    four = _run(pipe_dir, shard, tmp_path, "bs4", batch_size=4, cache=False)
    seeded = _run(pipe_dir, shard, tmp_path, "seed1", batch_size=4, cache=False, seed=1)
    for i in range(5):
        a, b = _pixels(tmp_path / "bs1", str(i)), _pixels(tmp_path / "bs4", str(i))
        assert np.abs(a - b).max() <= 2  # float rounding across batch shapes, documented in the adapter
        assert not np.array_equal(a, _pixels(tmp_path / "seed1", str(i)))
    assert one["tasks"]["local_parti"]["metrics"]["CLIPScore"] == pytest.approx(
        four["tasks"]["local_parti"]["metrics"]["CLIPScore"], abs=0.02)
    assert seeded["model"]["fingerprint"]["hash"] == one["model"]["fingerprint"]["hash"]
    checked = _run(pipe_dir, shard, tmp_path, "inv", batch_size=4, cache=False, check_batch_invariance=True)
    report = checked["tasks"]["local_parti"]["batch_invariance"]
    assert report["n_checked"] == 5 and report["mismatches"] == 0 and 0 <= report["max_abs_pixel_diff"] <= 2


def test_vqascore_scores_generated_images_with_a_score_capable_model(pipe_dir, shard, tmp_path):
    (shard / "parti_vqa.yaml").write_text(textwrap.dedent(f"""
        name: local_parti_vqa
        family: text-to-image
        dataset:
          path: json
          data_files: {{train: {shard / 'parti.jsonl'}}}
          split: train
          columns: {{prompt: Prompt, category: Category}}
        metrics: [vqascore]
        metric_options: {{vqascore: {{scorer: easyvqa-vilt, question: "does the image contain {{}}?"}}}}
    """))
    include_tasks(shard / "parti_vqa.yaml")
    out = _run(pipe_dir, shard, tmp_path, "v", tasks=["local_parti_vqa"], include=[str(shard / "parti_vqa.yaml")],
               cache=False)["tasks"]["local_parti_vqa"]
    assert out["primary_metric"] == "VQAScore" and 0 < out["metrics"]["VQAScore"] < 1
    assert out["metric_backends"]["VQAScore"]["scorer"] == "easyvqa-vilt"
    assert set(out["metrics"]) == {"VQAScore", *(f"VQAScore/{c}" for c in ("animals", "circle", "rectangle",
                                                                          "triangle"))}


def test_random_init_baseline_has_fresh_seeded_weights(pipe_dir):
    import torch

    from mmbench.models.resolve import load_model

    trained = load_model(pipe_dir, steps=1)
    a, b = load_model(pipe_dir, steps=1, random_init=True), load_model(pipe_dir, steps=1, random_init=True)
    other = load_model(pipe_dir, steps=1, random_init=True, init_seed=1)
    hashes = [m.fingerprint()["weights_sha256"] for m in (trained, a, b, other)]
    assert hashes[1] == hashes[2] and len({hashes[0], hashes[1], hashes[3]}) == 3
    assert a.fingerprint()["random_init"] is True and "random_init" not in trained.fingerprint()
    for name, weight in trained.pipe.unet.state_dict().items():
        if weight.dtype.is_floating_point and weight.dim() >= 2:  # convolutions and projections
            assert not torch.equal(weight, a.pipe.unet.state_dict()[name]), name


def test_image_seed_is_a_pure_function_of_run_seed_and_id():
    from mmbench.runner.plan import image_seed

    assert image_seed(0, "a") == image_seed(0, "a")
    assert len({image_seed(0, "a"), image_seed(1, "a"), image_seed(0, "b")}) == 3
    assert 0 <= image_seed(123, "x" * 500) < 2 ** 63


def test_bad_rows_are_sample_errors_and_bad_model_args_fail_early(pipe_dir, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in [{"Prompt": "a red circle", "Category": "x"},
                                                      {"Prompt": "", "Category": "x"},
                                                      {"Prompt": "a blue circle", "Category": 3}]) + "\n")
    (tmp_path / "bad.yaml").write_text(textwrap.dedent(f"""
        include: {builtin_task_dir() / 'text_to_image' / 'parti_prompts.yaml'}
        name: bad_parti
        dataset: {{path: json, data_files: {{train: {data}}}, revision: null}}
    """))
    include_tasks(tmp_path / "bad.yaml")
    samples = build_task("bad_parti").load_samples()
    assert samples[0].error is None and samples[0].meta == {"prompt": "a red circle", "category": "x"}
    assert "row" not in (samples[1].error or "") and "prompt must be a non-empty string" in samples[1].error
    assert "sample '1'" in samples[1].error and "field 'Prompt'" in samples[1].error
    assert "category must be a non-empty string" in samples[2].error and "field 'Category'" in samples[2].error
    from mmbench.models.resolve import load_model

    with pytest.raises(ModelLoadError, match="steps must be a positive integer"):
        load_model(pipe_dir, steps=0)
    with pytest.raises(ModelLoadError, match="not a diffusers scheduler"):
        load_model(pipe_dir, scheduler="NoSuchScheduler")
    with pytest.raises(ModelLoadError, match="scheduler_config: DDPMScheduler takes no bogus"):
        load_model(pipe_dir, scheduler_config={"bogus": 1})
    with pytest.raises(ModelLoadError, match="unknown --model-arg max_new_tokens"):
        load_model(pipe_dir, max_new_tokens=3)


def test_custom_pipeline_code_is_refused_without_trust_remote_code(pipe_dir, tmp_path):
    import shutil

    from mmbench.models.resolve import resolve_model

    custom = tmp_path / "custom"
    shutil.copytree(pipe_dir, custom)
    index = json.loads((custom / "model_index.json").read_text())
    (custom / "model_index.json").write_text(json.dumps({**index, "_class_name": "MyOwnPipeline"}))
    with pytest.raises(ModelLoadError, match="not part of diffusers .* --trust-remote-code"):
        resolve_model(str(custom))
    index["unet"] = ["my_module", "MyUNet"]
    (custom / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match="component 'unet' comes from 'my_module'"):
        resolve_model(str(custom))
    assert resolve_model(str(pipe_dir)).adapter == "diffusers"


def test_a_model_that_cannot_draw_is_refused_before_it_loads(shard, tmp_path):
    with pytest.raises(MMBenchError, match="generate_image"):
        evaluate(model="easyvqa-clip", tasks=["local_parti"], include=[str(shard / "parti.yaml")],
                 output=str(tmp_path / "x"), cache=False)


def test_unpinned_parti_prompts_refuses_to_run():
    with pytest.raises(MMBenchError, match="must pin a `revision`"):
        build_task("parti_prompts").load_samples()


def test_nearest_train_image_baseline_copies_a_train_image_of_the_caption(tmp_path):
    import easy_vqa

    from mmbench.models.resolve import load_model
    from mmbench.types import GenerateImageRequest

    model = load_model("easyvqa-t2i-nearest")
    table = json.loads(Path(model.fingerprint_info["path"]).read_text())["captions"]
    outs = model.generate_image([GenerateImageRequest("p", "A  Red circle", seed=5),
                                 GenerateImageRequest("q", "a purple star", seed=0)])
    ids = table["a red circle"]
    assert outs[0].image == Path(easy_vqa.get_train_image_paths()[int(ids[5 % len(ids)])]).read_bytes()
    assert outs[1].error == "no easy-VQA train image has the caption 'a purple star'"
    train = set(map(str, range(len(easy_vqa.get_train_image_paths()))))
    assert all(set(v) <= train for v in table.values()) and len(table) == 24


def test_easyvqa_prompt_set_rows():
    samples = build_task("easyvqa_t2i").load_samples()
    assert len(samples) == 192
    by_prompt: dict[str, int] = {}
    for s in samples:
        by_prompt[s.text] = by_prompt.get(s.text, 0) + 1
        assert s.text.endswith(s.meta["category"])
    assert len(by_prompt) == 24 and set(by_prompt.values()) == {8}


def test_leaderboard_ranks_the_family_by_its_primary_metric(pipe_dir, shard, tmp_path):
    from mmbench.leaderboard import make_board
    from mmbench.leaderboard.tables import to_markdown

    _run(pipe_dir, shard, tmp_path, "m1", cache=False)
    _run(pipe_dir, shard, tmp_path, "m2", cache=False, model="easyvqa-t2i-nearest", model_args={})
    board = make_board([tmp_path / "m1", tmp_path / "m2"], n_boot=200)
    task = next(t for t in board["tasks"] if t["task"] == "local_parti")
    assert task["family"] == "text-to-image" and task["primary_metric"] == "CLIPScore"
    rows = task["groups"][0]["rows"]
    # the baseline fails on prompts with no train caption ("a cat in the image"): they score 0
    assert [r["model"] for r in rows] == sorted((r["model"] for r in rows),
                                                key=lambda m: -next(x for x in rows if x["model"] == m)
                                                ["metrics"]["CLIPScore"]["value"])
    assert task["groups"][0]["categories"] == {"CLIPScore": [f"CLIPScore/{c}" for c in
                                                             ("animals", "circle", "rectangle", "triangle")]}
    assert task["groups"][0]["higher_is_better"]["CLIPScore/circle"] is True
    assert "text-to-image" in to_markdown(board)


def test_shipped_reference_model_loads_without_remote_code_and_draws():
    from mmbench.models.resolve import load_model
    from mmbench.types import GenerateImageRequest

    model = load_model("easyvqa-t2i", steps=2)
    fp = model.fingerprint()
    assert (fp["pipeline"], fp["height"], fp["width"], fp["guidance_scale"]) == ("IFPipeline", 32, 32, 7.0)
    reqs = [GenerateImageRequest("a", "a red circle", seed=1), GenerateImageRequest("b", "a red circle", seed=1)]
    outs = model.generate_image(reqs)
    assert outs[0].image == outs[1].image  # same prompt and seed: the same image, in one batch
    assert Image.open(__import__("io").BytesIO(outs[0].image)).size == (32, 32)


def test_batch_invariance_check_flags_images_that_differ():
    from mmbench.models.base import ModelAdapter, png_bytes
    from mmbench.runner.inference import check_batch_invariance
    from mmbench.types import GenerateImageRequest

    class BatchDependent(ModelAdapter):  # draws brighter images in bigger batches: what the check must catch
        capabilities = frozenset({"generate_image"})

        def _forward(self, requests, inputs):
            return [Image.new("RGB", (4, 4), (10 * len(requests),) * 3) for _ in requests]

    report = check_batch_invariance(BatchDependent("x", device="cpu"),
                                    [GenerateImageRequest(str(i), "p", seed=i) for i in range(3)], 3)
    assert report["mismatches"] == 3 and report["max_abs_pixel_diff"] == 20
    assert png_bytes(Image.new("RGB", (2, 2))) == png_bytes(Image.new("RGB", (2, 2)))
