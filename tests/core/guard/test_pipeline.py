"""GuardPipeline with a scripted scorer (deterministic outcomes) and the real fastText."""
from __future__ import annotations

import threading

import pytest

from r1desk.core.events import Blocked, GuardDecision, LanguageReport, Notice, Redacted
from r1desk.core.guard.langid import LangId
from r1desk.core.guard.pipeline import GuardPipeline
from r1desk.core.guard.policy import Policy, Rule
from r1desk.core.guard.toxicity import ToxicityClassifier

from .conftest import FakeScorer


@pytest.fixture(scope="module")
def langid() -> LangId:
    return LangId()


def _stream(pipe: GuardPipeline, channel: str, tokens: list[str]) -> str:
    """What core.chat does: check ``blocked`` between tokens, feed, show. The wait_idle stands in for a
    classifier that keeps up with decoding, so the test is deterministic without sleeps."""
    shown = ""
    for tok in tokens:
        if pipe.blocked.is_set():
            break
        pipe.feed(channel, tok)
        shown += tok
        assert pipe.wait_idle(10)
    return shown


def _words(text: str) -> list[str]:
    return [w + " " for w in text.split(" ")]


def test_block_mid_stream_stops_generation_and_withholds_text(fake_scorer, langid):
    pipe = GuardPipeline(Policy(), [ToxicityClassifier(fake_scorer)], langid, "en")
    answer = "Sure, here it is. I will kill them all tonight. Then more text that must never appear. And more."
    shown = _stream(pipe, "answer", _words(answer))
    events = pipe.poll() + pipe.finish(5)
    assert pipe.blocked.is_set()
    blocked = [e for e in events if isinstance(e, Blocked)]
    assert len(blocked) == 1
    start = blocked[0].start
    assert answer[start:].startswith("I will kill them")
    assert "never appear" not in shown  # generation stopped one token after the segment ended
    assert shown[:start] == "Sure, here it is. "  # what the view keeps
    d = pipe.block_decision
    assert (d.channel, d.label, d.action, d.threshold) == ("answer", "threat", "block", 0.6)
    assert d.text == "I will kill them all tonight." and d.score == 0.95
    assert "threat" in blocked[0].notice


def test_redaction_names_the_span(fake_scorer, langid):
    pipe = GuardPipeline(Policy(), [ToxicityClassifier(fake_scorer)], langid, "en")
    text = "The result is four. You are an idiot for asking. Anyway, done."
    _stream(pipe, "answer", _words(text))
    events = pipe.finish(5)
    red = [e for e in events if isinstance(e, Redacted)]
    assert len(red) == 1 and text[red[0].start:red[0].end] == "You are an idiot for asking."
    assert "insult" in red[0].notice
    assert not pipe.blocked.is_set()
    labels = {(e.decision.label, e.decision.action) for e in events if isinstance(e, GuardDecision)}
    assert ("insult", "redact") in labels and ("toxicity", "flag") in labels


def test_prompt_blocked_before_generation(fake_scorer, langid):
    pipe = GuardPipeline(Policy(), [ToxicityClassifier(fake_scorer)], langid, "auto")
    decisions = pipe.check_prompt("Hello. Tell me how to kill my neighbour.")
    assert decisions[0].action == "block" and decisions[0].channel == "prompt"
    assert decisions[0].text == "Tell me how to kill my neighbour."
    assert pipe.blocked.is_set()
    assert pipe.target_language == "en"


def test_prompt_flag_does_not_block(fake_scorer, langid):
    pipe = GuardPipeline(Policy(), [ToxicityClassifier(FakeScorer({"idiot": {"insult": 0.85}}))], langid, "en")
    decisions = pipe.check_prompt("My boss called me an idiot, how do I respond?")
    assert [(d.label, d.action) for d in decisions] == [("insult", "flag")]
    assert not pipe.blocked.is_set()


def test_thinking_only_harm_is_caught_while_the_answer_is_clean(fake_scorer, langid):
    pipe = GuardPipeline(Policy(), [ToxicityClassifier(fake_scorer)], langid, "en")
    _stream(pipe, "thinking", _words("The user wants to kill someone. I must refuse this politely."))
    _stream(pipe, "answer", _words("I can't help with that. Please talk to someone you trust."))
    events = pipe.finish(5)
    decisions = [e.decision for e in events if isinstance(e, GuardDecision)]
    assert decisions and all(d.channel == "thinking" for d in decisions)
    assert {d.action for d in decisions} == {"redact", "flag"}  # thinking redacts, never blocks
    assert not pipe.blocked.is_set()
    assert any(isinstance(e, Redacted) and e.channel == "thinking" for e in events)


def test_rolling_window_catches_harm_spanning_sentences(langid):
    scorer = FakeScorer({"meet me tonight. bring the knife": {"threat": 0.9}})  # only the pair scores high
    pipe = GuardPipeline(Policy(), [ToxicityClassifier(scorer)], langid, "en", window_segments=2)
    _stream(pipe, "answer", _words("Sure, meet me tonight. bring the knife. ok"))
    pipe.finish(5)
    d = pipe.block_decision
    assert d is not None and d.window and d.text == "Sure, meet me tonight. bring the knife."
    assert d.start == 0


def test_scoring_never_runs_on_the_generation_thread(fake_scorer, langid):
    fake_scorer.gate = threading.Event()
    pipe = GuardPipeline(Policy(), [ToxicityClassifier(fake_scorer)], langid, "en")
    for tok in _words("One sentence here. Two sentences here. Three sentences here. Four."):
        pipe.feed("answer", tok)  # returns although the scorer is stuck
    assert not pipe.wait_idle(0)
    fake_scorer.gate.set()
    pipe.finish(10)
    assert threading.current_thread().name not in fake_scorer.threads
    assert fake_scorer.threads == {"r1desk-guard"}
    assert sum(len(c) for c in fake_scorer.calls) >= 4
    assert len(fake_scorer.calls) < 4 + 3  # segments waiting together are scored in one batch


def test_language_mixing_in_thinking_and_answer(fake_scorer, langid):
    pipe = GuardPipeline(Policy(), [ToxicityClassifier(fake_scorer)], langid, "auto", language_action="annotate")
    pipe.check_prompt("What is two plus two? Please explain briefly.")
    assert pipe.target_language == "en"
    _stream(pipe, "thinking", ["Let me think ", "然后我们计算结果是多少呢", "。", " Okay, four."])
    _stream(pipe, "answer", ["The answer is four. ", "La réponse est quatre, évidemment, mon ami. ", "Done."])
    events = pipe.finish(5)
    reports = {e.channel: e for e in events if isinstance(e, LanguageReport)}
    assert set(reports) == {"thinking", "answer"}
    th = reports["thinking"]
    assert th.target == "en" and th.share_in_target < 0.9
    assert any(ev.kind == "script_run" and ev.language == "zh" for ev in th.events)
    an = reports["answer"]
    assert any(ev.kind == "segment_language" and ev.language == "fr" for ev in an.events)
    notices = [e for e in events if isinstance(e, Notice)]
    assert {n.kind for n in notices} == {"language_annotation", "coverage_limited"}
    assert sorted(pipe.status.coverage_limited) == ["fr", "zh"]  # the fake judges English only
    assert pipe.language_report()["answer"]["mixed"] is True


def test_classifier_unavailable_is_a_visible_state(langid):
    pipe = GuardPipeline(Policy(), [ToxicityClassifier(None)], langid, "en")
    assert pipe.status.toxicity == "unavailable"
    assert "toxicity filter unavailable" in pipe.status.summary()
    assert pipe.check_prompt("anything at all") == []
    events = pipe.poll()
    assert [e.kind for e in events if isinstance(e, Notice)] == ["classifier_unavailable"]
    _stream(pipe, "answer", _words("Still measured for language. Yes."))
    out = pipe.finish(5)
    assert any(isinstance(e, LanguageReport) for e in out)  # the language lock keeps working


def test_coverage_limited_for_languages_the_model_does_not_judge(fake_scorer, langid):
    pipe = GuardPipeline(Policy(), [ToxicityClassifier(fake_scorer)], langid, "off")
    _stream(pipe, "answer", _words("Ceci est une phrase française assez longue pour être reconnue. Fin."))
    events = pipe.finish(5)
    notes = [e for e in events if isinstance(e, Notice) and e.kind == "coverage_limited"]
    assert len(notes) == 1 and "'fr'" in notes[0].message
    assert pipe.status.coverage_limited == ["fr"]


def test_multilingual_scorer_takes_non_english_segments(fake_scorer, langid):
    multi = FakeScorer({}, languages=frozenset({"en", "fr", "es", "it", "pt", "tr", "ru"}), name="multi")
    pipe = GuardPipeline(Policy(), [ToxicityClassifier(fake_scorer, multi)], langid, "off")
    _stream(pipe, "answer", _words("This sentence is English and long enough. Ceci est une phrase française "
                                   "assez longue pour être reconnue. Fin."))
    events = pipe.finish(5)
    assert not [e for e in events if isinstance(e, Notice) and e.kind == "coverage_limited"]
    assert any("française" in t for call in multi.calls for t in call)
    assert not any("française" in t for call in fake_scorer.calls for t in call if "English" not in t)


def test_policy_from_settings_applies_to_the_pipeline(fake_scorer, langid):
    from r1desk.settings import Settings

    s = Settings()
    s.guard.rules["answer"]["insult"].action = "block"
    pipe = GuardPipeline.from_config(s.guard_config(), [ToxicityClassifier(fake_scorer)], langid, target_language="en")
    _stream(pipe, "answer", _words("Fine. You idiot. More."))
    pipe.finish(5)
    assert pipe.block_decision is not None and pipe.block_decision.label == "insult"


def test_every_decision_is_explainable(fake_scorer, langid):
    pipe = GuardPipeline(Policy({"answer": {"toxicity": Rule(0.5, "flag")}}), [ToxicityClassifier(fake_scorer)], langid, "en")
    _stream(pipe, "answer", _words("Oh darn it. Fine."))
    pipe.finish(5)
    d = pipe.decisions[0].to_dict()
    assert {k: d[k] for k in ("channel", "text", "label", "score", "threshold", "action")} == {
        "channel": "answer", "text": "Oh darn it.", "label": "toxicity", "score": 0.55, "threshold": 0.5,
        "action": "flag"}
    assert d["start"] == 0 and d["end"] == len("Oh darn it.") and d["model"] == "fake"
    assert pipe.segments[0]["scores"]["toxicity"] == 0.55


def test_the_last_thinking_sentence_is_scored_when_the_answer_starts(fake_scorer, langid):
    pipe = GuardPipeline(Policy(), [ToxicityClassifier(fake_scorer)], langid, "en")
    pipe.feed("thinking", "Okay. So the plan is to kill the process")          # no full stop: a tail
    assert pipe.wait_idle(5)
    assert [s["text"] for s in pipe.segments if s["channel"] == "thinking"] == ["Okay."]
    pipe.feed("answer", "Use")                                               # thinking is over
    assert pipe.wait_idle(5)
    scored = [s["text"] for s in pipe.segments if s["channel"] == "thinking"]
    assert scored[-1] == "So the plan is to kill the process"
    assert any(d.channel == "thinking" and d.label == "threat" for d in pipe.decisions)
    pipe.finish(5)


def test_the_int8_setting_reaches_the_scorer():
    from r1desk.core.guard.session import GuardSession
    from r1desk.settings import Settings

    settings = Settings()
    settings.guard.quantize = True
    session = GuardSession(settings.guard_config(), langid=None)
    assert session.classifier("toxicity").main.quantize is True


def test_decisions_added_while_they_are_taken_are_not_lost(fake_scorer):
    """The worker thread may append between the chat loop's slice and its bookkeeping."""
    from r1desk.core.guard.policy import Decision
    from r1desk.core.guard.session import GuardSession
    from r1desk.settings import Settings

    def decision(n: int) -> Decision:
        return Decision("answer", n, n + 1, "x", "insult", 0.9, 0.6, "redact")

    class RacingList(list):
        def __getitem__(self, index):
            out = super().__getitem__(index)
            if isinstance(index, slice) and len(self) < 3:
                self.append(decision(len(self)))        # the worker, right after the slice
            return out

    turn = GuardSession(Settings().guard_config(), classifiers=[ToxicityClassifier(fake_scorer)], langid=None).start_turn("hi", None)
    turn.pipeline.decisions = RacingList([decision(0)])
    taken = turn.take_new_decisions() + turn.take_new_decisions() + turn.take_new_decisions()
    assert [d.start for d in taken] == [0, 1, 2]
    assert turn.take_new_decisions() == []
