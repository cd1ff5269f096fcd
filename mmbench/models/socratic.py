"""Socratic pipelines: a describer looks at the images, a text-only reasoner answers from its words.

Two registered (or local, or hub) models are chained through text, as in Socratic Models
(Zeng et al., 2022):

1. **describe**: the request's images go to the *describer* (a captioner, or a VLM prompted with
   ``describe_prompt``), which writes a description;
2. **reason**: the *reasoner* (a text-only causal LM, :mod:`mmbench.models.hf_lm`, or any adapter
   that answers a prompt without images) gets ``template`` filled with ``{description}``,
   ``{prompt}`` (the task's whole prompt: question, options, answer instruction) and
   ``{question}`` (the bare question; the prompt when there is none), and its answer is the
   pipeline's output.

Every generative task runs unchanged: VQA and multiple choice (the options are in ``{prompt}``),
and captioning, where the reasoner rewrites the description as the task's caption prompt asks.

Example::

    mmbench eval --adapter socratic --model my-pipeline --tasks easyvqa_vqa \\
        --model-arg describer=easyvqa-captioner --model-arg reasoner=path/to/lm \\
        --model-arg template='Image: {description}\\n{prompt}'

Both stages run batched: a batch's describe requests are deduplicated by image content and
describe prompt (easy-VQA asks ~10 questions per image: each image is described once per run),
then its reasoner requests run as one batch.  The fingerprint holds both models' fingerprint
hashes, the describe prompt (as the describer renders it), its decoding settings and the
template; the runner's cache stores the pipeline's answers under it.  The description of each
sample is written to ``predictions/<task>.jsonl`` as ``meta.intermediate``
(:meth:`SocraticPipeline.intermediate`); on a re-run served from the cache the descriptions are
recomputed by the describer alone (deterministic under greedy decoding, and identified by the
describer's hash in the fingerprint).
"""

from __future__ import annotations

from typing import Any, Sequence

from mmbench.errors import ModelLoadError
from mmbench.models.base import ModelAdapter, PreparedBatch, _failure
from mmbench.types import GenerateRequest, GenerationSettings, ModelOutput

DEFAULT_DESCRIBE_PROMPT = "Describe the image in a few words."
DEFAULT_TEMPLATE = "Image description: {description}\n{prompt}"
_FIELDS = {"description": "a red circle", "prompt": "what color is the shape?", "question": "what color?"}


class SocraticPipeline(ModelAdapter):
    """``describer`` and ``reasoner``: a registered model name, a local checkpoint folder or a hub
    id (chosen as ``--model`` would be; ``describer_adapter``/``reasoner_adapter`` force an
    adapter).  ``describe_max_new_tokens``: the describer's token budget (the task's settings
    govern the reasoner's answer).  ``path`` (``--model`` with ``--adapter socratic``) only names
    the pipeline."""

    adapter = "socratic"
    capabilities = frozenset({"generate"})
    fingerprint_identifies_content = True  # both models' hashes and the templates
    #: ``--model`` names the pipeline; nothing is read from it
    resolves_own_path = True
    #: the stages' full fingerprints, recorded for readers; their hashes are what is hashed
    DERIVED_KEYS = ModelAdapter.DERIVED_KEYS | {"describer", "reasoner"}

    def __init__(self, name: str, *, describer: str | None = None, reasoner: str | None = None,
                 describe_prompt: str = DEFAULT_DESCRIBE_PROMPT, template: str = DEFAULT_TEMPLATE,
                 describe_max_new_tokens: int | str = 32, describer_adapter: str | None = None,
                 reasoner_adapter: str | None = None, path: str | None = None, device: str = "auto",
                 dtype: str = "auto", **_: Any):
        super().__init__(name, device=device, dtype=dtype)
        if not describer or not reasoner:
            raise ModelLoadError("the socratic adapter needs two models: --model-arg describer=<model> "
                                 "--model-arg reasoner=<model>")
        try:
            template.format(**_FIELDS)
        except (KeyError, IndexError, ValueError) as exc:
            raise ModelLoadError(f"socratic template {template!r} is not usable ({exc!r}); it may use "
                                 f"{{description}}, {{prompt}} and {{question}}") from None
        from mmbench.models.resolve import load_model  # models resolve lazily; no import cycle at load

        self.describer = load_model(describer, adapter=describer_adapter, device=device, dtype=dtype)
        self.reasoner = load_model(reasoner, adapter=reasoner_adapter, device=device, dtype=dtype)
        for role, model in (("describer", self.describer), ("reasoner", self.reasoner)):
            if "generate" not in model.capabilities:
                raise ModelLoadError(f"socratic {role} {model.name!r} ({model.adapter}) cannot generate text")
        self.describe_prompt = describe_prompt
        self.template = template
        self.describe_generation = GenerationSettings(max_new_tokens=int(describe_max_new_tokens))
        #: describe-request identity (images by content + prompt) -> description, for this process
        self._descriptions: dict[str, str] = {}
        #: request id -> the description its answer was reasoned from
        self._traces: dict[str, str] = {}

    # -- identity -----------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        d, r = self.describer.fingerprint(), self.reasoner.fingerprint()
        self.fingerprint_info = {
            "describer_hash": d["hash"], "reasoner_hash": r["hash"],
            "describe_prompt": self.describer.render_prompt(self.describe_prompt),
            "describe_generation": self.describe_generation.as_dict(), "template": self.template,
            "describer": d, "reasoner": r}
        return super().fingerprint()

    def info(self) -> dict[str, Any]:
        d, r = self.describer.info(), self.reasoner.info()
        sizes = [i.get("n_parameters") for i in (d, r)]
        return {"device": self.device, "dtype": self.dtype_name,
                "n_parameters": sum(sizes) if all(isinstance(n, int) for n in sizes) else None,
                "sparsity": None, "describer": {"name": self.describer.name, **d},
                "reasoner": {"name": self.reasoner.name, **r}}

    # -- inference ----------------------------------------------------------
    def prepare(self, requests: Sequence[GenerateRequest]) -> PreparedBatch:
        """Nothing to do ahead: each stage prepares its own inputs when :meth:`run` calls it."""
        return PreparedBatch(ids=[r.id for r in requests], requests=list(requests))

    def run(self, batch: PreparedBatch) -> list[ModelOutput]:
        """Describe the batch's images (each distinct one once), then reason over the descriptions."""
        described, failures = self._describe(batch.requests)
        prompts = [GenerateRequest(id=req.id, images=(), prompt=self.reasoner_prompt(req, described[req.id]),
                                   generation=req.generation)
                   for req in batch.requests if req.id in described]
        answers = {out.id: out for out in self.reasoner.generate(prompts)} if prompts else {}
        self._traces.update(described)
        outputs = {**failures, **answers}
        return [outputs[i] for i in batch.ids]

    def reasoner_prompt(self, request: GenerateRequest, description: str) -> str:
        """The reasoner's prompt for ``request`` given its image description.

        >>> p = SocraticPipeline.__new__(SocraticPipeline); p.template = DEFAULT_TEMPLATE
        >>> p.reasoner_prompt(GenerateRequest("q", (), prompt="is it red?\\nAnswer yes or no."), "a red circle")
        'Image description: a red circle\\nis it red?\\nAnswer yes or no.'
        """
        prompt = request.prompt or request.question or ""
        return self.template.format(description=description, prompt=prompt, question=request.question or prompt)

    def intermediate(self, requests: Sequence[Any], batch_size: int = 32) -> dict[str, str]:
        """Request id -> the description the reasoner was given, for the predictions file.  Requests
        this process did not run (served from the cache, or by another process) are described now,
        by the describer alone; a request whose images fail to decode has none."""
        requests = [r for r in requests if isinstance(r, GenerateRequest)]
        missing = [r for r in requests if r.id not in self._traces]
        for start in range(0, len(missing), batch_size):
            described, _ = self._describe(missing[start:start + batch_size])
            self._traces.update(described)
        return {r.id: self._traces[r.id] for r in requests if r.id in self._traces}

    def _describe(self, requests: Sequence[GenerateRequest]) -> tuple[dict[str, str], dict[str, ModelOutput]]:
        """(request id -> description, request id -> error output): stage 1, one describer request
        per distinct (images, describe prompt) not described before in this process."""
        from mmbench.cache import request_hash

        keys: dict[str, str] = {}
        todo: dict[str, GenerateRequest] = {}
        failures: dict[str, ModelOutput] = {}
        for req in requests:
            ask = GenerateRequest(id="describe", images=req.images, prompt=self.describe_prompt,
                                  generation=self.describe_generation)
            try:
                key = request_hash(ask)
            except Exception as exc:  # noqa: BLE001 - an unreadable in-memory image: this sample's failure
                failures[req.id] = _failure(req.id, exc)
                continue
            keys[req.id] = key
            if key not in self._descriptions and key not in todo:
                todo[key] = GenerateRequest(id=key, images=req.images, prompt=self.describe_prompt,
                                            generation=self.describe_generation)
        errors: dict[str, str] = {}
        if todo:
            for out in self.describer.generate(list(todo.values())):
                if out.ok:
                    self._descriptions[out.id] = out.text or ""
                else:
                    errors[out.id] = out.error or "unknown error"
        described = {}
        for rid, key in keys.items():
            if key in self._descriptions:
                described[rid] = self._descriptions[key]
            else:
                failures[rid] = ModelOutput(rid, error=f"describer {self.describer.name}: {errors.get(key)}")
        return described, failures
