"""Consistency scorers beside CLIPScore: PAC-S against the official code's values, VQAScore and ITM
against direct transformers computations on tiny fixtures, through the metric, the CLI and a run."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from PIL import Image
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import MMBenchError
from mmbench.metrics.pacscore import score_pacs
from mmbench.metrics.vqascore import VQASCORE_ANSWER, VQASCORE_QUESTION, itm_metric, vqascore_metric
from mmbench.models.scorer import load_embedder, load_scorer
from mmbench.runner import evaluate
from mmbench.types import ImageRef
from tests.fixtures.tiny_itm import make_blip_itm
from tests.fixtures.tiny_models import make_clip, make_llava

DATA = Path(__file__).parent / "data" / "pacs"
runner = CliRunner()


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("scorers")
    return {"llava": make_llava(root / "llava"), "itm": make_blip_itm(root / "itm"), "clip": make_clip(root / "clip")}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    lines = []
    for i, prompt in enumerate(["a red circle", "a blue square", "two green triangles"]):
        Image.fromarray((np.random.RandomState(i).rand(32, 32, 3) * 255).astype("uint8")).save(root / f"{i}.png")
        lines.append({"id": f"p{i}", "image": f"{i}.png", "prompt": prompt})
    (root / "pairs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def test_pacs_equals_the_official_code():
    data = json.loads((DATA / "features_and_official_values.json").read_text())
    values = score_pacs(np.array(data["image_feats"]), np.array(data["caption_feats"]),
                        [np.array(r) for r in data["reference_feats"]])
    for mine, pac, ref in zip(values.per_sample, data["official"]["PAC-S"], data["official"]["RefPAC-S"]):
        assert mine["PAC-S"] == pytest.approx(pac, abs=1e-6)
        assert mine["RefPAC-S"] == pytest.approx(ref, abs=1e-6)
    assert values.corpus["PAC-S"] == pytest.approx(data["official"]["PAC-S_mean"], abs=1e-6)
    assert values.backend["PAC-S"]["w"] == "2.0" and values.backend["PAC-S"]["reference"] == "aimagelab/pacscore"


def _images(pairs_dir: Path) -> list[ImageRef]:
    return [ImageRef(path=str(pairs_dir / f"{i}.png")) for i in range(3)]


def test_vqascore_is_p_yes_from_the_chat_template(dirs, pairs):
    texts = ["a red circle", "a blue square", "two green triangles"]
    values = vqascore_metric(texts, None, images=_images(pairs), load_scorer=load_scorer, scorer=dirs["llava"],
                             device="cpu", batch_size=2, required=True)
    assert values.backend["VQAScore"]["question_template"] == VQASCORE_QUESTION
    assert values.backend["VQAScore"]["answer"] == VQASCORE_ANSWER
    # directly: the user turn asks the question, the answer tokens follow the generation prompt
    processor = transformers.AutoProcessor.from_pretrained(dirs["llava"])
    model = transformers.LlavaForConditionalGeneration.from_pretrained(dirs["llava"]).eval()
    for i, text in enumerate(texts):
        image = Image.open(pairs / f"{i}.png").convert("RGB")
        messages = [{"role": "user", "content": [{"type": "image"},
                                                 {"type": "text", "text": VQASCORE_QUESTION.format(text)}]}]
        context = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        n_ctx = processor(text=[context], images=[image], return_tensors="pt")["input_ids"].shape[1]
        inputs = processor(text=[context + "Yes"], images=[image], return_tensors="pt")
        labels = inputs["input_ids"].clone()
        labels[:, :n_ctx] = -100
        with torch.no_grad():
            loss = model(**inputs, labels=labels).loss  # t2v_metrics: exp(-loss)
        assert values.per_sample[i]["VQAScore"] == pytest.approx(math.exp(-float(loss)), rel=1e-5)
        assert 0 < values.per_sample[i]["VQAScore"] <= 1


def test_itm_is_the_match_probability(dirs, pairs):
    texts = ["a red circle", "a blue square", "two green triangles"]
    values = itm_metric(texts, None, images=_images(pairs), load_scorer=load_scorer, scorer=dirs["itm"],
                        device="cpu", batch_size=3, required=True)
    processor = transformers.AutoProcessor.from_pretrained(dirs["itm"])
    model = transformers.BlipForImageTextRetrieval.from_pretrained(dirs["itm"]).eval()
    for i, text in enumerate(texts):
        inputs = processor(images=Image.open(pairs / f"{i}.png").convert("RGB"), text=text, return_tensors="pt")
        with torch.no_grad():
            prob = torch.softmax(model(**inputs).itm_score, dim=-1)[0, 1]
        assert values.per_sample[i]["ITMScore"] == pytest.approx(float(prob), abs=1e-6)


def test_scorers_that_cannot_score_say_so(dirs, pairs):
    with pytest.raises(MMBenchError, match="cannot score texts by likelihood"):
        vqascore_metric(["x"], None, images=_images(pairs)[:1], load_scorer=load_scorer, scorer=dirs["clip"],
                        device="cpu", required=True)
    with pytest.raises(MMBenchError, match="not an image-text matching head"):
        itm_metric(["x"], None, images=_images(pairs)[:1], load_scorer=load_scorer, scorer=dirs["llava"],
                   device="cpu", required=True)
    missing = vqascore_metric(["x"], None, images=_images(pairs)[:1], load_scorer=load_scorer,
                              scorer=str(pairs / "nowhere"), device="cpu")
    assert "VQAScore" in missing.unavailable and not missing.corpus


@pytest.mark.parametrize("method, scorer, key", [("vqascore", "llava", "VQAScore"), ("itm", "itm", "ITMScore"),
                                                 ("pacs", "clip", "PAC-S")])
def test_cli_pairs(dirs, pairs, method, scorer, key):
    result = runner.invoke(app, ["score", "consistency", "--pairs", str(pairs / "pairs.jsonl"), "--scorer",
                                 dirs[scorer], "--method", method, "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    value = json.loads(result.stdout.strip().splitlines()[-1])[key]
    assert (0 < value <= 1) if key != "PAC-S" else (0 <= value <= 2)


def test_cli_unknown_method(pairs):
    result = runner.invoke(app, ["score", "consistency", "--pairs", str(pairs / "pairs.jsonl"), "--method", "bleu"])
    assert result.exit_code != 0 and "--method must be one of" in result.output


def test_task_metrics_vqascore_itm_pacs(dirs, pairs, tmp_path):
    """A captioning run scored by VQAScore, ITM and PAC-S: scorers named by the task, in the fingerprint."""
    rows = [{"image_id": f"p{i}", "image": str(pairs / f"{i}.png"), "captions": ["a shape"]} for i in range(3)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "t.yaml").write_text(textwrap.dedent(f"""
        name: tiny_consistency
        family: captioning
        dataset: {{path: json, data_files: rows.jsonl, split: train, columns: {{references: captions}}}}
        generation: {{max_new_tokens: 4}}
        metrics: [vqascore, itm-score, pac-s]
        metric_options:
          vqascore: {{scorer: "{dirs['llava']}"}}
          itm-score: {{scorer: "{dirs['itm']}"}}
          pac-s: {{scorer: "{dirs['clip']}"}}
    """))
    result = evaluate(model="easyvqa-captioner", tasks=["tiny_consistency"], include=[str(tmp_path / "t.yaml")],
                      output=str(tmp_path / "run"), device="cpu")
    task = result["tasks"]["tiny_consistency"]
    assert set(task["metrics"]) >= {"VQAScore", "ITMScore", "PAC-S", "RefPAC-S"}
    scoring = task["fingerprint"]["scoring"]
    assert scoring["VQAScore"]["question_template"] == VQASCORE_QUESTION
    assert scoring["ITMScore"]["scorer"] == dirs["itm"] and scoring["PAC-S"]["w"] == "2.0"
    assert task["primary_metric"] == "VQAScore"
