"""CLIPScore with a scorer model (mmbench.metrics.clipscore.clipscore_metric) and `mmbench score consistency`, on a tiny CLIP.

The features are recomputed here straight from transformers, so the scorer adapter
(prefix, truncation, pooling, batching) is checked against the pure arithmetic of
mmbench.metrics.clipscore, which tests/test_clipscore_metric.py checks against the
official code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from PIL import Image
from typer.testing import CliRunner

if int(transformers.__version__.split(".")[0]) < 5:
    pytest.skip("the tiny fixtures use the transformers 5 tokenizer API", allow_module_level=True)

from mmbench.cli import app  # noqa: E402
from mmbench.metrics.clipscore import clipscore_features, clipscore_metric  # noqa: E402
from mmbench.models.scorer import load_embedder  # noqa: E402
from mmbench.metrics.clipscore import CLIPSCORE_PROMPT, ref_clip_score  # noqa: E402
from mmbench.tasks.datasets.easyvqa import caption_rows  # noqa: E402
from mmbench.types import ImageRef  # noqa: E402
from tests.fixtures.tiny_models import make_clip  # noqa: E402

runner = CliRunner()
LONG = "a red circle " + " ".join(["next to a blue triangle"] * 12)  # far beyond the tiny CLIP's 32 tokens


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> str:
    return make_clip(tmp_path_factory.mktemp("scorer") / "tiny-clip")


@pytest.fixture(scope="module")
def samples() -> list[dict]:
    """Six easy-VQA test images with a right, a wrong, an empty-ish and an over-long caption."""
    rows = caption_rows("test")[:6]
    captions = [rows[0]["references"][0], "a green rectangle", rows[2]["references"][3], "shape", LONG,
                rows[5]["references"][0]]
    for row, caption in zip(rows, captions):
        row["caption"] = caption
    return rows


def direct_features(clip_dir: str, samples: list[dict], prefix: str):
    """(image, caption, [references]) features computed with transformers alone."""
    model = transformers.CLIPModel.from_pretrained(clip_dir, local_files_only=True).eval()
    processor = transformers.CLIPProcessor.from_pretrained(clip_dir, local_files_only=True)
    tokenizer = processor.tokenizer

    def texts(strings):
        tok = tokenizer([prefix + s for s in strings], padding=True, truncation=True,
                        max_length=tokenizer.model_max_length, return_tensors="pt")
        with torch.no_grad():
            return model.get_text_features(input_ids=tok["input_ids"],
                                           attention_mask=tok["attention_mask"]).pooler_output.numpy()

    images = [Image.open(s["image"]).convert("RGB") for s in samples]
    with torch.no_grad():
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        image_feats = model.get_image_features(pixel_values=pixels).pooler_output.numpy()
    return image_feats, texts([s["caption"] for s in samples]), [texts(s["references"]) for s in samples]


def test_clipscore_metric_equals_the_arithmetic_on_direct_features(clip_dir, samples):
    tokenizer = transformers.CLIPTokenizer.from_pretrained(clip_dir, local_files_only=True)
    assert len(tokenizer(CLIPSCORE_PROMPT + LONG)["input_ids"]) > tokenizer.model_max_length == 32  # truncated

    values = clipscore_metric([s["caption"] for s in samples], [s["references"] for s in samples],
                              images=[ImageRef(path=s["image"]) for s in samples],
                              sample_ids=[s["image_id"] for s in samples], scorer=clip_dir,
                              load_embedder=load_embedder, batch_size=4)
    direct = direct_features(clip_dir, samples, CLIPSCORE_PROMPT)
    clip_mean, clip_per, ref_mean, ref_per = ref_clip_score(*direct)
    assert values.corpus["CLIPScore"] == pytest.approx(clip_mean, abs=1e-6)
    assert values.corpus["RefCLIPScore"] == pytest.approx(ref_mean, abs=1e-6)
    np.testing.assert_allclose([p["CLIPScore"] for p in values.per_sample], clip_per, rtol=0, atol=1e-6)
    np.testing.assert_allclose([p["RefCLIPScore"] for p in values.per_sample], ref_per, rtol=0, atol=1e-6)
    # a random CLIP gives negative cosines (clipped to 0) for some pairs; enough are positive to compare
    assert np.count_nonzero(clip_per > 0.01) >= 3 and clip_per[4] > 0.01  # incl. the truncated caption

    # and the features themselves (before clipping): the adapter's unit vectors are the direct ones, normalised
    ids = [s["image_id"] for s in samples]
    feats = clipscore_features(load_embedder(clip_dir), [ImageRef(path=s["image"]) for s in samples],
                               [s["caption"] for s in samples], [s["references"] for s in samples], ids, batch_size=4)
    for got, want in zip((feats[0], feats[1], *feats[2]), (direct[0], direct[1], *direct[2])):
        np.testing.assert_allclose(got, want / np.linalg.norm(want, axis=1, keepdims=True), rtol=0, atol=1e-6)
    backend = values.backend["CLIPScore"]
    assert backend["scorer"] == clip_dir and backend["scorer_hash"] and backend["prompt"] == CLIPSCORE_PROMPT

    # the "A photo depicts " prefix is part of the definition: without it the numbers differ
    bare_mean, _, bare_ref_mean, _ = ref_clip_score(*direct_features(clip_dir, samples, ""))
    assert abs(bare_mean - values.corpus["CLIPScore"]) > 1e-3
    assert abs(bare_ref_mean - values.corpus["RefCLIPScore"]) > 1e-3


# ----------------------------------------------------------------------------- the CLI


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def score(*args: str) -> tuple[int, str, dict | None]:
    result = runner.invoke(app, ["score", "consistency", *args])
    if result.exit_code != 0:
        return result.exit_code, result.output, None
    return 0, result.output, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture()
def inputs(tmp_path, samples):
    """A predictions file, a folder of <id>.png copies and a JSONL image table (relative paths)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for s in samples:
        shutil.copy(s["image"], folder / f"{s['image_id']}.png")
    predictions = write_jsonl(tmp_path / "preds.jsonl", [
        {"image_id": s["image_id"], "prediction": s["caption"], "references": s["references"]} for s in samples])
    table = write_jsonl(tmp_path / "images.jsonl", [
        {"image_id": s["image_id"], "image": f"images/{s['image_id']}.png"} for s in samples])
    return {"predictions": predictions, "folder": str(folder), "table": table}


def test_cli_image_sources_agree(clip_dir, samples, inputs, tmp_path):
    common = ["--predictions", inputs["predictions"], "--scorer", clip_dir, "--json"]
    got = {}
    for name, extra in (("folder", ["--images", inputs["folder"]]), ("table", ["--images", inputs["table"]]),
                        ("task", ["--task", "easyvqa_caption"])):
        code, output, values = score(*common, *extra)
        assert code == 0, output
        got[name] = values
    assert set(got["folder"]) == {"CLIPScore", "RefCLIPScore"}
    assert got["folder"] == got["table"] == got["task"]
    direct = clipscore_metric([s["caption"] for s in samples], [s["references"] for s in samples],
                              images=[ImageRef(path=s["image"]) for s in samples], scorer=clip_dir,
                              load_embedder=load_embedder)
    assert got["folder"] == pytest.approx(dict(direct.corpus), abs=1e-9)

    # prompt/image pairs: CLIPScore only; the same texts and images give the same CLIPScore
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [
        {"image": f"images/{s['image_id']}.png", "prompt": s["caption"]} for s in samples])
    code, output, values = score("--pairs", pairs, "--scorer", clip_dir, "--json")
    assert code == 0, output
    assert set(values) == {"CLIPScore"}
    assert values["CLIPScore"] == pytest.approx(got["folder"]["CLIPScore"], abs=1e-9)


def test_cli_missing_image_names_the_sample(clip_dir, samples, inputs, tmp_path):
    rows = [{"image_id": s["image_id"], "prediction": s["caption"]} for s in samples]
    rows.insert(2, {"image_id": "ghost-17", "prediction": "a red circle"})
    predictions = write_jsonl(tmp_path / "ghost.jsonl", rows)
    code, output, _ = score("--predictions", predictions, "--images", inputs["folder"], "--scorer", clip_dir)
    assert code == 2
    assert "sample 'ghost-17'" in output and "no image file" in output and "Traceback" not in output


def test_cli_pairs_line_without_prompt(clip_dir, samples, tmp_path):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"image": samples[0]["image"], "prompt": "a red triangle"},
                                                   {"image": samples[1]["image"], "text": "a blue circle"}])
    code, output, _ = score("--pairs", pairs, "--scorer", clip_dir, "--json")
    assert code == 2
    assert f"{pairs}:2" in output and "field 'prompt'" in output


def test_cli_scorer_that_cannot_embed(inputs):
    code, output, _ = score("--predictions", inputs["predictions"], "--images", inputs["folder"],
                            "--scorer", "easyvqa-majority")
    assert code == 2
    assert "scorer 'easyvqa-majority'" in output and "cannot embed" in output and "Traceback" not in output


def test_unloadable_scorer_in_a_task_is_unavailable_not_fatal(tmp_path, monkeypatch):
    """A captioning run whose CLIPScore scorer is not available offline still writes its other
    metrics and predictions; CLIPScore is reported unavailable with the reason."""
    import textwrap

    from mmbench.catalog import builtin_task_dir, include_tasks
    from mmbench.runner import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "cap.yaml").write_text(textwrap.dedent(f"""
        include: {builtin_task_dir() / 'captioning' / 'easyvqa_caption.yaml'}
        name: easyvqa_caption_hub_scorer
        metric_options: {{clipscore: {{scorer: some-org/not-cached-clip}}}}
    """))
    include_tasks(tmp_path / "cap.yaml")
    entry = evaluate(model="easyvqa-captioner", tasks=["easyvqa_caption_hub_scorer"], limit=6, meteor=False,
                     output=str(tmp_path / "run"))["tasks"]["easyvqa_caption_hub_scorer"]
    assert "CIDEr-D" in entry["metrics"] and "CLIPScore" not in entry["metrics"]
    assert "not in the local Hugging Face cache" in entry["metrics_unavailable"]["CLIPScore"]
    assert any("could not be loaded" in w for w in entry["warnings"])
    assert (tmp_path / "run" / "predictions" / "easyvqa_caption_hub_scorer.jsonl").is_file()
