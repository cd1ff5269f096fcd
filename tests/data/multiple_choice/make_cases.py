"""Build the multiple-choice cases and record what the official scorers make of them.

    python tests/data/multiple_choice/make_cases.py --vlmevalkit DIR --mmmu DIR

``--vlmevalkit``: a folder holding ``vlmeval/utils/matching_util.py`` and ``vlmeval/smp/log.py``
from open-compass/VLMEvalKit (unmodified; the three package ``__init__.py`` files empty, so
that importing them does not pull the whole toolkit).  ``--mmmu``: the ``mmmu/`` folder of
MMMU-Benchmark/MMMU; its ``main_parse_and_eval.py`` is run as it is.  See README.md.
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
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ANIMALS = ["cat", "dog", "bird", "fish"]

# (prediction, options, correct letter, note)
HAND = [
    ("B", ANIMALS, "B", "bare letter"),
    ("b", ANIMALS, "B", "lower-case letter"),
    ("(B)", ANIMALS, "B", "letter in brackets"),
    ("B.", ANIMALS, "B", "letter with period"),
    ("B)", ANIMALS, "B", "letter with closing bracket"),
    ("[B]", ANIMALS, "B", "letter in square brackets"),
    ("**B**", ANIMALS, "B", "markdown bold letter"),
    ("Answer: B", ANIMALS, "B", "Answer: X"),
    ("answer: b", ANIMALS, "B", "answer: x lower-case"),
    ("The answer is B", ANIMALS, "B", "The answer is X"),
    ("The answer is B.", ANIMALS, "B", "The answer is X."),
    ("The correct answer is **B**.", ANIMALS, "B", "correct answer is **X**"),
    ("The answer is (B) dog", ANIMALS, "B", "letter and text"),
    ("B. dog", ANIMALS, "B", "letter-dot-text"),
    ("B dog", ANIMALS, "B", "letter then text"),
    ("B. cat", ANIMALS, "B", "letter and another option's text"),
    ("Option B", ANIMALS, "B", "Option X"),
    ("I choose B", ANIMALS, "B", "I choose X"),
    ("I think it is B, the dog", ANIMALS, "B", "letter inside a sentence"),
    ("B is correct because the animal barks loudly", ANIMALS, "B", "letter 5+ tokens from the end"),
    ("B\nExplanation: it barks.", ANIMALS, "B", "letter then explanation line"),
    ("dog", ANIMALS, "B", "option text"),
    ("Dog", ANIMALS, "B", "option text capitalised"),
    ("a dog", ANIMALS, "B", "option text with article"),
    ("The animal is a dog.", ANIMALS, "B", "option text in a sentence"),
    ("A dog", ANIMALS, "B", "article A read as letter A"),
    ("A", ANIMALS, "B", "wrong letter"),
    ("A or B", ANIMALS, "B", "two letters"),
    ("B or C", ANIMALS, "B", "two letters, first right"),
    ("both A and B", ANIMALS, "B", "two letters in a sentence"),
    ("(B) and (C)", ANIMALS, "B", "two bracketed letters"),
    ("It's B, not C", ANIMALS, "B", "letter and negated letter"),
    ("None of the above", ANIMALS, "B", "none of the above"),
    ("Z", ANIMALS, "B", "Z: none of the options"),
    ("", ANIMALS, "B", "empty output"),
    (" ", ANIMALS, "B", "blank output"),
    ("I don't know", ANIMALS, "B", "no answer"),
    ("Cannot determine the answer", ANIMALS, "B", "refusal sentence"),
    ("Sorry, I can't help with images of people yet.", ANIMALS, "B", "refusal sentence 2"),
    ("Failed to obtain answer via API", ANIMALS, "B", "API failure"),
    ("The answer is c", ANIMALS, "C", "answer is x lower-case"),
    ("I think the answer is C because the image shows feathers and wings", ANIMALS, "C",
     "answer is X in a long sentence"),
    ("the answer is a dog", ANIMALS, "B", "answer is a(rticle) read as A"),
    ("answer is E", ANIMALS + ["cow"], "E", "answer is E (beyond A-D)"),
    ("The answer is E because of the horns and the size", ANIMALS + ["cow"], "E", "answer is E, long"),
    ("E", ANIMALS, "B", "letter beyond the options"),
    ("catfish", ANIMALS, "D", "text containing two options"),
    ("category", ANIMALS, "A", "option as a substring"),
    ("dogs", ANIMALS, "B", "plural of an option"),
    ("It is definitely the dog that is sitting on the sofa in this picture here", ANIMALS, "B",
     "option text in a long answer"),
    ("In the picture there is clearly a big brown dog sitting on a sofa next to a window with curtains",
     ANIMALS, "B", "option text in an answer longer than twice the options"),
    ("狗", ["猫", "狗", "鸟", "鱼"], "B", "unicode option text"),
    ("答案是B", ["猫", "狗", "鸟", "鱼"], "B", "Chinese 'the answer is' glued to the letter"),
    ("B。", ["猫", "狗", "鸟", "鱼"], "B", "letter with ideographic full stop"),
    ("Ｂ", ANIMALS, "B", "full-width letter"),
    ("2", ["1", "2", "3", "4"], "B", "numeric option text"),
    ("The answer is 2", ["1", "2", "3", "4"], "B", "numeric option text in a sentence"),
    ("There are 3 apples", ["1", "2", "3", "4"], "C", "number in a sentence"),
    ("12", ["1", "2", "3", "4"], "B", "number containing two options"),
    ("C", ["red", "blue", "green"], "C", "three options"),
    ("D", ["red", "blue", "green"], "C", "letter beyond three options"),
    ("yes", ["yes", "no"], "A", "yes/no options"),
    ("No", ["yes", "no"], "B", "No"),
    ("A. yes", ["yes", "no"], "A", "A. text"),
    ("The answer is (A) yes and (B) no", ["yes", "no"], "B", "two bracketed letters, MMMU takes the last"),
    ("Looking closely at the image I believe option B is the best one and not A", ANIMALS, "B",
     "two bare letters in a long answer, MMMU takes the last"),
    ("Looking closely at the image I believe the dog is right, not the cat", ANIMALS, "B",
     "two option texts in a long answer, MMMU takes the last"),
    ("Looking at the picture, the answer must be the dog here", ANIMALS, "B", "MMMU content match (> 5 words)"),
    ("It must be the dog", ANIMALS, "B", "MMMU: 5 words, no content match"),
    ("B,", ANIMALS, "B", "letter with comma"),
    ("'B'", ANIMALS, "B", "letter in quotes"),
    ("\"B\"", ANIMALS, "B", "letter in double quotes"),
    ("B!", ANIMALS, "B", "letter with exclamation mark"),
    ("B:", ANIMALS, "B", "letter with colon"),
    ("{B}", ANIMALS, "B", "letter in braces"),
    ("#B", ANIMALS, "B", "hash letter"),
    ("B/C", ANIMALS, "B", "slash between letters"),
    ("B-dog", ANIMALS, "B", "letter-dash-text"),
    ("\tB\n", ANIMALS, "B", "letter with tab and newline"),
]

TEMPLATES = ["{L}", "({L})", "{L}.", "Answer: {L}", "The answer is {L}.", "The correct answer is **{L}**.",
             "{L}. {T}", "{T}", "It is {T}.", "I am not sure.", "{L} or {M}", "Option {L} ({T}) is right",
             "{l}", "The answer is {l}", "Probably {T}, maybe {U}", "The image shows a {T} standing near a {U}.",
             "{L}\n{T}", "", "My final answer: ({L}) {T}"]
VOCAB = ["red", "blue", "green", "yellow", "a cat", "two dogs", "the table", "42", "3.5", "left", "right", "none",
         "cake", "cup", "running", "Paris", "über", "café", "東京", "one"]


def random_cases(rng: random.Random, n: int) -> list[tuple]:
    out = []
    for _ in range(n):
        k = rng.randint(2, 6)
        options = rng.sample(VOCAB, k)
        correct = rng.randrange(k)
        said = rng.randrange(k)
        other = rng.choice([i for i in range(k) if i != said])
        pred = rng.choice(TEMPLATES).format(L=LETTERS[said], l=LETTERS[said].lower(), M=LETTERS[other],
                                            T=options[said], U=options[other])
        out.append((pred, options, LETTERS[correct], "random"))
    return out


def circular_cases(rng: random.Random, n_groups: int) -> list[tuple]:
    """Each group: one question in every rotation of its options; the model answers by text or letter."""
    out = []
    for g in range(n_groups):
        options = rng.sample(VOCAB, 4)
        category = rng.choice(["perception", "reasoning"])
        habit = rng.choice(["text", "letter", "fixed-letter", "mixed"])
        fixed = rng.randrange(4)
        for r in range(4):
            rotated = options[r:] + options[:r]
            correct = rotated.index(options[0])
            if habit == "text":
                pred = f"It is {rng.choice(options[:2])}."
            elif habit == "letter":
                pred = f"Answer: {LETTERS[rng.choice([correct, correct, correct, (correct + 1) % 4])]}"
            elif habit == "fixed-letter":
                pred = f"({LETTERS[fixed]})"
            else:
                pred = rng.choice([f"{LETTERS[correct]}", options[0], "I cannot tell.", f"{LETTERS[(correct + 2) % 4]}"])
            out.append((pred, rotated, LETTERS[correct], f"circular {habit}", f"g{g}", category))
    return out


def build() -> list[dict]:
    rng = random.Random(20260601)
    rows = [c + (None, None) for c in HAND] + [c + (None, "random") for c in random_cases(rng, 200)] \
        + circular_cases(rng, 24)
    return [{"id": i, "prediction": p, "options": o, "answer": a, "note": note, "group": g, "category": cat}
            for i, (p, o, a, note, g, cat) in enumerate(rows)]


def run_vlmevalkit(cases: list[dict], root: Path) -> list:
    code = ("import json, sys\nfrom vlmeval.utils.matching_util import can_infer\n"
            "cases = json.load(sys.stdin)\n"
            "out = [can_infer(c['prediction'], {k: v for k, v in zip('ABCDEFGHIJKLMNOPQRSTUVWXYZ', c['options'])}) "
            "for c in cases]\njson.dump(out, sys.stdout)\n")
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps(cases), capture_output=True, text=True,
                          cwd=root, check=True)
    return json.loads(done.stdout)


def run_mmmu(cases: list[dict], root: Path) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "Art"
        folder.mkdir()
        outputs = [{"id": str(c["id"]), "question_type": "multiple-choice",
                    "all_choices": list(LETTERS[:len(c["options"])]),
                    "index2ans": dict(zip(LETTERS, c["options"])), "answer": c["answer"], "response": c["prediction"]}
                   for c in cases]
        (folder / "output.json").write_text(json.dumps(outputs))
        subprocess.run([sys.executable, "main_parse_and_eval.py", "--path", tmp, "--subject", "art"], cwd=root,
                       check=True, capture_output=True)
        parsed = json.loads((folder / "parsed_output.json").read_text())
        result = json.loads((folder / "result.json").read_text())
    return [{"parsed_pred": p["parsed_pred"], "judge": p["judge"]} for p in parsed], result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vlmevalkit", type=Path, required=True)
    ap.add_argument("--mmmu", type=Path, required=True)
    args = ap.parse_args()
    cases = build()
    official = run_vlmevalkit(cases, args.vlmevalkit)
    mmmu, mmmu_result = run_mmmu(cases, args.mmmu)
    for c, v, m in zip(cases, official, mmmu):
        c["vlmevalkit_can_infer"] = v  # a letter, "Z" or false
        c["vlmevalkit_hit"] = int(v == c["answer"])  # eval_vanilla under the exact_matching policy
        c["mmmu_parsed_pred"] = m["parsed_pred"]
        c["mmmu_judge"] = m["judge"]
    groups: dict[str, list[dict]] = {}
    for c in cases:
        if c["group"] is not None:
            groups.setdefault(c["group"], []).append(c)
    circular = {g: int(all(c["vlmevalkit_hit"] for c in rows)) for g, rows in groups.items()}
    out = {"cases": cases,
           "expected": {"vlmevalkit_accuracy": sum(c["vlmevalkit_hit"] for c in cases) / len(cases),
                        "vlmevalkit_circular_hit": circular,
                        "mmmu_acc": mmmu_result["acc"]}}
    (HERE / "cases.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(cases)} cases, {len(groups)} circular groups; VLMEvalKit accuracy "
          f"{out['expected']['vlmevalkit_accuracy']:.4f}, MMMU acc {mmmu_result['acc']:.4f}")


if __name__ == "__main__":
    main()
