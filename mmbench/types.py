"""The data that flows through mmbench.

These frozen dataclasses are the only contract between tasks and models: a task
turns dataset rows into :class:`Sample` objects and builds :class:`GenerateRequest`
objects from them; a model adapter turns requests into :class:`ModelOutput`
objects; the task scores the outputs (the run's results model is :mod:`mmbench.results`).  Nothing here
imports from the rest of the package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A lazily decoded image: a file path, raw encoded bytes, or an in-memory image.

    Exactly one of ``path``, ``data`` or ``pil`` is set.  Decoding (and the
    conversion to 8-bit RGB with EXIF rotation applied) happens in
    :func:`mmbench.images.load_image`, so that a broken image fails its own
    sample, not the whole dataset load.
    """

    path: str | None = None
    data: bytes | None = field(default=None, repr=False)
    pil: Any = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        if self.path is not None:
            return self.path
        if self.data is not None:
            return f"<{len(self.data)} encoded bytes>"
        return "<in-memory image>"


@dataclass(frozen=True, slots=True)
class Sample:
    """One evaluation item.

    ``id`` is unique within a task.  ``text`` is the question (VQA) or None
    (captioning).  ``references`` are the ground-truth strings (reference captions,
    human answers).  ``meta`` carries task-specific fields (answer type, ...).
    ``error`` is set when the row could not be turned into a usable sample (a
    missing field, say); such a sample is never sent to a model, but is recorded
    and counted as failed.
    """

    id: str
    images: tuple[ImageRef, ...] = ()
    text: str | None = None
    references: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings.  Greedy by default; recorded in the task fingerprint."""

    max_new_tokens: int = 32
    num_beams: int = 1
    do_sample: bool = False
    temperature: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_new_tokens": self.max_new_tokens,
            "num_beams": self.num_beams,
            "do_sample": self.do_sample,
            "temperature": self.temperature,
        }


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """Ask a model for text about the images.

    ``prompt`` is the user text for instruction-following models; plain captioners
    (BLIP, GIT, ViT+GPT-2) ignore it unless ``prompt_is_prefix`` says the model
    should continue the text (conditional captioning).  ``question`` is the bare
    question of a VQA sample, for VQA heads that are trained on questions alone.
    """

    id: str
    images: tuple[ImageRef, ...]
    prompt: str | None = None
    prompt_is_prefix: bool = False
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    #: the bare question, for VQA heads (BLIP-VQA, ViLT) that take it without instructions
    question: str | None = None


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """Ask an embedding model (CLIP, SigLIP, ...) for the embedding of one image or one text.

    Exactly one of ``images`` (one image) and ``text`` is given.  The adapter
    returns an L2-normalised float32 vector in :attr:`ModelOutput.embedding`.
    Generative and embedding models share the rest of the contract (batching,
    failure isolation, caching), so a task may ask either kind of model.
    """

    id: str
    images: tuple[ImageRef, ...] = ()
    text: str | None = None

    @property
    def modality(self) -> str:
        return "image" if self.images else "text"


@dataclass(frozen=True, slots=True)
class ScoreRequest:
    """Ask a model how likely each candidate continuation is, given the images and a context.

    The model answers with one ``(sum of token log-probabilities, token count)`` pair per
    continuation, in order (:attr:`ModelOutput.scores`), so both the total and the
    per-token mean log-likelihood are available.  The continuation is scored *after*
    ``prompt``: for a captioner, ``prompt`` is a text prefix of the caption (usually none);
    for a chat VLM, ``prompt`` is the user turn (after the images) and the continuation is
    the assistant's answer, exactly where generation would start.  A continuation carries
    its own leading space where the model's tokenizer needs one ("The answer is" + " red").
    Padding never counts: batch size does not change a score beyond float noise
    (``docs/likelihood.md`` states the tolerance).

    Image-text-matching heads (BLIP ITM) answer ``(log P(match), 1)`` for the text
    ``prompt + continuation``: the "likelihood" of a match, one "token".

    Example: ``ScoreRequest("q1", (img,), prompt=None, continuations=("a red circle", "a blue
    square"))`` -> ``ModelOutput("q1", scores=((-1.2, 3), (-9.8, 3)))``.
    """

    id: str
    images: tuple[ImageRef, ...]
    continuations: tuple[str, ...]
    prompt: str | None = None


@dataclass(frozen=True)
class GenerateImageRequest:
    """Ask a text-to-image model for one image of ``prompt``.

    ``seed`` seeds this request's own noise generator (the runner derives it from the run seed
    and the request id, :func:`mmbench.runner.plan.image_seed`), so an image never depends on
    which other requests share its batch or process.  The adapter answers with PNG bytes in
    :attr:`ModelOutput.image`; its sampling settings (steps, guidance scale, scheduler, size)
    belong to the model and are in its fingerprint.

    Example: ``GenerateImageRequest("p1", prompt="a red circle", seed=123)`` ->
    ``ModelOutput("p1", image=b"\\x89PNG...")``.
    """

    id: str
    prompt: str
    seed: int = 0
    #: what the image must not show (classifier-free guidance's negative prompt); None: the empty prompt
    negative_prompt: str | None = None

    @property
    def images(self) -> tuple[ImageRef, ...]:
        return ()


@dataclass(frozen=True)
class ModelOutput:
    """What a model returned for one request: text, an embedding or scores, or an error saying why not."""

    id: str
    text: str | None = None
    error: str | None = None
    #: for an :class:`EmbedRequest`: a 1-D float32 numpy array of unit L2 norm
    embedding: Any = field(default=None, repr=False, compare=False)
    #: for an error raised by code (not a data error): the full traceback, kept in the run folder
    traceback: str | None = field(default=None, repr=False, compare=False)
    #: for a :class:`ScoreRequest`: one ``(sum of token log-probs, n_tokens)`` per continuation
    scores: tuple[tuple[float, int], ...] | None = None
    #: for a :class:`GenerateImageRequest`: the generated image, PNG-encoded
    image: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def value(self) -> Any:
        """What the request asked for: the scores, the image (PNG bytes), the embedding, else the text."""
        if self.scores is not None:
            return self.scores
        if self.image is not None:
            return self.image
        return self.text if self.embedding is None else self.embedding


@dataclass(frozen=True)
class MetricValues:
    """The result of a metric computation.

    ``corpus``: metric name -> value (None never appears: unavailable metrics go
    to ``unavailable`` with the reason).  ``per_sample``: one dict of metric name
    -> value per input, in input order (may be empty when a metric has no
    per-sample form).  ``backend``: metric name -> how it was computed
    (implementation, tokenizer).  ``warnings``: things a reader must know.
    """

    corpus: Mapping[str, float]
    per_sample: tuple[Mapping[str, float], ...] = ()
    unavailable: Mapping[str, str] = field(default_factory=dict)
    backend: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SampleRecord:
    """One line of ``predictions/<task>.jsonl``."""

    id: str
    prompt_hash: str | None
    raw_output: str | None
    prediction: str | None
    references: tuple[str, ...]
    scores: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
