"""Caption metrics against values stored from pycocoevalcap 1.2 (never recomputed here).

Expected values: ``tests/data/captioning/cases.json`` (made by ``make_cases.py`` running
pycocoevalcap) and ``tests/data/reference/coco_fakecap_val2014/expected.json`` (1000 COCO
images, copied from the shared reference folder).  Tolerance 1e-6, corpus and per image.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmbench.metrics import caption, ptb
from mmbench.metrics.caption import CAPTION_METRICS, score_captions
from mmbench.metrics.java import JavaUnavailableError

DATA = Path(__file__).parent / "data"
CASES = json.loads((DATA / "captioning" / "cases.json").read_text(encoding="utf-8"))["cases"]
FAKECAP = DATA / "reference" / "coco_fakecap_val2014"
NAMES = {"BLEU-1": "Bleu_1", "BLEU-2": "Bleu_2", "BLEU-3": "Bleu_3", "BLEU-4": "Bleu_4", "METEOR": "METEOR",
         "ROUGE-L": "ROUGE_L", "CIDEr-D": "CIDEr"}
TOL = 1e-6
_no_java = pytest.mark.skipif(not ptb.java_status()[0], reason=f"no Java: {ptb.java_status()[1]}")


def _fakecap() -> tuple[list[str], list[list[str]], dict]:
    expected = json.loads((FAKECAP / "expected.json").read_text(encoding="utf-8"))
    refs = {}
    for line in (FAKECAP / "references.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        refs[d["image_id"]] = d["references"]
    preds = {json.loads(x)["image_id"]: json.loads(x)["prediction"]
             for x in (FAKECAP / "predictions.jsonl").read_text(encoding="utf-8").splitlines()}
    ids = [img["image_id"] for img in expected["per_image"]]
    return [preds[i] for i in ids], [refs[i] for i in ids], expected


def _check(values, corpus: dict, per_image: list[dict], metrics) -> None:
    for m in metrics:
        assert values.corpus[m] == pytest.approx(corpus[NAMES[m]], abs=TOL), m
        ours = [s[m] for s in values.per_sample]
        assert ours == pytest.approx([p[NAMES[m]] for p in per_image], abs=TOL), m


NO_METEOR = [m for m in NAMES if m != "METEOR"]


@pytest.fixture(scope="module")
def meteor_jvm():
    """One METEOR JVM (~7 s to start) shared by the tests of this module that run METEOR."""
    with caption.meteor_session():
        yield


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_cases_python_tokenizer(case):
    values = score_captions(case["predictions"], case["references"], meteor=False)
    _check(values, case["corpus"], case["per_image"], NO_METEOR)
    assert values.unavailable["METEOR"] == "disabled" and "METEOR" not in values.corpus
    assert len(values.per_sample) == len(case["predictions"])


@_no_java
@pytest.mark.java
def test_cases_java_tokenizer():
    for case in CASES:
        values = score_captions(case["predictions"], case["references"], tokenizer="ptb-java", meteor=False)
        _check(values, case["corpus"], case["per_image"], NO_METEOR)
        assert values.backend["BLEU-4"]["tokenizer"] == "ptb-java"


def test_metrics_on_official_tokenisation():
    """The scorers alone, fed pycocoevalcap's own tokenised captions."""
    for case in CASES:
        preds, refs = case["tokenized_predictions"], case["tokenized_references"]
        b_corpus, b_images = caption.bleu(preds, refs)
        for k in range(4):
            assert b_corpus[k] == pytest.approx(case["corpus"][f"Bleu_{k + 1}"], abs=TOL)
            assert list(b_images[:, k]) == pytest.approx([p[f"Bleu_{k + 1}"] for p in case["per_image"]], abs=TOL)
        r_corpus, r_images = caption.rouge_l(preds, refs)
        assert r_corpus == pytest.approx(case["corpus"]["ROUGE_L"], abs=TOL)
        assert r_images == pytest.approx([p["ROUGE_L"] for p in case["per_image"]], abs=TOL)
        c_corpus, c_images = caption.cider_d(preds, refs)
        assert c_corpus == pytest.approx(case["corpus"]["CIDEr"], abs=TOL)
        assert list(c_images) == pytest.approx([p["CIDEr"] for p in case["per_image"]], abs=TOL)


def test_fakecap_1000_images():
    preds, refs, expected = _fakecap()
    values = score_captions(preds, refs, meteor=False)
    _check(values, expected["corpus"], expected["per_image"], NO_METEOR)
    assert values.backend["CIDEr-D"] == {"tokenizer": "ptb-python", "implementation": caption._IMPL}
    assert not values.warnings


@_no_java
@pytest.mark.java
@pytest.mark.slow
def test_meteor_jar_matches_pycocoevalcap(meteor_jvm):
    """Every stored case plus the 1000 fakecap images."""
    preds, refs, expected = _fakecap()
    tok_refs, tok_preds = ptb.tokenize_documents([[r for rs in refs for r in rs], preds])
    grouped, pos = [], 0
    for rs in refs:
        grouped.append(tok_refs[pos:pos + len(rs)])
        pos += len(rs)
    batches = [(c["tokenized_predictions"], c["tokenized_references"]) for c in CASES] + [(tok_preds, grouped)]
    wanted = [(c["corpus"], c["per_image"]) for c in CASES] + [(expected["corpus"], expected["per_image"])]
    for (corpus, per_image), (want_corpus, want_images) in zip(caption.meteor_jar_batches(batches), wanted):
        assert corpus == pytest.approx(want_corpus["METEOR"], abs=TOL)
        assert per_image == pytest.approx([p["METEOR"] for p in want_images], abs=TOL)
        if len(set(per_image)) > 2:  # the jar's aggregate is not the mean of the per-image scores
            assert abs(sum(per_image) / len(per_image) - corpus) > 1e-4


@_no_java
@pytest.mark.java
def test_score_captions_with_java_everything(meteor_jvm):
    case = next(c for c in CASES if c["name"] == "punctuation_heavy")
    values = score_captions(case["predictions"], case["references"], tokenizer="ptb-java")
    _check(values, case["corpus"], case["per_image"], list(NAMES))
    assert values.backend["METEOR"]["implementation"] == "meteor-1.5.jar"
    assert list(values.per_sample[0]) == [m for m in CAPTION_METRICS if m in values.corpus]


def test_meteor_unavailable_without_java(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on PATH
    case = CASES[0]
    values = score_captions(case["predictions"], case["references"])
    assert "METEOR" not in values.corpus and all("METEOR" not in s for s in values.per_sample)
    assert "java" in values.unavailable["METEOR"].lower()
    _check(values, case["corpus"], case["per_image"], NO_METEOR)
    with pytest.raises(JavaUnavailableError):
        score_captions(case["predictions"], case["references"], meteor=True)
    with pytest.raises(JavaUnavailableError):
        score_captions(case["predictions"], case["references"], tokenizer="ptb-java", meteor=False)


def test_meteor_unavailable_when_java_status_says_so(monkeypatch):
    monkeypatch.setattr(ptb, "java_status", lambda: (False, "patched: no Java here"))
    values = score_captions(["a dog"], [["a dog", "a cat"]])
    assert values.unavailable["METEOR"] == "patched: no Java here"


def test_spice_never_downloads():
    ok, reason = caption.spice_status()
    if ok:
        pytest.skip("SPICE's CoreNLP 3.6.0 assets are installed here")
    values = score_captions(["a dog"], [["a dog"]], meteor=False)
    assert "SPICE" not in values.corpus and "3.6.0" in values.unavailable["SPICE"]
    assert score_captions(["a dog"], [["a dog"]], meteor=False, spice=False).unavailable["SPICE"] == "disabled"
    with pytest.raises(JavaUnavailableError, match="SPICE"):
        score_captions(["a dog"], [["a dog"]], meteor=False, spice=True)


def test_single_image_warning():
    case = next(c for c in CASES if c["name"] == "single_image")
    values = score_captions(case["predictions"], case["references"], meteor=False)
    assert values.corpus["CIDEr-D"] == 0.0 and any("CIDEr-D" in w for w in values.warnings)
    two = score_captions(case["predictions"] * 2, case["references"] * 2, meteor=False)
    assert not two.warnings


@pytest.mark.parametrize("preds, refs, message", [
    (["a", "b"], [["a"]], "2 predictions but 1"),
    (["a", "b"], [["a"], []], r"references\[1\] is empty"),
    (["a", None], [["a"], ["b"]], r"predictions\[1\] is NoneType"),
    (["a", "b"], [["a"], ["b", 3]], r"references\[1\]\[1\] is int"),
    (["a"], ["a dog"], r"references\[0\] is a str"),
    ([], [], "no captions"),
])
def test_input_validation(preds, refs, message):
    with pytest.raises(ValueError, match=message):
        score_captions(preds, refs, meteor=False)


def test_unknown_tokenizer():
    with pytest.raises(ValueError, match="tokenizer"):
        score_captions(["a"], [["a"]], tokenizer="nltk", meteor=False)


def test_line_breaks_in_captions_do_not_shift_scores():
    preds = ["a dog\ron the grass", "a cat\u2028on a mat", "two birds"]
    refs = [["a dog on grass", "dog\x0con\x0bgrass"], ["a cat on a mat"], ["two birds in the sky"]]
    clean = score_captions([p.replace("\r", " ").replace("\u2028", " ") for p in preds],
                           [["a dog on grass", "dog on grass"], ["a cat on a mat"], ["two birds in the sky"]],
                           meteor=False)
    values = score_captions(preds, refs, meteor=False)
    assert values.corpus == clean.corpus and values.per_sample == clean.per_sample


@pytest.mark.parametrize("texts", [
    ["a dog", "", "a  dog\xa0runs ", "cat", " "],
    ["one"],
    ["x \x00 y", "x y", "\x00"],  # the separator inside a caption: the per-text path
])
def test_word_ids_equal_a_split_per_text(texts):
    ids, lens, n_words = caption._word_ids(texts)
    words = [t.split() for t in texts]
    vocab = list(dict.fromkeys(w for ws in words for w in ws))
    assert lens.tolist() == [len(ws) for ws in words]
    assert [vocab[i] for i in ids] == [w for ws in words for w in ws]
    assert n_words == len(vocab) and (len(ids) == 0 or ids.min() >= 0)
