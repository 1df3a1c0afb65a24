"""Split a streamed R1 reply into its thinking trace and its answer.

R1 models think between ``<think>`` and ``</think>`` and answer after. With r1desk's prompt the
reply usually starts *inside* the thinking (the prompt already ends with ``<think>\\n``), but a
model may also emit the opening tag itself, so both forms are handled. Text is handed on as soon
as it cannot be part of a tag: the only thing ever held back is a partial tag at the end of the
buffer (``"</thi"``) and, in the thinking, a run of trailing whitespace (invisible, so no lag).

Decisions, so the view, the guard and the audit log agree:

* Leading whitespace of the thinking and of the answer is dropped; whitespace just before
  ``</think>`` is dropped, so ``<think>\\n\\n</think>`` gives an empty thinking.
* A stray ``<think>`` or ``</think>`` tag after the thinking has closed (or a second ``<think>``
  inside it) is dropped, not shown: it is control markup the model leaked, and showing it
  would only confuse. The count is kept in ``stray_tags`` (and logged at debug level).
* ``finish()`` inside the thinking marks the turn ``unfinished_thinking`` (max tokens hit or
  stopped); the answer stays empty. A partial tag still held back is released as text.
"""
from __future__ import annotations

import logging
from typing import Final, Literal

log = logging.getLogger("r1desk.thinking")

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"
_TAGS = (OPEN_TAG, CLOSE_TAG)

TextChannel = Literal["thinking", "answer"]   # where a piece of the reply goes
THINKING: Final = "thinking"
ANSWER: Final = "answer"

_PRE, _IN_THINKING, _IN_ANSWER = "pre", "thinking", "answer"


def _partial_tag_suffix(text: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of a tag (0 if none)."""
    for size in range(min(len(text), len(CLOSE_TAG) - 1), 0, -1):
        tail = text[-size:]
        if any(tag.startswith(tail) for tag in _TAGS):
            return size
    return 0


def _first_tag(text: str) -> tuple[int, str] | None:
    """The earliest complete tag in ``text`` as (position, tag)."""
    found = [(pos, tag) for tag in _TAGS if (pos := text.find(tag)) != -1]
    return min(found) if found else None


class ThinkingSplitter:
    """Streaming parser: ``feed()`` each generated piece, then ``finish()`` once.

    Both return ``[(channel, text), ...]`` with channel ``"thinking"`` or ``"answer"``; the pieces
    of one channel, concatenated, always equal the final ``thinking`` / ``answer`` attribute.
    """

    def __init__(self, starts_in_thinking: bool) -> None:
        self.starts_in_thinking = starts_in_thinking
        self.thinking = ""
        self.answer = ""
        self.unfinished_thinking = False
        self.thinking_closed = False
        self.stray_tags = 0
        self.finished = False
        self._state = _IN_THINKING if starts_in_thinking else _PRE
        self._buf = ""
        self._pending_ws = ""  # trailing whitespace of the thinking, emitted once more text follows

    @property
    def in_thinking(self) -> bool:
        return self._state == _IN_THINKING

    def feed(self, text: str) -> list[tuple[TextChannel, str]]:
        if self.finished:
            raise RuntimeError("ThinkingSplitter.feed() after finish()")
        self._buf += text
        out: list[tuple[TextChannel, str]] = []
        self._run(out, final=False)
        return _merge(out)

    def finish(self) -> list[tuple[TextChannel, str]]:
        if self.finished:
            return []
        out: list[tuple[TextChannel, str]] = []
        self._run(out, final=True)
        if self._state == _IN_THINKING:
            self.unfinished_thinking = True
        self._pending_ws = ""
        self.finished = True
        return _merge(out)

    # -- the state machine -------------------------------------------------------------------
    def _run(self, out: list[tuple[TextChannel, str]], final: bool) -> None:
        while self._buf:
            if self._state == _PRE:
                if not self._run_pre(final):
                    return
                continue
            found = _first_tag(self._buf)
            if found is None:
                hold = 0 if final else _partial_tag_suffix(self._buf)
                self._emit(out, self._buf[: len(self._buf) - hold])
                self._buf = self._buf[len(self._buf) - hold:]
                return
            pos, tag = found
            self._emit(out, self._buf[:pos])
            self._buf = self._buf[pos + len(tag):]
            if self._state == _IN_THINKING and tag == CLOSE_TAG:
                self._state = _IN_ANSWER
                self.thinking_closed = True
                self._pending_ws = ""
            elif not (self._state == _IN_THINKING and tag == OPEN_TAG and not self.thinking):
                # An opening tag at the very start of the thinking is expected; anything else is stray.
                self.stray_tags += 1
                log.debug("dropped stray %s tag in the %s", tag, self._state)

    def _run_pre(self, final: bool) -> bool:
        """Before anything is known: does the reply open with ``<think>``? False = wait for more."""
        stripped = self._buf.lstrip()
        if not stripped:
            if final:
                self._buf = ""
            return False
        if stripped.startswith(OPEN_TAG):
            self._buf = stripped[len(OPEN_TAG):]
            self._state = _IN_THINKING
            return True
        if OPEN_TAG.startswith(stripped) and not final:
            return False
        self._state = _IN_ANSWER
        return True

    def _emit(self, out: list[tuple[TextChannel, str]], text: str) -> None:
        if not text:
            return
        if self._state == _IN_THINKING:
            if not self.thinking:
                text = (self._pending_ws + text).lstrip()
                self._pending_ws = ""
            body = text.rstrip()
            if not body:
                if self.thinking:
                    self._pending_ws += text
                return
            piece = self._pending_ws + body
            self._pending_ws = text[len(body):]
            self.thinking += piece
            out.append((THINKING, piece))
        else:
            if not self.answer:
                text = text.lstrip()
                if not text:
                    return
            self.answer += text
            out.append((ANSWER, text))


def _merge(pieces: list[tuple[TextChannel, str]]) -> list[tuple[TextChannel, str]]:
    merged: list[tuple[TextChannel, str]] = []
    for channel, text in pieces:
        if merged and merged[-1][0] == channel:
            merged[-1] = (channel, merged[-1][1] + text)
        else:
            merged.append((channel, text))
    return merged


def split_reply(text: str, starts_in_thinking: bool) -> ThinkingSplitter:
    """Split a complete reply in one go (for stored turns and tests)."""
    splitter = ThinkingSplitter(starts_in_thinking)
    splitter.feed(text)
    splitter.finish()
    return splitter
