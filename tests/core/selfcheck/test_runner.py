from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from r1desk.core.selfcheck.builtin_suite import builtin_prompts
from r1desk.core.config import monitor_mode
from r1desk.core.selfcheck.runner import modes_for, run_selfcheck, sample_prompts
from r1desk.core.selfcheck.suites import Prompt
from r1desk.errors import UserFacingError
from tests.core.selfcheck.fakes import FakeSession, Script

PROMPTS = [
    Prompt("u1", "unsafe one", "unsafe", "violence", "t"),
    Prompt("u2", "unsafe two", "unsafe", "violence", "t"),
    Prompt("u3", "unsafe three", "unsafe", "scams_fraud", "t"),
    Prompt("s1", "safe one", "safe", "violence", "t"),
    Prompt("s2", "safe two", "safe", "scams_fraud", "t"),
]
REFUSE = "I'm sorry, but I can't help with that."
COMPLY = "Sure. First, do this. Then do that."

ON = {  # guards on: u1 blocked in the answer, u2 prompt-blocked, u3 refused, s1 answered, s2 blocked (over-refusal)
    "unsafe one": Script(COMPLY, flags=(("thinking", "flag"), ("answer", "block")), block="answer"),
    "unsafe two": Script(COMPLY, block="prompt"),
    "unsafe three": Script(REFUSE, flags=(("thinking", "flag"),)),
    "safe one": Script(COMPLY),
    "safe two": Script(COMPLY, flags=(("answer", "block"),), block="answer"),
}
OFF = {  # monitor mode: nothing blocked; u1, u2 complied; s2 mixed language
    "unsafe one": Script(COMPLY, flags=(("thinking", "flag"), ("answer", "flag"))),
    "unsafe two": Script(COMPLY, flags=(("prompt", "flag"),)),
    "unsafe three": Script(REFUSE, flags=(("thinking", "flag"),)),
    "safe one": Script(COMPLY),
    "safe two": Script(COMPLY, flags=(("answer", "flag"),), share=0.4),
}


def _req(p: Prompt) -> SimpleNamespace:
    return SimpleNamespace(user_text=p.text)


def test_both_modes_metrics_are_computed_per_mode_and_area():
    on, off = FakeSession(ON), FakeSession(OFF)
    seen = []
    run = run_selfcheck(PROMPTS, {"on": on, "off": off}.__getitem__, make_request=_req, suite="t",
                        guards="both", progress=seen.append, min_share=0.9)
    assert len(run.outcomes) == 10 and not run.cancelled and run.status == "finished"
    assert [o.guards for o in run.outcomes[:2]] == ["on", "off"]          # paired, on first
    m_on, m_off = run.metrics["modes"]["on"], run.metrics["modes"]["off"]
    assert m_on["unsafe_response_rate"] == 0.0                            # blocked, blocked, refused
    assert m_off["unsafe_response_rate"] == pytest.approx(2 / 3)
    assert m_on["over_refusal_rate"] == 0.5 and m_off["over_refusal_rate"] == 0.0
    assert m_on["flag_rates"] == {"prompt": 0.2, "thinking": 0.4, "answer": 0.4}
    assert m_off["flag_rates"] == {"prompt": 0.2, "thinking": 0.4, "answer": 0.4}
    assert m_on["outcomes"]["unsafe"] == {"complied": 0, "partial": 0, "refused": 1, "blocked": 2,
                                        "no_answer": 0}
    assert m_off["per_harm_area"]["violence"]["unsafe_response_rate"] == 1.0
    assert m_off["per_harm_area"]["scams_fraud"]["unsafe_response_rate"] == 0.0
    assert m_on["per_harm_area"]["scams_fraud"]["over_refusal_rate"] == 1.0
    assert m_off["language"]["consistent_rate"] == pytest.approx(4 / 5)
    blocked_prompt = run.outcomes[2]
    assert blocked_prompt.blocked_channel == "prompt" and blocked_prompt.flags["prompt"] == 1
    assert run.outcomes[0].strongest["answer"] == "block" and run.outcomes[1].strongest["answer"] == "flag"
    assert seen[-1].done == seen[-1].total == 10 and seen[-1].outcome is run.outcomes[-1]
    data = run.to_dict()
    assert data["status"] == "finished" and data["outcomes"][1]["unsafe_response"] is True


def test_cancel_stops_between_and_inside_turns():
    cancel = threading.Event()
    on = FakeSession(ON, cancel_after=3)
    run = run_selfcheck(PROMPTS, lambda mode: on, make_request=_req, suite="t", guards="on", cancel=cancel)
    assert run.cancelled and run.status == "cancelled"
    assert len(run.outcomes) == 2 and len(on.calls) == 3                  # the cut-short turn is dropped
    assert run.metrics["modes"]["on"]["n"] == 2


def test_cancel_before_start_runs_nothing():
    cancel = threading.Event()
    cancel.set()
    run = run_selfcheck(PROMPTS, lambda mode: FakeSession(ON), make_request=_req, suite="t", guards="on",
                        cancel=cancel)
    assert run.cancelled and run.outcomes == [] and run.metrics["modes"] == {}


def test_prompt_errors_are_recorded_and_left_out_of_rates():
    class Failing(FakeSession):
        def run_turn(self, req, cancel=None):
            if req.user_text == "safe one":
                raise UserFacingError("prompt does not fit in the context")
            return super().run_turn(req, cancel)

    run = run_selfcheck(PROMPTS, lambda mode: Failing(ON), make_request=_req, suite="t", guards="on")
    assert run.metrics["n_errors"] == 1 and run.metrics["modes"]["on"]["n"] == 4
    failed = [o for o in run.outcomes if o.error]
    assert failed[0].prompt_id == "s1" and "context" in failed[0].error


def test_sampling_is_deterministic_stratified_and_ordered():
    prompts = builtin_prompts()
    a, b = sample_prompts(prompts, 10, 7), sample_prompts(prompts, 10, 7)
    assert a == b and len(a) == 10
    assert sample_prompts(prompts, 10, 8) != a
    assert {p.expected for p in a} == {"safe", "unsafe"}
    assert len({p.harm_area for p in a}) == 5
    order = [prompts.index(p) for p in a]
    assert order == sorted(order)
    assert sample_prompts(prompts, None, 1) == prompts and sample_prompts(prompts, 999, 1) == prompts
    with pytest.raises(UserFacingError, match="--limit"):
        sample_prompts(prompts, 0, 1)


def test_modes_and_monitor_settings():
    from r1desk.settings import Settings

    assert modes_for("both") == ["on", "off"] and modes_for("off") == ["off"]
    with pytest.raises(UserFacingError, match="--guards"):
        modes_for("maybe")
    config = Settings().guard_config()
    off = monitor_mode(config)
    actions = {a for labels in off.rules.values() for _, a in labels.values()}
    assert actions <= {"allow", "flag"} and "flag" in actions
    assert any(a == "block" for labels in config.rules.values() for _, a in labels.values())
    assert off.channels == config.channels


def test_turns_without_an_answer_are_not_rated_but_reported():
    scripts = {**OFF, "unsafe one": Script("", unfinished=True), "safe one": Script("", unfinished=True)}
    run = run_selfcheck(PROMPTS, lambda mode: FakeSession(scripts), make_request=_req, suite="t", guards="off")
    m = run.metrics["modes"]["off"]
    assert m["no_answer_rate"] == 0.4 and m["n_unsafe"] == 2 and m["n_safe"] == 1
    assert m["unsafe_response_rate"] == 0.5 and m["over_refusal_rate"] == 0.0
    skipped = run.outcomes[0]
    assert skipped.no_answer and skipped.refusal == "no_answer" and not skipped.judged
    assert not skipped.unsafe_response and m["outcomes"]["unsafe"]["no_answer"] == 1


def test_notices_are_collected_once_per_turn():
    scripts = {k: Script(v.answer, notices=(("classifier_unavailable", "toxicity filter unavailable"),) * 2)
               for k, v in OFF.items()}
    run = run_selfcheck(PROMPTS, lambda mode: FakeSession(scripts), make_request=_req, suite="t", guards="off")
    assert run.outcomes[0].notices == ("classifier_unavailable: toxicity filter unavailable",)
    assert run.metrics["notices"] == {"classifier_unavailable: toxicity filter unavailable": 5}


def test_every_decision_is_counted_even_when_the_events_are_not_kept():
    from r1desk.core.events import GuardDecision, TurnFinished, TurnResult, TurnStarted
    from r1desk.core.selfcheck.runner import collect_outcome
    from tests.core.selfcheck.fakes import FakeDecision

    def events():   # each decision is garbage once consumed: its id() may be reused by the next one
        yield TurnStarted("t1", "c1", {}, "x", {})
        for i in range(20):
            yield GuardDecision(FakeDecision("answer", "flag", score=0.5 + i / 100))
        yield TurnFinished(TurnResult("t1", "c1", "", "ok", "ok", "", "stop", False, False))

    outcome = collect_outcome(PROMPTS[0], "off", events(), min_share=0.9)
    assert outcome.flags == {"prompt": 0, "thinking": 0, "answer": 20}
