"""The events one chat turn yields, in order.

``core.chat.run_turn`` produces them; the CLI prints them, the Qt worker turns each into a signal,
the self-check collects them. They are plain frozen dataclasses so they cross threads safely.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

Channel = Literal["prompt", "thinking", "answer"]
FinishReason = Literal["stop", "length", "cancelled", "blocked", "error", "interrupted"]


@dataclass(frozen=True)
class TurnStarted:
    turn_id: str
    conversation_id: str
    model: dict[str, Any]
    prompt_sent: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class Notice:
    """Something the user should see next to the turn: few_shot, template_fallback, context_trimmed,
    classifier_unavailable, coverage_limited, language_regenerate, unfinished_thinking, audit_pending,
    input_replaced (undecodable characters in the prompt were replaced with U+FFFD)."""

    kind: str
    message: str


@dataclass(frozen=True)
class PromptBlocked:
    decisions: tuple[Any, ...]
    message: str


@dataclass(frozen=True)
class Delta:
    """Raw generated text of one channel, emitted once it may be shown: at once, or — where a block or
    redact rule applies to the channel — only after every classifier has judged it (core.holdback)."""

    channel: Literal["thinking", "answer"]
    text: str


@dataclass(frozen=True)
class Checking:
    """``held`` characters of ``channel`` are generated but not yet judged (the view says "checking…");
    0 when everything generated so far has been released."""

    channel: Literal["thinking", "answer"]
    held: int


@dataclass(frozen=True)
class GuardDecision:
    """A flag/redact/block decision (``decision`` is a core.guard Decision)."""

    decision: Any


@dataclass(frozen=True)
class Redacted:
    """The view replaces ``[start, end)`` of the channel's raw text with ``notice``."""

    channel: Literal["thinking", "answer"]
    start: int
    end: int
    notice: str


@dataclass(frozen=True)
class Blocked:
    """The turn was stopped: the view hides the channel's text from ``start`` on and shows ``notice``."""

    channel: Channel
    start: int
    notice: str


@dataclass(frozen=True)
class LanguageReport:
    channel: Literal["thinking", "answer"]
    target: str | None
    share_in_target: float
    events: tuple[Any, ...]
    mixed: bool          # the language lock's verdict (its min_share and events): the view shows it, never re-decides


@dataclass(frozen=True)
class PromptProgress:
    """The model is reading the prompt: ``done`` of ``total`` prompt tokens (before the first reply token)."""

    done: int
    total: int


@dataclass(frozen=True)
class Stats:
    """Live statistics while generating (periodic)."""

    tokens_per_s: float
    elapsed_s: float
    completion_tokens: int


@dataclass(frozen=True)
class TurnResult:
    turn_id: str
    conversation_id: str
    thinking: str
    answer_raw: str
    answer_shown: str
    thinking_shown: str
    finish_reason: FinishReason
    unfinished_thinking: bool
    blocked: bool
    decisions: tuple[Any, ...] = ()
    language: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    notices: tuple[Notice, ...] = ()
    raw_output: str = ""        # the reply exactly as the model wrote it (what a continuation resends)


CONTINUE_HINT = "Continue lets it finish."      # the last sentence of a length notice (a view may replace it)


def length_notice(unfinished_thinking: bool, max_tokens: int | None = None) -> Notice:
    """The one notice for a reply that ran out of tokens (the view offers Continue with it)."""
    limit = f" (the limit is {max_tokens:,} new tokens)" if max_tokens else ""
    if unfinished_thinking:
        return Notice("unfinished_thinking", f"The model ran out of tokens while still thinking{limit}: there is "
                                             f"no answer yet. {CONTINUE_HINT}")
    return Notice("out_of_tokens", f"The answer was cut off: the model ran out of tokens{limit}. {CONTINUE_HINT}")


LENGTH_NOTICE_KINDS = frozenset({"unfinished_thinking", "out_of_tokens"})


@dataclass(frozen=True)
class TurnFinished:
    result: TurnResult


ChatEvent = Union[TurnStarted, Notice, PromptBlocked, Delta, Checking, GuardDecision, Redacted, Blocked,
                  LanguageReport, Stats, TurnFinished, PromptProgress]
