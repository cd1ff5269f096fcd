"""Regenerate ``cases.json``: VQA reference values from the official evaluation code.

Usage (see README.md in this folder)::

    python tests/data/vqa/make_cases.py OFFICIAL_DIR --python /path/to/python2.7
    python tests/data/vqa/make_cases.py OFFICIAL_DIR --make-py3-port /tmp/vqa_py3
    python tests/data/vqa/make_cases.py /tmp/vqa_py3 --python python3 --compare-only

``OFFICIAL_DIR`` is a checkout of GT-Vision-Lab/VQA (or the Python 3 port this
script makes).  The cases are built here, written as an annotation, question and
result file in the official formats, and scored by the official ``VQA`` and
``VQAEval`` classes run under ``--python``.  A small driver subclasses
``VQAEval`` only to record the unrounded per-question accuracy handed to
``setEvalQA`` and the per-type lists handed to ``setAccuracy``; the scoring
logic runs untouched.  Nothing from the official code is stored in this repo.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OFFICIAL_COMMIT = "a013f0043c1e2cdc995922dfe257f7149aa9af06"

# Runs under the official code's interpreter (Python 2.7 or 3): keep it 2/3 compatible.
DRIVER = r"""
import json, sys
root, work, mode = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, root + '/PythonHelperTools/vqaTools')
sys.path.insert(0, root + '/PythonEvaluationTools')
from vqa import VQA
from vqaEvaluation.vqaEval import VQAEval

class Recorder(VQAEval):
    def setEvalQA(self, quesId, acc):
        self.unrounded[quesId] = acc
        VQAEval.setEvalQA(self, quesId, acc)
    def setAccuracy(self, accQA, accQuesType, accAnsType):
        self.lists = (accQA, accQuesType, accAnsType)
        VQAEval.setAccuracy(self, accQA, accQuesType, accAnsType)

def mean(xs):
    return float(sum(xs)) / len(xs)

if mode == 'tables':
    class NoQuestions(object):
        def getQuesIds(self):
            return []
    ev = VQAEval(NoQuestions(), NoQuestions())
    out = {'contractions': ev.contractions, 'number_words': ev.manualMap}
else:
    vqa = VQA(work + '/annotations.json', work + '/questions.json')
    res = vqa.loadRes(work + '/results.json', work + '/questions.json')
    ev = Recorder(vqa, res, n=2)
    ev.unrounded = {}
    ev.evaluate()
    accQA, byQ, byA = ev.lists
    ids = vqa.getQuesIds()
    strings = json.load(open(work + '/strings.json'))
    norm = []
    for s in strings:
        t = s.replace('\n', ' ').replace('\t', ' ').strip()
        norm.append(ev.processDigitArticle(ev.processPunctuation(t)))
    out = {'per_question': [ev.unrounded[i] for i in ids],
           'accuracy': mean(accQA),
           'by_answer_type': dict((k, mean(v)) for k, v in byA.items()),
           'by_question_type': dict((k, mean(v)) for k, v in byQ.items()),
           'official_rounded': ev.accuracy,
           'normalized': norm}
json.dump(out, open(work + '/out.json', 'w'))
"""


def run_official(official: Path, python: str, work: Path, mode: str) -> dict:
    proc = subprocess.run([python, "-c", DRIVER, str(official), str(work), mode],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"official code failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads((work / "out.json").read_text())


def python_version(python: str) -> str:
    proc = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


# --------------------------------------------------------------------------- cases

TYPES = {"yes/no": ["is the", "are there", "does the", "is this"],
         "number": ["how many", "what number is", "how many people are"],
         "other": ["what color is the", "what is the", "what", "what sport is", "where is the"]}


def case(pred, answers, atype="other", qtype=None, note=""):
    return {"prediction": pred, "answers": list(answers), "answer_type": atype,
            "question_type": qtype or TYPES[atype][0], "note": note}


def handmade_cases() -> list[dict]:
    c = []
    for m in range(11):  # 0..10 matching answers; m = 10 takes the identical-answers branch
        c.append(case("cat", ["cat"] * m + ["dog"] * (10 - m), note=f"{m} of 10 answers match"))
    for n in (1, 2, 3, 4, 5, 7, 12):  # answer counts other than 10
        for m in sorted({0, 1, n // 2, n - 1, n}):
            c.append(case("cat", ["cat"] * m + ["dog"] * (n - m), note=f"{m} of {n} answers match"))
    c.append(case("cat", ["dog", "cat"] * 5, note="interleaved answers"))
    # identical answers: no normalisation at all
    c += [case("Yes", ["yes"] * 10, "yes/no", note="identical answers, case differs"),
          case("yes.", ["yes"] * 10, "yes/no", note="identical answers, trailing period"),
          case(" yes\n", ["yes"] * 10, "yes/no", note="identical answers, whitespace only"),
          case("yes", ["yes\t"] * 9 + [" yes"], "yes/no", note="identical after whitespace cleaning"),
          case("2", ["two"] * 10, "number", note="identical answers, number word"),
          case("two", ["two"] * 10, "number"),
          case("dog", ["a dog"] * 10, note="identical answers, article"),
          case("Yes", ["yes"] * 9 + ["Yes"], "yes/no", note="answers differ only by case"),
          case("red and blue", ["red\nand blue"] * 10, note="identical answers, inner newline"),
          case("red\tand blue", ["red and blue"] * 10, note="identical answers, inner tab"),
          case("red  and blue", ["red and blue"] * 10, note="identical answers, double space")]
    # normalisation when answers disagree
    filler = ["zzz", "qqq", "zzz", "qqq", "xxx", "zzz"]
    for pred, gt, atype, note in [
        ("Yes.", "yes", "yes/no", "trailing period + case"), ("yes!", "yes", "yes/no", "exclamation"),
        ("Two", "2", "number", "number word"), ("two dogs", "2 dogs", "other", "number word in phrase"),
        ("none", "0", "number", "none is 0"), ("None.", "0", "number", "None. is 0"),
        ("eleven", "11", "number", "eleven is not mapped"), ("Ten", "10", "number", "ten"),
        ("1,000", "1000", "number", "digit comma digit"), ("1,000", "1 000", "number", "digit comma digit"),
        ("3.5", "3.5", "number", "decimal point kept"), ("3.5", "35", "number", "decimal point kept"),
        ("5.", "5", "number", "trailing period after digit"), (".5", "5", "number", "leading period"),
        ("e.g.", "eg", "other", "periods removed"), ("u.s.a.", "usa", "other", "periods removed"),
        ("st. louis", "st louis", "other", "period before space"),
        ("3:00", "3:00", "other", "colon kept"), ("3:00", "300", "other", "colon kept"),
        ("x-ray", "x ray", "other", "hyphen to space"), ("x-ray", "xray", "other", "hyphen to space"),
        ("x-ray - yes", "xray yes", "other", "hyphen by a space deletes all hyphens"),
        ("black/white", "black white", "other", "slash to space"),
        ("black / white", "black white", "other", "slash next to space"),
        ("red, white and blue", "red white and blue", "other", "comma before space"),
        ("red,white", "red white", "other", "comma between letters"),
        ("1,000 (approx)", "1000 approx", "number", "digit comma digit deletes all punctuation"),
        ("(approx) 5", "approx 5", "number", "parenthesis next to space"),
        ('"stop"', "stop", "other", "quotes"), ("tennis?", "tennis", "other", "question mark"),
        ("mcdonald's", "mcdonalds", "other", "apostrophe kept"),
        ("mcdonald's", "mcdonald's", "other", "apostrophe kept"),
        ("hot_dog", "hot dog", "other", "underscore"), ("a+b", "a b", "other", "plus"),
        ("50%", "50", "number", "percent kept"), ("$5", "5", "number", "dollar kept"),
        ("A dog", "dog", "other", "article"), ("the man", "man", "other", "article"),
        ("an apple", "apple", "other", "article"), ("The", "", "other", "article only"),
        ("a", "an", "other", "articles only"),
        ("dont know", "don't know", "other", "contraction"), ("isnt", "isn't", "yes/no", "contraction"),
        ("youre", "you're", "other", "contraction"), ("Im", "i'm", "other", "capitalised key unreachable"),
        ("Ive", "i've", "other", "capitalised key unreachable"), ("im", "im", "other", "capitalised key"),
        ("somebody'd", "somebodyd", "other", "reverse entry"),
        ("let's go", "lets go", "other", "identity entry"),
        ("Don't", "dont", "other", "contraction both ways"), ("twas", "'twas", "other", "leading apostrophe"),
        ("red\nand\tblue", "red and blue", "other", "newline/tab in prediction"),
        ("red and blue", "red\nand blue", "other", "newline in answer"),
        ("RED", "red", "other", "upper case"), ("İstanbul", "istanbul", "other", "py2 lower of dotted I"),
        ("ΟΔΟΣ", "οδοσ", "other", "py2 lower has no final sigma"),
        ("１,０００", "１０００", "number", "full-width digits are not digits in py2"),
        ("１,０００", "１ ０００", "number", "full-width digits are not digits in py2"),
        ("café", "cafe", "other", "accent kept"), ("no\u00a0way", "no way", "other", "nbsp splits words"),
        ("." * 40 + "x", "x", "other", "at most 32 periods removed"),
        ("." * 40 + "x", "." * 8 + "x", "other", "at most 32 periods removed"),
        ("1.2.3", "1.2.3", "other", "periods before digits"), ("a.b.c", "abc", "other", "periods"),
        ("2 .5", "2 5", "number", "period before digit kept"), ("yes, it is", "yes it is", "yes/no", "comma"),
        ("<b>yes</b>", "b yes b", "yes/no", "angle brackets"), ("@home", "home", "other", "at sign"),
        ("", "", "other", "empty prediction"), ("   ", "", "other", "blank prediction"),
    ]:
        for m in (1, 3, 4):
            c.append(case(pred, [gt] * m + filler[: 10 - m] + ["www"] * max(0, 4 - m), atype, note=note))
    return c


def table_cases(tables: dict) -> list[dict]:
    """One case per official contraction and number-word entry, in both directions."""
    c = []
    other = ["kkk"] * 6
    for key, value in sorted(tables["contractions"].items()):
        c.append(case(key, [value] * 4 + other, note=f"contraction {key}"))
        c.append(case(value, [key] * 4 + other, note=f"contraction {key} reversed"))
    for word, digit in sorted(tables["number_words"].items()):
        c.append(case(word.capitalize(), [digit] * 3 + other + ["kkk"], "number", note=f"number {word}"))
    return c


VOCAB = {
    "yes/no": ["yes", "no"],
    "number": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "10", "12", "20", "100", "1,000", "2.5",
               "one", "two", "three", "four", "zero", "none", "1000"],
    "other": ["red", "blue", "white", "black", "green", "brown", "gray", "dog", "cat", "frisbee",
              "tennis", "baseball", "pizza", "kitchen", "living room", "t-shirt", "hot dog",
              "stop sign", "right", "left", "wood", "skateboarding", "surfing", "a dog", "the man",
              "umbrella", "don't know", "dont know", "nike", "mcdonald's", "3:00", "12:30",
              "st. louis", "u.s.a.", "black and white", "red, white and blue", "x-ray",
              "on the table", "giraffe", "isnt", "girl's", "frisbee.", "Black", "2 dogs"],
}


def perturb(rng: random.Random, text: str, *, strong: bool) -> str:
    ops = [lambda s: s.capitalize(), lambda s: s.upper(), lambda s: s + ".", lambda s: " " + s + " ",
           lambda s: s.replace(" ", "\t"), lambda s: s + "\n", lambda s: "a " + s,
           lambda s: "the " + s, lambda s: '"' + s + '"', lambda s: s + "!", lambda s: s + "?",
           lambda s: "it is " + s, lambda s: s.replace("'", ""), lambda s: s.replace(" ", "-"),
           lambda s: s + " ,", lambda s: "(" + s + ")"]
    for _ in range(rng.randint(1, 3) if strong else 1):
        text = rng.choice(ops)(text)
    return text


def random_cases(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    c = []
    for _ in range(n):
        atype = rng.choice(["yes/no", "yes/no", "number", "other", "other", "other"])
        words = VOCAB[atype]
        pool = rng.sample(words, min(len(words), rng.randint(1, 3)))
        if rng.random() < 0.15:
            answers = [pool[0]] * 10
        else:
            weights = [rng.random() + 0.2 for _ in pool]
            answers = [rng.choices(pool, weights)[0] for _ in range(10)]
            answers = [perturb(rng, a, strong=False) if rng.random() < 0.1 else a for a in answers]
        base = rng.choice(pool) if rng.random() < 0.65 else rng.choice(words)
        pred = perturb(rng, base, strong=True) if rng.random() < 0.5 else base
        c.append(case(pred, answers, atype, rng.choice(TYPES[atype]), note="random"))
    return c


# --------------------------------------------------------------------------- files

def write_inputs(work: Path, cases: list[dict]) -> list[str]:
    annotations, questions, results = [], [], []
    for qid, cs in enumerate(cases, start=1):
        answers = [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1}
                   for j, a in enumerate(cs["answers"])]
        annotations.append({"question_id": qid, "image_id": qid, "question_type": cs["question_type"],
                            "answer_type": cs["answer_type"], "answers": answers,
                            "multiple_choice_answer": cs["answers"][0]})
        questions.append({"question_id": qid, "image_id": qid, "question": "?"})
        results.append({"question_id": qid, "answer": cs["prediction"]})
    header = {"info": {}, "license": {}, "task_type": "Open-Ended", "data_type": "mscoco",
              "data_subtype": "val2014"}
    strings = sorted({s for cs in cases for s in [cs["prediction"], *cs["answers"]]})
    for name, obj in [("annotations.json", {**header, "annotations": annotations}),
                      ("questions.json", {**header, "questions": questions}),
                      ("results.json", results), ("strings.json", strings)]:
        (work / name).write_text(json.dumps(obj))
    return strings


def make_py3_port(official: Path, out: Path) -> None:
    """Copy the two official modules; convert print statements and tab indentation only."""
    for rel in ["PythonHelperTools/vqaTools/vqa.py", "PythonHelperTools/vqaTools/__init__.py",
                "PythonEvaluationTools/vqaEvaluation/vqaEval.py",
                "PythonEvaluationTools/vqaEvaluation/__init__.py"]:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = (official / rel).read_text().splitlines(keepends=True)
        # Python 2 reads a tab in indentation as "up to the next multiple of 8"; spell that out.
        fixed = [re.sub(r"^[ \t]+", lambda m: m.group(0).expandtabs(8), line) for line in lines]
        target.write_text("".join(fixed))
    subprocess.run([sys.executable, "-m", "lib2to3", "-f", "print", "-w", "-n", str(out)],
                   check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("official_dir", type=Path)
    ap.add_argument("--python", default=sys.executable, help="interpreter that runs the official code")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--n-random", type=int, default=400)
    ap.add_argument("--make-py3-port", type=Path, metavar="DIR",
                    help="write a Python 3 port of the official modules to DIR and stop")
    ap.add_argument("--compare-only", action="store_true",
                    help="score the cases and report differences from cases.json without writing")
    args = ap.parse_args()
    if args.make_py3_port:
        make_py3_port(args.official_dir, args.make_py3_port)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tables = run_official(args.official_dir, args.python, work, "tables")
        cases = handmade_cases() + table_cases(tables) + random_cases(args.n_random, args.seed)
        strings = write_inputs(work, cases)
        out = run_official(args.official_dir, args.python, work, "score")
    for cs, acc in zip(cases, out["per_question"]):
        cs["expected_accuracy"] = acc
    doc = {"source": {"repository": "https://github.com/GT-Vision-Lab/VQA", "commit": OFFICIAL_COMMIT,
                      "file": "PythonEvaluationTools/vqaEvaluation/vqaEval.py",
                      "python": python_version(args.python), "seed": args.seed},
           "expected": {k: out[k] for k in ("accuracy", "by_answer_type", "by_question_type",
                                            "official_rounded")},
           "normalization": [[s, n] for s, n in zip(strings, out["normalized"])],
           "cases": cases}
    target = HERE / "cases.json"
    if args.compare_only:
        old = json.loads(target.read_text())
        bad = [(c["prediction"], c["answers"], c["expected_accuracy"], o["expected_accuracy"])
               for c, o in zip(cases, old["cases"]) if c["expected_accuracy"] != o["expected_accuracy"]]
        bad += [("normalize", s, n, m) for (s, n), (_, m) in zip(doc["normalization"], old["normalization"])
                if n != m]
        print(f"{len(bad)} differences from {target.name}")
        for b in bad:
            print("  ", json.dumps(b, ensure_ascii=False))
        return
    target.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(cases)} cases, {len(strings)} normalisation strings to {target}")


if __name__ == "__main__":
    main()
