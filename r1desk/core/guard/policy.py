"""The guard policy: for each channel (prompt, thinking, answer) and each classifier label, a threshold
and an action.

Labels belong to the classifiers in ``core.guard.classifier.REGISTRY`` (unique across them), and each
classifier brings its default rules and the reasoning behind them (Detoxify's: ``core.guard.toxicity``).
The policy only merges those defaults with the admin's settings and applies them: a score at or above
its rule's threshold takes the rule's action. Thresholds are probabilities (0–1).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from r1desk.core.guard.classifier import REGISTRY, Rule
from r1desk.core.guard.config import GuardConfig
from r1desk.vocabulary import CHANNEL_ACTIONS
from r1desk.vocabulary import ACTIONS as ACTIONS, CHANNELS as CHANNELS  # re-exported
from r1desk.vocabulary import Action as Action, severity as severity  # re-exported
from r1desk.vocabulary import strongest as strongest_of


def known_labels() -> tuple[str, ...]:
    """Every label of every registered classifier (the policy's rule keys)."""
    return REGISTRY.labels()


def default_rules() -> dict[str, dict[str, Rule]]:
    """The registered classifiers' default rules, channel -> label -> Rule."""
    return REGISTRY.default_rules()


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
    model: str | None = None  # which model scored it (e.g. detoxify-multilingual)
    classifier: str | None = None  # which registered classifier owns the label
    verdict: str | None = None     # a generative judge's verdict (safe / unsafe / controversial / undetermined)
    raw_output: str | None = None  # ... and its raw output, kept as evidence

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel, "start": self.start, "end": self.end, "text": self.text,
            "label": self.label, "score": round(float(self.score), 6), "threshold": self.threshold,
            "action": self.action, "window": self.window, "language": self.language, "model": self.model,
            "classifier": self.classifier, "verdict": self.verdict, "raw_output": self.raw_output,
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
    if problems or not isinstance(threshold, (int, float)):   # a non-number threshold is one of the problems
        return None, problems
    return Rule(float(threshold), str(action)), []


class Policy:
    """Channel × label → Rule, plus per-channel on/off switches. Immutable once built."""

    def __init__(self, rules: Mapping[str, Mapping[str, Rule]] | None = None,
                 enabled: Mapping[str, bool] | None = None) -> None:
        merged = default_rules()
        labels_known = set(known_labels())
        for channel, labels in (rules or {}).items():
            if channel not in CHANNELS:
                raise ValueError(f"unknown channel {channel!r}")
            for label, rule in labels.items():
                if label not in labels_known:
                    raise ValueError(f"unknown label {label!r} (no registered classifier has it)")
                merged[channel][label] = rule
        self.rules = merged
        self.enabled = {ch: True for ch in CHANNELS} | dict(enabled or {})

    @classmethod
    def from_config(cls, config: GuardConfig) -> Policy:
        rules = {ch: {lb: Rule(float(t), str(a)) for lb, (t, a) in labels.items()}
                 for ch, labels in config.rules.items()}
        return cls(rules, config.channels)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Build from the settings' ``guard`` shape: {"rules": {ch: {label: {threshold, action}}}, "channels": {...}}."""
        rules: dict[str, dict[str, Rule]] = {}
        for channel, labels in (data.get("rules") or {}).items():
            for label, raw in labels.items():
                rule, problems = validate_rule(channel, label, raw)
                if rule is None:   # (validate_rule gives a rule exactly when there are no problems)
                    suffix, value, why = problems[0]
                    raise ValueError(f"rules.{channel}.{label}{suffix} = {value!r}: {why}")
                rules.setdefault(channel, {})[label] = rule
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
               window: bool = False, language: str | None = None, model: str | None = None,
               classifier: str | None = None, verdict: str | None = None,
               raw_output: str | None = None) -> list[Decision]:
        """Every label whose score reaches its threshold with a non-allow action, most severe first."""
        if not self.enabled.get(channel, True):
            return []
        out: list[Decision] = []
        for label, score in scores.items():
            rule = self.rules[channel].get(label)
            if rule is None or rule.action == "allow" or score < rule.threshold:
                continue
            out.append(Decision(channel, start, end, text, label, float(score), rule.threshold, rule.action,
                                window, language, model, classifier or REGISTRY.owner(label), verdict, raw_output))
        out.sort(key=lambda d: (-severity(d.action), -d.score))
        return out


def strongest(decisions: list[Decision]) -> str:
    """The most severe action among decisions ("allow" when none)."""
    return strongest_of(d.action for d in decisions).value
