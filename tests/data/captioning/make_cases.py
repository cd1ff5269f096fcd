"""Regenerate the expected values in this folder by running pycocoevalcap 1.2 itself.

    python tests/data/captioning/make_cases.py          # needs Java and pycocoevalcap==1.2

Writes
* ``cases.json``: small caption-scoring cases (inputs, pycocoevalcap's PTB tokenisation,
  corpus and per-image BLEU-1..4, METEOR, ROUGE-L, CIDEr), i.e. ``COCOEvalCap.evaluate()``
  without SPICE: ``PTBTokenizer().tokenize`` on references and on predictions, then
  ``Bleu(4)``, ``Meteor()``, ``Rouge()``, ``Cider()`` ``.compute_score(gts, res)``.
* ``ptb_corpus.json``: a differential corpus for the tokenizer (generated adversarial strings:
  fragment mixes, random punctuation strings, BMP characters in context, line ends whose
  tokens depend on the next line), with the official
  wrapper's output for each string and the jar's raw output line (before the punctuation
  filter), all strings tokenised as ONE document in the stored order, as one
  ``PTBTokenizer.tokenize`` call does; ``alone_texts`` are strings tokenised each in a call of
  its own (the end of the input changes some tokens).  ``known_differences`` lists the strings where
  mmbench's pure-Python tokenizer disagreed with the jar when the file was made.

Nothing here is hand-written expected output: every number and token comes from running
pycocoevalcap / its jar on the inputs built below (inputs are seeded and deterministic).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parent / "reference" / "coco_fakecap_val2014"


# ------------------------------------------------------------------------------------- inputs
def _coco() -> tuple[list[str], list[list[str]]]:
    refs = {}
    for line in (REFERENCE / "references.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        refs[d["image_id"]] = d["references"]
    preds, references = [], []
    for line in (REFERENCE / "predictions.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        preds.append(d["prediction"])
        references.append(refs[d["image_id"]])
    return preds, references


def build_cases() -> list[dict]:
    rng = random.Random(20261122)
    preds, refs = _coco()
    pick = rng.sample(range(len(preds)), 60)
    cases = [{"name": "coco_sample", "description": "60 COCO val2014 images from the fakecap reference",
              "predictions": [preds[i] for i in pick], "references": [refs[i] for i in pick]}]
    uneven = rng.sample(range(len(preds)), 12)
    cases.append({"name": "uneven_refs", "description": "1 to 7 references per image",
                  "predictions": [preds[i] for i in uneven],
                  "references": [(refs[i] + refs[(i + 1) % len(refs)])[:1 + k % 7] for k, i in enumerate(uneven)]})
    cases.append({"name": "empty_predictions", "description": "empty and whitespace-only predictions",
                  "predictions": ["", "a man riding a wave on a surfboard", "   ", "\t", " \n ", "a cat .", "",
                                  "two dogs playing in the grass"],
                  "references": [refs[i] for i in range(8)]})
    cases.append({"name": "all_empty_predictions", "description": "every prediction empty",
                  "predictions": ["", " ", ""], "references": [refs[i] for i in range(10, 13)]})
    cases.append({"name": "single_image", "description": "one image (CIDEr-D is 0 by construction)",
                  "predictions": ["A dog is running on the beach."],
                  "references": [["A brown dog runs along the beach.", "A dog running on sand near the ocean.",
                                  "The dog is playing at the beach."]]})
    cases.append({"name": "two_images", "description": "two tiny images",
                  "predictions": ["a red square", "a blue circle"],
                  "references": [["a red block", "a red square"], ["a round blue shape", "a blue circle"]]})
    cases.append({"name": "unicode", "description": "accents, CJK, emoji, curly quotes, dashes, NBSP, soft hyphen",
                  "predictions": ["Un café à Zürich — très “chic”…", "a dog 🐶 on a couch", "日本語 の 看板",
                                  "naïve résumé\u00a0photo", "an ice\u00adcream cone", "ΣΟΦΟΣ writes ‘hello’",
                                  "straße in München", "İstanbul at night"],
                  "references": [["A café in Zurich – very chic.", "People at a café…"],
                                 ["A dog on a couch 🐕", "a puppy lying on a sofa"],
                                 ["A sign written in Japanese.", "日本語 の 看板 が ある"],
                                 ["A naive resume photo", "naïve résumé photo"],
                                 ["an ice-cream cone", "an ice cream cone on a table"],
                                 ["Greek letters ΣΟΦΟΣ on a wall", "a sign saying ‘hello’"],
                                 ["A street in Munich.", "straße sign"], ["Istanbul skyline at night"]]})
    cases.append({"name": "punctuation_heavy", "description": "brackets, quotes, contractions, numbers, abbreviations",
                  "predictions": ['He said "don\'t" (twice) [sic] {ok}!?', "The U.S. flag at 3:30 p.m. on 1/2/2014.",
                                  "It's Mr. Smith's 1 1/2 cups... $5.99 & 20% off",
                                  "e-mail foo@bar.com or http://x.org/a",
                                  "can't won't gonna cannot y'all o'clock", "a--b --- c - d ... e . . . f",
                                  "rock'n'roll 'n' the '90s", "x * y / z = w; u: v", ""],
                  "references": [["He says don't, twice!", "a man saying do n't"],
                                 ["The US flag at 3:30 pm.", "An American flag on 1/2/2014"],
                                 ["Mr. Smith measures 1 1/2 cups.", "a sale of $5.99 and 20% off"],
                                 ["an e-mail address", "a web address http://x.org/a"],
                                 ["they can't and won't", "y'all gonna go at one o'clock"],
                                 ["a b c d e f", "dashes and dots"], ["rock and roll in the '90s"],
                                 ["an equation x * y / z = w", "math symbols"], ["an empty caption"]]})
    cases.append({"name": "identical_and_duplicates", "description": "a prediction equal to a reference; repeats",
                  "predictions": [refs[20][0], refs[20][0], "a a a a a a", "the the the"],
                  "references": [refs[20], refs[21], ["a man", "a a a"], ["the cat", "the dog the cat"]]})
    cases.append({"name": "empty_reference", "description": "an empty reference among non-empty ones",
                  "predictions": ["a bowl of fruit", "a train on tracks", "a cat"],
                  "references": [["", "a bowl of fruit on a table"], ["a train", "a train on the tracks"],
                                 ["a cat sleeping", ""]]})
    cases.append({"name": "newlines", "description": "captions holding newlines (the wrapper replaces '\\n')",
                  "predictions": ["a dog\non grass", "a cat\n", "\nbirds"],
                  "references": [["a dog on the grass\n", "dog\ngrass"], ["a cat", "a cat on\na mat"],
                                 ["birds in the sky", "two birds\n"]]})
    return cases


def build_corpus() -> list[str]:
    """Adversarial strings for the tokenizer (no characters that shift lines in the official wrapper)."""
    rng = random.Random(7)
    frags = (
        "a the dog Dog DOG cat's dogs' it's I'm you're we've they'll he'd can't won't don't DON'T ain't "
        "cannot Cannot gonna Gotta lemme gimme wanna 'twas 'tis o'clock y'all ma'am rock'n'roll nor'easter c'mon "
        "'em 'til 'cause cont'd 'n' '90s '90 U.S. U.S U.K. U.S.A. a.m. p.m. e.g. i.e. etc. Mr. Mrs. Dr. Prof. St. "
        "Jr. Inc. Co. Corp. Ltd. vs. Jan. Sept. Calif. Mass. Fig. No. Pty. Ph.D. a.k.a. I. A. x. Gov. Mt. 3 10 3.5 "
        "1,000 +5 -3 12:30 2nd 100% $5 US$ #1 1/2 1 1/2 2-1/2 10/20/2014 555-1234 (555) 123-4567 555 123 4567 "
        "½ ¼ ⅛ x² H₂O 10km 80's ( ) [ ] { } < > << >> \" '' ` `` “ ” ‘ ’ „ « » ‹ › , ; : . .. ... .... ...... "
        ". . . … ! ? !! ?! -- --- ---- ----- - — – ‐ & &amp; &lt; &quot; &apos; &nbsp; &eacute; &mdash; * ** "
        "\\* / @ _ = + ~ ^ | \\ % § © ° ± × · € £ ¢ ¥ :) :-) ;) :( :D =) ^_^ (^_^) -_- x_x (x.x) "
        "http://www.example.com https://x.org/a?b=c. www.google.com google.com foo@bar.com @user #tag c++ C# "
        "file.txt image.JPG <b> </b> <br/> <a href='x'> café naïve über Zürich İstanbul straße ΣΟΦΟΣ ΑΣ Москва "
        "日本語 עברית العربية हिन्दी co-op e-mail T-shirt x-ray 3-year-old non-U.S. AT&T S&P-500 R&D Cap'n c'est "
        "d'Artagnan O'Neill Dunkin' ol' and or of on in with two red man people sitting").split()
    frags += ["\u00a0", "\u3000", "\u2009", "\u200b", "\ufeff", "\x7f", "\x00", "\x1c", "\x85", "\u00ad", "😀",
              "👍🏽", "e\u0301", "ǅ", "ﬁ", "Ⅻ", "①", "٣", "\u066b", "ı", "ſ", "\u212a", "'tİs", "Σ"]
    seps = [" ", " ", " ", "", "", ", ", ". ", "-", "'", '"', "/", ".", "(", ")", "  ", ",", "'s", "n't"]
    out = []
    for _ in range(2500):
        s = "".join(rng.choice(frags) + rng.choice(seps) for _ in range(rng.randint(1, 7)))
        if rng.random() < 0.3:
            s = s.strip()
        if rng.random() < 0.3:
            s += rng.choice([".", "!", "?", " .", "...", '."', ".'"])
        out.append(s.upper() if rng.random() < 0.1 else s)
    alphabet = ("İıſ\u212aΣaAbBsStTnNdDmMlLoOiIuUxXyYeEcC0123456789 .,;:!?'\"`-_/\\*&#@$%()[]{}<>=+~^|"
                "’‘“”…—–\u00a0\u00ad")
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(1500)]
    # single characters of the Basic Multilingual Plane in a few contexts (character classes)
    shifting = {0x0A, 0x0D, 0x0B, 0x0C, 0x2028, 0x2029}
    cps = [cp for cp in rng.sample(range(0x20, 0xFFFE), 1000) if cp not in shifting and not 0xD800 <= cp <= 0xDFFF]
    out += [tpl.format(c=chr(cp)) for cp in cps for tpl in ("a{c}a", "{c}", "1{c}.5")]
    # line ends whose tokens depend on the next line, followed by sensitive line starts
    ends = ["plan I.", "the U.S.", "etc.", "Fig.", "no.", "a.m.", "file.txt", "'90", ":)", "U.S", "Inc.", "co.",
            "dog's", "don't", "A.", "vs.", "Calif.", "y'"]
    starts = ["The dog", "the dog", "3 dogs", " The dog", "  3", "A cat", "He ran", "Mr. X", "<b>", "", " ", "Ltd",
              "\u00a0The", "They", "1", "When", "x"]
    for _ in range(300):
        out += [rng.choice(ends), rng.choice(starts)]
    # regressions found while writing the tokenizer
    out += ["<< .... Calif. \u2009.foo.bar.com ", "CONT'D. ", "cont'd.", "Cont'd", "x\u2009.foo.com", "ΣΟΦΟΣ-example",
            "3x3-Σ", "ΑΣ中文.T-shirt(Jan.", "sΣ—yİ4ı@”Kd", "U.S.n'tİstanbul", "Gov.c'est. Ωmega. y'all.555-1234e'er",
            "a <a b='x", "y'> c", "x-d're", "l'll", "YOU'RE.", "gonna's", "cannot's", "plan I.", "The end"]
    return out


# ------------------------------------------------------------------------------------- official runs
def official_tokenize(texts: list[str]) -> list[str]:
    """pycocoevalcap's PTBTokenizer on ``texts`` as one call (one caption per key, in order)."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    with contextlib.redirect_stdout(io.StringIO()):
        out = PTBTokenizer().tokenize({i: [{"caption": t}] for i, t in enumerate(texts)})
    return [out[i][0] for i in range(len(texts))]


EOF_TEXTS = ["we've", "they're", "you'll", "WE'VE", "it's", "don't", "I'm", "he'd", "dog's", "plan I.", "the U.S.",
             "etc.", "fig.", "'90", ":)", "file.txt", "U.S", "a.m.", "x-ray", "co.", "y'", "cont'd", "Inc.", "A.",
             "a man's hat", "two men've", "hello", "", "   "]


def jar_raw_lines(texts: list[str]) -> list[str]:
    """The jar's output lines (before the wrapper's punctuation filter) for ``texts`` as one document."""
    import pycocoevalcap

    folder = Path(pycocoevalcap.__path__[0]) / "tokenizer"
    doc = "\n".join(t.replace("\n", " ") for t in texts)
    proc = subprocess.run(["java", "-cp", "stanford-corenlp-3.4.1.jar", "edu.stanford.nlp.process.PTBTokenizer",
                           "-preserveLines", "-lowerCase"], input=doc.encode(), cwd=folder, capture_output=True,
                          check=True)
    return proc.stdout.decode().split("\n")[:len(texts)]


def official_scores(cases: list[dict]) -> None:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    meteor = Meteor()
    for case in cases:
        gts = {i: [{"caption": r} for r in rs] for i, rs in enumerate(case["references"])}
        res = {i: [{"caption": p}] for i, p in enumerate(case["predictions"])}
        with contextlib.redirect_stdout(io.StringIO()):
            tok = PTBTokenizer()
            gts, res = tok.tokenize(gts), tok.tokenize(res)
            corpus, per_image = {}, [{} for _ in res]
            for scorer, names in ((Bleu(4), ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"]), (meteor, ["METEOR"]),
                                  (Rouge(), ["ROUGE_L"]), (Cider(), ["CIDEr"])):
                score, scores = scorer.compute_score(gts, res)
                if len(names) == 1:
                    score, scores = [score], [scores]
                for name, value, values in zip(names, score, scores):
                    corpus[name] = float(value)
                    for d, v in zip(per_image, values):
                        d[name] = float(v)
        case["tokenized_predictions"] = [res[i][0] for i in range(len(res))]
        case["tokenized_references"] = [gts[i] for i in range(len(gts))]
        case["corpus"], case["per_image"] = corpus, per_image
    del meteor


def provenance() -> dict:
    java = subprocess.run(["java", "-version"], capture_output=True).stderr.decode().strip().splitlines()[0]
    return {"pycocoevalcap": importlib.metadata.version("pycocoevalcap"), "java": java,
            "python": sys.version.split()[0], "date": datetime.date.today().isoformat(),
            "command": "python tests/data/captioning/make_cases.py"}


def main() -> None:
    prov = provenance()
    cases = build_cases()
    official_scores(cases)
    (HERE / "cases.json").write_text(json.dumps({"provenance": prov, "cases": cases}, ensure_ascii=False, indent=1),
                                     encoding="utf-8")

    texts = build_corpus()
    official = official_tokenize(texts)
    eof_official = [official_tokenize([t])[0] for t in EOF_TEXTS]  # each caption alone in its call
    raw = jar_raw_lines(texts)
    known = []
    try:  # record where mmbench's pure-Python tokenizer still disagrees (not used as expected values)
        sys.path.insert(0, str(HERE.parents[2]))
        from mmbench.metrics.ptb import tokenize_captions

        mine = tokenize_captions(texts)
        known = [{"index": i, "text": t, "official": o, "mmbench": m}
                 for i, (t, o, m) in enumerate(zip(texts, official, mine)) if o != m]
    except ImportError:
        pass
    (HERE / "ptb_corpus.json").write_text(json.dumps(
        {"provenance": prov, "texts": texts, "official": official, "jar_raw": raw, "known_differences": known,
         "alone_texts": EOF_TEXTS, "alone_official": eof_official},
        ensure_ascii=False, indent=0), encoding="utf-8")
    print(f"{len(cases)} cases, {len(texts)} corpus strings, {len(known)} known differences")


if __name__ == "__main__":
    os.chdir(HERE)
    main()
