"""A scripted stand-in for ChatSession: yields the events core.chat yields, from a table of answers.

Used for the runner's bookkeeping (sampling, metrics, cancel); the end-to-end test uses the real
ChatSession on a real GGUF model.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from r1desk.core.events import (Blocked, Delta, GuardDecision, LanguageReport, Notice, PromptBlocked,
                                TurnFinished, TurnResult, TurnStarted)


@dataclass(frozen=True)
class FakeDecision:
    channel: str
    action: str
    label: str = "toxicity"
    score: float = 0.9
    threshold: float = 0.5


@dataclass
class Script:
    answer: str
    thinking: str = "Let me think about it."
    flags: tuple[tuple[str, str], ...] = ()        # (channel, action)
    block: str | None = None                        # "prompt" | "answer"
    share: float = 1.0
    unfinished: bool = False                        # ran out of tokens while thinking
    notices: tuple[tuple[str, str], ...] = ()


class FakeSession:
    def __init__(self, scripts: dict[str, Script], *, cancel_after: int | None = None) -> None:
        self.scripts = scripts
        self.calls: list[str] = []
        self.cancel_after = cancel_after

    def run_turn(self, req: Any, cancel: threading.Event | None = None) -> Iterator[Any]:
        self.calls.append(req.user_text)
        s = self.scripts[req.user_text]
        turn = f"t{len(self.calls)}"
        yield TurnStarted(turn, "c1", {}, req.user_text, {})
        for kind, message in s.notices:
            yield Notice(kind, message)
        if s.block == "prompt":
            d = FakeDecision("prompt", "block")
            yield GuardDecision(d)
            yield PromptBlocked((d,), "blocked")
            yield TurnFinished(TurnResult(turn, "c1", "", "", "", "", "blocked", False, True))
            return
        yield Delta("thinking", s.thinking)
        if self.cancel_after is not None and len(self.calls) >= self.cancel_after and cancel is not None:
            cancel.set()
            yield TurnFinished(TurnResult(turn, "c1", s.thinking, "", "", s.thinking, "cancelled", True, False))
            return
        for channel, action in s.flags:
            yield GuardDecision(FakeDecision(channel, action))
        yield Delta("answer", s.answer)
        if s.block == "answer":
            yield Blocked("answer", 0, "withheld")
        yield LanguageReport("thinking", "en", s.share, (), s.share < 0.9)
        yield LanguageReport("answer", "en", s.share, (), s.share < 0.9)
        shown = "" if s.block else s.answer
        yield TurnFinished(TurnResult(turn, "c1", s.thinking, s.answer, shown, s.thinking,
                                      "blocked" if s.block else ("length" if s.unfinished else "stop"),
                                      s.unfinished, bool(s.block),
                                      usage={"completion_tokens": 12}, timings={"total_s": 0.5}))
