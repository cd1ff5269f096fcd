"""Models behind an OpenAI-compatible chat-completions endpoint (vLLM, SGLang, hosted APIs).

Each request becomes one ``POST {base_url}/chat/completions`` with a single user
turn: one ``image_url`` part per image (a base64 data URL of the decoded RGB
image, PNG unless ``image_format`` says otherwise, so the server sees the same
pixels a local adapter would), then one text part (the prompt, else the bare
question).  Decoding is greedy (``temperature`` 0) unless the request samples
(beam search is refused: the API has none); ``max_tokens`` is ``max_new_tokens``; ``n`` is 1;
a fixed ``seed`` is sent (servers that ignore it lose nothing).  The answer is
``choices[0].message.content``, stripped as the local adapters strip theirs.

Score requests (:class:`~mmbench.types.ScoreRequest`), only with
``score_protocol="vllm-prompt-logprobs"`` (``--model-arg score_protocol=vllm-prompt-logprobs``):
each continuation is one chat-completions request whose messages are the user turn above and
an assistant turn holding the continuation, with vLLM's extra parameters
``add_generation_prompt: false, continue_final_message: true, prompt_logprobs: 0`` (and
``max_tokens: 1``, the least vLLM accepts).  The server renders the conversation with its chat
template, stopping right after the continuation, and returns ``prompt_logprobs``: per prompt
token ``null`` (the first) or ``{token_id: {"logprob", "rank", "decoded_token"}}``, the
prompt's own token first.  The continuation's tokens are found from the token offsets (the
running sum of the decoded tokens' lengths, what ``text_offset`` is on the completions
endpoint): the last tokens of the prompt that cover the continuation's text, a token merged
across the boundary counting as the continuation's (as in the hf-vlm adapter); their
log-probabilities are summed.  The completions endpoint's ``echo`` + ``logprobs`` would give
``text_offset`` directly, but it takes no images.  The first score request is sent alone
and checks that the endpoint returns prompt logprobs; if it does not (a hosted API that drops
unknown parameters, an old vLLM), that request, and every later one without being sent, raises
one :class:`~mmbench.errors.MMBenchError` saying so (the run stops with it) rather than failing
sample after sample.  docs/likelihood.md shows how the rendering differs from the hf-vlm adapter's.

Failure policy, per request (the rest of the batch is unaffected):

* 429, 5xx, connection errors and timeouts are retried up to ``max_retries``
  times with exponential backoff and jitter, honouring ``Retry-After`` (capped at
  ``max_backoff``);
* other 4xx, a body that is not JSON, or a missing ``message.content`` fail at
  once;
* a request that still fails gets ``ModelOutput(error="HTTP 503 after 5 retries:
  ...")`` - never a made-up answer.

The API key is read from the environment variable named by ``api_key_env`` at
each request and never kept on the adapter; it is redacted from every error text
and appears in no fingerprint or info.

Written on the standard library (``urllib`` + a thread pool) rather than an HTTP
client package: mmbench does not otherwise depend on one, and a JSON POST with
retries is all that is needed.  ``timeout`` applies to each socket operation.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mmbench.errors import MMBenchError, ModelLoadError
from mmbench.models.base import ModelAdapter, PreparedBatch, _describe, _output
from mmbench.types import GenerateRequest, ModelOutput, ScoreRequest

#: fields of a GET /models entry that identify the served weights (``created`` changes on every restart)
_MODEL_ID_FIELDS = ("id", "root", "parent", "revision", "owned_by")
_IMAGE_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "jpg": ("JPEG", "image/jpeg"),
                  "webp": ("WEBP", "image/webp")}
_JITTER = random.Random()  # its own generator: the runner seeds the global one, and jitter should not repeat
#: the score protocols the adapter speaks (module docstring)
SCORE_PROTOCOLS = ("vllm-prompt-logprobs",)
#: HTTP statuses that, on the first score request, mean "the endpoint does not take these parameters"
_UNSUPPORTED_STATUSES = (400, 404, 405, 422, 501)


class RequestFailed(MMBenchError):
    """One chat-completions request failed for good (its text is already redacted)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class NoPromptLogprobs(MMBenchError):
    """A 200 reply to a score request without usable ``prompt_logprobs``."""


def continuation_logprob(prompt_logprobs: Any, continuation: str) -> tuple[float, int]:
    """``(sum of log-probs, n tokens)`` of the last prompt tokens that cover ``continuation``.

    ``prompt_logprobs`` is vLLM's list: ``None`` for the first token, then one
    ``{token_id: {"logprob": float, "decoded_token": str, ...}}`` per token whose first entry
    is the prompt's own token.  The token offsets are the running sums of the decoded tokens'
    lengths; walking back from the end, the tokens whose text overlaps the last
    ``len(continuation.strip())`` characters are the continuation's (a token that straddles
    the boundary is included), and their text must end with the continuation.

    >>> lp = [None, {"7": {"logprob": -0.5, "decoded_token": "Q:"}}, {"9": {"logprob": -0.25, "decoded_token": " Yes"}}]
    >>> continuation_logprob(lp, "Yes")
    (-0.25, 1)
    """
    target = continuation.strip()
    if not isinstance(prompt_logprobs, list) or not prompt_logprobs:
        raise NoPromptLogprobs(f"the reply has no prompt_logprobs list (got {type(prompt_logprobs).__name__})")
    if not target:
        raise MMBenchError("cannot score an empty continuation through prompt logprobs")
    total, n, text = 0.0, 0, ""
    for entry in reversed(prompt_logprobs):
        if len(text) >= len(target):
            break
        if not isinstance(entry, dict) or not entry:
            raise NoPromptLogprobs("prompt_logprobs ran out (a null or empty entry) before covering the "
                                   f"continuation {continuation!r}")
        first = next(iter(entry.values()))
        if not isinstance(first, dict) or not isinstance(first.get("decoded_token"), str) \
                or not isinstance(first.get("logprob"), (int, float)):
            raise NoPromptLogprobs(f"a prompt_logprobs entry lacks logprob/decoded_token: {str(entry)[:120]}")
        total += float(first["logprob"])
        n += 1
        text = first["decoded_token"] + text
    if not text.rstrip().endswith(target):
        raise MMBenchError(f"the prompt the endpoint scored does not end with the continuation {continuation!r} "
                           f"(its last tokens read {text[-80:]!r}): does it honour continue_final_message?")
    return total, n


class _Retryable(Exception):
    def __init__(self, summary: str, detail: str = "", retry_after: float | None = None):
        super().__init__(summary)
        self.summary, self.detail, self.retry_after = summary, detail, retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/invalid.

    >>> parse_retry_after("2"), parse_retry_after("soon")
    (2.0, None)
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def backoff_delay(attempt: int, *, base: float, cap: float, retry_after: float | None = None) -> float:
    """Seconds to sleep before retry number ``attempt + 1`` (``attempt`` counts from 0).

    ``Retry-After`` wins when the server sends it (capped at ``cap``); otherwise
    ``base * 2**attempt`` capped at ``cap``, times a random factor in [0.5, 1] so
    that clients throttled together do not retry together.
    """
    if retry_after is not None:
        return min(retry_after, cap)
    return min(cap, base * 2 ** attempt) * _JITTER.uniform(0.5, 1.0)


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment (what may be recorded)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class OpenAIChatModel(ModelAdapter):
    """A model served behind ``{base_url}/chat/completions``.

    ``base_url`` defaults to the ``MMBENCH_API_BASE`` environment variable.
    ``model`` is the served model name; without it, the only model the server's
    ``GET /models`` lists, else the adapter's ``name``.  That model's ``GET /models``
    entry (id, root, revision...) goes into the fingerprint.  ``concurrency``
    requests of a batch are in flight at once (use a ``--batch-size`` of at least
    that).  ``backoff``/``max_backoff`` shape the retry delays (seconds).
    """

    adapter = "openai-chat"

    def __init__(self, name: str, *, base_url: str | None = None, model: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8, max_retries: int = 5,
                 timeout: float = 60.0, image_format: str = "png", seed: int | None = 0,
                 backoff: float = 1.0, max_backoff: float = 60.0, score_protocol: str | None = None,
                 dtype: str = "auto", device: str = "auto", revision: str | None = None,
                 trust_remote_code: bool = False, **unknown: Any):
        # device, dtype, revision and trust_remote_code are passed to every adapter; they mean nothing here.
        if unknown:
            raise ModelLoadError(f"unknown option(s) for the openai-chat adapter: {', '.join(sorted(unknown))}")
        super().__init__(name, device="cpu", dtype=dtype)
        self.device = "remote"
        base_url = base_url or os.environ.get("MMBENCH_API_BASE")
        if not base_url:
            raise ModelLoadError("the openai-chat adapter needs an endpoint: --model-arg base_url=http://HOST:PORT/v1 "
                                 "(or set MMBENCH_API_BASE)")
        parts = urlsplit(str(base_url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelLoadError(f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, "
                                 f"not {public_url(str(base_url))!r}")
        if parts.username or parts.password:
            raise ModelLoadError(f"base_url must not carry credentials; put the key in the environment variable "
                                 f"{api_key_env} (see api_key_env)")
        self.base_url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self._query = f"?{parts.query}" if parts.query else ""  # e.g. api-version=...; never recorded
        self.api_key_env = str(api_key_env)
        try:
            self.concurrency, self.max_retries = int(concurrency), int(max_retries)
            self.timeout, self.backoff, self.max_backoff = float(timeout), float(backoff), float(max_backoff)
            self.seed = None if seed is None else int(seed)
        except (TypeError, ValueError) as exc:
            raise ModelLoadError(f"bad numeric option for the openai-chat adapter: {exc}") from None
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout <= 0:
            raise ModelLoadError("concurrency must be >= 1, max_retries >= 0 and timeout > 0")
        self.image_format = str(image_format).lower()
        if self.image_format not in _IMAGE_FORMATS:
            raise ModelLoadError(f"image_format must be one of {sorted(_IMAGE_FORMATS)}, not {image_format!r}")
        if score_protocol is not None and score_protocol not in SCORE_PROTOCOLS:
            raise ModelLoadError(f"score_protocol must be one of {list(SCORE_PROTOCOLS)}, not {score_protocol!r}")
        self.score_protocol = score_protocol
        if score_protocol is not None:
            self.capabilities = frozenset({"generate", "score"})
        # the first score request checks that the endpoint returns prompt logprobs: None = not yet checked,
        # True = it does, an MMBenchError = it does not (raised for every later score request)
        self._score_support: bool | MMBenchError | None = None
        self._probe_lock = threading.Lock()
        listed = self._list_models()
        ids = [str(m.get("id")) for m in listed]
        if model is not None:  # may be an alias a gateway accepts without listing it
            self.model = str(model)
        elif len(ids) == 1:
            self.model = ids[0]
        elif not ids or name in ids:
            self.model = name
        else:
            raise ModelLoadError(f"{public_url(self.base_url)} serves {ids}; choose one with "
                                 "--model-arg model=<name>")
        server_model = next((m for m in listed if str(m.get("id")) == self.model), None)
        self.fingerprint_info = {
            "base_url": public_url(self.base_url),
            "served_model": self.model,
            "server_model": ({k: server_model[k] for k in _MODEL_ID_FIELDS if server_model.get(k) is not None}
                             if server_model else None),
            "image_format": self.image_format,
        }
        if score_protocol is not None:  # recorded only when set: generation fingerprints stay as they were
            self.fingerprint_info["score_protocol"] = score_protocol

    # -- identity -----------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {"device": self.device, "endpoint": public_url(self.base_url), "served_model": self.model,
                "concurrency": self.concurrency, "max_retries": self.max_retries, "timeout_s": self.timeout}

    # -- HTTP -----------------------------------------------------------------
    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env)
        return text.replace(key, "***") if key and len(key) >= 4 else text

    def _request(self, method: str, route: str, body: bytes | None = None) -> tuple[int, Mapping[str, str], bytes]:
        """One HTTP exchange: ``(status, headers, body)`` for any status; raises on transport errors."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base_url + route + self._query, data=body, headers=headers, method=method)
        key = os.environ.get(self.api_key_env)
        if key:  # "unredirected": urllib must not forward the key to wherever a redirect points
            req.add_unredirected_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            try:
                data = exc.read()
            except (OSError, http.client.HTTPException, AttributeError):
                data = b""
            finally:
                exc.close()
            return exc.code, exc.headers, data

    def _list_models(self) -> list[dict[str, Any]]:
        """The entries of ``GET /models`` ([] when the server has no such route)."""
        try:
            status, _, data = self._request("GET", "/models")
        except (OSError, http.client.HTTPException) as exc:
            raise ModelLoadError(f"cannot reach {public_url(self.base_url)}: "
                                 f"{self._redact(_transport_error(exc, self.timeout))}") from None
        if status in (401, 403):
            raise ModelLoadError(f"{public_url(self.base_url)} refused the API key (HTTP {status}); "
                                 f"set the environment variable {self.api_key_env}")
        if status != 200:
            return []
        try:
            entries = json.loads(data).get("data") or []
        except (ValueError, AttributeError):
            return []
        return [e for e in entries if isinstance(e, dict) and e.get("id") is not None]

    def _post_once(self, body: bytes) -> dict[str, Any]:
        """One attempt.  Returns the parsed reply; raises _Retryable or RequestFailed."""
        try:
            status, headers, data = self._request("POST", "/chat/completions", body)
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(_transport_error(exc, self.timeout)) from None
        snippet = data[:300].decode("utf-8", "replace").strip()
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}", snippet, parse_retry_after(headers.get("Retry-After")))
        if status != 200:
            raise RequestFailed(self._redact(f"HTTP {status}: {snippet}"), status)
        try:
            reply = json.loads(data)
        except ValueError:
            raise RequestFailed(self._redact(f"HTTP 200 with a body that is not JSON: {snippet}")) from None
        if not isinstance(reply, dict):
            raise RequestFailed(self._redact(f"HTTP 200 with a body that is not a JSON object: {snippet}"))
        return reply

    def _answer(self, reply: dict[str, Any]) -> str:
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            snippet = json.dumps(reply)[:300]
            raise RequestFailed(self._redact(f"the response has no choices[0].message.content: {snippet}"))
        return content.strip()

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        attempt = 0
        while True:
            try:
                return self._post_once(body)
            except _Retryable as exc:
                if attempt >= self.max_retries:
                    detail = f": {exc.detail}" if exc.detail else ""
                    raise RequestFailed(self._redact(f"{exc.summary} after {attempt} retries{detail}")) from None
                time.sleep(backoff_delay(attempt, base=self.backoff, cap=self.max_backoff,
                                         retry_after=exc.retry_after))
                attempt += 1

    # -- inference ----------------------------------------------------------
    def _user_turn(self, text: str, images: Sequence[Any]) -> dict[str, Any]:
        """The user message: one data-URL ``image_url`` part per image, then the text."""
        pil_format, mime = _IMAGE_FORMATS[self.image_format]
        content: list[dict[str, Any]] = []
        for img in images:
            buf = io.BytesIO()
            img.save(buf, format=pil_format)
            url = f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"
            content.append({"type": "image_url", "image_url": {"url": url}})
        content.append({"type": "text", "text": text})
        return {"role": "user", "content": content}

    def build_score_payloads(self, request: ScoreRequest, images: Sequence[Any]) -> list[dict[str, Any]]:
        """One chat-completions body per continuation of ``request`` (module docstring)."""
        if not request.continuations:
            raise MMBenchError(f"score request {request.id!r} has no continuation to score")
        user = self._user_turn(request.prompt or "", images)
        payloads = []
        for cont in request.continuations:
            if not isinstance(cont, str) or not cont.strip():
                raise MMBenchError(f"score request {request.id!r}: cannot score the continuation {cont!r}")
            payload = {"model": self.model, "messages": [user, {"role": "assistant", "content": cont}],
                       "add_generation_prompt": False, "continue_final_message": True, "prompt_logprobs": 0,
                       "max_tokens": 1, "temperature": 0, "n": 1, "stream": False}
            if self.seed is not None:
                payload["seed"] = self.seed
            payloads.append(payload)
        return payloads

    def build_payload(self, request: GenerateRequest, images: Sequence[Any]) -> dict[str, Any]:
        """The chat-completions body for ``request`` (``images`` already decoded to RGB)."""
        if isinstance(request, ScoreRequest):
            return self.build_score_payloads(request, images)  # type: ignore[return-value]
        gen = request.generation
        if gen.num_beams != 1:
            raise MMBenchError(f"num_beams={gen.num_beams}: chat-completions endpoints do not offer beam search")
        user = self._user_turn(request.prompt or request.question or "", images)
        payload: dict[str, Any] = {"model": self.model, "messages": [user],
                                   "max_tokens": gen.max_new_tokens, "n": 1, "stream": False}
        if not gen.do_sample:
            payload["temperature"] = 0
        elif gen.temperature is not None:
            payload["temperature"] = gen.temperature
        if self.seed is not None:
            payload["seed"] = self.seed
        return payload

    # The runner calls prepare() (base class: decode images, then _preprocess) in a background
    # thread for the next batch while run() sends this one.
    def _preprocess(self, requests: Sequence[GenerateRequest], images: Sequence[list[Any]]) -> list[Any]:
        """One payload per request, or the exception that stopped it (never raises for one request)."""
        payloads: list[Any] = []
        for req, imgs in zip(requests, images):
            try:
                payloads.append(self.build_payload(req, imgs))
            except Exception as exc:  # noqa: BLE001 - becomes that sample's error in run()
                payloads.append(exc)
        return payloads

    def _send(self, request: GenerateRequest | ScoreRequest, payload: Any) -> ModelOutput:
        if isinstance(request, ScoreRequest):
            return self._send_score(request, payload)
        try:
            if isinstance(payload, BaseException):
                raise payload
            text = self._answer(self._post(payload))
        except Exception as exc:  # noqa: BLE001 - recorded per sample, not swallowed
            return ModelOutput(request.id, error=self._redact(_describe(exc)))
        return ModelOutput(request.id, text=text)

    def _unsupported(self, detail: str) -> MMBenchError:
        return MMBenchError(
            f"model {self.name!r} (openai-chat) cannot score candidate texts by likelihood: "
            f"{public_url(self.base_url)} did not return prompt logprobs for a chat completion with "
            f"prompt_logprobs=0 and continue_final_message=true ({detail}); score_protocol="
            f"{self.score_protocol} needs vLLM's OpenAI-compatible server (or one that speaks its extras)")

    def _send_score(self, request: ScoreRequest, payloads: Any) -> ModelOutput:
        """One score request: a (sum, n) per continuation, or that request's error; raises the
        capability error when the endpoint is known not to return prompt logprobs."""
        if isinstance(self._score_support, MMBenchError):
            raise self._score_support
        try:
            if isinstance(payloads, BaseException):
                raise payloads
            scores = []
            for payload in payloads:
                reply = self._post(payload)
                scores.append(continuation_logprob(reply.get("prompt_logprobs"),
                                                   payload["messages"][-1]["content"]))
        except NoPromptLogprobs as exc:
            if self._score_support is not True:
                self._score_support = self._unsupported(str(exc))
                raise self._score_support from None
            return ModelOutput(request.id, error=self._redact(_describe(exc)))
        except RequestFailed as exc:
            if self._score_support is not True and exc.status in _UNSUPPORTED_STATUSES:
                self._score_support = self._unsupported(str(exc))
                raise self._score_support from None
            return ModelOutput(request.id, error=self._redact(_describe(exc)))
        except Exception as exc:  # noqa: BLE001 - recorded per sample, not swallowed
            return ModelOutput(request.id, error=self._redact(_describe(exc)))
        self._score_support = True
        return _output(request, scores)

    def run(self, batch: PreparedBatch) -> list[ModelOutput]:
        """Send a prepared batch, ``concurrency`` requests at a time; answers in request order.

        Overrides the base class, whose whole-batch failure path would re-send every request
        of the batch when one fails: here each request succeeds or fails on its own."""
        outputs = dict(batch.failures)
        payloads = batch.inputs if batch.inputs is not None else self._preprocess(batch.requests, batch.images)
        jobs = list(zip(batch.requests, payloads))
        if self._score_support is not True and any(isinstance(r, ScoreRequest) for r, _ in jobs):
            with self._probe_lock:  # the first score request goes alone: does the endpoint return prompt logprobs?
                first = next(i for i, (r, _) in enumerate(jobs) if isinstance(r, ScoreRequest))
                probe = jobs.pop(first)
                outputs[probe[0].id] = self._send(*probe)  # raises the capability error if it does not
        if len(jobs) <= 1 or self.concurrency == 1:
            results = [self._send(req, payload) for req, payload in jobs]
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(jobs)),
                                    thread_name_prefix="mmbench-openai") as pool:
                results = list(pool.map(lambda job: self._send(*job), jobs))
        outputs.update({out.id: out for out in results})
        return [outputs[sid] for sid in batch.ids]


def _transport_error(exc: BaseException, timeout: float) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return f"timeout ({timeout:g} s)"
    if isinstance(reason, BaseException):
        return f"connection error ({reason.__class__.__name__}: {reason})"
    return f"connection error ({reason})"
