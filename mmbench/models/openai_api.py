"""Models behind an OpenAI-compatible chat-completions endpoint (vLLM, SGLang, hosted APIs).

Each request becomes one ``POST {base_url}/chat/completions`` with a single user
turn: one ``image_url`` part per image (a base64 data URL of the decoded RGB
image, PNG unless ``image_format`` says otherwise, so the server sees the same
pixels a local adapter would), then one text part (the prompt, else the bare
question).  Decoding is greedy (``temperature`` 0) unless the request samples
(beam search is refused: the API has none); ``max_tokens`` is ``max_new_tokens``; ``n`` is 1;
a fixed ``seed`` is sent (servers that ignore it lose nothing).  The answer is
``choices[0].message.content``, stripped as the local adapters strip theirs.

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
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from mmbench.errors import MMBenchError, ModelLoadError
from mmbench.models.base import ModelAdapter, PreparedBatch, _describe
from mmbench.types import GenerateRequest, ModelOutput

#: fields of a GET /models entry that identify the served weights (``created`` changes on every restart)
_MODEL_ID_FIELDS = ("id", "root", "parent", "revision", "owned_by")
_IMAGE_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "jpg": ("JPEG", "image/jpeg"),
                  "webp": ("WEBP", "image/webp")}
_JITTER = random.Random()  # its own generator: the runner seeds the global one, and jitter should not repeat


class RequestFailed(MMBenchError):
    """One chat-completions request failed for good (its text is already redacted)."""


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
                 backoff: float = 1.0, max_backoff: float = 60.0, dtype: str = "auto", device: str = "auto",
                 revision: str | None = None, trust_remote_code: bool = False, **unknown: Any):
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
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - http(s) checked
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

    def _post_once(self, body: bytes) -> str:
        """One attempt.  Returns the answer; raises _Retryable or RequestFailed."""
        try:
            status, headers, data = self._request("POST", "/chat/completions", body)
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(_transport_error(exc, self.timeout)) from None
        snippet = data[:300].decode("utf-8", "replace").strip()
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}", snippet, parse_retry_after(headers.get("Retry-After")))
        if status != 200:
            raise RequestFailed(self._redact(f"HTTP {status}: {snippet}"))
        try:
            reply = json.loads(data)
        except ValueError:
            raise RequestFailed(self._redact(f"HTTP 200 with a body that is not JSON: {snippet}")) from None
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            raise RequestFailed(self._redact(f"the response has no choices[0].message.content: {snippet}"))
        return content.strip()

    def _post(self, payload: dict[str, Any]) -> str:
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
    def build_payload(self, request: GenerateRequest, images: Sequence[Any]) -> dict[str, Any]:
        """The chat-completions body for ``request`` (``images`` already decoded to RGB)."""
        gen = request.generation
        if gen.num_beams != 1:
            raise MMBenchError(f"num_beams={gen.num_beams}: chat-completions endpoints do not offer beam search")
        pil_format, mime = _IMAGE_FORMATS[self.image_format]
        content: list[dict[str, Any]] = []
        for img in images:
            buf = io.BytesIO()
            img.save(buf, format=pil_format)
            url = f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"
            content.append({"type": "image_url", "image_url": {"url": url}})
        content.append({"type": "text", "text": request.prompt or request.question or ""})
        payload: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": content}],
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

    def _send(self, request: GenerateRequest, payload: Any) -> ModelOutput:
        try:
            if isinstance(payload, BaseException):
                raise payload
            text = self._post(payload)
        except Exception as exc:  # noqa: BLE001 - recorded per sample, not swallowed
            return ModelOutput(request.id, error=self._redact(_describe(exc)))
        return ModelOutput(request.id, text=text)

    def run(self, batch: PreparedBatch) -> list[ModelOutput]:
        """Send a prepared batch, ``concurrency`` requests at a time; answers in request order.

        Overrides the base class, whose whole-batch failure path would re-send every request
        of the batch when one fails: here each request succeeds or fails on its own."""
        outputs = dict(batch.failures)
        payloads = batch.inputs if batch.inputs is not None else self._preprocess(batch.requests, batch.images)
        jobs = list(zip(batch.requests, payloads))
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
