"""A fault-injecting OpenAI-compatible server on 127.0.0.1 (http.server in a thread), for tests and the bench.

It replays the response shapes of vLLM (``reasoning_content``, later ``reasoning``), llama-server
(``reasoning_content``, ``owned_by: llamacpp``, ``meta.n_ctx_train``), Ollama (``thinking``, ``owned_by:
library``, digests on ``/api/tags``) and plain inline ``<think>`` content, and each failure r1desk must turn
into one message: error statuses (401/403/404/429 with Retry-After/5xx), a stream cut mid-answer, malformed
SSE, a reasoning field that never closes, a reply far longer than max_tokens, and a stall (waits on an
Event, released by the test, bounded by a timeout). Every loop is bounded; nothing sleeps to synchronise.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STALL_LIMIT_S = 30.0

SHAPES = ("vllm", "vllm-new", "llama-server", "ollama", "inline", "inline-open", "plain")


@dataclass
class Scenario:
    shape: str = "vllm"                 # one of SHAPES
    model_id: str = "deepseek-r1-distill-qwen-7b"
    thinking: list[str] = field(default_factory=lambda: ["Let me ", "think ", "about it."])
    answer: list[str] = field(default_factory=lambda: ["The answer ", "is 4."])
    status: int | None = None           # answer chat requests with this error status
    models_status: int | None = None    # answer /v1/models with this error status
    retry_after: str | None = None
    fault: str | None = None            # cut | malformed | never_closes | overlong | stall | garbage | json
    finish_reason: str = "stop"
    usage: bool = True
    repeat: int = 0                     # never_closes / overlong: how many pieces to send (bounded)
    stall_after: int = 1                # stall: pieces sent before waiting


class FakeOpenAIServer:
    def __init__(self, scenario: Scenario | None = None) -> None:
        self.scenario = scenario or Scenario()
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()      # a stalled handler waits on this
        self.client_gone = threading.Event()  # set when a write to the client failed (it hung up)
        self.stalled = threading.Event()      # set when a handler starts stalling
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer._get(self)

            def do_POST(self) -> None:  # noqa: N802
                outer._post(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(10)

    def __enter__(self) -> FakeOpenAIServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- responses ---------------------------------------------------------------------------------------
    def _json(self, h: BaseHTTPRequestHandler, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def _error(self, h: BaseHTTPRequestHandler, status: int) -> None:
        s = self.scenario
        headers = {"Retry-After": s.retry_after} if s.retry_after else {}
        messages = {401: "invalid api key", 403: "forbidden", 404: f"model '{s.model_id}x' not found",
                    429: "too many requests", 500: "internal error", 503: "model is loading"}
        self._json(h, status, {"error": {"message": messages.get(status, "error"), "code": status}}, headers)

    def _get(self, h: BaseHTTPRequestHandler) -> None:
        s = self.scenario
        self.requests.append({"method": "GET", "path": h.path, "auth": h.headers.get("Authorization")})
        if h.path == "/v1/models":
            if s.models_status:
                return self._error(h, s.models_status)
            entry: dict[str, Any] = {"id": s.model_id, "object": "model", "created": 0}
            if s.shape.startswith("vllm"):
                entry.update(owned_by="vllm", max_model_len=4096)
            elif s.shape == "llama-server":
                entry.update(owned_by="llamacpp", meta={"n_ctx_train": 131072, "n_params": 7_000_000_000})
            elif s.shape == "ollama":
                entry.update(owned_by="library")
            else:
                entry.update(owned_by="someone")
            extra = {"id": "other-model", "object": "model", "owned_by": entry["owned_by"]}
            return self._json(h, 200, {"object": "list", "data": [entry, extra]})
        if h.path == "/api/tags" and s.shape == "ollama":
            return self._json(h, 200, {"models": [{"name": s.model_id, "model": s.model_id,
                                                   "digest": "sha256:0123abcd" * 4}]})
        self._json(h, 404, {"error": "not found"})

    def _post(self, h: BaseHTTPRequestHandler) -> None:
        s = self.scenario
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length) or b"{}")
        self.requests.append({"method": "POST", "path": h.path, "body": body, "auth": h.headers.get("Authorization")})
        if h.path != "/v1/chat/completions":
            return self._json(h, 404, {"error": "not found"})
        if s.status:
            return self._error(h, s.status)
        if body.get("model") != s.model_id:
            return self._json(h, 404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
        if s.fault == "json":
            return self._json(h, 200, self._completion())
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.end_headers()
        try:
            for chunk in self._stream(body):
                h.wfile.write(chunk)
                h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.client_gone.set()

    def _completion(self) -> dict[str, Any]:
        s = self.scenario
        return {"id": "c1", "object": "chat.completion", "model": s.model_id,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(s.answer),
                                                     "reasoning_content": "".join(s.thinking)},
                             "finish_reason": s.finish_reason}],
                "usage": {"prompt_tokens": 10, "completion_tokens": len(s.thinking) + len(s.answer)}}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        event = {"id": "c1", "object": "chat.completion.chunk", "model": self.scenario.model_id,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + json.dumps(event).encode() + b"\n\n"

    def _pieces(self) -> Iterator[tuple[str, str]]:
        """(kind, text): kind "reasoning" or "content", in the shape's order."""
        s = self.scenario
        if s.fault == "never_closes":
            for i in range(s.repeat or 50):
                yield "reasoning", f"still thinking {i}. "
            return
        if s.fault == "overlong":
            for t in s.thinking:
                yield "reasoning", t
            for i in range(s.repeat or 1000):
                yield "content", f"word{i} "
            return
        for t in s.thinking:
            yield "reasoning", t
        for t in s.answer:
            yield "content", t

    def _stream(self, body: dict[str, Any]) -> Iterator[bytes]:
        s = self.scenario
        key = {"vllm": "reasoning_content", "vllm-new": "reasoning", "llama-server": "reasoning_content",
               "ollama": "thinking"}.get(s.shape)
        yield self._chunk({"role": "assistant", "content": ""})
        yield b": keep-alive comment\n\n"
        sent = 0
        inline_open = False
        pieces = list(self._pieces())
        for i, (kind, text) in enumerate(pieces):
            if s.fault == "stall" and sent == s.stall_after:
                self.stalled.set()
                self.release.wait(STALL_LIMIT_S)
            if s.fault == "cut" and sent == len(pieces) // 2:
                return                                  # the connection closes: no finish, no [DONE]
            if s.fault == "malformed" and sent == 2:
                yield b"data: {\"choices\": [{\"delta\": {\"content\": \"oops\"\n\n"
                return
            if s.fault == "garbage" and sent == 1:
                yield b"this line is not an SSE field at all\n"
            if key and kind == "reasoning":
                yield self._chunk({key: text})
            elif kind == "reasoning":                   # inline: the template opened <think> (or the model does)
                if s.shape == "inline-open" and not inline_open:
                    text = "<think>" + text
                inline_open = True
                yield self._chunk({"content": text})
            else:
                if not key and inline_open:
                    text, inline_open = "</think>" + text, False
                yield self._chunk({"content": text})
            sent += 1
        finish = s.finish_reason if s.fault != "never_closes" else "length"
        yield self._chunk({}, finish)
        if s.usage:
            usage = {"prompt_tokens": 12, "completion_tokens": sent, "total_tokens": 12 + sent}
            yield b"data: " + json.dumps({"id": "c1", "choices": [], "usage": usage}).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"
