"""VQA answer metrics: the official VQA accuracy and exact match.

The ``multiple-choice`` metric lives in :mod:`mmbench.metrics.choice` (MMBench's and MMMU's
official answer matching); :func:`parse_choice` and :func:`multiple_choice_accuracy` here are
the earlier, stricter parser, no longer registered as a metric.

:func:`vqa_accuracy_one` and :func:`score_vqa` reproduce the official evaluation
(GT-Vision-Lab/VQA, ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` at commit
a013f0043c1e2cdc995922dfe257f7149aa9af06, Python 2.7).  ``tests/data/vqa`` holds
values produced by running that file, unmodified, under Python 2.7.18.
It is rewritten here rather than vendored because it only works on whole
annotation/result files, runs on Python 2 and rounds its outputs.

Per question, with ``answers`` the human answers (10 in VQA v1/v2):

1. In every answer and in the prediction, ``"\\n"`` and ``"\\t"`` become spaces,
   then leading/trailing whitespace is stripped.  Nothing else happens yet.
2. Only if the answers are then *not all identical*, answers and prediction both
   go through :func:`normalize_answer` (punctuation, then number words, articles,
   contractions).  When all answers are identical, strings are compared raw:
   ``"Yes"`` or ``"yes."`` against ten ``"yes"`` scores 0, ``" yes "`` scores 1.
   (Before commit a013f00, 2021, the prediction was always normalised and the
   answers only had their punctuation processed; results from before 2021 used that.)
3. accuracy = mean over i of ``min(1, #answers other than answer i equal to the
   prediction / 3)``.  With m of n answers matching this is 1 for m >= 4,
   0.9 for m = 3, 0.6 for m = 2, 0.3 for m = 1 (n = 10).  The official code
   picks "the other answers" by dict inequality of ``{answer, answer_confidence,
   answer_id}``; answer ids are unique in the released data, so exactly one
   answer is left out, which is what we do for any n.  Other counts follow the
   same formula: one answer always scores 0 (its only subset is empty), and
   with n <= 3 the maximum is below 1.  :func:`score_vqa` warns when n != 10.

Quirks of the normalisation, all reproduced:

* Punctuation ``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !``: each character is
  deleted if it occurs next to an ASCII space anywhere in the text, or if the
  text contains a digit-comma-digit anywhere (``"1,000"`` -> ``"1000"``, which
  also deletes every other listed character); otherwise it becomes a space
  (``"x-ray"`` -> ``"x ray"``, but ``"x-ray - yes"`` -> ``"xray  yes"``).  The
  decision looks at the text before any replacement.  ``' : * # $ % & ^ ~ |``
  are never touched.
* Periods: every ``"."`` not followed by a digit is removed (``"3.5"`` stays,
  ``"5."`` -> ``"5"``, ``"e.g."`` -> ``"eg"``, ``".5"`` stays).  The official
  pattern ``(?!<=\\d)`` is a lookahead typo for a lookbehind and never fails, and
  ``re.UNICODE`` is passed as the *count* argument, so at most 32 periods go.
* "Digit" means ASCII 0-9: Python 2 ``re`` on unicode without the UNICODE flag.
  Python 3 ports treat full-width ``"１,０００"`` as digits; we do not.
* Lower-casing is per character (Python 2 simple case mapping: ``"İ"`` -> ``"i"``,
  no final sigma), then the text is split on whitespace and re-joined by one space.
* Whole words ``none zero one ... ten`` become ``0 0 1 ... 10`` ("none" -> "0"!),
  then the words ``a an the`` are dropped, then the contraction table maps
  apostrophe-less forms to apostrophe forms (``"dont"`` -> ``"don't"``).  The
  table is applied after lower-casing, so its capitalised keys (``Im``, ``Ive``,
  ``Id've``, ``I'dve``) never fire: ``"Im"`` stays ``"im"``; one entry goes the
  other way (``"somebody'd"`` -> ``"somebodyd"``); identity entries are omitted.
* Python 2 ``unicode.strip``/``split`` also treat U+180E as whitespace and its
  Unicode 5.2 case tables lack later characters; those two differences remain.

Aggregation: overall, per answer type and per question type are means of the
per-question accuracies (input order).  The official reports ``round(100*x, 2)``;
we report the unrounded fraction ``x``.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence
from functools import lru_cache

from mmbench.metrics.spec import MetricSpec, Output
from mmbench.metrics.streams import Labels, group_means, whole
from mmbench.types import MetricValues

_PUNCTUATION = tuple(';/[]"{}()=+\\_-><@`,?!')
_DIGIT_COMMA_DIGIT = re.compile(r"[0-9],[0-9]")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?![0-9])")
_MAX_PERIODS_REMOVED = 32  # the official passes re.UNICODE (== 32) as ``count``
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                 "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = frozenset({"a", "an", "the"})
# The official contraction table minus its unreachable capitalised keys and identity entries.
_CONTRACTIONS = dict(pair.split("=") for pair in """
    aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't couldn'tve=couldn't've
    couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't hadnt=hadn't hadnt've=hadn't've
    hadn'tve=hadn't've hasnt=hasn't havent=haven't hed=he'd hed've=he'd've he'dve=he'd've hes=he's
    howd=how'd howll=how'll hows=how's isnt=isn't itd=it'd itd've=it'd've it'dve=it'd've
    itll=it'll maam=ma'am mightnt=mightn't mightnt've=mightn't've mightn'tve=mightn't've
    mightve=might've mustnt=mustn't mustve=must've neednt=needn't notve=not've oclock=o'clock
    oughtnt=oughtn't ow's'at='ow's'at 'ows'at='ow's'at 'ow'sat='ow's'at shant=shan't
    shed've=she'd've she'dve=she'd've shouldve=should've shouldnt=shouldn't
    shouldnt've=shouldn't've shouldn'tve=shouldn't've somebody'd=somebodyd
    somebodyd've=somebody'd've somebody'dve=somebody'd've somebodyll=somebody'll
    somebodys=somebody's someoned=someone'd someoned've=someone'd've someone'dve=someone'd've
    someonell=someone'll someones=someone's somethingd=something'd somethingd've=something'd've
    something'dve=something'd've somethingll=something'll thats=that's thered=there'd
    thered've=there'd've there'dve=there'd've therere=there're theres=there's theyd=they'd
    theyd've=they'd've they'dve=they'd've theyll=they'll theyre=they're theyve=they've
    twas='twas wasnt=wasn't wed've=we'd've we'dve=we'd've weve=we've werent=weren't
    whatll=what'll whatre=what're whats=what's whatve=what've whens=when's whered=where'd
    wheres=where's whereve=where've whod=who'd whod've=who'd've who'dve=who'd've wholl=who'll
    whos=who's whove=who've whyll=why'll whyre=why're whys=why's wont=won't wouldve=would've
    wouldnt=wouldn't wouldnt've=wouldn't've wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll
    y'allll=y'all'll yall'd've=y'all'd've y'alld've=y'all'd've y'all'dve=y'all'd've youd=you'd
    youd've=you'd've you'dve=you'd've youll=you'll youre=you're youve=you've
""".split())


def _clean_whitespace(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def _strip_punctuation(text: str) -> str:
    delete = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for char in _PUNCTUATION:
        gone = delete or (char + " ") in text or (" " + char) in text
        out = out.replace(char, "" if gone else " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out, count=_MAX_PERIODS_REMOVED)


def _lower_py2(text: str) -> str:
    # Python 2's unicode.lower() maps one character to one character.
    return "".join("i" if ch == "\u0130" else ch.lower() for ch in text)


def _words(text: str) -> str:
    out = []
    for word in _lower_py2(text).split():
        word = _NUMBER_WORDS.get(word, word)
        if word not in _ARTICLES:
            out.append(_CONTRACTIONS.get(word, word))
    return " ".join(out)


@lru_cache(maxsize=1 << 16)
def _normalize_cleaned(text: str) -> str:
    return _words(_strip_punctuation(text))


def normalize_answer(answer: str) -> str:
    """The official processing of a prediction when the human answers disagree.

    >>> normalize_answer("Two dogs.")
    '2 dogs'
    >>> normalize_answer("  1,000\\n")
    '1000'
    """
    if not isinstance(answer, str):
        raise ValueError(f"answer must be a str, got {type(answer).__name__}")
    return _normalize_cleaned(_clean_whitespace(answer))


def _accuracy(prediction: str, answers: Sequence[str]) -> float:
    gts = [_clean_whitespace(a) for a in answers]
    pred = _clean_whitespace(prediction)
    if len(set(gts)) > 1:
        gts = [_normalize_cleaned(a) for a in gts]
        pred = _normalize_cleaned(pred)
    matches = [a == pred for a in gts]
    total = sum(matches)
    # Leave answer i out: the others hold ``total - matches[i]`` matches.  Summed in
    # answer order like the official, so the float result is bit-identical.
    return sum(min(1.0, (total - m) / 3) for m in matches) / len(gts)


def _check_answers(answers: object, where: str) -> None:
    if isinstance(answers, str) or not isinstance(answers, Sequence):
        raise ValueError(f"{where}: answers must be a sequence of str, got {type(answers).__name__}")
    if len(answers) == 0:
        raise ValueError(f"{where}: empty answer list")
    for j, a in enumerate(answers):
        if not isinstance(a, str):
            raise ValueError(f"{where}: answer {j} is {type(a).__name__}, not str")


def _check_prediction(prediction: object, where: str) -> None:
    if not isinstance(prediction, str):
        raise ValueError(f"{where}: prediction is {type(prediction).__name__}, not str")


def _check_lengths(**named: Sequence | None) -> int:
    sizes = {name: len(seq) for name, seq in named.items() if seq is not None}
    if len(set(sizes.values())) > 1:
        raise ValueError("length mismatch: " + ", ".join(f"{k}={v}" for k, v in sizes.items()))
    return next(iter(sizes.values()))


def vqa_accuracy_one(prediction: str, answers: Sequence[str]) -> float:
    """Official accuracy in [0, 1] of one prediction against its human answers.

    >>> vqa_accuracy_one("Two", ["2"] * 2 + ["3"] * 8)
    0.6
    >>> vqa_accuracy_one("Yes", ["yes"] * 10)  # identical answers: no normalisation
    0.0
    """
    _check_prediction(prediction, "vqa_accuracy_one")
    _check_answers(answers, "vqa_accuracy_one")
    return _accuracy(prediction, answers)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _group_means(acc: Sequence[float], groups: Sequence[str | None] | None) -> dict[str, float]:
    return {} if groups is None else group_means(acc, groups)


def vqa_breakdown(per_question_acc: Sequence[float], answer_types: Sequence[str | None] | None,
                  question_types: Sequence[str | None] | None) -> dict:
    """Overall and per-type means of per-question accuracies, unrounded.

    Returns ``{"accuracy": float, "by_answer_type": {type: float},
    "by_question_type": {type: float}}``.  A type of None leaves that question
    out of that breakdown (it still counts overall); a ``None`` sequence gives
    an empty breakdown.  Types appear in order of first occurrence.
    """
    n = _check_lengths(per_question_acc=per_question_acc, answer_types=answer_types,
                       question_types=question_types)
    if n == 0:
        raise ValueError("vqa_breakdown: no questions")
    return {"accuracy": _mean(per_question_acc),
            "by_answer_type": _group_means(per_question_acc, answer_types),
            "by_question_type": _group_means(per_question_acc, question_types)}


class VQAAccuracy:
    """The official VQA accuracy as a stream: :meth:`update` takes questions a chunk at a time and
    returns their per-question scores, :meth:`compute` the corpus values (:func:`score_vqa`'s).

    It keeps 16 bytes per question (its score, and codes of its answer and question types), so a
    200k-question run does not hold predictions or answers to be scored at the end.
    :func:`score_vqa` is one update and a compute, so a stream and a whole-corpus call give
    identical numbers: the corpus values are computed from the same per-question floats, summed
    in the same order.
    """

    def __init__(self) -> None:
        self.acc = array("d")
        self.answer_types, self.question_types = Labels(), Labels()
        self.counts: set[int] = set()

    def update(self, predictions: Sequence[str], answers: Sequence[Sequence[str]], *,
               answer_types: Sequence[str | None] | None = None,
               question_types: Sequence[str | None] | None = None) -> tuple[dict[str, float], ...]:
        n = _check_lengths(predictions=predictions, answers=answers, answer_types=answer_types,
                           question_types=question_types)
        start = len(self.acc)
        for i, (pred, refs) in enumerate(zip(predictions, answers)):
            _check_prediction(pred, f"question {start + i}")
            _check_answers(refs, f"question {start + i}")
            self.counts.add(len(refs))
            self.acc.append(_accuracy(pred, refs))
        self.answer_types.extend(answer_types, n)
        self.question_types.extend(question_types, n)
        return tuple({"accuracy": a} for a in self.acc[start:])

    def compute(self) -> MetricValues:
        backend = {"accuracy": {"implementation": "mmbench.metrics.vqa (official vqaEval.py rules, "
                                                  "GT-Vision-Lab/VQA@a013f00)"}}
        if not self.acc:
            return MetricValues(corpus={}, unavailable={"accuracy": "no questions to score"}, backend=backend)
        parts = vqa_breakdown(self.acc, self.answer_types.values(), self.question_types.values())
        corpus = {"accuracy": parts["accuracy"]}
        corpus.update({f"accuracy/{t}": v for t, v in parts["by_answer_type"].items()})
        corpus.update({f"accuracy/question_type/{t}": v for t, v in parts["by_question_type"].items()})
        warnings: tuple[str, ...] = ()
        if self.counts != {10}:
            warnings = (f"VQA accuracy assumes 10 human answers per question; found counts "
                        f"{sorted(self.counts)} (1 answer always scores 0, <= 3 can never reach 1)",)
        return MetricValues(corpus=corpus, backend=backend, warnings=warnings)


def score_vqa(predictions: Sequence[str], answers: Sequence[Sequence[str]], *,
              answer_types: Sequence[str | None] | None = None,
              question_types: Sequence[str | None] | None = None) -> MetricValues:
    """Official VQA accuracy over a corpus (:class:`VQAAccuracy` in one update).

    ``corpus``: ``"accuracy"`` (mean per-question accuracy, unrounded),
    ``"accuracy/<answer type>"`` for each answer type present (``"accuracy/yes/no"``,
    ``"accuracy/number"``, ``"accuracy/other"`` in VQA) and, when
    ``question_types`` is given, ``"accuracy/question_type/<type>"``.
    ``per_sample``: ``{"accuracy": x}`` per question, in input order.
    No questions gives an empty corpus with ``"accuracy"`` unavailable.
    """
    return whole(VQAAccuracy(), predictions, answers, answer_types=answer_types, question_types=question_types)


class ExactMatch:
    """:func:`exact_match` as a stream (see :class:`VQAAccuracy`)."""

    def __init__(self) -> None:
        self.scores = array("d")
        self.answer_types = Labels()

    def update(self, predictions: Sequence[str], answers: Sequence[str | Sequence[str]], *,
               answer_types: Sequence[str | None] | None = None) -> tuple[dict[str, float], ...]:
        n = _check_lengths(predictions=predictions, answers=answers, answer_types=answer_types)
        start = len(self.scores)
        for i, (pred, refs) in enumerate(zip(predictions, answers)):
            _check_prediction(pred, f"item {start + i}")
            refs = (refs,) if isinstance(refs, str) else refs
            _check_answers(refs, f"item {start + i}")
            accepted = {normalize_answer(r) for r in refs}
            self.scores.append(1.0 if normalize_answer(pred) in accepted else 0.0)
        self.answer_types.extend(answer_types, n)
        return tuple({"exact_match": s} for s in self.scores[start:])

    def compute(self) -> MetricValues:
        if not self.scores:
            return MetricValues(corpus={}, unavailable={"exact_match": "no items to score"})
        corpus = {"exact_match": _mean(self.scores)}
        corpus.update({f"exact_match/{t}": v for t, v in _group_means(self.scores, self.answer_types.values()).items()})
        return MetricValues(corpus=corpus)


def exact_match(predictions: Sequence[str], answers: Sequence[str | Sequence[str]], *,
                answer_types: Sequence[str | None] | None = None) -> MetricValues:
    """1.0 when the normalised prediction equals any normalised reference (:class:`ExactMatch` in one update).

    Unlike the VQA accuracy, both sides are always normalised with
    :func:`normalize_answer`.  Each element of ``answers`` is one reference
    string or a sequence of accepted strings.  ``corpus``: ``{"exact_match": mean}``
    plus ``"exact_match/<type>"`` per answer type when ``answer_types`` is given
    (a None type counts overall only).
    """
    return whole(ExactMatch(), predictions, answers, answer_types=answer_types)


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_BARE_LETTER = re.compile(r"[(\[]?([A-Za-z])[)\]]?[.:,]?")
_KEYWORD_LETTER = re.compile(r"(?i:answer|option|choice)(?:\s+(?i:is))?\s*[:\-]?\s*"
                             r"[(\[]?([A-Z])[)\]]?(?![A-Za-z0-9])"
                             r"(?:\s*(?:[,/&]|\bor\b|\band\b)\s*[(\[]?([A-Z])(?![A-Za-z0-9]))?")  # "A or B"
_LEADING_LETTER = re.compile(r"[(\[]?([A-Z])[)\].:]\s*\S")


def _letter_choice(text: str, n_options: int) -> tuple[str | None, bool]:
    """(letter, ambiguous) from the letter formats, tried in order of explicitness."""
    bare = _BARE_LETTER.fullmatch(text)
    if bare:
        return bare.group(1).upper(), False
    found = list(_KEYWORD_LETTER.finditer(text))
    keyed = {m.group(1) for m in found}
    if any(m.group(2) and _LETTERS.index(m.group(2)) < n_options for m in found):
        return None, True
    if keyed:
        return (keyed.pop(), False) if len(keyed) == 1 else (None, True)
    lead = _LEADING_LETTER.match(text)
    return (lead.group(1), False) if lead else (None, False)


def _text_choice(text: str, options: Sequence[str]) -> int | None:
    said = normalize_answer(text)
    opts = [normalize_answer(o) for o in options]
    equal = [i for i, o in enumerate(opts) if o and o == said]
    if equal:
        return equal[0] if len(equal) == 1 else None
    inside = [i for i, o in enumerate(opts) if o and f" {o} " in f" {said} "]
    return inside[0] if len(inside) == 1 else None


def parse_choice(output: str, options: Sequence[str]) -> int | None:
    """Index of the option a model's ``output`` chose, or None.  Never guesses.

    Letter formats (option i is ``"ABC..."[i]``): a bare letter ``"B"``, ``"b"``,
    ``"(B)"``, ``"B."``; a keyword ``"Answer: B"``, ``"The answer is (B)"``,
    ``"Option C"``; a leading label ``"B. dog"``, ``"(B) dog"``.  Otherwise the
    option text: the normalised output equals exactly one normalised option,
    or contains exactly one as whole words (a letter beyond the options is
    ignored, so ``"z"`` can pick the option "z").  None when nothing matches,
    several letters (``"A or B"``) or options match, or the letter and the text
    name different options (``"B. cat"`` when "cat" is option A).

    >>> parse_choice("The answer is (B).", ["cat", "dog"])
    1
    >>> parse_choice("a cat or a dog", ["cat", "dog"]) is None
    True
    """
    if not isinstance(output, str):
        raise ValueError(f"output must be a str, got {type(output).__name__}")
    if not 1 <= len(options) <= len(_LETTERS):
        raise ValueError(f"need 1..{len(_LETTERS)} options, got {len(options)}")
    text = output.replace("*", "").strip().strip("\"'`").strip()
    letter, ambiguous = _letter_choice(text, len(options))
    if ambiguous:
        return None
    by_letter = None
    if letter is not None and _LETTERS.index(letter) < len(options):
        by_letter = _LETTERS.index(letter)
    by_text = _text_choice(text, options)
    if by_letter is not None and by_text is not None and by_letter != by_text:
        return None
    return by_letter if by_letter is not None else by_text


def multiple_choice_accuracy(outputs: Sequence[str], options_list: Sequence[Sequence[str]],
                             correct_indices: Sequence[int]) -> MetricValues:
    """Share of outputs that :func:`parse_choice` maps to the correct option.

    Unparseable outputs count as wrong.  ``corpus``: ``{"mc_accuracy": mean,
    "unparseable": count}`` (the count as a float); ``per_sample``:
    ``{"mc_accuracy": 0/1, "unparseable": 0/1}``.
    """
    _check_lengths(outputs=outputs, options_list=options_list, correct_indices=correct_indices)
    per_sample = []
    for i, (out, options, correct) in enumerate(zip(outputs, options_list, correct_indices)):
        _check_prediction(out, f"item {i}")
        if isinstance(options, str) or not isinstance(options, Sequence) or not options:
            raise ValueError(f"item {i}: options must be a non-empty sequence of str")
        if isinstance(correct, bool) or not isinstance(correct, int) or not 0 <= correct < len(options):
            raise ValueError(f"item {i}: correct index {correct!r} is not in 0..{len(options) - 1}")
        choice = parse_choice(out, options)
        per_sample.append({"mc_accuracy": float(choice == correct),
                           "unparseable": float(choice is None)})
    if not per_sample:
        return MetricValues(corpus={}, unavailable={"mc_accuracy": "no items to score"})
    return MetricValues(corpus={"mc_accuracy": _mean([s["mc_accuracy"] for s in per_sample]),
                                "unparseable": sum(s["unparseable"] for s in per_sample)},
                        per_sample=tuple(per_sample))


VQA_ACCURACY = MetricSpec(
    name="vqa-accuracy", fn=score_vqa, version="1", primary="accuracy",
    description="official VQA accuracy (10 human answers, leave-one-out), overall and per answer type",
    outputs=(Output("accuracy"),
             Output("accuracy/*", per_sample=False)),  # the mean over the questions of one answer/question type
    sample_fields={"answer_types": "answer_type", "question_types": "question_type"}, stream=VQAAccuracy)

EXACT_MATCH = MetricSpec(
    name="exact-match", fn=exact_match, version="1", primary="exact_match",
    description="exact match after the official VQA answer normalisation (single-answer data)",
    outputs=(Output("exact_match"), Output("exact_match/*", per_sample=False)),
    sample_fields={"answer_types": "answer_type"}, stream=ExactMatch)
