"""The guard chip fails closed: only a status whose every listed filter is exactly "active" reads as active."""
from __future__ import annotations

from r1desk.core.guard.classifier import ClassifierStatus, State
from r1desk.core.guard.status import GuardStatus
from r1desk.ui.disclosure_bar import describe_guard_status


def _status(*states: State, language: str = "active") -> GuardStatus:
    return GuardStatus(classifiers={f"c{i}": ClassifierStatus(f"c{i}", f"Filter {i}", st) for i, st in enumerate(states)},
                       language=language)


def test_all_active_is_the_only_ok():
    text, kind, _ = describe_guard_status(_status(State.ACTIVE, State.ACTIVE))
    assert (text, kind) == ("✓ Guard: all filters active", "ok")


def test_a_status_with_no_filter_is_not_active():
    text, kind, _ = describe_guard_status(_status())
    assert kind == "danger" and "no content filter" in text


def test_any_filter_not_active_is_shown():
    for state in (State.UNAVAILABLE, State.DISABLED):
        text, kind, _ = describe_guard_status(_status(State.ACTIVE, state))
        assert kind == "danger" and f"filter 1 {state.value}" in text


def test_a_harm_filter_not_installed_says_toxicity_only():
    from r1desk.core.guard.harm.classifier import HarmClassifier

    status = GuardStatus(classifiers={"toxicity": ClassifierStatus("toxicity", "Toxicity filter", State.ACTIVE),
                                      "harm": HarmClassifier(None).status()})
    text, kind, _ = describe_guard_status(status)
    assert kind == "warn" and text == "⚠ Guard: harm filter not installed — toxicity only"
    alone = GuardStatus(classifiers={"harm": HarmClassifier(None).status(),
                                     "toxicity": ClassifierStatus("toxicity", "Toxicity filter", State.UNAVAILABLE)})
    text, kind, _ = describe_guard_status(alone)
    assert kind == "danger" and "toxicity only" not in text    # nothing at all is judging: no false comfort


def test_an_unknown_language_state_is_a_warning():
    text, kind, _ = describe_guard_status(_status(State.ACTIVE, language="???"))
    assert kind == "warn" and "language check ???" in text


def test_a_missing_classifier_reads_as_unavailable():
    status = _status(State.ACTIVE)
    assert status.state_of("toxicity") is State.UNAVAILABLE and status.toxicity == "unavailable"
