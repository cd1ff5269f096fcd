"""The pure-Python PTB tokenizer against stored output of pycocoevalcap's jar (never recomputed here).

Data: ``tests/data/captioning/ptb_corpus.json`` (adversarial strings) and the COCO captions
of ``tests/data/reference/coco_fakecap_val2014`` with their official tokenisations; see
``tests/data/captioning/README.md`` for how they were produced.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from mmbench.metrics import ptb
from mmbench.metrics.java import JavaUnavailableError

DATA = Path(__file__).parent / "data"
CORPUS = json.loads((DATA / "captioning" / "ptb_corpus.json").read_text(encoding="utf-8"))
FAKECAP = DATA / "reference" / "coco_fakecap_val2014"
_no_java = pytest.mark.skipif(not ptb.java_status()[0], reason=f"no Java: {ptb.java_status()[1]}")
#: skip without Java, and mark `java` (pytest -m "not java" leaves out the jar tests)
needs_java = [_no_java, pytest.mark.java]


def _fakecap_official() -> tuple[list[str], list[str]]:
    """Raw COCO captions and the official tokenisation of each (matched by image and as a multiset)."""
    expected = json.loads((FAKECAP / "expected.json").read_text(encoding="utf-8"))
    refs = {}
    for line in (FAKECAP / "references.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        refs[d["image_id"]] = d["references"]
    preds = {json.loads(x)["image_id"]: json.loads(x)["prediction"]
             for x in (FAKECAP / "predictions.jsonl").read_text(encoding="utf-8").splitlines()}
    texts, official = [], []
    for img in expected["per_image"]:
        texts += refs[img["image_id"]] + [preds[img["image_id"]]]
        official += img["tokenized_references"] + img["tokenized_prediction"]
    return texts, official


def test_punctuation_set_is_pycocoevalcaps():
    expected = json.loads((FAKECAP / "expected.json").read_text(encoding="utf-8"))["tokenizer"]["PUNCTUATIONS"]
    assert ptb.PUNCTUATION == frozenset(expected)


def test_coco_captions_match_official_tokenisation():
    texts, official = _fakecap_official()
    ours = ptb.tokenize_captions(texts)
    # the reference order inside an image may differ from the official file: compare per image as multisets
    expected = json.loads((FAKECAP / "expected.json").read_text(encoding="utf-8"))["per_image"]
    pos = 0
    for img in expected:
        n = len(img["tokenized_references"])
        assert sorted(ours[pos:pos + n]) == sorted(img["tokenized_references"]), img["image_id"]
        assert ours[pos + n] == img["tokenized_prediction"][0], img["image_id"]
        pos += n + 1
    assert pos == len(official)


def test_adversarial_corpus_matches_jar():
    known = {d["index"] for d in CORPUS["known_differences"]}
    ours = ptb.tokenize_captions(CORPUS["texts"])
    bad = [(i, t, o, m) for i, (t, o, m) in enumerate(zip(CORPUS["texts"], CORPUS["official"], ours))
           if o != m and i not in known]
    assert not bad, bad[:5]
    for d in CORPUS["known_differences"]:  # documented differences stay as recorded
        assert ours[d["index"]] == d["mmbench"]


def test_adversarial_raw_tokens_match_jar():
    """The scanner alone (no whole-line shortcut), before the punctuation filter."""
    lines = ptb._lex(ptb._document(CORPUS["texts"]), raw=True)
    ours = "\n".join(" ".join(ptb._lower(t) for t in toks) for toks in lines).split("\n")
    known = {d["index"] for d in CORPUS["known_differences"]}
    bad = [(i, t, j, m) for i, (t, j, m) in enumerate(zip(CORPUS["texts"], CORPUS["jar_raw"], ours))
           if j != m and i not in known]
    assert not bad, bad[:5]


@pytest.mark.parametrize("backend", ["python", pytest.param("java", marks=needs_java)])
def test_captions_alone_match_jar(backend):
    """Each caption in a call of its own: the end of the input changes some tokens ("we've" -> "we ve")."""
    docs = ptb.tokenize_documents([[t] for t in CORPUS["alone_texts"]], backend=backend)
    assert [d[0] for d in docs] == CORPUS["alone_official"]
    if backend == "python":
        assert [ptb.ptb_tokenize(t) for t in CORPUS["alone_texts"]] == CORPUS["alone_official"]


@pytest.mark.parametrize("text, expected", [
    ("A dog's \"toy\" (red), can't U.S. 1 1/2 cups...", "a dog 's toy -lrb- red -rrb- ca n't u.s. 1\xa01/2 cups"),
    ("   ", ""),
    ("", ""),
    ("Gonna cannot 'twas", "gon na can not 't was"),
    ("a 😀 b", "a b"),
])
def test_single_captions(text, expected):
    assert ptb.ptb_tokenize(text) == expected


def test_shortcut_agrees_with_scanner():
    """Plain lines take a shortcut; on generated plain-looking lines it must equal the scanner."""
    rng = random.Random(3)
    chunks = ("a A I x the The dog cat two 2 3 10 555 123 4567 1st 3x3 co-op T-shirt x-U 1-2 dog's IT'S he'd I'm "
              "you're d's x-d're don't DON'T can't nn't cannot gonna Gotta cannots etc Mr Dr St Inc Co Jan No no "
              "Fig vs Ph pty ltd U Z").split()
    lines = []
    for _ in range(3000):
        k = rng.randint(1, 6)
        lines.append(rng.choice(["", " "]) + "".join(
            rng.choice(chunks) + (rng.choice([" ", ", ", " , ", "  ", ". ", ".  ", " . "]) if i < k - 1 else "")
            for i in range(k))
            + rng.choice(["", ".", " .", ". ", ",", " "]))
    plain = "a bowl Plate the sky dog's 2 3x3 co-op don't".split()  # periods inside the line ("a bowl. a plate")
    for _ in range(1000):
        lines.append(" ".join(rng.choice(plain) + rng.choice(["", "", ".", ",", ". "]) for _ in range(rng.randint(2, 6))))
    fast = ptb._lex(ptb._document(lines))
    slow = [ptb._finish(toks) for toks in ptb._lex(ptb._document(lines), raw=True)]
    shortcut = [x for x in lines if ptb._simple_line(x) is not None]
    assert len(shortcut) > 1000  # the shortcut is exercised, with periods inside the line too
    assert sum(bool(re.search(r"[A-Za-z]\. +[A-Za-z0-9]", x)) for x in shortcut) > 200
    assert fast == slow


@pytest.mark.parametrize("backend", ["python", pytest.param("java", marks=needs_java)])
def test_line_breaks_do_not_shift_captions(backend):
    broken = ["a dog\ron grass", "next one", "a\x0ccat\x0bhere", "line\u2028sep\u2029para", "a\nb", "last."]
    spaced = ["a dog on grass", "next one", "a cat here", "line sep para", "a b", "last."]
    out = ptb.tokenize_captions(broken, backend=backend)
    assert out == ptb.tokenize_captions(spaced, backend=backend)
    assert len(out) == len(broken) and out[1] == "next one" and out[-1] == "last"


@_no_java
@pytest.mark.java
def test_java_backend_matches_stored_jar_output():
    texts = CORPUS["texts"][:1500]
    assert ptb.tokenize_captions(texts, backend="java") == CORPUS["official"][:1500]


@pytest.mark.parametrize("backend", ["python", pytest.param("java", marks=needs_java)])
def test_documents_are_tokenised_independently(backend):
    # "plan I." gives "i" before a line starting "The ..." but "i." at the end of a document
    assert ptb.tokenize_documents([["plan I."], ["The dog"]], backend=backend) == [["plan i."], ["the dog"]]
    assert ptb.tokenize_captions(["plan I.", "The dog"], backend=backend) == ["plan i", "the dog"]


def test_no_java(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no java anywhere
    ok, reason = ptb.java_status()
    assert not ok and "java" in reason
    with pytest.raises(JavaUnavailableError, match="Java"):
        ptb.tokenize_captions(["a dog"], backend="java")
    assert ptb.tokenize_captions(["a dog"]) == ["a dog"]


def test_bad_input():
    with pytest.raises(ValueError, match="caption 1"):
        ptb.tokenize_captions(["a", None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="backend"):
        ptb.tokenize_captions(["a"], backend="perl")


def test_stored_atoms_equal_a_fresh_derivation():
    """mmbench/metrics/_ptb_atoms.json saves the first call a scan of the BMP; it must equal what
    this Python's Unicode database gives.  MMBENCH_UPDATE_PTB_ATOMS=1 rewrites it."""
    import json
    import os

    from mmbench.metrics import ptb

    stored = json.loads(ptb._ATOMS_FILE.read_text(encoding="utf-8"))
    fresh = {**ptb._atoms_key(), "atoms": ptb._derive_atoms()}
    if os.environ.get("MMBENCH_UPDATE_PTB_ATOMS") == "1":
        ptb._ATOMS_FILE.write_text(json.dumps({**fresh, "note": stored.get("note")}, indent=1) + "\n",
                                   encoding="utf-8")
        return
    if stored["unidata_version"] != fresh["unidata_version"]:
        pytest.skip(f"stored for Unicode {stored['unidata_version']}, this Python has {fresh['unidata_version']} "
                    "(the tokenizer derives the atoms itself then)")
    assert stored["tables_sha256"] == fresh["tables_sha256"]
    assert stored["atoms"] == fresh["atoms"]
    assert ptb._atoms() == fresh["atoms"]


def test_caseless_literals_match_jflex_caseless_exactly():
    """_ci writes JFlex's %caseless literals as Python (?i:...): on ASCII letters both match the
    letter, its other case and _CASELESS_EXTRA (measured on the jar), and nothing else in the BMP."""
    import string

    bmp = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x10000)))
    for c in string.ascii_lowercase:
        expected = {c, c.upper(), *ptb._CASELESS_EXTRA.get(c, "")}
        assert set(re.findall(ptb._ci(c), bmp)) == expected, c
    assert re.fullmatch(ptb._ci("a.k.a"), "A.\u212a.a") and not re.fullmatch(ptb._ci("a.k.a"), "aXkXa")
    with pytest.raises(ValueError, match="ASCII"):
        ptb._ci("\u00e9t\u00e9")
    # the first-character shortcut sees through (?i:...): a rule is tried on either case
    assert ptb._starter(ptb._Rule(ptb._ci("bldg"), ptb._TEXT)).fullmatch("B")
