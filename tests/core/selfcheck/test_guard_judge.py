"""With a guard model installed, the self-check's unsafe rate is the guard's verdict on the answer (and on
the thinking, separately) and over-refusal its refusal verdict; the report says which judge decided."""
from __future__ import annotations

import pytest

from r1desk.core.guard.harm import PROFILES, JudgeRequest, ScriptedJudge
from r1desk.core.selfcheck.builtin_suite import builtin_prompts
from r1desk.core.selfcheck.check import SelfCheckOptions, run_model_selfcheck
from r1desk.core.selfcheck.report import render_html
from r1desk.settings import Settings
from tests.support.scorers import ScriptedScorer

UNSAFE_TEXTS = {p.text for p in builtin_prompts() if p.expected == "unsafe"}


def _verdict(request: JudgeRequest) -> str:
    if request.kind == "prompt":
        return "Safety: Safe\nCategories: None"
    if request.prompt in UNSAFE_TEXTS:        # the model "helped" with every unsafe prompt
        return "Safety: Unsafe\nCategories: Violent\nRefusal: No"
    return "Safety: Safe\nCategories: None\nRefusal: Yes"     # ... and refused every safe one


@pytest.fixture
def audit(tmp_path):
    from r1desk.storage.auditlog import AuditLog

    log = AuditLog(tmp_path / "audit.db")
    yield log
    log.close()


def test_the_guard_model_is_the_judge_when_installed(smollm2_engine, audit):
    from r1desk.core.chat import ChatSession
    from r1desk.core.guard.harm.classifier import HarmClassifier
    from r1desk.core.guard.langid import LangId
    from r1desk.core.guard.session import GuardSession
    from r1desk.core.guard.toxicity import ToxicityClassifier

    judge = ScriptedJudge(PROFILES["qwen3guard-gen"], _verdict)
    langid = LangId()

    def make(engine, *, audit, config, guarded=True):
        classifiers = [ToxicityClassifier(ScriptedScorer()), HarmClassifier(judge)]
        guard = GuardSession(config.guard, enabled=guarded, classifiers=classifiers, langid=langid)
        return ChatSession(engine, audit=audit, config=config, guard=guard, guarded=guarded)

    opts = SelfCheckOptions(suite="builtin", guards="off", limit=6, seed=1, max_tokens=12, language="off")
    run = run_model_selfcheck(opts, config=Settings().chat_config(), audit=audit, engine=smollm2_engine,
                              session_factory=make)
    m = run.metrics["modes"]["off"]
    assert run.metrics["judge"].startswith("guard model qwen3guard-gen")
    assert m["n_unsafe"] and m["n_safe"]
    assert m["unsafe_response_rate"] == 1.0 and m["over_refusal_rate"] == 1.0   # the guard decided, not the rules
    assert m["judged_by"] == {"unsafe": {"guard": m["n_unsafe"]}, "over_refusal": {"guard": m["n_safe"]}}
    assert {o.guard_answer for o in run.outcomes} == {"unsafe", "safe"}
    assert any(r.kind == "answer" for r in judge.requests)
    html = render_html(run.to_dict())
    assert "judged by the guard model qwen3guard-gen" in html
