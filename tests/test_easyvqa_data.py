"""Tests for the easy-VQA caption derivation and the committed reference captioner."""

from __future__ import annotations

import ast
import collections
from pathlib import Path

import pytest

from mmbench.tasks.datasets import easyvqa
from mmbench.tasks.datasets.easyvqa import (
    CAPTION_TEMPLATES,
    COLORS,
    SHAPES,
    ContradictionError,
    Fact,
    UnknownQuestionError,
    caption_rows,
    derive_attributes,
    facts_from_question,
    references,
    resolve,
)

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO / "mmbench" / "assets" / "models" / "easyvqa-captioner"

# Pixel colour easy-VQA's generator paints each named colour with (checked on all 5,000 images).
PALETTE = {
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "black": (0, 0, 0),
    "gray": (128, 128, 128), "yellow": (255, 255, 0), "teal": (0, 128, 128), "brown": (165, 42, 42),
}


# --------------------------------------------------------------------------- single questions


@pytest.mark.parametrize(
    ("question", "answer", "expected"),
    [
        ("what color is the shape?", "red", [Fact("color", "red", True)]),
        ("what is the color of the shape?", "teal", [Fact("color", "teal", True)]),
        ("what color is the triangle?", "blue", [Fact("shape", "triangle", True), Fact("color", "blue", True)]),
        ("what is the color of the circle?", "gray", [Fact("shape", "circle", True), Fact("color", "gray", True)]),
        ("what is the red shape?", "triangle", [Fact("color", "red", True), Fact("shape", "triangle", True)]),
        ("what shape is in the image?", "circle", [Fact("shape", "circle", True)]),
        ("what shape does the image contain?", "rectangle", [Fact("shape", "rectangle", True)]),
        ("what shape is present?", "triangle", [Fact("shape", "triangle", True)]),
        ("is there a blue shape in the image?", "no", [Fact("color", "blue", False)]),
        ("is there a blue shape?", "yes", [Fact("color", "blue", True)]),
        ("does the image contain a circle?", "yes", [Fact("shape", "circle", True)]),
        ("is a rectangle present?", "no", [Fact("shape", "rectangle", False)]),
        ("is there a triangle in the image?", "no", [Fact("shape", "triangle", False)]),
    ],
)
def test_direct_and_positive_questions(question, answer, expected):
    assert facts_from_question(question, answer) == expected


@pytest.mark.parametrize(
    "template",
    [
        "is no {} present?",
        "is there not a {}?",
        "is there not a {} in the image?",
        "does the image not contain a {}?",
    ],
)
@pytest.mark.parametrize(("thing", "attribute", "value"), [("blue shape", "color", "blue"), ("circle", "shape", "circle")])
def test_negated_questions_flip_the_answer(template, thing, attribute, value):
    question = template.format(thing)
    assert facts_from_question(question, "yes") == [Fact(attribute, value, False)]  # "yes, there is no ..." -> absent
    assert facts_from_question(question, "no") == [Fact(attribute, value, True)]  # "no, it is not absent" -> present


def test_negation_is_not_confused_with_substrings():
    # "not" / "no" must be whole words: "is there a ..." templates contain neither, and no colour or shape
    # name contains them, so only the negated templates flip.
    assert facts_from_question("is there a brown shape?", "yes") == [Fact("color", "brown", True)]
    assert facts_from_question("is there not a brown shape?", "yes") == [Fact("color", "brown", False)]


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("what is this?", "circle"),  # not a template
        ("is there a purple shape?", "yes"),  # colour outside the vocabulary
        ("what color is the shape?", "circle"),  # answer of the wrong kind
        ("is there a red shape?", "maybe"),
    ],
)
def test_unknown_questions_and_answers_raise(question, answer):
    with pytest.raises(UnknownQuestionError):
        facts_from_question(question, answer)


# --------------------------------------------------------------------------- combining facts


def test_resolve_uses_direct_yes_no_and_elimination():
    facts = [Fact("color", "red", True)]
    facts += [Fact("shape", s, False) for s in ("circle", "rectangle")]  # two shapes ruled out -> triangle
    assert resolve(facts) == {"color": "red", "shape": "triangle"}
    assert resolve([Fact("color", c, False) for c in COLORS[:-1]]) == {"color": COLORS[-1], "shape": None}
    assert resolve([Fact("color", "red", False)]) == {"color": None, "shape": None}


@pytest.mark.parametrize(
    "facts",
    [
        [Fact("color", "red", True), Fact("color", "blue", True)],
        [Fact("shape", "circle", True), Fact("shape", "circle", False)],
        [Fact("shape", s, False) for s in SHAPES],
    ],
)
def test_resolve_raises_on_contradiction(facts):
    with pytest.raises(ContradictionError):
        resolve(facts)


def test_derive_attributes_raises_on_contradicting_questions():
    qs = ["what color is the shape?", "is there not a red shape?"]
    with pytest.raises(ContradictionError, match="image 7"):
        derive_attributes(qs, ["red", "yes"], [7, 7])


def test_derive_attributes_negated_question_decides_the_shape():
    qs = ["what color is the shape?", "does the image not contain a circle?"]
    assert derive_attributes(qs, ["green", "no"], [3, 3]) == {3: {"color": "green", "shape": "circle"}}


def test_references_templates():
    refs = references("red", "triangle")
    assert refs == [t.format(color="red", shape="triangle") for t in CAPTION_TEMPLATES]
    assert refs[0] == "a red triangle"
    assert len(set(refs)) == len(refs) >= 4
    assert all(r == r.lower() and r.strip() == r for r in refs)


# --------------------------------------------------------------------------- the real splits

EXPECTED = {"train": (4000, 3578), "test": (1000, 888)}


@pytest.fixture(scope="module", params=["train", "test"])
def split_rows(request):
    return request.param, caption_rows(request.param)


def test_counts_and_order(split_rows):
    split, rows = split_rows
    images, captioned = EXPECTED[split]
    assert len(rows) == captioned
    ids = [int(r["image_id"]) for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(0 <= i < images for i in ids)
    assert {r["references"][0] for r in rows} == {f"a {c} {s}" for c in COLORS for s in SHAPES}  # all 24 captions


def test_row_schema(split_rows):
    split, rows = split_rows
    for r in rows:
        assert set(r) == {"image_id", "image", "references", "color", "shape"}
        assert r["image_id"] == str(int(r["image_id"]))
        assert Path(r["image"]).is_absolute() and r["image"].endswith(f"/{split}/images/{r['image_id']}.png")
        assert r["color"] in COLORS and r["shape"] in SHAPES
        assert r["references"] == references(r["color"], r["shape"])


def test_every_caption_agrees_with_every_question_of_its_image(split_rows):
    import easy_vqa

    split, rows = split_rows
    qs, answers, image_ids = getattr(easy_vqa, f"get_{split}_questions")()
    by_image = {int(r["image_id"]): r for r in rows}
    checked = collections.Counter()
    for q, a, i in zip(qs, answers, image_ids):
        row = by_image.get(i)
        if row is None:
            continue
        # an independent, deliberately naive reading of the question
        words = q.rstrip("?").split()
        negated = "not" in words or words[:2] == ["is", "no"]
        color = next((w for w in words if w in COLORS), None)
        shape = next((w for w in words if w in SHAPES), None)
        if words[0] == "what":
            expected = row["color"] if "color" in words else row["shape"]
            assert a == expected, (i, q, a, row)
            assert color in (None, row["color"]) and shape in (None, row["shape"]), (i, q, row)
        else:
            present = (color == row["color"]) if color else (shape == row["shape"])
            assert a == ("yes" if present != negated else "no"), (i, q, a, row)
        checked[i] += 1
    assert set(checked) == set(by_image)  # every captioned image had questions checked


def test_colours_agree_with_pixels():
    """Independent of the questions: the image contains the palette colour of its caption and no other."""
    import numpy as np
    from PIL import Image

    for r in caption_rows("test")[::4]:
        pixels = np.asarray(Image.open(r["image"]).convert("RGB")).reshape(-1, 3)
        counts = {c: int((pixels == rgb).all(axis=1).sum()) for c, rgb in PALETTE.items()}
        assert max(counts, key=counts.get) == r["color"], (r["image_id"], counts)


def test_deterministic_and_fresh_copies():
    a = caption_rows("test")
    a[0]["references"].append("mutated")
    a[0]["color"] = "mutated"
    b = caption_rows("test")
    assert b[0]["color"] != "mutated" and "mutated" not in b[0]["references"]
    c = caption_rows("test")
    assert b == c


def test_unknown_split():
    with pytest.raises(ValueError, match="split"):
        caption_rows("validation")


def test_module_has_no_model_imports():
    tree = ast.parse(Path(easyvqa.__file__).read_text())
    imported = {n.name for node in ast.walk(tree) if isinstance(node, ast.Import) for n in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m.split(".")[0] in {"torch", "transformers"} or m.startswith("mmbench.models")}


# --------------------------------------------------------------------------- the committed checkpoint


def test_checkpoint_loads_offline_and_captions(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from PIL import Image

    d = str(CHECKPOINT)
    model = transformers.VisionEncoderDecoderModel.from_pretrained(d, local_files_only=True).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(d, local_files_only=True)
    processor = transformers.AutoImageProcessor.from_pretrained(d, local_files_only=True)

    rows = caption_rows("test")[:4]
    images = [Image.open(r["image"]).convert("RGB") for r in rows]
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    assert tuple(pixels.shape) == (4, 3, 64, 64)
    with torch.no_grad():
        ids = model.generate(pixel_values=pixels, max_new_tokens=16, num_beams=1, do_sample=False)
    captions = tokenizer.batch_decode(ids, skip_special_tokens=True)
    assert all(c == c.strip() and "<" not in c for c in captions), captions
    correct = sum(
        set(c.split()) & set(COLORS) == {r["color"]} and set(c.split()) & set(SHAPES) == {r["shape"]}
        for c, r in zip(captions, rows)
    )
    assert correct >= 3, list(zip(captions, [r["references"][0] for r in rows]))
    assert sum(c in r["references"] for c, r in zip(captions, rows)) >= 3, captions
