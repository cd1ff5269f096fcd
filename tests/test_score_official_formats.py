"""`mmbench score` on the files users already have: official VQA v2 / COCO layouts, a run's own
predictions files, the per-family id rule, and one-line errors for bad input.

Expected values come from the official implementations' recorded outputs (tests/data/vqa,
tests/data/reference/coco_fakecap_val2014) or from mmbench's own run (results.json).
"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmbench.cli import app
from mmbench.errors import DataError
from mmbench.scoring import score_captioning, score_vqa_files

runner = CliRunner()
DATA = Path(__file__).parent / "data"
VQA = json.loads((DATA / "vqa" / "cases.json").read_text())
FAKECAP = DATA / "reference" / "coco_fakecap_val2014"
CAPTION_KEYS = {"Bleu_1": "BLEU-1", "Bleu_2": "BLEU-2", "Bleu_3": "BLEU-3", "Bleu_4": "BLEU-4", "ROUGE_L": "ROUGE-L",
                "CIDEr": "CIDEr-D"}


def _jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _json(path, obj):
    path.write_text(json.dumps(obj))
    return path


def _cli(*args):
    return runner.invoke(app, ["score", *args])


def _cli_json(*args):
    result = _cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert text.startswith("error:") and "\n" not in text and "Traceback" not in text, text
    for fragment in fragments:
        assert fragment in text, (fragment, text)


# ------------------------------------------------------------------ VQA v2 official layout
def _vqa_official(tmp_path, cases):
    """The VQA v2 release layout: several questions per image (image_id != question_id)."""
    qid = [1000 + 7 * i for i in range(len(cases))]
    image = [500 + i // 3 for i in range(len(cases))]
    annotations = {"info": {}, "data_type": "mscoco", "annotations": [
        {"question_id": q, "image_id": im, "answer_type": c["answer_type"], "question_type": c["question_type"],
         "multiple_choice_answer": c["answers"][0],
         "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1} for j, a in enumerate(c["answers"])]}
        for q, im, c in zip(qid, image, cases)]}
    questions = {"info": {}, "questions": [{"question_id": q, "image_id": im, "question": "what?"}
                                           for q, im in zip(qid, image)]}
    results = [{"question_id": q, "answer": c["prediction"]} for q, c in reversed(list(zip(qid, cases)))]
    return (_json(tmp_path / "results.json", results), _json(tmp_path / "ann.json", annotations),
            _json(tmp_path / "q.json", questions))


def _expected_vqa_corpus():
    exp = VQA["expected"]
    out = {"accuracy": exp["accuracy"], "unanswered": float(sum(c["prediction"] == "" for c in VQA["cases"]))}
    out.update({f"accuracy/{k}": v for k, v in exp["by_answer_type"].items()})
    out.update({f"accuracy/question_type/{k}": v for k, v in exp["by_question_type"].items()})
    return out


def test_vqa_official_files_match_the_official_script_and_the_jsonl_form(tmp_path):
    results, ann, questions = _vqa_official(tmp_path, VQA["cases"])
    got = _cli_json("vqa", "--predictions", str(results), "--annotations", str(ann), "--questions", str(questions),
                    "--answers-per-question", "0")
    expected = _expected_vqa_corpus()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    # the same data in mmbench's JSONL form, lines carrying question_id *and* image_id as VQA lines do
    refs = _jsonl(tmp_path / "refs.jsonl", [{**a, "answers": [x["answer"] for x in a["answers"]]}
                                            for a in json.loads(ann.read_text())["annotations"]])
    preds = _jsonl(tmp_path / "preds.jsonl", [{"question_id": r["question_id"], "image_id": 1, "prediction": r["answer"]}
                                              for r in json.loads(results.read_text())])
    assert _cli_json("vqa", "--predictions", str(preds), "--references", str(refs), "--answers-per-question", "0") == got


def test_vqa_official_ten_answers_pass_the_default_check(tmp_path):
    cases = [c for c in VQA["cases"] if len(c["answers"]) == 10]
    results, ann, questions = _vqa_official(tmp_path, cases)
    values = score_vqa_files(results, ann, questions=questions)
    assert values.warnings == ()
    for case, sample in zip(cases, values.per_sample):
        assert sample["accuracy"] == pytest.approx(case["expected_accuracy"], abs=1e-9)


@pytest.mark.parametrize("edit, fragments", [
    (lambda r, a, q: a["annotations"].append(dict(a["annotations"][0])), ["ann.json annotations[3]", "'1000'",
                                                                           "duplicate id"]),
    (lambda r, a, q: a["annotations"][1]["answers"][4].pop("answer"), ["ann.json annotations[1]", "sample '1007'",
                                                                      "field 'answers'", "answer 4 is NoneType"]),
    (lambda r, a, q: a.update(annotations={"x": 1}), ["ann.json", "field 'annotations'", "must be a list"]),
    (lambda r, a, q: q["questions"][2].update(image_id=9), ["q.json questions[2]", "sample '1014'",
                                                            "field 'image_id'", "image_id 9"]),
    (lambda r, a, q: q["questions"].pop(), ["q.json", "sample '1014'", "not in the questions file"]),
    (lambda r, a, q: r.append({"question_id": 5, "answer": "yes"}), ["results.json", "sample '5'",
                                                                     "not in the references", "results.json[3]"]),
    (lambda r, a, q: r.append({"question_id": 1000, "answer": "yes"}), ["results.json[3]", "sample '1000'",
                                                                        "duplicate id (first at", "results.json[2]"]),
    (lambda r, a, q: r[0].update(answer=3), ["results.json[0]", "sample '1014'", "field 'answer'", "string"]),
    (lambda r, a, q: r[1].pop("question_id"), ["results.json[1]", "field 'question_id'", "no id"]),
    (lambda r, a, q: r.append([1]), ["results.json[3]", "expected a JSON object, got list"]),
])
def test_vqa_official_bad_inputs(tmp_path, edit, fragments):
    cases = [c for c in VQA["cases"] if len(c["answers"]) == 10][:3]
    paths = _vqa_official(tmp_path, cases)
    objs = [json.loads(p.read_text()) for p in paths]
    edit(*objs)
    for path, obj in zip(paths, objs):
        _json(path, obj)
    _one_line_error(_cli("vqa", "--predictions", str(paths[0]), "--annotations", str(paths[1]), "--questions",
                         str(paths[2])), *fragments)


# ------------------------------------------------------------------ the id rule per family
def test_vqa_keys_by_question_id_even_when_image_id_is_present(tmp_path):
    # the reported failure: reference lines carry image_id and question_id, predictions question_id
    ten = ["yes"] * 10
    refs = _jsonl(tmp_path / "r.jsonl", [{"image_id": 1, "question_id": q, "answers": ten} for q in (10, 11)])
    preds = _jsonl(tmp_path / "p.jsonl", [{"question_id": 10, "prediction": "yes"}, {"id": 11, "prediction": "no"}])
    assert score_vqa_files(preds, refs).corpus["accuracy"] == pytest.approx(0.5)


@pytest.mark.parametrize("family, row, fragments", [
    ("vqa", {"id": 3, "question_id": 4, "prediction": "yes"},
     ["p.jsonl:1", "sample '4'", "field 'id'", "ambiguous id: question_id 4 and id 3 differ"]),
    ("vqa", {"image_id": 4, "prediction": "yes"},
     ["p.jsonl:1", "field 'question_id'", "no id (expected question_id or id)", "image_id does not name a question"]),
    ("captioning", {"image_id": 4, "id": 9, "prediction": "a dog"},
     ["p.jsonl:1", "sample '4'", "field 'id'", "ambiguous id: image_id 4 and id 9 differ"]),
    ("captioning", {"question_id": 4, "prediction": "a dog"},
     ["p.jsonl:1", "no id (expected image_id or id)", "question_id does not name an image"]),
    ("vqa", {"question_id": 4, "prediction": "yes", "answer": "no"}, ["p.jsonl:1", "field 'answer'", "ambiguous"]),
    ("vqa", {"question_id": True, "prediction": "yes"}, ["p.jsonl:1", "field 'question_id'", "string or integer"]),
])
def test_ambiguous_or_missing_ids_are_errors(tmp_path, family, row, fragments):
    preds = _jsonl(tmp_path / "p.jsonl", [row])
    refs = _jsonl(tmp_path / "r.jsonl", [{"question_id": 4, "image_id": 4, "answers": ["yes"] * 10}] if family == "vqa"
                  else [{"image_id": 4, "references": ["a dog"]}])
    _one_line_error(_cli("vqa" if family == "vqa" else "captioning", "--predictions", str(preds), "--references",
                         str(refs)), *fragments)


# ------------------------------------------------------------------ COCO captions official layout
def _coco_official(tmp_path, n=None):
    refs = [json.loads(line) for line in (FAKECAP / "references.jsonl").read_text().splitlines()]
    preds = [json.loads(line) for line in (FAKECAP / "predictions.jsonl").read_text().splitlines()][:n]
    annotations, images = [], []
    for r in refs:
        images.append({"id": r["image_id"], "file_name": f"COCO_val2014_{r['image_id']:012d}.jpg"})
        for caption in r["references"]:
            annotations.append({"image_id": r["image_id"], "id": 10_000 + len(annotations), "caption": caption})
    ann = _json(tmp_path / "captions_val2014.json", {"info": {}, "images": images, "annotations": annotations})
    results = _json(tmp_path / "results.json", [{"image_id": p["image_id"], "caption": p["prediction"]}
                                                for p in preds])
    return results, ann


def test_coco_official_files_match_pycocoevalcap_and_the_jsonl_form(tmp_path):
    results, ann = _coco_official(tmp_path)
    got = _cli_json("captioning", "--predictions", str(results), "--references", str(ann), "--no-meteor")
    official = json.loads((FAKECAP / "expected.json").read_text())["corpus"]
    for theirs, ours in CAPTION_KEYS.items():
        assert got[ours] == pytest.approx(official[theirs], abs=1e-6), ours
    jsonl = score_captioning(FAKECAP / "predictions.jsonl", FAKECAP / "references.jsonl", meteor=False)
    assert got == dict(jsonl.corpus)


def test_coco_results_for_some_images_score_those_images_as_cocoevalcap(tmp_path):
    results, ann = _coco_official(tmp_path, n=100)
    values = score_captioning(results, ann, meteor=False)
    assert any("scored the 100 image(s) of the predictions, of 1000" in w for w in values.warnings)
    ids = {r["image_id"] for r in json.loads(results.read_text())}
    refs = _jsonl(tmp_path / "refs.jsonl", [line for line in (FAKECAP / "references.jsonl").read_text().splitlines()
                                            if json.loads(line)["image_id"] in ids])
    assert values.corpus == score_captioning(results, refs, meteor=False).corpus


@pytest.mark.parametrize("edit, fragments", [
    (lambda r, a: a["annotations"][5].update(caption=None), ["captions_val2014.json annotations[5]", "field 'caption'"]),
    (lambda r, a: a["annotations"][5].update(image_id=1), ["annotations[5]", "sample '1'", "not in the file's images"]),
    (lambda r, a: r[1].update(id=7), ["results.json[1]", "ambiguous id: image_id"]),
    (lambda r, a: r.append(dict(r[0])), ["results.json[3]", "duplicate id (first at", "results.json[0]"]),
])
def test_coco_official_bad_inputs(tmp_path, edit, fragments):
    paths = _coco_official(tmp_path, n=3)
    objs = [json.loads(p.read_text()) for p in paths]
    edit(*objs)
    for path, obj in zip(paths, objs):
        _json(path, obj)
    _one_line_error(_cli("captioning", "--predictions", str(paths[0]), "--references", str(paths[1]), "--no-meteor"),
                    *fragments)


# ------------------------------------------------------------------ a run's own predictions files
@pytest.mark.slow  # ~5 s: the first run in a process builds the easy-VQA questions
def test_rescoring_an_easyvqa_run_gives_its_results(tmp_path):
    from mmbench.runner import evaluate

    results = evaluate(model="easyvqa-question-only", tasks=["easyvqa_vqa"], limit=200, output=str(tmp_path / "run"),
                       cache=False)
    metrics = results["tasks"]["easyvqa_vqa"]["metrics"]
    assert "exact_match" in metrics
    preds = tmp_path / "run" / "predictions" / "easyvqa_vqa.jsonl"
    assert _cli_json("vqa", "--predictions", str(preds)) == metrics
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())["tasks"]["easyvqa_vqa"]["metrics"]
    assert score_vqa_files(preds).corpus == on_disk
    forced = score_vqa_files(preds, metric="vqa-accuracy")
    assert set(forced.corpus) >= {"accuracy", "unanswered"} and forced.warnings  # 1 answer each: warned


def test_own_file_failures_and_row_errors_count_as_in_the_run(tmp_path):
    meta = {"answer_type": "yes/no", "image_id": "0"}
    preds = _jsonl(tmp_path / "p.jsonl", [
        {"id": "q1", "prediction": "yes", "references": ["yes"], "scores": {"exact_match": 1.0}, "error": None,
         "meta": meta},
        {"id": "q2", "prediction": "", "references": ["no"], "scores": {"exact_match": 0.0}, "error": None,
         "meta": meta},
        {"id": "q3", "prediction": None, "references": ["no"], "scores": {"exact_match": 0.0}, "error": "model raised",
         "meta": meta},
        {"id": "q4", "prediction": None, "references": [], "scores": {}, "error": "missing image", "meta": {}}])
    values = score_vqa_files(preds)
    assert values.corpus == {"exact_match": pytest.approx(1 / 3), "exact_match/yes/no": pytest.approx(1 / 3),
                             "unanswered": 1.0}
    assert any("1 line(s) with a row error" in w for w in values.warnings)
    assert any("1 recorded failure(s) scored as empty answers" in w for w in values.warnings)
    caps = _jsonl(tmp_path / "c.jsonl", [{"id": "1", "prediction": "a dog", "references": ["a dog"]},
                                         {"id": "2", "prediction": None, "references": [], "error": "bad image"}])
    assert any("row error" in w for w in score_captioning(caps, meteor=False).warnings)


def test_metric_choice(tmp_path):
    ten = ["two"] * 3 + ["2"] * 7
    refs = _jsonl(tmp_path / "r.jsonl", [{"question_id": 1, "answers": ten}])
    preds = _jsonl(tmp_path / "p.jsonl", [{"question_id": 1, "prediction": "two"}])
    assert score_vqa_files(preds, refs).corpus["accuracy"] == pytest.approx(1.0)
    assert score_vqa_files(preds, refs, metric="exact-match").corpus["exact_match"] == 1.0
    _one_line_error(_cli("vqa", "--predictions", str(preds), "--references", str(refs), "--metric", "bleu"),
                    "unknown VQA metric 'bleu'", "vqa-accuracy or exact-match")
    both = _jsonl(tmp_path / "b.jsonl", [{"id": 1, "prediction": "x", "references": ["x"], "scores": {"accuracy": 0}},
                                         {"id": 2, "prediction": "x", "references": ["x"],
                                          "scores": {"exact_match": 1}}])
    _one_line_error(_cli("vqa", "--predictions", str(both)), "b.jsonl", "field 'scores'", "--metric")


def test_table_prints_fractions(tmp_path):
    refs = _jsonl(tmp_path / "r.jsonl", [{"question_id": 1, "answers": ["yes"] * 10, "answer_type": "yes/no"},
                                         {"question_id": 2, "answers": ["no"] * 10, "answer_type": "yes/no"},
                                         {"question_id": 3, "answers": ["no"] * 10, "answer_type": "yes/no"}])
    preds = _jsonl(tmp_path / "p.jsonl", [{"question_id": q, "prediction": "yes"} for q in (1, 2, 3)])
    result = _cli("vqa", "--predictions", str(preds), "--references", str(refs))
    assert result.exit_code == 0 and "0.3333" in result.stdout and "33.33" not in result.stdout


# ------------------------------------------------------------------ unreadable files
@pytest.mark.parametrize("content, fragments", [
    (b'{"question_id": 1, "prediction": "yes"}\n{"question_id": 2, "prediction": "caf\xe9"}\n',
     ["p.jsonl:2", "not UTF-8 text (byte 0xe9"]),
    (b'[{"question_id": 1, "answer": "yes"},\n {"question_id": 2, "answer": "caf\xe9"}]',
     ["p.jsonl:2", "not UTF-8 text (byte 0xe9"]),
    (b'[{"question_id": 1, "answer": "yes"},\n {"question_id": 2, "answer": "no"', ["p.jsonl", "invalid JSON"]),
    (b'{"results": [1, 2]}', ["p.jsonl:1", "no id (expected question_id or id)"]),
    (b'{"images": [], "annotations": []}', ["p.jsonl", "a JSON object with keys ['annotations', 'images']",
                                           "JSON lines or a JSON array"]),
    (b'{\n  "question_id": 1,\n  "prediction": "yes"\n}\n', ["p.jsonl", "a JSON object with keys"]),
    (b'{"question_id": 1, "prediction": "yes"}\n[1]\n', ["p.jsonl:2", "expected a JSON object, got list"]),
    (b'\n\n', ["p.jsonl", "no predictions (the file is empty)"]),
])
def test_unreadable_predictions(tmp_path, content, fragments):
    preds = tmp_path / "p.jsonl"
    preds.write_bytes(content)
    refs = _jsonl(tmp_path / "r.jsonl", [{"question_id": q, "answers": ["yes"] * 10} for q in (1, 2)])
    _one_line_error(_cli("vqa", "--predictions", str(preds), "--references", str(refs)), *fragments)


def test_unreadable_references(tmp_path):
    preds = _jsonl(tmp_path / "p.jsonl", [{"question_id": 1, "prediction": "yes"}])
    refs = tmp_path / "r.json"
    refs.write_bytes(b'{"questions": []}')
    _one_line_error(_cli("vqa", "--predictions", str(preds), "--references", str(refs)), "r.json",
                    "a VQA annotations file")
    refs.write_bytes(b'{"annotations": [{"question_id": 1, "answers": ["yes"]}]}')
    with pytest.raises(DataError, match=r"--questions goes with"):
        score_vqa_files(preds, _jsonl(tmp_path / "r.jsonl", [{"question_id": 1, "answers": ["y"] * 10}]),
                        questions=refs)
    refs.write_bytes(b'{"images": [], "annotations": "x"}')
    captions = _jsonl(tmp_path / "c.jsonl", [{"image_id": 1, "prediction": "a dog"}])
    _one_line_error(_cli("captioning", "--predictions", str(captions), "--references", str(refs)), "r.json",
                    "field 'annotations'", "must be a list")
