"""Deterministic toxicity scorers for tests that drive real models: random-weight models write
garbage, so the scores are scripted by the text instead of a classifier's judgement."""
from __future__ import annotations

from r1desk.core.guard.toxicity import LABELS


class ScriptedScorer:
    """0.01 for every label, raised when a trigger word is in the text; ``everything`` scores all text."""

    name = "scripted"
    labels = LABELS
    languages = frozenset({"en"})

    def __init__(self, script: dict[str, dict[str, float]] | None = None,
                 everything: dict[str, float] | None = None) -> None:
        self.script = script or {}
        self.everything = everything or {}
        self.calls: list[list[str]] = []

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        self.calls.append(list(texts))
        out = []
        for text in texts:
            scores = {label: 0.01 for label in LABELS}
            if text.strip():
                for label, value in self.everything.items():
                    scores[label] = value
            for word, values in self.script.items():
                if word in text:
                    for label, value in values.items():
                        scores[label] = max(scores[label], value)
            out.append(scores)
        return out
