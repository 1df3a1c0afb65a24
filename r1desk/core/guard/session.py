"""The guard as core.chat uses it: a long-lived GuardSession (classifiers loaded lazily, once) that
starts one TurnGuard per turn (a GuardPipeline plus the bookkeeping a turn needs: what is shown after
redactions/blocks, which decisions are not yet in the audit log, the language summary).

Language of a turn: ``None``/"off" → no lock; a code → that language; "auto" → the settings' target
when an admin fixed one there, else the language of the user's prompt.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from r1desk.core.events import Blocked, LanguageReport, Notice, Redacted
from r1desk.core.guard.classifier import REGISTRY, Classifier, ClassifierStatus, State
from r1desk.core.guard.config import GuardConfig
from r1desk.core.guard.langid import LangId
from r1desk.core.guard.pipeline import GuardEvent, GuardPipeline, block_notice
from r1desk.core.guard.status import GuardStatus
from r1desk.core.guard.policy import Decision, Policy
from r1desk.core.thinking import TextChannel

log = logging.getLogger("r1desk.guard")


class TurnGuard:
    """One turn's guard. Thin over GuardPipeline; records the events it hands out."""

    def __init__(self, pipeline: GuardPipeline, user_text: str, config: GuardConfig) -> None:
        self.pipeline = pipeline
        self.user_text = user_text
        self.config = config
        self.blocked = pipeline.blocked
        self._prompt_decisions: list[Decision] = []
        self._redactions: list[Redacted] = []
        self._blocks: list[Blocked] = []
        self._reports: list[LanguageReport] = []
        self._taken = 0
        pipeline.resolve_language(user_text)  # the prompt builder needs the language now

    @property
    def target_language(self) -> str | None:
        return self.pipeline.target_language

    @property
    def status(self) -> GuardStatus:
        return self.pipeline.status

    def status_notices(self) -> list[Notice]:
        """Notices known before generation (classifier unavailable, CUDA fallback)."""
        self.pipeline.prepare()
        return [e for e in self._record(self.pipeline.poll()) if isinstance(e, Notice)]

    def check_prompt(self) -> list[Decision]:
        self._prompt_decisions = self.pipeline.check_prompt(self.user_text)
        return list(self._prompt_decisions)

    @property
    def prompt_blocked(self) -> bool:
        return any(d.action == "block" for d in self._prompt_decisions)

    def prompt_block_message(self) -> str:
        first = next((d for d in self._prompt_decisions if d.action == "block"), None)
        return block_notice(first) if first else ""

    def feed(self, channel: str, text: str) -> None:
        self.pipeline.feed(channel, text)

    def poll(self) -> list[GuardEvent]:
        return self._record(self.pipeline.poll())

    def finish(self, timeout: float | None = 30.0) -> list[GuardEvent]:
        """Remaining decisions and notices; the LanguageReports are kept for ``language_reports()``."""
        events = self._record(self.pipeline.finish(timeout))
        return [e for e in events if not isinstance(e, LanguageReport)]

    def cancel(self) -> None:
        self.pipeline.close()

    def language_reports(self) -> list[LanguageReport]:
        return list(self._reports)

    def _record(self, events: list[GuardEvent]) -> list[GuardEvent]:
        for e in events:
            if isinstance(e, Redacted):
                self._redactions.append(e)
            elif isinstance(e, Blocked):
                self._blocks.append(e)
            elif isinstance(e, LanguageReport):
                self._reports.append(e)
        return events

    def held_channels(self) -> set[TextChannel]:
        """The generated channels whose text waits for the guard's judgement before it is shown."""
        generated: tuple[TextChannel, ...] = ("thinking", "answer")
        return {ch for ch in generated if self.pipeline.can_withhold(ch)}

    def judged(self) -> dict[str, int]:
        """How far each generated channel has been judged (read before ``poll()``: core.holdback)."""
        return dict(self.pipeline.judged_upto)

    def cut(self, channel: str, length: int = 1 << 62) -> int:
        """Where a block ends what may be shown of ``channel`` (``length`` when nothing blocks it)."""
        cut = length
        for b in self._blocks:
            if b.channel == channel:
                cut = min(cut, b.start)
            elif b.channel == "thinking" and channel == "answer":
                cut = 0  # blocked while thinking: no answer is shown
        return cut

    @property
    def timed_out(self) -> bool:
        return self.pipeline.timed_out

    def shown(self, channel: str, raw: str) -> str:
        """The channel's text as the user may see it: redacted spans replaced, nothing after a block."""
        cut = self.cut(channel, len(raw))
        spans = sorted((r.start, r.end, r.notice) for r in self._redactions if r.channel == channel)
        merged: list[list[Any]] = []
        for s, e, n in spans:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e, n])
        out, pos = [], 0
        for s, e, n in merged:
            if s >= cut:
                break
            out.append(raw[pos:s])
            out.append(n)
            pos = min(e, cut)
        out.append(raw[pos:cut])
        return "".join(out)

    def decisions(self) -> list[Decision]:
        return list(self.pipeline.decisions)

    def take_new_decisions(self) -> list[Decision]:
        """Decisions not yet handed out (the chat loop writes them to the audit log as they come)."""
        new = self.pipeline.decisions[self._taken:]
        self._taken += len(new)     # not len(decisions): the worker thread may have added more since
        return new

    def segment_scores(self) -> list[dict[str, Any]]:
        return [dict(s) for s in self.pipeline.segments]

    def language_summary(self) -> dict[str, Any]:
        report = self.pipeline.language_report()
        return {"target": self.target_language, "action": self.pipeline.lock.action,
                "min_share": self.pipeline.lock.min_share, "should_regenerate": self.pipeline.should_regenerate(),
                **report}

    def policy_snapshot(self) -> dict[str, Any]:
        return {**self.pipeline.policy.to_dict(), **self.config.snapshot(),
                "status": self.pipeline.status.to_dict()}


class GuardSession:
    """Classifiers shared by every turn of a ChatSession (from ``core.guard.classifier.REGISTRY``),
    rebuilt when their configuration changes.

    ``classifiers`` replace the registry's instances of the same name: the one way to inject a
    scripted classifier (tests) or a preloaded one (the self-check shares the chat's).
    """

    def __init__(self, config: GuardConfig, *, enabled: bool = True, classifiers: Sequence[Classifier] = (),
                 langid: LangId | None = None) -> None:
        self.config = config
        self.enabled = enabled
        self._given = tuple(classifiers)
        self.langid = langid if langid is not None else LangId()
        self._lock = threading.Lock()
        self._last: TurnGuard | None = None
        self._key: GuardConfig | None = None
        self.classifiers: list[Classifier] = []
        self._build()

    def _build(self) -> None:
        key = replace(self.config, rules={}, channels={}, window_segments=0, max_segment_chars=0,
                      language_target="", language_action="", min_share=0.0)   # what the classifiers read
        if key == self._key:
            return
        self._key = key
        self.classifiers = REGISTRY.build(self.config, self._given)

    def update_config(self, config: GuardConfig) -> None:
        with self._lock:
            self.config = config
            self._build()

    def reload(self) -> None:
        """Build the classifiers again (e.g. their weights were just installed): a failed load is forgotten."""
        with self._lock:
            self._key = None
            self._last = None
            self._build()

    def preload(self) -> GuardStatus:
        """Load the classifiers now (the GUI calls this off the GUI thread after start-up)."""
        pipe = self._pipeline(self.config, "off")
        return pipe.prepare()

    def _pipeline(self, config: GuardConfig, target: str | None) -> GuardPipeline:
        return GuardPipeline(Policy.from_config(config), self.classifiers, self.langid, target,
                             window_segments=config.window_segments, max_segment_chars=config.max_segment_chars,
                             language_action=config.language_action, min_share=config.min_share,
                             enabled=self.enabled)

    def start_turn(self, user_text: str, language: str | None, config: GuardConfig | None = None) -> TurnGuard:
        config = config or self.config
        if language in (None, "", "off"):
            target: str | None = None
        elif language == "auto":
            target = config.language_target if config.language_target != "off" else None
        else:
            target = language
        with self._lock:
            turn = TurnGuard(self._pipeline(config, target), user_text, config)
            self._last = turn
        return turn

    def classifier(self, name: str) -> Classifier | None:
        return next((c for c in self.classifiers if c.name == name), None)

    @property
    def status(self) -> GuardStatus:
        """The latest turn's status; before any turn, what the installed classifiers allow."""
        if self._last is not None:
            return self._last.status
        st = GuardStatus()
        for c in self.classifiers:
            st.classifiers[c.name] = (c.status() if self.enabled else
                                      ClassifierStatus(c.name, c.title, State.DISABLED, message="disabled"))
            if st.classifiers[c.name].state is State.UNAVAILABLE:
                st.messages.append(f"{c.title.lower()} unavailable: {st.classifiers[c.name].message}")
        st.language = "active" if self.config.language_target != "off" else "off"
        return st

    def last_segment_scores(self) -> list[dict[str, Any]]:
        return self._last.segment_scores() if self._last else []

    def close(self) -> None:
        if self._last is not None:
            self._last.cancel()
