"""One streamed reply from ``/v1/chat/completions`` (server-sent events), as a ``core.backend.TextStream``.

The thinking arrives in one of four shapes, and all of them become one text for the one
``ThinkingSplitter`` in core.chat: a reasoning field (vLLM's ``reasoning_content``, renamed ``reasoning``
in later versions; llama-server's ``reasoning_content``; Ollama's ``thinking``/``reasoning``) is wrapped
in ``<think>…</think>``, and inline ``<think>…</think>`` content passes through as it is.

Bounded, whatever the server does: the request is sent lazily on the first ``next()`` (so a failure
happens inside core.chat's loop and the partial turn is logged "error"); a stream that ends without
``[DONE]`` or a finish reason is "cut"; a data line that is not JSON is "malformed"; a reply longer than
``max_tokens`` allows (a server ignoring the limit, a reasoning field that never closes) is stopped and
reported; Stop (the cancel event) aborts the socket from a watcher thread, so it takes effect at once
even while the server is silent.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

from r1desk.core.engine import GenFinish, GenParams, GenStats
from r1desk.core.remote.http import RemoteError, Response, request, snippet
from r1desk.core.thinking import CLOSE_TAG, OPEN_TAG

if TYPE_CHECKING:
    from r1desk.core.prompts import BuiltPrompt
    from r1desk.core.remote.backend import RemoteBackend

log = logging.getLogger("r1desk.remote")

CANCEL_POLL_S = 0.02                   # how often the watcher looks at the cancel event
REASONING_KEYS = ("reasoning_content", "reasoning", "thinking")
MAX_IGNORED_LINES = 1000               # SSE lines that are neither data nor a known field
LENGTH_SLACK_TOKENS = 16               # pieces beyond max_tokens tolerated (servers may count differently)
MAX_CHARS_PER_TOKEN = 64


def overlong_limits(max_tokens: int) -> tuple[int, int]:
    """(pieces, characters) past which a reply counts as the server ignoring max_tokens."""
    pieces = max_tokens + max_tokens // 4 + LENGTH_SLACK_TOKENS
    return pieces, (max_tokens + LENGTH_SLACK_TOKENS) * MAX_CHARS_PER_TOKEN


class ThinkingJoiner:
    """Reasoning-field deltas and content deltas -> one text with ``<think>…</think>`` around the reasoning."""

    def __init__(self) -> None:
        self.in_reasoning = False
        self.saw_reasoning = False
        self.answered = False

    def reasoning(self, text: str) -> str:
        if not text:
            return ""
        if self.answered:                # reasoning after the answer began: keep it in the answer's flow
            return text
        prefix = "" if self.in_reasoning else OPEN_TAG
        self.in_reasoning = self.saw_reasoning = True
        return prefix + text

    def content(self, text: str) -> str:
        if not text:
            return ""
        if self.in_reasoning:
            self.in_reasoning = False
            self.answered = True
            return CLOSE_TAG + text
        if self.saw_reasoning:
            self.answered = True
        return text


def _delta_parts(choice: dict[str, Any]) -> tuple[str, str]:
    """(reasoning, content) of one streamed choice (``delta``; a ``message`` for servers that send one)."""
    raw = choice.get("delta")
    if not isinstance(raw, dict):
        raw = choice.get("message")
    delta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    reasoning = ""
    for key in REASONING_KEYS:
        value = delta.get(key)
        if isinstance(value, str) and value:
            reasoning = value
            break
    content = delta.get("content")
    if not isinstance(content, str):
        text = choice.get("text")
        content = text if isinstance(text, str) else ""
    return reasoning, content


class RemoteStream:
    """Iterate for text pieces; ``stats`` once the iteration has ended (core.backend.TextStream)."""

    def __init__(self, backend: RemoteBackend, prompt: BuiltPrompt, params: GenParams,
                 cancel: threading.Event) -> None:
        self.backend = backend
        self.prompt = prompt
        self.params = params
        self.cancel = cancel
        self.stats: GenStats | None = None
        self.prompt_progress: tuple[int, int] | None = None     # a server does not report prompt reading
        self.text = ""
        self.pieces = 0
        self.usage: dict[str, Any] = {}
        self.finish_reason: str | None = None
        self.system_fingerprint: str | None = None
        self._response: Response | None = None
        self._iterator: Generator[str, None, None] | None = None
        self._closed = False

    @property
    def completion_tokens(self) -> int:
        reported = self.usage.get("completion_tokens")
        return reported if isinstance(reported, int) and reported >= self.pieces else self.pieces

    def __iter__(self) -> Iterator[str]:
        if self._iterator is not None:
            raise RuntimeError("a RemoteStream can be iterated only once")
        self._iterator = self._run()
        return self._iterator

    def close(self) -> None:
        """End the reply now (from this or another thread): the socket is shut, the stream is "cancelled"."""
        self._closed = True
        if self._response is not None:
            self._response.abort()
        it = self._iterator
        if it is not None:
            try:
                it.close()
            except ValueError:          # "generator already executing": the reading thread ends on its own
                pass

    # -- the request ---------------------------------------------------------------------------------
    def request_body(self) -> dict[str, Any]:
        b, p = self.backend, self.params
        body: dict[str, Any] = {"model": b.model.id, "messages": self.prompt.messages, "stream": True,
                                "max_tokens": p.max_tokens, "temperature": p.temperature, "top_p": p.top_p}
        if b.sends_stream_options:
            body["stream_options"] = {"include_usage": True}
        if p.seed is not None:
            body["seed"] = p.seed
        if p.stop:
            body["stop"] = list(p.stop)
        for name, key in b.extra_params.items():
            body[key] = getattr(p, name)
        return body

    def _run(self) -> Generator[str, None, None]:
        b = self.backend
        t0 = time.perf_counter()
        t_first: float | None = None
        t_last: float | None = None
        finish: GenFinish = "error"
        done = threading.Event()
        try:
            if self.cancel.is_set() or self._closed:
                finish = "cancelled"
                return
            resp = request(b.endpoint, "POST", "/v1/chat/completions", body=self.request_body(),
                           api_key=b.api_key, verify_tls=b.verify_tls, timeouts=b.timeouts,
                           accept="text/event-stream")
            self._response = resp
            threading.Thread(target=self._watch, args=(resp, done), name="r1desk-remote-cancel",
                             daemon=True).start()
            joiner = ThinkingJoiner()
            max_pieces, max_chars = overlong_limits(self.params.max_tokens)
            ctype = (resp.headers.get("Content-Type") or "").lower()
            events = self._events(resp) if "json" not in ctype else self._single(resp)
            for event in events:
                piece = self._apply(event, joiner)
                if piece:
                    t_last = time.perf_counter()
                    if t_first is None:
                        t_first = t_last
                    self.pieces += 1
                    self.text += piece
                    yield piece
                    if self.pieces > max_pieces or len(self.text) > max_chars:
                        raise RemoteError(
                            f"the server at {b.endpoint.url} sent more than max_tokens ({self.params.max_tokens}) "
                            f"allows; r1desk stopped reading", kind="overlong",
                            hint="the server ignores the token limit; the partial reply is kept in the audit log")
            if resp.aborted.is_set() or self.cancel.is_set():
                finish = "cancelled"
            elif self.finish_reason is None:
                raise RemoteError(f"the server at {b.endpoint.url} ended the stream mid-answer (no finish reason, "
                                  f"no [DONE]) after {self.pieces} pieces", kind="cut",
                                  hint="the server may have crashed or been restarted; its log says why")
            else:
                finish = "length" if self.finish_reason == "length" else "stop"
        except GeneratorExit:
            finish = "cancelled"
            raise
        except RemoteError:
            if self.cancel.is_set() or self._closed:
                finish = "cancelled"
                return
            raise
        finally:
            done.set()
            if self._response is not None:
                self._response.close()
            end = time.perf_counter()
            n = self.completion_tokens
            rate = None
            if t_first is not None and t_last is not None and self.pieces >= 2 and t_last > t_first:
                rate = (self.pieces - 1) / (t_last - t_first)
            prompt_tokens = self.usage.get("prompt_tokens")
            self.stats = GenStats(
                prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else (self.prompt.prompt_tokens or 0),
                completion_tokens=n, time_to_first_token_s=(t_first - t0) if t_first is not None else None,
                decode_tokens_per_s=rate, total_s=end - t0, finish_reason=finish)
            log.debug("remote generation finished: %s", self.stats)

    def _watch(self, resp: Response, done: threading.Event) -> None:
        """Abort the socket as soon as the cancel event is set (a blocked read returns at once)."""
        while not done.is_set():
            if self.cancel.wait(CANCEL_POLL_S):
                if not done.is_set():
                    resp.abort()
                return

    # -- parsing ---------------------------------------------------------------------------------------
    def _events(self, resp: Response) -> Iterator[dict[str, Any]]:
        """Server-sent events: ``data:`` lines (joined until a blank line) parsed as JSON; ``[DONE]`` ends."""
        data: list[bytes] = []
        ignored = 0
        url = self.backend.endpoint.url
        for line in resp.lines():
            if not line:                      # a blank line dispatches the event
                if data:
                    yield self._parse(b"\n".join(data))
                    data = []
            elif line.startswith(b"data:"):
                payload = line[5:].removeprefix(b" ")
                if payload.strip() == b"[DONE]":
                    if data:
                        yield self._parse(b"\n".join(data))
                    if self.finish_reason is None:
                        self.finish_reason = "stop"
                    return
                data.append(payload)
            elif line.startswith(b":") or line.split(b":", 1)[0] in (b"event", b"id", b"retry"):
                continue                      # a comment (keep-alive) or a field r1desk does not use
            else:
                ignored += 1
                if ignored > MAX_IGNORED_LINES:
                    raise RemoteError(f"the server at {url} sent something other than server-sent events: "
                                      f"{snippet(line)!r}", kind="protocol")
        if data:                              # the last event had no blank line after it
            yield self._parse(b"\n".join(data))

    def _parse(self, payload: bytes) -> dict[str, Any]:
        url = self.backend.endpoint.url
        try:
            event = json.loads(payload)
        except ValueError:
            raise RemoteError(f"the server at {url} sent a malformed event: {snippet(payload)!r}",
                              kind="protocol", hint="the server's streaming output is broken") from None
        if not isinstance(event, dict):
            raise RemoteError(f"the server at {url} sent an event that is not an object: {snippet(payload)!r}",
                              kind="protocol")
        return event

    def _single(self, resp: Response) -> Iterator[dict[str, Any]]:
        """A server that ignored ``stream: true`` and answered with one JSON completion."""
        event = resp.json()
        if not isinstance(event, dict):
            raise RemoteError(f"the server at {self.backend.endpoint.url} answered with something other than a "
                              f"completion", kind="protocol")
        yield event

    def _apply(self, event: dict[str, Any], joiner: ThinkingJoiner) -> str:
        url = self.backend.endpoint.url
        if "error" in event and event["error"]:
            err = event["error"]
            message = err.get("message") if isinstance(err, dict) else err
            raise RemoteError(f"the server at {url} reported an error mid-answer: {snippet(str(message))}",
                              kind="server")
        usage = event.get("usage")
        if isinstance(usage, dict):
            self.usage = {k: v for k, v in usage.items() if isinstance(v, int)}
        if isinstance(event.get("system_fingerprint"), str):
            self.system_fingerprint = event["system_fingerprint"][:200]
        choices = event.get("choices")
        if choices is None and isinstance(event.get("message"), dict):    # Ollama's native shape
            choices = [{"message": event["message"],
                        "finish_reason": event.get("done_reason") or ("stop" if event.get("done") else None)}]
        if not isinstance(choices, list) or not choices:
            return ""
        choice = choices[0]
        if not isinstance(choice, dict):
            raise RemoteError(f"the server at {url} sent a malformed choice: {snippet(json.dumps(choice))!r}",
                              kind="protocol")
        reasoning, content = _delta_parts(choice)
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self.finish_reason = reason
        return joiner.reasoning(reasoning) + joiner.content(content)
