"""A small OpenAI-compatible chat-completions server that runs a real tiny model, for tests.

It serves ``GET /v1/models`` and ``POST /v1/chat/completions`` on 127.0.0.1 (an
ephemeral port) with :class:`http.server.ThreadingHTTPServer`, and answers with a
real (tiny, randomly initialised) vision-language checkpoint such as the one
``tests.fixtures.tiny_models.make_llava`` builds: each ``image_url`` data URL is
decoded, the OpenAI content parts become ``{"type": "image"}`` /
``{"type": "text"}`` parts in the same order, the processor's chat template is
applied and the model decodes greedily (``max_tokens`` new tokens).  It is
written against transformers directly, not through mmbench, so that it checks
the adapter rather than mirroring it.

Faults for tests are injected on the server object and consumed in order::

    with OpenAIServer(make_llava(tmp_path / "llava"), served_model="tiny-llava") as server:
        server.add_fault(429, times=2, retry_after="0")      # the next 2 completions get 429
        server.add_fault(503, match="BROKEN", times=None)   # every prompt containing BROKEN gets 503
        server.add_fault("hang", seconds=5)                  # sleep longer than the client timeout
        ...
        server.stats.max_in_flight                           # the most completions in flight at once

Prompt logprobs (vLLM's extras, the openai-chat adapter's ``score_protocol``): a body with
``prompt_logprobs`` (0 or more) gets a top-level ``prompt_logprobs`` list, ``None`` for the
first prompt token then ``{str(token_id): {"logprob", "rank", "decoded_token"}}`` with the
prompt's own token first (then the ``prompt_logprobs`` most likely others), from one forward
pass of the same model in float32; ``add_generation_prompt`` and ``continue_final_message``
are passed to the chat template as vLLM passes them.  ``OpenAIServer(...,
prompt_logprobs=False)`` ignores those parameters instead, as an endpoint without the
extension does.

Other faults: ``"malformed"`` (200 with a body that is not JSON), ``"no_content"``
(200 whose ``choices[0].message`` has no ``content``), ``"echo_auth"`` (400 whose
body repeats the request's Authorization header, as a careless proxy might), and
any other HTTP status code.  Model inference is serialised by a lock; the
``delay`` seconds every completion sleeps first are not, so concurrency shows up
in ``stats.max_in_flight``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["Fault", "OpenAIServer", "ServerStats"]


@dataclass
class Fault:
    """One injected failure: ``kind`` is an HTTP status or a named fault (see the module docstring).

    ``times`` is how many requests it hits (None: all), ``match`` limits it to
    requests whose text contains that string.
    """

    kind: int | str
    times: int | None = 1
    match: str | None = None
    retry_after: str | None = None
    seconds: float = 5.0  # for "hang"


@dataclass
class ServerStats:
    completions: int = 0  # POST /chat/completions received (including faulted ones)
    in_flight: int = 0
    max_in_flight: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)  # parsed request bodies, in arrival order
    attempts_by_text: dict[str, int] = field(default_factory=dict)  # prompt text -> requests seen


class OpenAIServer:
    """Serve ``checkpoint`` under the name ``served_model``; use as a context manager (or start/stop)."""

    def __init__(self, checkpoint: str | Path, *, served_model: str = "tiny-llava", api_key: str | None = None,
                 delay: float = 0.0, prompt_logprobs: bool = True):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.checkpoint = str(checkpoint)
        self.served_model = served_model
        self.api_key = api_key
        self.delay = delay
        self.prompt_logprobs = prompt_logprobs
        self.processor = AutoProcessor.from_pretrained(self.checkpoint, local_files_only=True)
        self.model = AutoModelForImageTextToText.from_pretrained(self.checkpoint, local_files_only=True).eval()
        weights = sorted(Path(self.checkpoint).glob("*.safetensors"))
        self.revision = hashlib.sha256(b"".join(p.read_bytes() for p in weights)).hexdigest()[:12]
        self.stats = ServerStats()
        self._faults: list[Fault] = []
        self._lock = threading.Lock()  # stats and faults
        self._model_lock = threading.Lock()  # one generate() at a time
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------
    @property
    def url(self) -> str:
        """The API base URL, ``http://127.0.0.1:<port>/v1``."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> OpenAIServer:
        handler = type("Handler", (_Handler,), {"app": self})
        self._stopping.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="openai-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging handlers, stop accepting, close the socket."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls --------------------------------------------------------
    def add_fault(self, kind: int | str, *, times: int | None = 1, match: str | None = None,
                  retry_after: str | None = None, seconds: float = 5.0) -> None:
        with self._lock:
            self._faults.append(Fault(kind, times, match, retry_after, seconds))

    def reset(self, *, delay: float = 0.0) -> None:
        """Forget faults and statistics (between tests sharing one server)."""
        with self._lock:
            self._faults.clear()
            self.stats = ServerStats()
            self.delay = delay

    def _take_fault(self, text: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.match is not None and fault.match not in text:
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                return fault
        return None

    # -- the model --------------------------------------------------------------
    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """Run the model on a parsed chat-completions request body; return the response body."""
        import torch
        from PIL import Image

        hf_messages, images = [], []
        for message in body["messages"]:
            content = message["content"]
            if isinstance(content, str):
                content = [{"type": "text", "text": content}]
            parts = []
            for part in content:
                if part["type"] == "text":
                    parts.append({"type": "text", "text": part["text"]})
                elif part["type"] == "image_url":
                    url = part["image_url"]["url"]
                    header, _, b64 = url.partition(",")
                    if not header.startswith("data:image/") or not header.endswith(";base64"):
                        raise ValueError(f"only base64 data URLs are supported, got {header[:40]!r}")
                    images.append(Image.open(io.BytesIO(base64.b64decode(b64, validate=True))).convert("RGB"))
                    parts.append({"type": "image"})
                else:
                    raise ValueError(f"unsupported content part {part['type']!r}")
            hf_messages.append({"role": message["role"], "content": parts})
        if body.get("temperature") not in (None, 0, 0.0):
            raise ValueError("this test server decodes greedily only (temperature 0)")
        max_tokens = int(body.get("max_tokens") or 16)
        extensions = self.prompt_logprobs  # vLLM's extra parameters, or (False) ignored as unknown
        add_generation_prompt = bool(body.get("add_generation_prompt", True)) if extensions else True
        continue_final = bool(body.get("continue_final_message", False)) if extensions else False
        text = self.processor.apply_chat_template(hf_messages, add_generation_prompt=add_generation_prompt,
                                                  continue_final_message=continue_final, tokenize=False)
        k = body.get("prompt_logprobs") if extensions else None
        prompt_logprobs = None
        with self._model_lock, torch.inference_mode():
            inputs = self.processor(text=[text], images=images or None, return_tensors="pt")
            if k is not None:
                prompt_logprobs = self._prompt_logprobs(inputs, int(k))
            out = self.model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False, num_beams=1)
        new = out[0, inputs["input_ids"].shape[1]:]
        answer = self.processor.tokenizer.decode(new, skip_special_tokens=True)
        eos = self.processor.tokenizer.eos_token_id
        reply = {
            "id": f"chatcmpl-{self.stats.completions}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.served_model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                         "finish_reason": "stop" if eos in new.tolist() else "length"}],
            "usage": {"prompt_tokens": int(inputs["input_ids"].shape[1]), "completion_tokens": int(new.shape[0]),
                      "total_tokens": int(out.shape[1])},
        }
        if prompt_logprobs is not None:
            reply["prompt_logprobs"] = prompt_logprobs
        return reply

    def _prompt_logprobs(self, inputs: dict[str, Any], k: int) -> list[dict[str, dict[str, Any]] | None]:
        """vLLM's ``prompt_logprobs`` for the prompt in ``inputs`` (one forward pass, float32)."""
        import torch

        ids = inputs["input_ids"][0]
        logp = torch.log_softmax(self.model(**inputs).logits[0, :-1].float(), dim=-1)
        tokenizer = self.processor.tokenizer
        entries: list[dict[str, dict[str, Any]] | None] = [None]
        for t in range(1, ids.shape[0]):
            row, token = logp[t - 1], int(ids[t])
            rank = int((row > row[token]).sum()) + 1
            entry = {str(token): {"logprob": float(row[token]), "rank": rank,
                                  "decoded_token": tokenizer.decode([token])}}
            for other in row.topk(k).indices.tolist() if k > 0 else []:
                entry.setdefault(str(other), {"logprob": float(row[other]), "rank": int((row > row[other]).sum()) + 1,
                                              "decoded_token": tokenizer.decode([other])})
            entries.append(entry)
        return entries


def _request_text(body: dict[str, Any]) -> str:
    texts = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "\n".join(texts)


class _Handler(BaseHTTPRequestHandler):
    app: OpenAIServer  # set on the subclass made by OpenAIServer.start

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": {"message": message, "type": "error", "code": status}}, headers)

    def _authorised(self) -> bool:
        key = self.app.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._error(401, "invalid or missing API key")
        return False

    def do_GET(self) -> None:
        if self.path.split("?")[0].rstrip("/") != "/v1/models":
            return self._error(404, f"no route {self.path}")
        if not self._authorised():
            return
        self._send(200, {"object": "list", "data": [{
            "id": self.app.served_model, "object": "model", "created": int(time.time()),
            "owned_by": "mmbench-tests", "root": Path(self.app.checkpoint).name, "revision": self.app.revision}]})

    def do_POST(self) -> None:
        if self.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
            return self._error(404, f"no route {self.path}")
        app = self.app
        with app._lock:
            app.stats.completions += 1
            app.stats.in_flight += 1
            app.stats.max_in_flight = max(app.stats.max_in_flight, app.stats.in_flight)
        try:
            self._complete()
        finally:
            with app._lock:
                app.stats.in_flight -= 1

    def _complete(self) -> None:
        app = self.app
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        except (ValueError, UnicodeDecodeError) as exc:
            return self._error(400, f"request body is not JSON: {exc}")
        text = _request_text(body)
        with app._lock:
            app.stats.bodies.append(body)
            app.stats.attempts_by_text[text] = app.stats.attempts_by_text.get(text, 0) + 1
        if not self._authorised():
            return
        if app.delay:
            app._stopping.wait(app.delay)
        fault = app._take_fault(text)
        if fault is not None:
            if fault.kind == "hang":
                app._stopping.wait(fault.seconds)
                return self._error(504, "hung on purpose")
            if fault.kind == "malformed":
                return self._send(200, b'{"choices": [{"message": ')
            if fault.kind == "echo_auth":
                return self._error(400, f"bad request; you sent Authorization: {self.headers.get('Authorization')}")
            if fault.kind != "no_content":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
                return self._error(int(fault.kind), f"injected HTTP {fault.kind}", headers)
        if body.get("model") != app.served_model:
            return self._error(404, f"The model `{body.get('model')}` does not exist.")
        try:
            response = app.complete(body)
        except (KeyError, TypeError, ValueError) as exc:
            return self._error(400, f"{exc.__class__.__name__}: {exc}")
        if fault is not None and fault.kind == "no_content":
            del response["choices"][0]["message"]["content"]
        self._send(200, response)
