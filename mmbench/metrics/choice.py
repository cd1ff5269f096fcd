"""Multiple-choice accuracy: which option an answer names, single pass and circular.

Two metrics, each equal to an official scorer (``tests/data/multiple_choice`` holds the values
those scorers produced, run unmodified):

* ``multiple-choice`` (:func:`score_multiple_choice`, version 2): MMBench's deterministic
  answer matching, VLMEvalKit's ``can_infer`` (``vlmeval/utils/matching_util.py`` at
  open-compass/VLMEvalKit@e8e78f05, the ``exact_matching`` policy: no LLM judge).  An answer
  it cannot match is counted in ``unparsed`` and scored wrong, never guessed.
* ``multiple-choice-mmmu`` (:func:`score_multiple_choice_mmmu`): MMMU's
  ``parse_multi_choice_response`` (``mmmu/utils/eval_utils.py`` at
  MMMU-Benchmark/MMMU@bb0b95a9), which answers an unparseable response with
  ``random.choice`` of the option letters.  The official seeds Python's global generator
  with 42 when its module is imported and draws once per unparseable response, in the
  order it scores them; we draw from ``random.Random(seed)`` (42) in input order, so the
  numbers are equal when the responses come in the official's order.

What ``multiple-choice`` accepts (option letters ``A, B, ...``; ``letters`` below are those
of the sample's options), in the official's order:

1. the answer contains "Failed to obtain answer via API": no option;
2. it contains one of four refusal sentences ("Cannot determine the answer", ...): no option;
3. ``. ( ) [ ] , : ; ! * # { }`` become spaces and the text is split on whitespace; if exactly
   one option letter is a token (upper case only) and it is among the last 4 tokens, that
   letter: ``"B"``, ``"(B)"``, ``"B."``, ``"Answer: B"``, ``"The answer is B"``,
   ``"**B**"``, ``"B) dog"``.  Two letters (``"A or B"``) match nothing here; a letter
   5 or more tokens from the end neither (``"B is right, I am sure of it"``); the article
   ``"A"`` counts as a letter (``"A dog"`` is option A);
4. else ``answer is X`` (``correct answer is **X**``), case-insensitive, X one of ``A-D``
   only (a fixed class in the official): ``"I think the answer is c because ..."`` is C,
   and so is ``"the answer is a dog"`` A;
5. else the option texts: the lower-cased answer, if not longer than twice the options'
   total length, contains exactly one option's lower-cased text as a substring (not whole
   words: ``"category"`` contains "cat").

A lone ``"Z"`` token (with no option letter) is the official's "none of the options" and is
unparsed too.  ``unparsed`` counts every answer that names no option.

Circular evaluation (MMBench's CircularEval): the rotations of one question share a
``group``; a group is right only if every rotation is (``circular_accuracy``).  A row with
no group is a group of its own.  ``answer_changed`` is the share of groups with more than
one row whose chosen option *text* is not the same in every rotation (an unparsed rotation
counts as a different answer; a group unparsed throughout has not changed).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from mmbench.metrics.spec import MetricSpec, Output
from mmbench.types import MetricValues

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# can_infer_option (VLMEvalKit@e8e78f05): refusals answer 'Z'; these characters split tokens;
# the "answer is X" fallback is fixed to A-D.
_API_FAILURE = "Failed to obtain answer via API"
_REFUSALS = ("Sorry, I can't help with images of people yet.", "I can't process this file.",
             "I'm sorry, but without the image provided", "Cannot determine the answer")
_SEPARATORS = str.maketrans({c: " " for c in ".()[],:;!*#{}"})
_ANSWER_IS = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")
_NONE_OF_THEM = "Z"


def _letter(answer: str, letters: Sequence[str]) -> str | None:
    """The official ``can_infer_option``: a letter, ``"Z"`` (none of them) or None."""
    if _API_FAILURE in answer:
        return None
    if any(r in answer for r in _REFUSALS):
        return _NONE_OF_THEM
    tokens = answer.translate(_SEPARATORS).split()
    named = [c for c in letters if c in tokens]
    if len(named) == 1:
        if tokens.index(named[0]) > len(tokens) - 5:
            return named[0]
    elif not named and _NONE_OF_THEM in tokens:
        return _NONE_OF_THEM
    said = _ANSWER_IS.search(answer)
    if said and said.group(1).upper() in letters:
        return said.group(1).upper()
    return None


def _text(answer: str, options: Sequence[str]) -> int | None:
    """The official ``can_infer_text``: the one option whose text the answer contains."""
    answer = answer.lower()
    if len(answer) > 2 * sum(len(o) for o in options):
        return None
    found = [i for i, o in enumerate(options) if o.lower() in answer]
    return found[0] if len(found) == 1 else None


def parse_choice(answer: str, options: Sequence[str]) -> int | None:
    """The index of the option ``answer`` names, by MMBench's rules (module docstring), or None.

    >>> parse_choice("The answer is (B).", ["cat", "dog"])
    1
    >>> parse_choice("a dog", ["cat", "dog"])
    1
    >>> parse_choice("A or B", ["cat", "dog"]) is None
    True
    """
    if not isinstance(answer, str):
        raise ValueError(f"answer must be a str, got {type(answer).__name__}")
    _check_options(options, "parse_choice")
    letters = LETTERS[:len(options)]
    letter = _letter(answer, letters)
    if letter is not None:
        return letters.index(letter) if letter in letters else None
    return _text(answer, options)


def parse_choice_mmmu(response: str, options: Sequence[str], rng: random.Random) -> tuple[int, bool]:
    """MMMU's ``parse_multi_choice_response``: ``(option index, guessed)``; ``guessed`` when no
    rule matched and ``rng.choice`` picked the option (the official's behaviour).

    Rules, in order: strip ``, . ! ? ; : '`` from both ends (once each, in that order) and pad
    with spaces; candidates are the letters written ``(X)``; else the letters standing alone
    (`` X ``); else, when the response has more than 5 words, the options whose text it
    contains (case-insensitive).  One candidate wins; several: the one found last in the
    response; none: a random letter.
    """
    _check_options(options, "parse_choice_mmmu")
    letters = list(LETTERS[:len(options)])
    for char in ",.!?;:'":
        response = response.strip(char)
    response = f" {response} "
    by_letter, bracketed = True, False
    found = [c for c in letters if f"({c})" in response]
    bracketed = bool(found)
    if not found:
        found = [c for c in letters if f" {c} " in response]
    if not found and len(response.split()) > 5:
        found = [c for c, text in zip(letters, options) if text.lower() in response.lower()]
        by_letter = False
    if not found:
        return letters.index(rng.choice(letters)), True
    if len(found) == 1:
        return letters.index(found[0]), False
    if by_letter:
        where = [response.rfind(f"({c})" if bracketed else f" {c} ") for c in found]
    else:
        where = [response.lower().rfind(options[letters.index(c)].lower()) for c in found]
    return letters.index(found[where.index(max(where))]), False  # numpy.argmax: the first maximum


def _check_options(options: object, where: str) -> None:
    if isinstance(options, str) or not isinstance(options, Sequence) or not 1 <= len(options) <= len(LETTERS):
        raise ValueError(f"{where}: options must be a sequence of 1..{len(LETTERS)} option texts, got {options!r}")
    for j, o in enumerate(options):
        if not isinstance(o, str):
            raise ValueError(f"{where}: option {j} is {type(o).__name__}, not str")


def _correct_index(refs: Sequence[str], options: Sequence[str], where: str) -> int:
    """The correct option: a letter (``"B"``, the documented form) or, for older task files, its text."""
    if isinstance(refs, str) or not refs or not isinstance(refs[0], str):
        raise ValueError(f"{where}: references must be [correct letter], got {refs!r}")
    key = refs[0].strip()
    if len(key) == 1 and key.upper() in LETTERS[:len(options)]:
        return LETTERS.index(key.upper())
    if key in options:
        return list(options).index(key)
    raise ValueError(f"{where}: correct answer {key!r} is neither an option letter "
                     f"({LETTERS[0]}..{LETTERS[len(options) - 1]}) nor an option's text")


def _rows(predictions: Sequence[str], answers: Sequence[Sequence[str]], choices: Sequence[Sequence[str]] | None,
          *others: Sequence | None) -> list[int]:
    if choices is None:
        raise ValueError("multiple choice needs each sample's options (meta field 'choices')")
    sizes = {len(predictions), len(answers), len(choices)} | {len(o) for o in others if o is not None}
    if len(sizes) > 1:
        raise ValueError(f"length mismatch: {len(predictions)} predictions, {len(answers)} references, "
                         f"{len(choices)} option lists" + "".join(f", {len(o)}" for o in others if o is not None))
    correct = []
    for i, (pred, refs, options) in enumerate(zip(predictions, answers, choices)):
        if not isinstance(pred, str):
            raise ValueError(f"item {i}: prediction is {type(pred).__name__}, not str")
        _check_options(options, f"item {i}")
        correct.append(_correct_index(refs, options, f"item {i}"))
    return correct


def _by_category(values: Sequence[float], categories: Sequence[str | None] | None) -> dict[str, list[float]]:
    buckets: dict[str, list[float]] = {}
    for v, c in zip(values, categories or ()):
        if c is not None:
            buckets.setdefault(str(c), []).append(v)
    return buckets


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _circular(right: Sequence[bool], chosen: Sequence[str | None], groups: Sequence[object | None],
              categories: Sequence[str | None] | None) -> dict[str, float]:
    members: dict[object, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(("row", i) if g is None else ("group", str(g)), []).append(i)
    corpus: dict[str, float] = {}
    hits = {key: all(right[i] for i in rows) for key, rows in members.items()}
    corpus["circular_accuracy"] = _mean([float(h) for h in hits.values()])
    rotated = [rows for rows in members.values() if len(rows) > 1]
    if rotated:
        corpus["answer_changed"] = _mean([float(len({chosen[i] for i in rows}) > 1) for rows in rotated])
    if categories is not None:
        cats: dict[str, list[float]] = {}
        for key, rows in members.items():
            seen = {categories[i] for i in rows}
            if len(seen) > 1:
                raise ValueError(f"group {key[1]!r}: its rotations have different categories {sorted(map(str, seen))}")
            cat = seen.pop()
            if cat is not None:
                cats.setdefault(str(cat), []).append(float(hits[key]))
        corpus.update({f"circular_accuracy/{c}": _mean(v) for c, v in cats.items()})
    return corpus


def score_multiple_choice(predictions: Sequence[str], answers: Sequence[Sequence[str]], *,
                          choices: Sequence[Sequence[str]] | None = None,
                          groups: Sequence[object | None] | None = None,
                          categories: Sequence[str | None] | None = None) -> MetricValues:
    """MMBench multiple-choice accuracy, single pass and circular (module docstring).

    ``answers[i]``: ``[correct letter]`` (an option's exact text is accepted too);
    ``choices[i]``: the option texts in order (letters A, B, ...); ``groups[i]``: the original
    question of a rotation (None: not circular); ``categories[i]``: optional.

    ``corpus``: ``accuracy`` (over all rows), ``unparsed`` (count), ``accuracy/<category>``;
    when some row has a group, ``circular_accuracy``, ``circular_accuracy/<category>`` and
    ``answer_changed``.  ``per_sample``: ``{"accuracy": 0/1, "unparsed": 0/1}``.

    >>> v = score_multiple_choice(["B", "(A) cat"], [["B"], ["B"]], choices=[["cat", "dog"], ["dog", "cat"]],
    ...                           groups=["q1", "q1"])
    >>> v.corpus["accuracy"], v.corpus["circular_accuracy"], v.corpus["answer_changed"]
    (0.5, 0.0, 0.0)
    """
    correct = _rows(predictions, answers, choices, groups, categories)
    picked = [parse_choice(p, o) for p, o in zip(predictions, choices)]
    right = [p == c for p, c in zip(picked, correct)]
    backend = {"accuracy": {"implementation": "mmbench.metrics.choice (VLMEvalKit can_infer, exact matching, "
                                              "open-compass/VLMEvalKit@e8e78f05)"}}
    if not right:
        return MetricValues(corpus={}, unavailable={"accuracy": "no items to score"}, backend=backend)
    corpus = {"accuracy": _mean([float(r) for r in right]), "unparsed": float(sum(p is None for p in picked))}
    corpus.update({f"accuracy/{c}": _mean(v) for c, v in _by_category([float(r) for r in right], categories).items()})
    if groups is not None and any(g is not None for g in groups):
        chosen = [None if p is None else o[p] for p, o in zip(picked, choices)]
        corpus.update(_circular(right, chosen, groups, categories))
    return MetricValues(corpus=corpus, backend=backend,
                        per_sample=tuple({"accuracy": float(r), "unparsed": float(p is None)}
                                         for r, p in zip(right, picked)))


def score_multiple_choice_mmmu(predictions: Sequence[str], answers: Sequence[Sequence[str]], *,
                               choices: Sequence[Sequence[str]] | None = None,
                               categories: Sequence[str | None] | None = None, seed: int = 42) -> MetricValues:
    """MMMU's multiple-choice accuracy: :func:`parse_choice_mmmu`, a random option (from
    ``random.Random(seed)``, drawn in input order) where nothing parses.

    ``corpus``: ``accuracy``, ``unparsed`` (how many were guessed), ``accuracy/<category>``.
    """
    correct = _rows(predictions, answers, choices, categories)
    rng = random.Random(seed)
    parsed = [parse_choice_mmmu(p, o, rng) for p, o in zip(predictions, choices)]
    right = [float(i == c) for (i, _), c in zip(parsed, correct)]
    backend = {"accuracy": {"implementation": f"mmbench.metrics.choice (MMMU parse_multi_choice_response, "
                                              f"random.Random({seed}) for unparsed, MMMU-Benchmark/MMMU@bb0b95a9)"}}
    if not right:
        return MetricValues(corpus={}, unavailable={"accuracy": "no items to score"}, backend=backend)
    corpus = {"accuracy": _mean(right), "unparsed": float(sum(g for _, g in parsed))}
    corpus.update({f"accuracy/{c}": _mean(v) for c, v in _by_category(right, categories).items()})
    return MetricValues(corpus=corpus, backend=backend,
                        per_sample=tuple({"accuracy": r, "unparsed": float(g)} for r, (_, g) in zip(right, parsed)))


MULTIPLE_CHOICE = MetricSpec(
    name="multiple-choice", fn=score_multiple_choice, version="2", primary="accuracy",
    description="MMBench multiple-choice accuracy (VLMEvalKit can_infer, exact matching; unparsed answers are "
                "wrong and counted, never guessed), circular accuracy over the rotations of a group",
    outputs=(Output("accuracy"), Output("unparsed", higher_is_better=False, aggregation="count"),
             Output("accuracy/*", per_sample=False),
             Output("circular_accuracy", aggregation="corpus", per_sample=False),
             Output("circular_accuracy/*", aggregation="corpus", per_sample=False),
             Output("answer_changed", higher_is_better=False, aggregation="corpus", per_sample=False)),
    sample_fields={"choices": "choices", "groups": "group", "categories": "category"})

MULTIPLE_CHOICE_MMMU = MetricSpec(
    name="multiple-choice-mmmu", fn=score_multiple_choice_mmmu, version="1", primary="accuracy",
    description="MMMU multiple-choice accuracy (parse_multi_choice_response; an unparsed answer gets a random "
                "option from random.Random(42), as the official)",
    outputs=(Output("accuracy"), Output("unparsed", higher_is_better=False, aggregation="count"),
             Output("accuracy/*", per_sample=False)),
    sample_fields={"choices": "choices", "categories": "category"})
