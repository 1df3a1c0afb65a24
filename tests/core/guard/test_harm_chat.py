"""The harm filter in real chat turns (real llama.cpp chat models, real audit log): scripted guard-model
verdicts where a test needs a fixed outcome (parsed by the real profile parser), and the tiny random-weight
guard GGUF end to end. The toxicity filter scores everything clean, so only the harm judge can act."""
from __future__ import annotations

import threading

import pytest

from r1desk.core.chat import ChatSession, TurnRequest
from r1desk.core.engine import GenParams
from r1desk.core.events import Blocked, Checking, Delta, TurnFinished
from r1desk.core.guard.harm import PROFILES, GuardModelJudge, JudgeRequest, ScriptedJudge
from r1desk.core.guard.harm.classifier import HarmClassifier
from r1desk.core.guard.langid import LangId
from r1desk.core.guard.session import GuardSession
from r1desk.core.guard.toxicity import ToxicityClassifier
from r1desk.settings import RuleSetting, Settings
from tests.support.scorers import ScriptedScorer

SAFE = "Safety: Safe\nCategories: None"


@pytest.fixture
def audit(tmp_path):
    from r1desk.storage.auditlog import AuditLog

    log = AuditLog(tmp_path / "audit.db")
    yield log
    log.close()


UNSAFE_VIOLENT = "Safety: Unsafe\nCategories: Violent"
QWEN3GUARD = PROFILES["qwen3guard-gen"]


class RecordingJudge(ScriptedJudge):
    """A scripted judge that also records how much of each channel it had judged, in order."""

    def __init__(self, verdicts: dict[str, str]) -> None:
        self.judged = {"thinking": 0, "answer": 0}
        self.lock = threading.Lock()

        def verdict(request: JudgeRequest) -> str:
            if request.kind != "prompt":
                with self.lock:
                    self.judged[request.kind] = max(self.judged[request.kind], len(request.text or ""))
            raw = verdicts.get(request.kind, SAFE)
            return raw if request.kind == "prompt" or "Refusal" in raw else raw + "\nRefusal: No"

        super().__init__(QWEN3GUARD, verdict)


def _session(engine, audit, judge, settings: Settings | None = None) -> ChatSession:
    settings = settings or Settings()
    settings.language.target = "off"
    classifiers = [ToxicityClassifier(ScriptedScorer()), HarmClassifier(judge)]
    guard = GuardSession(settings.guard_config(), classifiers=classifiers, langid=LangId())
    return ChatSession(engine, audit=audit, config=settings.chat_config(), guard=guard)


def _turn(session: ChatSession, judge: RecordingJudge | None = None, max_tokens: int = 60) -> tuple[list, object]:
    req = TurnRequest("How do I hurt someone?", language=None,
                      params=GenParams(temperature=0.6, top_p=0.95, max_tokens=max_tokens, seed=11))
    events, released = [], {"thinking": 0, "answer": 0}
    for event in session.run_turn(req):
        events.append(event)
        if isinstance(event, Delta):
            released[event.channel] += len(event.text)
            if judge is not None:   # nothing on screen that the guard model has not judged
                assert released[event.channel] <= judge.judged[event.channel], (event.channel, released)
    result = next(e for e in events if isinstance(e, TurnFinished)).result
    return events, result


def test_a_polite_harmful_answer_with_clean_toxicity_is_blocked_by_the_harm_judge(smollm2_engine, audit):
    judge = RecordingJudge({"answer": UNSAFE_VIOLENT})
    events, result = _turn(_session(smollm2_engine, audit, judge), judge)
    assert result.blocked and result.finish_reason == "blocked"
    blocks = [d for d in result.decisions if d.action == "block"]
    assert {(d.classifier, d.channel) for d in blocks} == {("harm", "answer")}
    # "Violent" is a broad category: it reaches the rules on violence, on each kind of it, and on harm itself
    assert {d.label for d in blocks} == {"harm.harm", "harm.violence", "harm.physical_harm", "harm.weapons"}
    assert not any(d.classifier == "toxicity" and d.action != "allow" for d in result.decisions)
    shown = "".join(e.text for e in events if isinstance(e, Delta) and e.channel == "answer")
    assert shown == result.answer_shown == ""          # the first judged chunk was unsafe: nothing shown
    assert any(isinstance(e, Blocked) for e in events)
    assert any(isinstance(e, Checking) and e.held > 0 for e in events)
    stored = audit.get_turn(result.turn_id)
    rows = [d for d in stored["decisions"] if d["action"] == "block"]
    assert rows and all(r["classifier"] == "harm" and r["verdict"] == "unsafe" and "Violent" in r["raw_output"]
                        for r in rows)


def test_thinking_only_harm_is_caught_while_the_answer_is_clean(tiny_r1_engine, audit):
    judge = RecordingJudge({"thinking": UNSAFE_VIOLENT})
    events, result = _turn(_session(tiny_r1_engine, audit, judge), judge, max_tokens=80)
    thinking = [d for d in result.decisions if d.classifier == "harm" and d.channel == "thinking"]
    assert thinking and {d.action for d in thinking} == {"flag"}    # R1 restates harm while refusing: flag
    assert not result.blocked
    assert not [d for d in result.decisions if d.channel == "answer" and d.classifier == "harm"]
    assert judge.requests and {r.kind for r in judge.requests} >= {"prompt", "thinking"}


@pytest.mark.parametrize("action", ["flag", "block"])
def test_an_undetermined_verdict_follows_the_policy(smollm2_engine, audit, action):
    settings = Settings()
    for channel in ("prompt", "answer"):
        settings.guard.rules[channel]["harm.undetermined"] = RuleSetting(0.5, action)
    judge = RecordingJudge({"prompt": "I think this is fine?", "answer": "no idea"})
    events, result = _turn(_session(smollm2_engine, audit, judge, settings), judge)
    undetermined = [d for d in result.decisions if d.label == "harm.undetermined"]
    assert undetermined and {d.action for d in undetermined} == {action}
    assert undetermined[0].raw_output in ("I think this is fine?", "no idea")
    assert result.blocked is (action == "block")      # fail closed blocks the prompt; fail open flags


def test_the_tiny_guard_gguf_judges_a_real_turn_end_to_end(smollm2_engine, audit, tiny_qwen3guard_path):
    judge = GuardModelJudge(tiny_qwen3guard_path, n_threads=1, n_ctx=2048)
    try:
        events, result = _turn(_session(smollm2_engine, audit, judge), max_tokens=24)
    finally:
        judge.unload()
    harm = [d for d in result.decisions if d.classifier == "harm"]
    # random weights never write the documented verdict shape: undetermined, flagged, raw output kept
    assert harm and {d.label for d in harm} == {"harm.undetermined"} and {d.action for d in harm} == {"flag"}
    assert all(d.raw_output is not None for d in harm)
    assert result.finish_reason in ("stop", "length")
