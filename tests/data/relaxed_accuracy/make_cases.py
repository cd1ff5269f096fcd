"""Build ChartQA relaxed-accuracy cases and record pix2struct's official values.

    python tests/data/relaxed_accuracy/make_cases.py --pix2struct /tmp/official/pix2struct \
        --python /tmp/official/venv/bin/python

``--pix2struct``: a folder holding ``metrics.py`` of google-research/pix2struct, unmodified
(it imports pycocoevalcap and editdistance, so ``--python`` is an interpreter that has them).
Each case is scored as ``pix2struct_metrics`` scores relaxed accuracy:
``aggregate_metrics(targets, predictions, metric_fn=relaxed_correctness) / 100`` (the best
target).  ``swapped`` records ``relaxed_correctness(prediction, target)``, the argument order of
VLMEvalKit#584, for the documentation only.  See README.md.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

# (prediction, targets, note)
HAND = [
    ("100", ["100"], "exact number"),
    ("104.9", ["100"], "within 5%"),
    ("105", ["100"], "exactly 5%"),
    ("105.1", ["100"], "just over 5%"),
    ("95.1", ["100"], "4.9% under (swapped: 5.15%, wrong)"),
    ("100", ["95.1"], "5.15% over"),
    ("105.2", ["100"], "5.2% over (swapped: 4.94%, right)"),
    ("2016", ["2015"], "year off by one (0.05%)"),
    ("1990", ["2015"], "year off by 25"),
    ("45%", ["45"], "percent prediction, plain target"),
    ("45", ["45%"], "plain prediction, percent target"),
    ("45%", ["45%"], "both percent"),
    ("0.45", ["45%"], "fraction vs percent"),
    ("46%", ["45%"], "percent within 5%"),
    ("45 %", ["45%"], "space before percent"),
    ("%45", ["45"], "leading percent sign"),
    ("0", ["0"], "zero target, zero prediction"),
    ("0.0", ["0"], "zero target, 0.0 (string compare)"),
    ("0.01", ["0"], "zero target, small number"),
    ("0", ["0.0"], "target 0.0"),
    ("-5", ["-5"], "negative"),
    ("-5.2", ["-5"], "negative within 5%"),
    ("5", ["-5"], "sign flip"),
    ("1,000", ["1000"], "thousands comma (not a number)"),
    ("1000", ["1,000"], "thousands comma on the target"),
    ("1_000", ["1000"], "underscore digits (float() accepts)"),
    ("1e3", ["1000"], "scientific notation"),
    (" 100", ["100"], "leading space (float() strips)"),
    ("100 ", ["100"], "trailing space"),
    ("100\n", ["100"], "trailing newline"),
    ("$100", ["100"], "currency sign"),
    ("100 kg", ["100"], "unit"),
    ("100.", ["100"], "trailing period"),
    ("nan", ["nan"], "nan vs nan"),
    ("NaN", ["nan"], "NaN vs nan"),
    ("inf", ["inf"], "inf vs inf"),
    ("Infinity", ["inf"], "Infinity"),
    ("１００", ["100"], "full-width digits"),
    ("٣", ["3"], "Arabic-Indic digit"),
    ("Yes", ["yes"], "text, case"),
    ("yes.", ["yes"], "text, trailing period"),
    ("Brazil", ["brazil"], "text"),
    ("Brasil", ["Brazil"], "text, one letter"),
    ("", ["0"], "empty prediction"),
    ("", [""], "empty prediction and target"),
    ("12", ["12", "twelve"], "several targets, first"),
    ("twelve", ["12", "Twelve"], "several targets, second"),
    ("11.5", ["12", "11"], "several targets, within 5% of one"),
    ("ΣΑΣ", ["σας"], "Greek case"),
    ("STRASSE", ["straße"], "sharp s"),
    ("3.14159", ["3.14"], "more digits"),
    ("1/2", ["0.5"], "fraction text"),
]


def build() -> list[dict]:
    rng = random.Random(20260601)
    rows = list(HAND)
    for _ in range(300):
        kind = rng.random()
        if kind < 0.6:
            target = rng.choice([rng.randint(0, 100), round(rng.uniform(-50, 500), rng.randint(0, 3)),
                                 rng.randint(1950, 2030)])
            pred = target * rng.choice([1, 1, 0.97, 1.03, 1.049, 1.051, 0.9, 1.5]) if isinstance(target, int) \
                else round(target * rng.uniform(0.9, 1.1), 2)
            t, p = str(target), str(pred)
            if rng.random() < 0.2:
                t, p = t + "%", p + rng.choice(["%", ""])
            if rng.random() < 0.1:
                p = rng.choice([" ", ""]) + p + rng.choice([" ", ".", ""])
        else:
            t = rng.choice(["Yes", "No", "Brazil", "Q3", "Blue line", "2019-2020", "Germany", "Male"])
            p = rng.choice([t, t.lower(), t.upper(), t + ".", "Japan", "No", ""])
        rows.append((p, [t], "random"))
    splits = ["human", "augmented"]
    return [{"id": i, "prediction": p, "targets": ts, "note": n, "split": splits[i % 2]}
            for i, (p, ts, n) in enumerate(rows)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pix2struct", type=Path, required=True)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    cases = build()
    code = ("import json, sys\nsys.path.insert(0, sys.argv[1])\nimport metrics\ncases = json.load(sys.stdin)\n"
            "print(json.dumps([[metrics.aggregate_metrics([c['targets']], [c['prediction']], "
            "metrics.relaxed_correctness) / 100, any(metrics.relaxed_correctness(c['prediction'], t) "
            "for t in c['targets'])] for c in cases]))\n")
    done = subprocess.run([args.python, "-c", code, str(args.pix2struct)], input=json.dumps(cases),
                          capture_output=True, text=True, check=True)
    for c, (score, swapped) in zip(cases, json.loads(done.stdout)):
        c["expected"] = score
        c["swapped"] = float(swapped)
    (HERE / "cases.json").write_text(json.dumps({"cases": cases}, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(cases)} cases; {sum(c['expected'] != c['swapped'] for c in cases)} differ when swapped")


if __name__ == "__main__":
    main()
