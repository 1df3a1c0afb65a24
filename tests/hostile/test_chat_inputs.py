"""A real turn (SmolLM2, guard on with a scripted scorer) given a hostile template and a prompt with
undecodable bytes: it completes, with notices of the right kinds."""
from __future__ import annotations

import dataclasses

import pytest

from r1desk.core.chat import ChatSession, TurnRequest
from r1desk.core.events import Notice, TurnFinished, TurnStarted
from r1desk.core.guard.langid import LangId
from r1desk.core.guard.session import GuardSession
from r1desk.core.guard.toxicity import ToxicityClassifier
from r1desk.settings import Settings
from r1desk.storage.auditlog import AuditLog
from tests.hostile import builders as b
from tests.support.scorers import ScriptedScorer


@pytest.fixture
def session(smollm2_engine, tmp_path):
    settings = Settings()
    audit = AuditLog(tmp_path / "audit.db")
    guard = GuardSession(settings.guard_config(), classifiers=[ToxicityClassifier(ScriptedScorer())], langid=LangId())
    chat = ChatSession(smollm2_engine, audit=audit, config=settings.chat_config(), guard=guard)
    original = smollm2_engine.info
    yield chat
    smollm2_engine.info = original
    chat.close()
    audit.close()


def _turn(chat: ChatSession, text: str) -> list:
    params = chat.generation_params(max_tokens=4, seed=1)
    return list(chat.run_turn(TurnRequest(text, params=params, language="auto")))


def test_hostile_template_gives_a_template_fallback_notice(session, smollm2_engine) -> None:
    smollm2_engine.info = dataclasses.replace(smollm2_engine.info, chat_template=b.TEMPLATES["nested_range"])
    events = _turn(session, "Name a colour.")
    kinds = {e.kind for e in events if isinstance(e, Notice)}
    assert "template_fallback" in kinds and "few_shot" not in kinds
    started = next(e for e in events if isinstance(e, TurnStarted))
    assert started.prompt_sent.startswith("<|im_start|>system\n") is False    # ChatML fallback, no default system
    assert "<|im_start|>user\nName a colour.<|im_end|>" in started.prompt_sent
    assert isinstance(events[-1], TurnFinished)


def test_undecodable_prompt_is_replaced_and_said(session) -> None:
    text = "caf\udce9 is \udcff good"          # what argv decoding leaves for invalid UTF-8
    events = _turn(session, text)
    notices = [e for e in events if isinstance(e, Notice) and e.kind == "input_replaced"]
    assert notices and "U+FFFD" in notices[0].message
    started = next(e for e in events if isinstance(e, TurnStarted))
    assert "caf\ufffd is \ufffd good" in started.prompt_sent
    assert isinstance(events[-1], TurnFinished)
