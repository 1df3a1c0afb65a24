"""The feedback classifier ("review") as a guard classifier: a fastText model trained on the auditors'
reviews (``core.feedback``), one enabled version at a time.

Its labels are the review labels, prefixed: ``review.harmful``, ``review.over_refusal``,
``review.language_mixing``, ``review.other`` (the "ok" probability is what is left). Every judgement
names the version that made it (``Judgement.model = "feedback-v3"``), so every decision in the audit log
does too. It judges every segment and rolling window of every channel: fastText costs microseconds
(``bench/bench_feedback.py``).

Enabled by ``GuardConfig.extra["review"] = {"version": "v3"}`` (the settings' ``guard.feedback_model``).
With no version enabled the factory returns None and the classifier is simply not part of the guard.
An enabled version that cannot be used (missing, damaged, or not eligible: too few examples per label)
is *unavailable*, never silently off: the disclosure bar shows it.

Default policy, and why: only *flag*. A model learnt from a few hundred local reviews should send turns
to an auditor, not stop them; admins raise actions once its live agreement with reviews (dashboard) is
known.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from r1desk.core.feedback import versions
from r1desk.core.feedback.dataset import LABELS
from r1desk.core.feedback.model import FeedbackModel
from r1desk.core.guard.classifier import (ClassifierSpec, ClassifierStatus, Cost, Granularity, Item, Judgement,
                                          Rule, State, register)
from r1desk.core.guard.config import GuardConfig
from r1desk.errors import ClassifierUnavailableError, UserFacingError

log = logging.getLogger("r1desk.guard")

NAME = "review"
TITLE = "Feedback classifier"


def label_key(review_label: str) -> str:
    """"over-refusal" -> "review.over_refusal" (the policy's rule key)."""
    return f"{NAME}.{review_label.replace('-', '_')}"


GUARD_LABELS = tuple(label_key(lb) for lb in LABELS if lb != "ok")


class FeedbackClassifier:
    name = NAME
    title = TITLE
    labels = GUARD_LABELS
    granularity = Granularity.WINDOW
    cost = Cost.CHEAP

    def __init__(self, version: str, *, base: Path | None = None) -> None:
        self.version = version
        self.base = base
        self.model_name = versions.model_name(version)
        self._model: FeedbackModel | None = None
        self._error: str | None = None

    @property
    def model(self) -> str:
        return self.model_name

    def load(self) -> None:
        if self._model is not None:
            return
        if self._error is not None:
            raise ClassifierUnavailableError(f"{TITLE.lower()} unavailable: {self._error}")
        try:
            v = versions.get(self.version, self.base)
            if not v.eligible:
                raise UserFacingError(f"{self.version} may not be enabled: " + "; ".join(v.problems))
            model = FeedbackModel(v.model_path)
            model.load()
        except (UserFacingError, ImportError) as exc:
            self._error = str(exc)
            raise ClassifierUnavailableError(f"{TITLE.lower()} unavailable: {self._error}",
                                             hint="enable another version or roll back") from None
        self._model = model
        log.info("feedback classifier %s loaded", self.version)

    def unload(self) -> None:
        self._model = None

    def status(self) -> ClassifierStatus:
        if self._error is not None:
            return ClassifierStatus(NAME, TITLE, State.UNAVAILABLE, self.model_name, self._error)
        return ClassifierStatus(NAME, TITLE, State.ACTIVE, self.model_name,
                                notes=("learnt from this installation's reviews; flags for review",))

    def judge(self, items: Sequence[Item]) -> list[Judgement]:
        self.load()
        assert self._model is not None
        out: list[Judgement | None] = [None] * len(items)
        by_channel: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            by_channel.setdefault(item.channel, []).append(i)
        for channel, indices in by_channel.items():
            for i, probs in zip(indices, self._model.predict(channel, [items[i].text for i in indices])):
                out[i] = Judgement({label_key(lb): round(p, 6) for lb, p in probs.items() if lb != "ok"},
                                   model=self.model_name)
        return [j if j is not None else Judgement({}, model=self.model_name) for j in out]


def _from_config(config: GuardConfig) -> FeedbackClassifier | None:
    options = config.extra.get(NAME) or {}
    version = options.get("version") if isinstance(options, dict) else None
    return FeedbackClassifier(str(version)) if version else None


def _flag(threshold: float) -> Rule:
    return Rule(threshold, "flag")


DEFAULT_RULES = {
    "prompt": {label_key("harmful"): _flag(0.8)},
    "thinking": {label_key("harmful"): _flag(0.85), label_key("language-mixing"): _flag(0.85)},
    "answer": {label_key("harmful"): _flag(0.8), label_key("over-refusal"): _flag(0.8),
               label_key("language-mixing"): _flag(0.85)},
}

SPEC = register(ClassifierSpec(
    name=NAME, title=TITLE, labels=GUARD_LABELS, granularity=Granularity.WINDOW, cost=Cost.CHEAP,
    factory=_from_config, default_rules=DEFAULT_RULES,
    description="fastText model trained on this installation's reviews (r1desk guard train); one enabled "
                "version at a time, every decision records it."))
