from __future__ import annotations

import pytest

from r1desk.core.guard.policy import ACTIONS, CHANNELS, Policy, Rule, validate_rule
from r1desk.core.guard.toxicity import DEFAULT_RULES, LABELS


def test_defaults_cover_every_channel_and_label():
    for ch in CHANNELS:
        assert set(DEFAULT_RULES[ch]) == set(LABELS)
    assert all(r.action != "block" for r in DEFAULT_RULES["thinking"].values())  # never kill refusals
    assert DEFAULT_RULES["answer"]["threat"].action == "block"
    assert all(r.action != "redact" for r in DEFAULT_RULES["prompt"].values())


def test_decide_returns_hits_most_severe_first():
    p = Policy()
    out = p.decide("answer", 3, 10, "text", {"toxicity": 0.9, "threat": 0.7, "insult": 0.1})
    assert [(d.label, d.action) for d in out] == [("threat", "block"), ("toxicity", "flag")]
    d = out[0]
    assert (d.channel, d.start, d.end, d.text, d.score, d.threshold) == ("answer", 3, 10, "text", 0.7, 0.6)
    assert d.to_dict()["label"] == "threat"


def test_threshold_is_inclusive_and_allow_never_decides():
    p = Policy({"answer": {"toxicity": Rule(0.5, "allow"), "insult": Rule(0.4, "flag")}})
    assert [d.label for d in p.decide("answer", 0, 1, "x", {"toxicity": 0.99, "insult": 0.4})] == ["insult"]


def test_disabled_channel_decides_nothing():
    p = Policy(enabled={"answer": False})
    assert p.decide("answer", 0, 1, "x", {"threat": 1.0}) == []


@pytest.mark.parametrize("raw,key", [
    ({"threshold": 1.2, "action": "flag"}, ".threshold"),
    ({"threshold": -0.1, "action": "flag"}, ".threshold"),
    ({"threshold": "high", "action": "flag"}, ".threshold"),
    ({"threshold": True, "action": "flag"}, ".threshold"),
    ({"threshold": float("nan"), "action": "flag"}, ".threshold"),
    ({"threshold": 0.5, "action": "delete"}, ".action"),
    ({"threshold": 0.5, "action": "flag", "color": "red"}, ".color"),
    (0.5, ""),
])
def test_invalid_rules_are_reported_by_key(raw, key):
    rule, problems = validate_rule("answer", "toxicity", raw)
    assert rule is None and problems[0][0] == key


def test_redact_is_not_an_action_for_the_prompt():
    _, problems = validate_rule("prompt", "toxicity", {"threshold": 0.5, "action": "redact"})
    assert problems and problems[0][0] == ".action"
    assert set(ACTIONS) == {"allow", "flag", "redact", "block"}


def test_round_trip_through_dict():
    p = Policy({"thinking": {"threat": Rule(0.3, "block")}}, {"prompt": False})
    q = Policy.from_dict(p.to_dict())
    assert q.rules == p.rules and q.enabled == p.enabled
    with pytest.raises(ValueError, match="rules.answer.threat.threshold"):
        Policy.from_dict({"rules": {"answer": {"threat": {"threshold": 2, "action": "block"}}}})
