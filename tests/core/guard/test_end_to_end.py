"""Real llama.cpp (the tiny random-weight R1 model) + real Detoxify code (tiny checkpoint) + fastText,
through core.chat's ChatSession — the path a user's turn takes.

The tiny Detoxify model's scores sit near 0.5, so thresholds of 0 make outcomes certain whatever the
random LLM writes.
"""
from __future__ import annotations

import pytest

from r1desk import settings as S
from r1desk.core.engine import GenParams
from r1desk.core.events import Blocked, Delta, LanguageReport, PromptBlocked, TurnFinished
from r1desk.core.guard.session import GuardSession

pytestmark = pytest.mark.slow


def _settings(channel: str, action: str) -> S.Settings:
    s = S.Settings()
    for ch in ("prompt", "thinking", "answer"):
        for label in s.guard.rules[ch]:
            s.guard.rules[ch][label] = S.RuleSetting(1.0, "allow")
    s.guard.rules[channel]["threat"] = S.RuleSetting(0.0, action)
    s.guard.max_segment_chars = 50  # random text has few sentence ends: cut it into windows
    s.language.target = "en"
    return s


def _run(engine, settings, text="Please count from one to ten.", max_tokens=160):
    from r1desk.core.chat import ChatSession, TurnRequest

    session = ChatSession(engine, audit=None, config=settings.chat_config(), guard=GuardSession(settings.guard_config()))
    req = TurnRequest(user_text=text, language="en",
                      params=GenParams(temperature=0.6, top_p=0.95, max_tokens=max_tokens, seed=7))
    events = list(session.run_turn(req))
    session.close()
    return events


def test_block_in_the_stream_stops_real_generation(tiny_r1_engine, installed_tiny_detoxify):
    events = _run(tiny_r1_engine, _settings("thinking", "block"))
    result = next(e for e in events if isinstance(e, TurnFinished)).result
    blocked = [e for e in events if isinstance(e, Blocked)]
    assert result.finish_reason == "blocked" and result.blocked and blocked
    assert result.usage["completion_tokens"] < 160  # generation stopped early
    assert blocked[0].channel == "thinking"
    assert result.thinking_shown == result.thinking[:blocked[0].start]
    assert result.answer_shown == ""
    assert any((d.model or "").startswith("detoxify-original") for d in result.decisions)
    deltas = "".join(e.text for e in events if isinstance(e, Delta) and e.channel == "thinking")
    assert deltas == result.thinking_shown          # held back: nothing past the block was ever handed out


def test_prompt_blocked_before_generation_with_real_classifier(tiny_r1_engine, installed_tiny_detoxify):
    events = _run(tiny_r1_engine, _settings("prompt", "block"))
    assert any(isinstance(e, PromptBlocked) for e in events)
    assert not any(isinstance(e, Delta) for e in events)
    result = next(e for e in events if isinstance(e, TurnFinished)).result
    assert result.finish_reason == "blocked"


def test_flags_and_language_report_on_a_clean_run(tiny_r1_engine, installed_tiny_detoxify):
    events = _run(tiny_r1_engine, _settings("thinking", "flag"), max_tokens=60)
    result = next(e for e in events if isinstance(e, TurnFinished)).result
    assert result.finish_reason in ("stop", "length")
    assert result.decisions and all(d.action == "flag" for d in result.decisions)
    reports = [e for e in events if isinstance(e, LanguageReport)]
    assert reports and all(r.target == "en" and 0.0 <= r.share_in_target <= 1.0 for r in reports)
    assert result.thinking_shown == result.thinking  # flags never change the text
