"""Build ANLS cases and record the official per-question scores.

    python tests/data/anls/make_cases.py --rrc /tmp/official/qwenvl/infographicsvqa_eval.py \
        [--pix2struct /tmp/official/pix2struct --python /tmp/official/venv/bin/python]

``--rrc``: the RRC InfographicVQA/DocVQA evaluation script, run unmodified as
``python infographicsvqa_eval.py -g gt.json -s submission.json -o OUT`` (its
``OUT/results.json`` holds the per-question scores).  ``--pix2struct``: a folder with
pix2struct's ``metrics.py``, whose ``anls_metric`` is recorded too (a second version that
differs, run as pix2struct_metrics does: both sides lower-cased, the best target; None where it
raises ZeroDivisionError, both strings empty; not what mmbench follows).  See README.md.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent

# (prediction, answers, note)
HAND = [
    ("hello world", ["hello world"], "exact"),
    ("Hello World", ["hello world"], "case"),
    ("HELLO WORLD", ["hello world"], "upper case"),
    ("  hello   world ", ["hello world"], "extra spaces (collapsed; the length counts them)"),
    ("hello\tworld\n", ["hello world"], "tab and newline"),
    ("hello wrld", ["hello world"], "one deletion"),
    ("helo wrld", ["hello world"], "two deletions"),
    ("ab", ["ax"], "nl exactly 0.5"),
    ("abcd", ["abxy"], "nl exactly 0.5, longer"),
    ("abc", ["axy"], "nl 2/3"),
    ("abcde", ["abcxy"], "nl 0.4"),
    ("", ["hello"], "empty prediction"),
    ("", [""], "both empty"),
    ("hello", [""], "empty answer"),
    (" ", [""], "blank prediction, empty answer"),
    ("   ", ["a"], "blank prediction"),
    ("1,000", ["1000"], "thousands comma"),
    ("$5.00", ["5"], "currency"),
    ("5 kg", ["5kg"], "unit spacing"),
    ("2019", ["2018"], "year off by one"),
    ("45%", ["45"], "percent sign"),
    ("3.14", ["3.14159"], "truncated number"),
    ("new york", ["New York", "NYC", "new york city"], "several answers, one exact"),
    ("nyc", ["New York", "NYC"], "several answers, abbreviation"),
    ("new yrk", ["New York", "Newark"], "several answers, near both"),
    ("xyz", ["New York", "NYC"], "several answers, none close"),
    ("straße", ["STRASSE"], "sharp s (upper() changes the length)"),
    ("STRASSE", ["straße"], "sharp s on the answer side"),
    ("İstanbul", ["istanbul"], "dotted capital I (lower() adds a character)"),
    ("café", ["cafe"], "accent"),
    ("cafe\u0301", ["café"], "combining accent vs precomposed"),
    ("東京", ["東京都"], "CJK"),
    ("ﬁle", ["file"], "ligature (upper() is FI)"),
    ("Ωmega", ["ωmega"], "Greek capital"),
    ("the answer is hello", ["hello"], "answer inside a sentence"),
    ("hello.", ["hello"], "trailing period"),
    ("a", ["b"], "one letter wrong"),
    ("a", ["A"], "one letter, case"),
    ("12/03/2020", ["12-03-2020"], "date separators"),
    ("J. Smith", ["John Smith"], "initial"),
]
WORDS = ["invoice", "total", "2019", "smith", "page 3", "$1,250.00", "yes", "no", "march 5", "acme corp.",
         "table 2", "42", "0.5", "north", "Résumé", "naïve", "coöperate", "tel: 555-1234", "n/a", ""]


def mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(0, 4)):
        op = rng.choice("idsc")
        i = rng.randrange(len(chars) + 1)
        if op == "i":
            chars.insert(i, rng.choice("abcxyz 0.,"))
        elif chars and op == "d":
            del chars[min(i, len(chars) - 1)]
        elif chars and op == "s":
            chars[min(i, len(chars) - 1)] = rng.choice("abcxyz 0")
        elif chars:
            chars = list("".join(chars).upper() if rng.random() < 0.5 else " " + "".join(chars) + "  ")
    return "".join(chars)


def build() -> list[dict]:
    rng = random.Random(20260601)
    rows = list(HAND)
    for _ in range(300):
        answers = rng.sample(WORDS, rng.randint(1, 3))
        rows.append((mutate(rng, rng.choice(answers)), answers, "random"))
    return [{"question_id": i, "prediction": p, "answers": a, "note": n} for i, (p, a, n) in enumerate(rows)]


def run_rrc(script: Path, cases: list[dict]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        gt = {"dataset_name": "mmbench-anls-cases", "dataset_version": "1",
              "data": [{"questionId": c["question_id"], "question": "q", "answers": c["answers"]} for c in cases]}
        sub = [{"questionId": c["question_id"], "answer": c["prediction"]} for c in cases]
        (Path(tmp) / "gt.json").write_text(json.dumps(gt))
        (Path(tmp) / "sub.json").write_text(json.dumps(sub))
        subprocess.run([sys.executable, str(script), "-g", f"{tmp}/gt.json", "-s", f"{tmp}/sub.json", "-o",
                        f"{tmp}/out"], check=True, capture_output=True)
        return json.loads((Path(tmp) / "out" / "results.json").read_text())


def run_pix2struct(folder: Path, python: str, cases: list[dict]) -> list[float | None]:
    code = ("import json, sys\nsys.path.insert(0, sys.argv[1])\nimport metrics\ncases = json.load(sys.stdin)\n"
            "def one(c):\n"
            "    try:\n"
            "        return metrics.aggregate_metrics([c['answers']], [c['prediction']], metrics.anls_metric, "
            "lambda v: v.lower()) / 100\n"
            "    except ZeroDivisionError:\n"
            "        return None\n"
            "print(json.dumps([one(c) for c in cases]))\n")
    done = subprocess.run([python, "-c", code, str(folder)], input=json.dumps(cases), capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rrc", type=Path, required=True)
    ap.add_argument("--pix2struct", type=Path)
    ap.add_argument("--python", default=sys.executable, help="interpreter for pix2struct (it imports editdistance)")
    args = ap.parse_args()
    cases = build()
    results = run_rrc(args.rrc, cases)
    for c in cases:
        c["expected_anls"] = results["per_sample_result"][str(c["question_id"])]["score"]
    if args.pix2struct:
        for c, s in zip(cases, run_pix2struct(args.pix2struct, args.python, cases)):
            c["pix2struct_anls"] = s
    out = {"cases": cases, "expected": {"anls": results["result"]["score"]}}
    (HERE / "cases.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(cases)} cases, official ANLS {results['result']['score']}")


if __name__ == "__main__":
    main()
