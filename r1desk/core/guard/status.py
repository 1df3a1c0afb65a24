"""What the guard says about itself: which classifiers are active, for the disclosure bar and the audit log."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from r1desk.core.guard.classifier import ClassifierStatus, State


@dataclass
class GuardStatus:
    """Which filters are active, for the disclosure bar and the audit log. Never silently off: a
    classifier that is not in ``classifiers`` is reported as unavailable, never as active."""

    classifiers: dict[str, ClassifierStatus] = field(default_factory=dict)
    language: str = "active"  # active | unavailable | off
    target_language: str | None = None
    coverage_limited: list[str] = field(default_factory=list)  # languages a classifier does not cover well
    messages: list[str] = field(default_factory=list)

    def state_of(self, name: str) -> State:
        found = self.classifiers.get(name)
        return found.state if found is not None else State.UNAVAILABLE

    @property
    def toxicity(self) -> str:
        """The Detoxify classifier's state (as a word), "unavailable" when there is none."""
        return self.state_of("toxicity").value

    @property
    def toxicity_model(self) -> str | None:
        found = self.classifiers.get("toxicity")
        return found.model if found is not None else None

    def summary(self) -> str:
        parts = [f"{st.title.lower()} {st.state.value}" + (f" ({st.model})" if st.model else "")
                 + (f": {st.message}" if st.message and st.state is not State.ACTIVE else "")
                 for st in self.classifiers.values()]
        if not self.classifiers:
            parts.append("no content filter configured")
        parts.append(f"language lock {self.language}" + (f" ({self.target_language})" if self.target_language
                                                          else ""))
        if self.coverage_limited:
            parts.append("coverage limited for " + ", ".join(self.coverage_limited))
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"classifiers": {n: st.to_dict() for n, st in self.classifiers.items()},
                "toxicity": self.toxicity, "toxicity_model": self.toxicity_model, "language": self.language,
                "target_language": self.target_language, "coverage_limited": list(self.coverage_limited),
                "messages": list(self.messages)}
