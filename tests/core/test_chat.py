"""One chat turn end to end: real llama.cpp on real GGUF files, the real splitter, guard pipeline
(fastText language id; toxicity scores scripted), and a real SQLite audit log."""
from __future__ import annotations

import threading

import pytest

from r1desk.core.chat import ChatSession, TurnRequest
from r1desk.core.events import (Blocked, Delta, GuardDecision, Notice, PromptBlocked, Stats, TurnFinished,
                                TurnStarted)
from r1desk.core.guard.langid import LangId
from r1desk.core.guard.session import GuardSession
from r1desk.core.guard.toxicity import ToxicityClassifier
from r1desk.errors import ContextOverflowError
from r1desk.settings import RuleSetting, Settings
from r1desk.storage.auditlog import AuditLog
from tests.support.locks import write_lock_held
from tests.support.scorers import ScriptedScorer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def langid() -> LangId:
    return LangId()


@pytest.fixture
def audit(tmp_path):
    log = AuditLog(tmp_path / "audit.db")
    yield log
    log.close()


def make_session(engine, audit, langid, *, scorer=None, settings=None) -> ChatSession:
    settings = settings or Settings()
    guard = GuardSession(settings.guard_config(), classifiers=[ToxicityClassifier(scorer or ScriptedScorer())],
                         langid=langid)
    return ChatSession(engine, audit=audit, config=settings.chat_config(), guard=guard)


def run(session: ChatSession, req: TurnRequest, cancel: threading.Event | None = None) -> list:
    return list(session.run_turn(req, cancel))


def finished(events: list):
    results = [e.result for e in events if isinstance(e, TurnFinished)]
    assert results, "every turn ends with TurnFinished"
    return results[-1]


def test_r1_turn_streams_thinking_and_logs_it(tiny_r1_engine, audit, langid):
    session = make_session(tiny_r1_engine, audit, langid)
    req = TurnRequest("What is 2+2?", params=session.generation_params(max_tokens=24, seed=7), language=None)
    events = run(session, req)

    assert isinstance(events[0], TurnStarted)
    assert events[0].prompt_sent.endswith("<｜Assistant｜><think>\n")      # R1 recipe: forced thinking
    deltas = [e for e in events if isinstance(e, Delta)]
    assert deltas and deltas[0].channel == "thinking"                     # the reply starts inside thinking
    result = finished(events)
    streamed = "".join(d.text for d in deltas if d.channel == "thinking")
    assert streamed and result.thinking_shown == result.thinking       # nothing redacted or blocked here
    assert result.thinking.strip() == streamed.strip()                  # every judged character was shown
    assert result.finish_reason == "length" and result.usage["completion_tokens"] == 24
    row = audit.get_turn(result.turn_id)
    assert row["status"] == "done" and row["finish_reason"] == "length"
    assert row["thinking"] == result.thinking
    assert row["prompt_typed"] == "What is 2+2?"
    assert row["model_sha256"] or row["model"]["name"]


def test_smollm2_turn_has_no_thinking_and_uses_its_own_template(smollm2_engine, audit, langid):
    session = make_session(smollm2_engine, audit, langid)
    req = TurnRequest("Name a colour.", params=session.generation_params(max_tokens=16, seed=1), language=None)
    events = run(session, req)
    assert "<|im_start|>user\nName a colour.<|im_end|>" in events[0].prompt_sent
    result = finished(events)
    assert result.thinking == "" and result.answer_raw
    assert {e.channel for e in events if isinstance(e, Delta)} == {"answer"}


def flag_only() -> Settings:
    """Settings whose policy only flags: nothing is held back, every piece streams at once."""
    settings = Settings()
    for labels in settings.guard.rules.values():
        for label, rule in labels.items():
            labels[label] = RuleSetting(rule.threshold, "flag" if rule.action in ("redact", "block") else rule.action)
    return settings


def test_cancel_stops_within_a_token_and_is_logged(tiny_r1_engine, audit, langid):
    session = make_session(tiny_r1_engine, audit, langid, settings=flag_only())
    cancel = threading.Event()
    req = TurnRequest("Count to a thousand.", params=session.generation_params(max_tokens=400, seed=3),
                      language=None)
    seen = 0
    events = []
    for event in session.run_turn(req, cancel):
        events.append(event)
        if isinstance(event, Delta):
            seen += 1
            if seen == 5:
                cancel.set()
    result = finished(events)
    assert result.finish_reason == "cancelled"
    assert result.usage["completion_tokens"] <= 6
    assert audit.get_turn(result.turn_id)["status"] == "cancelled"


def test_guard_block_mid_stream_stops_generation_and_withholds_the_rest(tiny_r1_engine, audit, langid):
    settings = Settings()
    settings.guard.rules["thinking"]["threat"] = RuleSetting(0.5, "block")
    settings.guard.channels["prompt"] = False                           # the scorer flags any text
    scorer = ScriptedScorer(everything={"threat": 0.99})
    session = make_session(tiny_r1_engine, audit, langid, scorer=scorer, settings=settings)
    req = TurnRequest("Tell me a story.", params=session.generation_params(max_tokens=1500, seed=5),
                      language=None)
    events = run(session, req)
    result = finished(events)
    blocks = [e for e in events if isinstance(e, Blocked)]
    assert blocks and result.blocked and result.finish_reason == "blocked"
    assert result.usage["completion_tokens"] < 1500                       # generation was stopped
    assert result.thinking_shown == result.thinking[: blocks[0].start]   # nothing from the block on is shown
    assert any(isinstance(e, GuardDecision) and e.decision.action == "block" for e in events)
    row = audit.get_turn(result.turn_id)
    assert row["status"] == "blocked"
    assert any(d["action"] == "block" and d["channel"] == "thinking" for d in row["decisions"])


def test_prompt_blocked_before_generation(tiny_r1_engine, audit, langid):
    scorer = ScriptedScorer({"VIOLENT": {"threat": 0.99}})
    session = make_session(tiny_r1_engine, audit, langid, scorer=scorer)
    events = run(session, TurnRequest("something VIOLENT here", language=None))
    assert any(isinstance(e, PromptBlocked) for e in events)
    assert not any(isinstance(e, (Delta, Stats)) for e in events)
    result = finished(events)
    assert result.blocked and result.finish_reason == "blocked"
    assert audit.get_turn(result.turn_id)["status"] == "blocked"


def test_prompt_longer_than_the_context_is_refused_and_logged(tiny_r1_engine, audit, langid):
    session = make_session(tiny_r1_engine, audit, langid)
    huge = "word " * 5000                                                # the test engine has n_ctx 2048
    with pytest.raises(ContextOverflowError, match="context"):
        run(session, TurnRequest(huge, language=None))
    rows = audit.list_turns()
    assert rows and rows[0]["status"] == "error"                         # the prompt is not lost


def test_history_is_dropped_oldest_first_with_a_notice(tiny_r1_engine, audit, langid):
    from r1desk.core.prompts import Message

    session = make_session(tiny_r1_engine, audit, langid)
    history = []
    for i in range(12):
        history += [Message("user", f"question {i} " + "blah " * 150), Message("assistant", "answer " * 100)]
    events = run(session, TurnRequest("And now?", history=history, language=None,
                                      params=session.generation_params(max_tokens=4, seed=1)))
    notices = [e for e in events if isinstance(e, Notice) and e.kind == "context_trimmed"]
    assert notices and "Dropped" in notices[0].message
    assert "question 11" in events[0].prompt_sent and "question 0 " not in events[0].prompt_sent


def test_locked_audit_database_keeps_the_turn_in_memory(tiny_r1_engine, tmp_path, langid):
    db_path = tmp_path / "locked.db"
    audit = AuditLog(db_path, busy_timeout=0.05)
    session = make_session(tiny_r1_engine, audit, langid)
    with write_lock_held(db_path):
        events = run(session, TurnRequest("Hello", language=None,
                                          params=session.generation_params(max_tokens=8, seed=2)))
    assert any(isinstance(e, Notice) and e.kind == "audit_pending" for e in events)
    result = finished(events)
    assert session.log.writer is not None and session.log.writer.pending > 0
    session.log.writer.flush()                                                # the database is free again
    assert audit.get_turn(result.turn_id)["status"] == "done"
    audit.close()


def test_conversation_history_comes_back_from_the_log(smollm2_engine, audit, langid):
    session = make_session(smollm2_engine, audit, langid)
    first = finished(run(session, TurnRequest("Say hi.", language=None,
                                              params=session.generation_params(max_tokens=8, seed=1))))
    history = session.history(first.conversation_id)
    assert [m.role for m in history] == ["user", "assistant"]
    assert history[0].content == "Say hi." and history[1].content == first.answer_shown
    second = run(session, TurnRequest("Again.", conversation_id=first.conversation_id, history=history,
                                      language=None, params=session.generation_params(max_tokens=8, seed=1)))
    assert "Say hi." in second[0].prompt_sent
    assert finished(second).conversation_id == first.conversation_id


class EnglishOnly(LangId):
    """Hears English in everything: the model 'ignores' any other target, deterministically."""

    def load(self) -> None:
        pass

    def detect(self, text: str) -> tuple[str, float]:
        return "en", 0.99


def test_language_lock_regenerates_once_with_a_stronger_instruction(smollm2_engine, audit):
    settings = Settings()
    settings.language.action = "regenerate"
    session = make_session(smollm2_engine, audit, EnglishOnly(), settings=settings)
    events = run(session, TurnRequest("Tell me about the weather in two sentences.", language="de",
                                      params=session.generation_params(max_tokens=40, seed=3)))
    starts = [e for e in events if isinstance(e, TurnStarted)]
    results = [e.result for e in events if isinstance(e, TurnFinished)]
    assert any(isinstance(e, Notice) and e.kind == "language_regenerate" for e in events)
    assert len(starts) == 2 and len(results) == 2                          # once, not in a loop
    assert starts[1].settings["regenerate_of"] == results[0].turn_id
    assert starts[1].settings["strong_language"] is True
    assert starts[1].prompt_sent != starts[0].prompt_sent                   # the stronger instruction
    assert results[0].language["should_regenerate"]
    assert audit.get_turn(results[1].turn_id)["conversation_id"] == results[0].conversation_id


def test_a_failure_mid_answer_keeps_the_partial_turn(tiny_r1_engine, audit, langid, monkeypatch):
    session = make_session(tiny_r1_engine, audit, langid)
    real_piece = type(tiny_r1_engine).piece
    calls = {"n": 0}

    def failing_piece(self, token):
        calls["n"] += 1
        if calls["n"] > 40:
            raise RuntimeError("llama_decode failed")          # what a native failure surfaces as
        return real_piece(self, token)

    monkeypatch.setattr(type(tiny_r1_engine), "piece", failing_piece)
    monkeypatch.setattr(tiny_r1_engine, "_pieces", {})             # no cached pieces: every token decodes
    events = []
    with pytest.raises(RuntimeError, match="llama_decode"):
        for event in session.run_turn(TurnRequest("Hello", language=None,
                                                  params=session.generation_params(max_tokens=200, seed=4))):
            events.append(event)
    turn_id = events[0].turn_id
    turn = audit.get_turn(turn_id)
    assert turn["status"] == "error"
    streamed = "".join(e.text for e in events if isinstance(e, Delta) and e.channel == "thinking")
    assert turn["thinking"]                                  # the partial text is kept in the audit log
    assert turn["thinking"].strip().startswith(streamed.strip())   # ... including all that was shown


def test_history_skips_a_turn_that_was_regenerated(smollm2_engine, audit, langid):
    session = make_session(smollm2_engine, audit, langid)
    params = session.generation_params(max_tokens=6, seed=1)
    first = finished(run(session, TurnRequest("Say hi.", language=None, params=params)))
    retry = finished(run(session, TurnRequest("Say hi.", conversation_id=first.conversation_id, language=None,
                                              params=session.generation_params(max_tokens=6, seed=2),
                                              regenerate_of=first.turn_id)))
    history = session.history(first.conversation_id)
    assert [m.content for m in history] == ["Say hi.", retry.answer_shown]


def test_a_turn_the_locked_database_refused_until_exit_is_stored_at_the_next_start(tiny_r1_engine, tmp_path,
                                                                                    langid):
    db_path = tmp_path / "locked-at-exit.db"
    audit = AuditLog(db_path, busy_timeout=0.05)
    session = make_session(tiny_r1_engine, audit, langid)
    with write_lock_held(db_path):
        result = finished(run(session, TurnRequest("Remember me", language=None,
                                                    params=session.generation_params(max_tokens=6, seed=2))))
        message = session.close()                                    # the CLI prints this
    audit.close()
    assert message and "stored at the next start" in message

    reopened = AuditLog(db_path)
    make_session(tiny_r1_engine, reopened, langid)                   # a new session replays the file
    turn = reopened.get_turn(result.turn_id)
    assert turn["status"] == "done" and turn["prompt_typed"] == "Remember me"
    reopened.close()


def test_out_of_tokens_gives_one_notice_and_continue_carries_on(tiny_r1_engine, audit, langid):
    """Issue 14 item 11: one notice when R1 runs out of tokens; Continue generates more within max_tokens,
    resending the conversation with the cut reply, and the audit log says so."""
    from r1desk.core.chat import Continuation
    from r1desk.core.events import LENGTH_NOTICE_KINDS

    session = make_session(tiny_r1_engine, audit, langid)
    params = session.generation_params(max_tokens=24, seed=7)
    first_events = run(session, TurnRequest("What is 2+2?", params=params, language=None))
    first = finished(first_events)
    assert first.finish_reason == "length" and first.raw_output
    notices = [e for e in first_events if isinstance(e, Notice) and e.kind in LENGTH_NOTICE_KINDS]
    assert len(notices) == 1 and "Continue" in notices[0].message and "24 new tokens" in notices[0].message

    req = TurnRequest("What is 2+2?", conversation_id=first.conversation_id, params=params, language=None,
                      regenerate_of=first.turn_id, continue_from=Continuation(first.turn_id, first.raw_output))
    events = run(session, req)
    started = events[0]
    assert isinstance(started, TurnStarted) and started.prompt_sent.endswith("<think>\n" + first.raw_output)
    new_text = "".join(e.text for e in events if isinstance(e, Delta))
    second = finished(events)
    assert second.raw_output.startswith(first.raw_output) and len(second.raw_output) > len(first.raw_output)
    assert second.usage["completion_tokens"] <= 24                       # the admin's bound, again
    assert (second.thinking + second.answer_raw).replace("\n", "").startswith(first.thinking.replace("\n", "")[:40])
    assert new_text and not new_text.startswith(first.thinking[:20])     # the earlier text is not sent twice
    row = audit.get_turn(second.turn_id)
    assert row["settings"]["continues"] == first.turn_id and row["regenerate_of"] == first.turn_id
    assert row["raw_output"] == second.raw_output and row["prompt_sent"] == started.prompt_sent
    turns = audit.get_conversation(first.conversation_id)["turns"]
    assert [(t["id"], bool(t["superseded"])) for t in turns] == [(first.turn_id, True), (second.turn_id, False)]
    assert audit.verify().ok


def test_continue_with_no_room_left_in_the_context_is_refused_and_logged(tiny_r1_engine, audit, langid):
    from r1desk.core.chat import Continuation
    from r1desk.errors import UserFacingError

    session = make_session(tiny_r1_engine, audit, langid)
    huge = "word " * tiny_r1_engine.n_ctx
    with pytest.raises(UserFacingError, match="no room to continue"):
        run(session, TurnRequest("Hi", language=None, continue_from=Continuation("t0", huge)))
    session.close()
    rows = audit.list_turns()
    assert rows and rows[0]["status"] == "error"                         # the request is not lost


def test_reading_a_long_prompt_reports_progress_before_the_reply(tiny_r1_engine, audit, langid):
    from r1desk.core.events import PromptProgress

    session = make_session(tiny_r1_engine, audit, langid)
    events = run(session, TurnRequest("Summarise: " + "a long pasted document line. " * 120, language=None,
                                      params=session.generation_params(max_tokens=4, seed=1)))
    progress = [i for i, e in enumerate(events) if isinstance(e, PromptProgress)]
    first_delta = next(i for i, e in enumerate(events) if isinstance(e, Delta))
    assert len(progress) >= 3 and max(progress) < first_delta
    last = events[progress[-1]]
    assert last.done == last.total - 1 and last.total == finished(events).usage["prompt_tokens"]
