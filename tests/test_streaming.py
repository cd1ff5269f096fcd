"""A streamed task (loaded, run, scored and written a chunk of samples at a time) gives exactly the
results of the same task run as one chunk: metrics, counts, fingerprint, predictions file."""

from __future__ import annotations

import importlib
import json
import random
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbench.errors import DataError, MMBenchError
from mmbench.metrics.dispatch import StreamedMetrics, compute_metrics
from mmbench.metrics.registry import metric_spec
from mmbench.metrics.vqa import ExactMatch, VQAAccuracy, exact_match, score_vqa
from mmbench.models.baselines import ConstantAnswer
from mmbench.runner.evaluate import evaluate
from mmbench.tasks.base import Task
from mmbench.tasks.data import SampleDigest, content_hash
from mmbench.tasks.rows import DatasetRows
from mmbench.types import ModelOutput, Sample

evaluate_module = importlib.import_module("mmbench.runner.evaluate")  # the module, not the function

WORDS = ["yes", "no", "2", "Two", "red", "a cat", "cat", "1,000", "1000", "blue."]


def _corpus(rng: random.Random, n: int):
    preds = [rng.choice(WORDS) for _ in range(n)]
    answers = [[rng.choice(WORDS) for _ in range(rng.choice([10, 10, 10, 3]))] for _ in range(n)]
    types = [rng.choice(["yes/no", "number", "other", None]) for _ in range(n)]
    qtypes = [rng.choice(["what is", "how many", None]) for _ in range(n)]
    return preds, answers, types, qtypes


def _split(n: int, rng: random.Random) -> list[tuple[int, int]]:
    cuts = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(0, 5)))) if n > 1 else []
    bounds = [0] + cuts + [n]
    return list(zip(bounds, bounds[1:]))


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=60), st.integers(min_value=0, max_value=10**6))
def test_vqa_streams_equal_the_whole_corpus_call_on_any_split(n, seed):
    rng = random.Random(seed)
    preds, answers, types, qtypes = _corpus(rng, n)
    parts = _split(n, rng)
    whole = score_vqa(preds, answers, answer_types=types, question_types=qtypes)
    stream = VQAAccuracy()
    per_sample = [d for a, b in parts for d in stream.update(preds[a:b], answers[a:b], answer_types=types[a:b],
                                                             question_types=qtypes[a:b])]
    streamed = stream.compute()
    assert tuple(per_sample) == whole.per_sample
    assert (streamed.corpus, streamed.unavailable, streamed.backend, streamed.warnings) == \
        (whole.corpus, whole.unavailable, whole.backend, whole.warnings)  # the same floats, not close ones
    em_whole = exact_match(preds, answers, answer_types=types)
    em = ExactMatch()
    em_per = [d for a, b in parts for d in em.update(preds[a:b], answers[a:b], answer_types=types[a:b])]
    assert tuple(em_per) == em_whole.per_sample
    assert (em.compute().corpus, em.compute().unavailable) == (em_whole.corpus, em_whole.unavailable)


def _labels(rng, names, n):
    return [rng.choice(names + [None]) for _ in range(n)]


#: per streamed metric: random inputs (predictions, references, keyword arguments) of n items
STREAM_CASES = {
    "vqa-accuracy": lambda rng, n: _corpus(rng, n)[:2] + ({"answer_types": _labels(rng, ["yes/no", "other"], n),
                                                            "question_types": _labels(rng, ["how many"], n)},),
    "exact-match": lambda rng, n: ([rng.choice(WORDS) for _ in range(n)],
                                   [rng.choice([rng.choice(WORDS), [rng.choice(WORDS), "cat"]]) for _ in range(n)],
                                   {"answer_types": _labels(rng, ["number", "other"], n)}),
    "gqa-accuracy": lambda rng, n: ([rng.choice(WORDS) for _ in range(n)], [[rng.choice(WORDS)] for _ in range(n)],
                                    {"question_types": _labels(rng, ["query", "verify", 3], n)}),
    "relaxed-accuracy": lambda rng, n: ([rng.choice(["12", "12.5", "13", "blue", "100"]) for _ in range(n)],
                                        [[rng.choice(["12", "95.1", "Blue", "100"])] for _ in range(n)],
                                        {"splits": _labels(rng, ["human", "augmented"], n)}),
    "anls": lambda rng, n: ([rng.choice(WORDS) for _ in range(n)],
                            [[rng.choice(WORDS), rng.choice(WORDS)] for _ in range(n)],
                            {"threshold": rng.choice([0.5, 0.3])}),
    "pope": lambda rng, n: ([rng.choice(["Yes", "No.", "There is no dog", "yes, a dog"]) for _ in range(n)],
                            [[rng.choice(["yes", "no"])] for _ in range(n)],
                            {"splits": _labels(rng, ["random", "popular"], n)}),
}


def test_every_streamed_metric_has_a_stream_case():
    from mmbench.catalog import list_registered

    streamed = {name for name, _, _ in list_registered("metrics") if metric_spec(name).stream is not None}
    assert streamed == set(STREAM_CASES)


@pytest.mark.parametrize("name", sorted(STREAM_CASES))
@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=0, max_value=40), seed=st.integers(min_value=0, max_value=10**6))
def test_a_metric_stream_equals_its_function_on_any_split(name, n, seed):
    rng = random.Random(seed)
    spec = metric_spec(name)
    preds, refs, kwargs = STREAM_CASES[name](rng, n)
    whole = spec.fn(preds, refs, **kwargs)
    stream = spec.stream()
    per_sample = []
    for a, b in _split(n, rng):
        chunk = {k: v[a:b] if isinstance(v, list) else v for k, v in kwargs.items()}
        per_sample.extend(stream.update(preds[a:b], refs[a:b], **chunk))
    streamed = stream.compute()
    assert (tuple(per_sample) if whole.corpus else ()) == whole.per_sample
    assert streamed.per_sample == ()
    assert (streamed.corpus, streamed.unavailable, streamed.backend, streamed.warnings) == \
        (whole.corpus, whole.unavailable, whole.backend, whole.warnings)  # the same floats, not close ones


@pytest.mark.parametrize("name, bad", [("vqa-accuracy", "question 4: prediction is int"),
                                       ("exact-match", "item 4: prediction is int"),
                                       ("gqa-accuracy", "item 4: prediction is int"),
                                       ("relaxed-accuracy", "item 4: prediction is int"),
                                       ("anls", "item 4: "), ("pope", "item 4: the label must be")])
def test_a_stream_names_a_bad_item_by_its_index_in_the_whole_corpus(name, bad):
    stream = metric_spec(name).stream()
    stream.update(["yes"] * 3, [["yes"] * 10] * 3)
    with pytest.raises(ValueError, match=bad):
        stream.update(["yes", 5] if name != "pope" else ["yes", "yes"], [["yes"] * 10, ["maybe"] * 10])


def test_streamed_metrics_equal_compute_metrics_with_failed_and_unscorable_samples():
    rng = random.Random(3)
    preds, answers, types, _ = _corpus(rng, 40)
    samples = [Sample(id=str(i), references=tuple(a), meta={"answer_type": t} if t else {})
               if i % 9 else Sample(id=str(i), error="bad row") for i, (a, t) in enumerate(zip(answers, types))]
    predictions = [None if i % 7 == 3 or not i % 9 else p for i, p in enumerate(preds)]
    metrics = [(metric_spec("vqa-accuracy"), {}), (metric_spec("exact-match"), {})]
    whole = compute_metrics(metrics, samples, predictions, {})
    stream = StreamedMetrics(metrics, {})
    per_sample = [d for a, b in [(0, 5), (5, 6), (6, 40)] for d in stream.update(samples[a:b], predictions[a:b])]
    assert tuple(per_sample) == whole.per_sample
    assert stream.compute().corpus == whole.corpus
    with pytest.raises(ValueError, match="whole corpus"):
        StreamedMetrics([(metric_spec("coco-caption"), {})], {})


def test_sample_digest_equals_content_hash_over_chunks():
    samples = [Sample(id=f"q{i}", text=f"what {i}?", references=("a", "é")) for i in range(10)]
    digest = SampleDigest()
    for a, b in [(0, 3), (3, 3), (3, 10)]:
        digest.update(samples[a:b])
    assert digest.n == 10
    assert digest.sample_ids_hash == content_hash([s.id for s in samples])
    assert digest.references_hash == content_hash([[s.text, list(s.references)] for s in samples])


def _sequential_problem(ids):
    """What a row-by-row read meets first: (row, None) for a missing id, (first, row) for a repeat."""
    seen = {}
    for i, v in enumerate(ids):
        if v is None or v == "":
            return (i, None)
        if v in seen:
            return (seen[v], i)
        seen[v] = i
    return None


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["", "a", "b", "c", "d", "e", "f"])), min_size=1, max_size=12),
       st.booleans())
def test_arrow_id_check_finds_what_a_sequential_read_finds(ids, integers):
    import datasets

    if integers:
        ids = [None if v in (None, "") else ord(v) for v in ids]
    features = datasets.Features({"id": datasets.Value("int64" if integers else "string")})
    rows = DatasetRows(datasets.Dataset.from_dict({"id": ids}, features=features))
    assert rows.has_plain_ids("id")
    assert rows.id_problem("id") == _sequential_problem(ids)


class Varied(ConstantAnswer):
    """Answers by the question (so scores vary); fails every request whose id ends in 7."""

    def run(self, batch):
        return [ModelOutput(r.id, error="boom") if r.id.endswith("7") else
                ModelOutput(r.id, text=WORDS[int(r.id.split("-")[1]) % len(WORDS)] + "\n")
                for r in batch.requests]


def _task_files(tmp_path, n=53, bad=(11, 40), dup=None):
    from PIL import Image

    (tmp_path / "img").mkdir(exist_ok=True)
    for i in range(5):
        Image.new("RGB", (4, 4), (i * 40, 0, 0)).save(tmp_path / "img" / f"{i}.png")
    rng = random.Random(0)
    with open(tmp_path / "q.jsonl", "w") as fh:
        for i in range(n):
            row = {"qid": f"q-{i}", "image": f"img/{i % 5}.png", "question": f"what is {i}?",
                   "answers": [rng.choice(WORDS) for _ in range(10)],
                   "answer_type": ["yes/no", "number", "other"][i % 3]}
            if i in bad:
                row["answers"] = []
            if dup is not None and i == dup[1]:
                row["qid"] = f"q-{dup[0]}"
            fh.write(json.dumps(row) + "\n")
    (tmp_path / "t.yaml").write_text(textwrap.dedent("""
        name: stream_vqa
        family: vqa
        dataset:
          path: json
          data_files: q.jsonl
          split: train
          columns: {id: qid, image: image, question: question, answers: answers, answer_type: answer_type}
        prompt: "{question}"
        metrics: [vqa-accuracy, exact-match]
    """))
    return str(tmp_path / "t.yaml")


def _run(tmp_path, name, task_file, monkeypatch, chunk, streams=True, **kw):
    monkeypatch.setattr(evaluate_module, "STREAM_CHUNK", chunk)
    if not streams:
        monkeypatch.setattr(Task, "streams", property(lambda self: False))
    out = tmp_path / name
    res = evaluate(loaded_model=Varied("varied"), tasks=["stream_vqa"], include=[task_file], output=str(out),
                   **({"cache": False} | kw))
    monkeypatch.undo()
    return res["tasks"]["stream_vqa"], (out / "predictions" / "stream_vqa.jsonl").read_bytes(), out


def test_a_streamed_task_gives_exactly_the_one_chunk_results(tmp_path, monkeypatch):
    task_file = _task_files(tmp_path)
    whole, whole_lines, _ = _run(tmp_path, "whole", task_file, monkeypatch, 10**6, streams=False)
    streamed, lines, out = _run(tmp_path, "streamed", task_file, monkeypatch, 7, batch_size="auto")
    assert whole["n_samples"] == 53 and whole["n_failed"] == 2 + 5  # two bad rows, five ids ending in 7
    assert 0 < whole["metrics"]["accuracy"] < 1 and whole["metrics"]["unanswered"] == 0.0
    for key in ("metrics", "fingerprint", "n_samples", "n_failed", "n_scored", "n_requests", "n_computed",
                "metric_info", "primary_metric", "warnings"):
        assert streamed[key] == whole[key], key
    assert sorted(streamed["failures"], key=str) == sorted(whole["failures"], key=str)
    # same lines; a one-chunk run orders each chunk's lines as its samples: here the data's order both ways
    assert lines == whole_lines
    assert (out / "failures" / "stream_vqa.jsonl").exists()


def test_a_streamed_task_resumes_from_the_cache(tmp_path, monkeypatch):
    task_file = _task_files(tmp_path)
    cache = str(tmp_path / "cache")
    first, lines, _ = _run(tmp_path, "a", task_file, monkeypatch, 8, cache=True, cache_dir=cache)
    again, again_lines, _ = _run(tmp_path, "b", task_file, monkeypatch, 8, cache=True, cache_dir=cache)
    assert first["n_computed"] == 53 - 2 and again["n_computed"] == 5  # only the failed requests run again
    assert again["n_cached"] == 53 - 2 - 5 and again["metrics"] == first["metrics"] and again_lines == lines


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_duplicate_id_in_a_later_chunk_fails_before_any_inference(tmp_path, monkeypatch, fmt):
    task_file = _task_files(tmp_path, dup=(3, 50))
    expected = r"q.jsonl:51, sample 'q-3', field 'qid': duplicate sample id \(first at line 4\)"
    if fmt == "parquet":  # checked on the Arrow column before the first chunk (a JSONL file is checked as it is read)
        import datasets

        datasets.Dataset.from_json(str(tmp_path / "q.jsonl")).to_parquet(str(tmp_path / "q.parquet"))
        (tmp_path / "t.yaml").write_text((tmp_path / "t.yaml").read_text().replace("path: json", "path: parquet")
                                         .replace("q.jsonl", "q.parquet"))
        expected = r"task stream_vqa, sample 'q-3', field 'qid': duplicate sample id \(rows 3 and 50\)"
    calls = []
    monkeypatch.setattr(Varied, "prepare", lambda self, reqs: calls.append(reqs) or ConstantAnswer.prepare(self, reqs))
    with pytest.raises(DataError, match=expected):
        _run(tmp_path, "dup", task_file, monkeypatch, 7)
    assert calls == []


def test_on_error_fail_stops_at_a_bad_row_of_a_later_chunk_before_any_inference(tmp_path, monkeypatch):
    task_file = _task_files(tmp_path, bad=(40,))
    calls = []
    monkeypatch.setattr(Varied, "prepare", lambda self, reqs: calls.append(reqs) or ConstantAnswer.prepare(self, reqs))
    with pytest.raises(MMBenchError, match="sample 'q-40' failed"):
        _run(tmp_path, "fail", task_file, monkeypatch, 7, on_error="fail")
    assert calls == []


def test_only_tasks_whose_metrics_all_stream_are_streamed():
    from mmbench.catalog import build_task

    for name in ("easyvqa_vqa", "vqav2_val", "gqa_testdev", "pope", "docvqa_val", "chartqa_test"):
        assert build_task(name).streams, name
    assert not build_task("easyvqa_caption").streams  # CIDEr-D needs every caption's document frequencies
    assert not build_task("vqa_rephrasings_val").streams  # answer consistency groups rephrasings
    assert not build_task("mmbench_en_dev").streams  # circular evaluation: a row becomes several samples


def test_a_streamed_task_shows_one_bar_over_its_rows_and_one_for_scoring(tmp_path, monkeypatch):
    task_file = _task_files(tmp_path)
    monkeypatch.setattr(evaluate_module, "STREAM_CHUNK", 10)
    bars: dict[str, list[int]] = {}

    def progress(label, total):
        bars[label] = [total, 0]
        return lambda n: bars[label].__setitem__(1, bars[label][1] + n)

    evaluate(loaded_model=Varied("varied"), tasks=["stream_vqa"], include=[task_file], output=str(tmp_path / "o"),
             cache=False, progress=progress)
    assert bars["stream_vqa (varied)"] == [53, 53]  # every row: 2 row errors, 51 requests, over 6 chunks
    assert bars["stream_vqa: scoring"] == [1, 1]


def test_a_hub_shaped_parquet_task_with_embedded_images_streams_like_one_chunk(tmp_path, monkeypatch):
    """Parquet with images as bytes (as hub datasets ship them): streamed rows decode the same images."""
    import datasets

    _task_files(tmp_path)
    ds = datasets.Dataset.from_json(str(tmp_path / "q.jsonl"))
    ds = ds.map(lambda r: {"image": {"bytes": (tmp_path / r["image"]).read_bytes(), "path": None}},
                features=datasets.Features({**ds.features, "image": datasets.Image()}))
    ds.to_parquet(str(tmp_path / "q.parquet"))
    (tmp_path / "t.yaml").write_text((tmp_path / "t.yaml").read_text().replace("path: json", "path: parquet")
                                     .replace("q.jsonl", "q.parquet"))
    task_file = str(tmp_path / "t.yaml")
    whole, whole_lines, _ = _run(tmp_path, "whole", task_file, monkeypatch, 10**6, streams=False)
    streamed, lines, _ = _run(tmp_path, "streamed", task_file, monkeypatch, 9)
    assert whole["n_samples"] == 53 and whole["n_failed"] == 7
    assert (streamed["metrics"], streamed["fingerprint"]) == (whole["metrics"], whole["fingerprint"])
    assert lines == whole_lines
