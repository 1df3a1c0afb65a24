"""The guard policy: for each channel (prompt, thinking, answer) and each label, a threshold and an action.

Default policy, and why
-----------------------
Detoxify scores *language* (insults, slurs, threats, explicit content), not intent, so the
defaults stay conservative about blocking and lean on flags an auditor can review.

* **prompt** — the user's own words. Blocking a user for quoting abuse they received is hostile,
  so most labels only *flag* (logged, badge shown). Only clear severe toxicity and threats are
  *blocked* before anything is generated. ``redact`` is not offered for the prompt: the model
  either gets the prompt or it does not.
* **thinking** — published assessments of R1 found the thinking trace less safe than its final
  answer, and it routinely restates harmful requests while reasoning towards a refusal. Blocking
  on thinking would kill good refusals, and the trace is collapsed (or hidden) by default, so
  thinking is *flagged* at moderate thresholds (auditors see every hit) and only the worst
  (severe toxicity, threats, sexual content) is *redacted* in case a user expands it.
* **answer** — what the user reads. Ordinary toxicity is flagged; insults, obscenity and
  identity attacks are redacted; severe toxicity, threats and sexual content *block* the turn
  (generation stops, text not yet shown is withheld, a notice replaces the rest).

Thresholds are probabilities from the classifier's sigmoid outputs (0–1). Admins calibrate them
with ``r1desk classify``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from r1desk.vocabulary import ACTIONS, CHANNEL_ACTIONS, CHANNELS, Action, severity
from r1desk.vocabulary import strongest as strongest_of  # noqa: F401 - re-exported

LABELS = ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack", "sexual_explicit")


@dataclass(frozen=True)
class Rule:
    threshold: float
    action: str


@dataclass(frozen=True)
class Decision:
    """One explainable guard decision: which span of which channel, by which label and rule."""

    channel: str
    start: int  # span in the channel's raw text
    end: int
    text: str
    label: str
    score: float
    threshold: float
    action: str
    window: bool = False  # True when the rolling window of several segments crossed the threshold
    language: str | None = None  # detected language of the span, when known
    model: str | None = None  # which classifier scored it

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel, "start": self.start, "end": self.end, "text": self.text,
            "label": self.label, "score": round(float(self.score), 6), "threshold": self.threshold,
            "action": self.action, "window": self.window, "language": self.language, "model": self.model,
        }


def _r(threshold: float, action: str) -> Rule:
    return Rule(threshold, action)


DEFAULT_RULES: dict[str, dict[str, Rule]] = {
    "prompt": {
        "toxicity": _r(0.80, "flag"), "severe_toxicity": _r(0.70, "block"), "obscene": _r(0.80, "flag"),
        "threat": _r(0.80, "block"), "insult": _r(0.80, "flag"), "identity_attack": _r(0.70, "flag"),
        "sexual_explicit": _r(0.70, "flag"),
    },
    "thinking": {
        "toxicity": _r(0.70, "flag"), "severe_toxicity": _r(0.60, "redact"), "obscene": _r(0.70, "flag"),
        "threat": _r(0.70, "redact"), "insult": _r(0.70, "flag"), "identity_attack": _r(0.60, "flag"),
        "sexual_explicit": _r(0.60, "redact"),
    },
    "answer": {
        "toxicity": _r(0.50, "flag"), "severe_toxicity": _r(0.50, "block"), "obscene": _r(0.60, "redact"),
        "threat": _r(0.60, "block"), "insult": _r(0.60, "redact"), "identity_attack": _r(0.50, "redact"),
        "sexual_explicit": _r(0.60, "block"),
    },
}


def validate_rule(channel: str, label: str, raw: Any) -> tuple[Rule | None, list[tuple[str, Any, str]]]:
    """Check one rule; returns (rule or None, [(key suffix, value, problem), ...])."""
    problems: list[tuple[str, Any, str]] = []
    if not isinstance(raw, Mapping):
        return None, [("", raw, "must be an object with 'threshold' and 'action'")]
    unknown = set(raw) - {"threshold", "action"}
    for key in sorted(unknown):
        problems.append((f".{key}", raw[key], "unknown key (expected 'threshold' and 'action')"))
    threshold = raw.get("threshold")
    action = raw.get("action")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        problems.append((".threshold", threshold, "must be a number between 0 and 1"))
    elif not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        problems.append((".threshold", threshold, "must be between 0 and 1"))
    allowed = CHANNEL_ACTIONS.get(channel, ACTIONS)
    if action not in allowed:
        problems.append((".action", action, f"must be one of {', '.join(allowed)}"))
    if problems:
        return None, problems
    return Rule(float(threshold), str(action)), []


class Policy:
    """Channel × label → Rule, plus per-channel on/off switches. Immutable once built."""

    def __init__(self, rules: Mapping[str, Mapping[str, Rule]] | None = None,
                 enabled: Mapping[str, bool] | None = None) -> None:
        merged = {ch: dict(DEFAULT_RULES[ch]) for ch in CHANNELS}
        for channel, labels in (rules or {}).items():
            if channel not in CHANNELS:
                raise ValueError(f"unknown channel {channel!r}")
            for label, rule in labels.items():
                if label not in LABELS:
                    raise ValueError(f"unknown label {label!r}")
                merged[channel][label] = rule
        self.rules = merged
        self.enabled = {ch: True for ch in CHANNELS} | dict(enabled or {})

    @classmethod
    def default(cls) -> Policy:
        return cls()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Build from the settings' ``guard`` shape: {"rules": {ch: {label: {threshold, action}}}, "channels": {...}}."""
        rules: dict[str, dict[str, Rule]] = {}
        for channel, labels in (data.get("rules") or {}).items():
            for label, raw in labels.items():
                rule, problems = validate_rule(channel, label, raw)
                if problems:
                    suffix, value, why = problems[0]
                    raise ValueError(f"rules.{channel}.{label}{suffix} = {value!r}: {why}")
                rules.setdefault(channel, {})[label] = rule  # type: ignore[assignment]
        return cls(rules, data.get("channels"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": {ch: {lb: {"threshold": r.threshold, "action": r.action} for lb, r in labels.items()}
                      for ch, labels in self.rules.items()},
            "channels": dict(self.enabled),
        }

    def rule(self, channel: str, label: str) -> Rule:
        return self.rules[channel][label]

    def decide(self, channel: str, start: int, end: int, text: str, scores: Mapping[str, float], *,
               window: bool = False, language: str | None = None, model: str | None = None) -> list[Decision]:
        """Every label whose score reaches its threshold with a non-allow action, most severe first."""
        if not self.enabled.get(channel, True):
            return []
        out: list[Decision] = []
        for label, score in scores.items():
            rule = self.rules[channel].get(label)
            if rule is None or rule.action == "allow" or score < rule.threshold:
                continue
            out.append(Decision(channel, start, end, text, label, float(score), rule.threshold, rule.action,
                                window, language, model))
        out.sort(key=lambda d: (-severity(d.action), -d.score))
        return out


def strongest(decisions: list[Decision]) -> str:
    """The most severe action among decisions ("allow" when none)."""
    return strongest_of(d.action for d in decisions).value
