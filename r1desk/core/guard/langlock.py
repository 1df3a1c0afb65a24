"""Language lock: measure, segment by segment, how much of a channel is in the target language.

Two kinds of mixing event: a whole segment in another language (fastText), and a run of another
script inside a segment (script runs — fastText alone misses "Let me think 然后我们计算结果是多少呢").
The share in target is letters in the target language / all letters (digits, punctuation, code
symbols do not count). Actions (settings.language.action): flag, annotate, regenerate once — the
chat loop regenerates; this module only says ``should_regenerate``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from r1desk.core.guard.langid import (SCRIPT_LANGUAGE, LangId, detect_language, script_runs, scripts_for)

log = logging.getLogger("r1desk.guard")

MIN_SEGMENT_LETTERS = 12  # below this fastText guesses; only script runs count
MIN_SEGMENT_PROB = 0.6
MIN_RUN_LETTERS = 2  # one stray letter (a variable name "x") is not mixing


@dataclass(frozen=True)
class MixingEvent:
    channel: str
    kind: str  # "segment_language" | "script_run"
    start: int  # span in the channel's raw text
    end: int
    text: str
    language: str  # the language (or best guess from the script) found there
    script: str | None = None
    probability: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "kind": self.kind, "start": self.start, "end": self.end,
                "text": self.text, "language": self.language, "script": self.script,
                "probability": self.probability}


@dataclass
class ChannelLanguage:
    letters: int = 0
    in_target: int = 0
    events: list[MixingEvent] = field(default_factory=list)

    @property
    def share_in_target(self) -> float:
        return 1.0 if self.letters == 0 else self.in_target / self.letters


def resolve_target(target: str | None, prompt: str, langid: LangId | None) -> str | None:
    """"auto" → the language of the user's prompt (None when it cannot be told); "off"/None → no lock."""
    if target in (None, "", "off"):
        return None
    if target != "auto":
        return target
    lang, prob = detect_language(langid, prompt)
    if lang == "und" or prob < 0.3:
        return None
    return lang


class LanguageLock:
    """Accumulates per-channel language measurements for one turn."""

    def __init__(self, target: str | None, langid: LangId | None, *, action: str = "flag",
                 min_share: float = 0.9) -> None:
        self.target = target
        self.langid = langid
        self.action = action
        self.min_share = min_share
        self.channels: dict[str, ChannelLanguage] = {}

    def measure(self, channel: str, start: int, text: str) -> list[MixingEvent]:
        """Measure one segment (``start`` = its offset in the channel); returns the new mixing events."""
        stats = self.channels.setdefault(channel, ChannelLanguage())
        if self.target is None:
            return []
        allowed = scripts_for(self.target)
        runs = script_runs(text)
        letters = sum(r.letters for r in runs)
        if not letters:
            return []
        events: list[MixingEvent] = []
        in_target = 0
        own_letters = sum(r.letters for r in runs if r.script in allowed)
        seg_lang: str | None = None
        prob = 0.0
        if own_letters >= MIN_SEGMENT_LETTERS:
            own_text = " ".join(text[r.start:r.end] for r in runs if r.script in allowed)
            seg_lang, prob = detect_language(self.langid, own_text)
        same_script_foreign = (seg_lang is not None and seg_lang != self.target and prob >= MIN_SEGMENT_PROB
                               and seg_lang != "und")
        if same_script_foreign and seg_lang is not None:   # (seg_lang is set when it is foreign)
            events.append(MixingEvent(channel, "segment_language", start, start + len(text), text,
                                      seg_lang, None, round(prob, 4)))
        else:
            in_target += own_letters
        for r in runs:
            if r.script in allowed or r.letters < MIN_RUN_LETTERS:
                if r.script not in allowed:
                    letters -= r.letters  # a stray letter neither helps nor hurts the share
                continue
            events.append(MixingEvent(channel, "script_run", start + r.start, start + r.end, text[r.start:r.end],
                                      SCRIPT_LANGUAGE.get(r.script, r.script.lower()), r.script))
        stats.letters += letters
        stats.in_target += in_target
        stats.events.extend(events)
        for ev in events:
            log.info("language mixing in %s: %s %r (%s)", channel, ev.kind, ev.text[:60], ev.language)
        return events

    def share(self, channel: str) -> float:
        return self.channels.get(channel, ChannelLanguage()).share_in_target

    def is_mixed(self, channel: str) -> bool:
        stats = self.channels.get(channel)
        return bool(stats and self.target and (stats.events or stats.share_in_target < self.min_share))

    def should_regenerate(self) -> bool:
        """True when the policy says regenerate and the *answer* missed the target (thinking mixing is
        common in R1 and hidden by default, so it alone never triggers a retry)."""
        return self.action == "regenerate" and self.target is not None and \
            self.share("answer") < self.min_share

    def report(self, channel: str) -> dict[str, Any]:
        stats = self.channels.get(channel, ChannelLanguage())
        return {"target": self.target, "share_in_target": round(stats.share_in_target, 4),
                "letters": stats.letters, "events": [e.to_dict() for e in stats.events],
                "mixed": self.is_mixed(channel)}
