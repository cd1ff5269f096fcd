"""Build POPE cases and record what the official ``evaluate.py`` makes of them.

    python tests/data/pope/make_cases.py --pope /tmp/official/pope/evaluate.py

The official script reads two JSON-lines files whose paths it leaves empty
(``ans_file = ''`` and ``label_file = ''``, lines 3-4) for its user to fill in.  This
script writes a copy with those two placeholders set to its own files (no other line
changed) and runs it with ``python``; it parses the printed counts and scores.  See README.md.
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

HERE = Path(__file__).parent

ANSWERS = [
    "Yes", "No", "yes", "no", "Yes.", "No.", "YES", "NO", "No,", "No, there is no dog.", "Yes, there is a dog.",
    "No!", "Yes!", "no.", "Not at all.", "There is not a dog in the image.", "There is no dog in the image.",
    "There is a dog in the image.", "I notice a dog in the image.", "Nothing like that.", "None.", "Nope.",
    "The answer is no", "The answer is No", "Yes. No dog is visible.", "There is a dog. It is not a cat.",
    "No\nThere is no dog.", "no\tdog", "Yes, not really", "Yes, not", "Certainly not", "", " ", ".", "No.5",
    "1.5 no", "Yes, no", "no,", "not,", ",not", "No-one", "Cannot", "cannot tell", "I do not know", "I don't know",
    "It's not clear.", "Unknown", "yes, a dog, not a cat", "Yes\nNo", "The image shows no cat",
    "Notably, yes.", "No thanks", "Да", "いいえ", "no ", " no", "no  dog", "Non", "Noo", "NOT", "Not",
]


def official_source(path: Path, answers: Path, labels: Path) -> str:
    src = path.read_text()
    for name, value in (("ans_file", answers), ("label_file", labels)):
        placeholder = f"{name} = ''"
        if src.count(placeholder) != 1:
            raise SystemExit(f"{path}: expected one line {placeholder!r}")
        src = src.replace(placeholder, f"{name} = {str(value)!r}")
    return src


def run_official(pope: Path, answers: list[str], labels: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        a, lab, script = Path(tmp) / "answers.jsonl", Path(tmp) / "labels.jsonl", Path(tmp) / "evaluate.py"
        a.write_text("".join(json.dumps({"question_id": i, "answer": t}) + "\n" for i, t in enumerate(answers)))
        lab.write_text("".join(json.dumps({"question_id": i, "label": t}) + "\n" for i, t in enumerate(labels)))
        script.write_text(official_source(pope, a, lab))
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    tp, fp, tn, fn = (int(x) for x in lines[1].split())
    scores = {}
    for line in lines[2:]:
        m = re.match(r"(Accuracy|Precision|Recall|F1 score|Yes ratio): (.*)", line)
        if m:
            scores[m.group(1)] = float(m.group(2))
    return {"TP": tp, "FP": fp, "TN": tn, "FN": fn, "accuracy": scores["Accuracy"],
            "precision": scores["Precision"], "recall": scores["Recall"], "f1": scores["F1 score"],
            "yes_ratio": scores["Yes ratio"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pope", type=Path, required=True)
    args = ap.parse_args()
    parsed = []
    for text in ANSWERS:  # the case with a known yes and a known no beside it: TP tells how it parsed
        counts = run_official(args.pope, [text, "Yes", "No"], ["yes", "yes", "no"])
        parsed.append("yes" if counts["TP"] == 2 else "no")
    rng = random.Random(20260601)
    corpus = []
    for split in ("random", "popular", "adversarial"):
        for _ in range(60):
            corpus.append({"answer": rng.choice(ANSWERS), "label": rng.choice(["yes", "no"]), "split": split})
    expected = {"overall": run_official(args.pope, [c["answer"] for c in corpus], [c["label"] for c in corpus])}
    for split in ("random", "popular", "adversarial"):
        rows = [c for c in corpus if c["split"] == split]
        expected[split] = run_official(args.pope, [c["answer"] for c in rows], [c["label"] for c in rows])
    out = {"parsing": [{"answer": a, "official": p} for a, p in zip(ANSWERS, parsed)],
           "corpus": corpus, "expected": expected}
    (HERE / "cases.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(ANSWERS)} parsing cases, {len(corpus)} corpus rows")


if __name__ == "__main__":
    main()
