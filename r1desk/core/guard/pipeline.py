"""GuardPipeline: moderates the prompt (before generation) and the thinking/answer streams (while they
are generated) and measures the language lock.

Threading: ``feed()`` runs on the generation thread and only segments text and enqueues; one worker
thread drains the queue in batches (so it falls at most about one segment behind even when the
classifier is slower than decoding), scores each finished segment plus a rolling window of the last
few, applies the policy and queues events. The chat loop checks ``blocked`` (a threading.Event)
between tokens, drains ``poll()`` as it goes and calls ``finish()`` at the end.

Events are core.events objects: GuardDecision (every flag/redact/block), Redacted, Blocked,
Notice (classifier_unavailable, coverage_limited, language_mixing, language_annotation) and, from
``finish()``, one LanguageReport per generated channel.
"""
from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Union

from r1desk.core.events import Blocked, GuardDecision, LanguageReport, Notice, Redacted
from r1desk.core.guard.langid import LangId, detect_language
from r1desk.core.guard.langlock import MIN_SEGMENT_LETTERS, LanguageLock, resolve_target
from r1desk.core.guard.policy import Decision, Policy, severity, strongest
from r1desk.core.guard.segmenter import Segment, Segmenter
from r1desk.core.guard.toxicity import Scorer, covered
from r1desk.errors import ClassifierUnavailableError

log = logging.getLogger("r1desk.guard")
_LOGGED_UNAVAILABLE: set[str] = set()   # reasons already logged by this process

GuardEvent = Union[GuardDecision, Redacted, Blocked, Notice, LanguageReport]
_STOP = object()
# Scheduling priority (nice) of the scoring worker thread, Linux only. On a small machine the
# classifier competes with llama.cpp's decode threads for the same cores; a lower priority lets
# decoding win while the classifier still gets the few per cent of one core it needs
# (bench/bench_guard.py measures decode rate and moderation lag with and without it).
WORKER_NICE = 5


@dataclass
class GuardStatus:
    """Which filters are active, for the disclosure bar and the audit log. Never silently off."""

    toxicity: str = "active"  # active | unavailable | disabled
    toxicity_model: str | None = None
    language: str = "active"  # active | unavailable | off
    target_language: str | None = None
    coverage_limited: list[str] = field(default_factory=list)  # languages scored by an English-only model
    messages: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"toxicity filter {self.toxicity}" + (f" ({self.toxicity_model})" if self.toxicity_model else "")]
        parts.append(f"language lock {self.language}" + (f" ({self.target_language})" if self.target_language
                                                          else ""))
        if self.coverage_limited:
            parts.append("coverage limited for " + ", ".join(self.coverage_limited))
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"toxicity": self.toxicity, "toxicity_model": self.toxicity_model, "language": self.language,
                "target_language": self.target_language, "coverage_limited": list(self.coverage_limited),
                "messages": list(self.messages)}


def redaction_notice(decision: Decision) -> str:
    return f"[removed by the content policy: {decision.label.replace('_', ' ')}]"


def block_notice(decision: Decision) -> str:
    where = {"prompt": "This prompt", "thinking": "This turn", "answer": "This answer"}[decision.channel]
    return (f"{where} was stopped by the content policy ({decision.label.replace('_', ' ')} "
            f"{decision.score:.2f} ≥ {decision.threshold:.2f}).")


class GuardPipeline:
    def __init__(self, policy: Policy, scorer: Scorer | None, langid: LangId | None,
                 target_language: str | None, *, multilingual: Scorer | None = None, window_segments: int = 3,
                 max_segment_chars: int = 400, language_action: str = "flag", min_share: float = 0.9,
                 toxicity_enabled: bool = True, worker_nice: int | None = None) -> None:
        self.policy = policy
        self.worker_nice = WORKER_NICE if worker_nice is None else worker_nice
        self.scorer = scorer
        self.multilingual = multilingual
        self.langid = langid
        self.window_segments = max(1, window_segments)
        self.max_segment_chars = max_segment_chars
        self.blocked = threading.Event()
        self.block_decision: Decision | None = None
        self.decisions: list[Decision] = []
        self.segments: list[dict[str, Any]] = []  # per-segment scores and languages, for --json and the log
        self.status = GuardStatus(toxicity_model=getattr(scorer, "name", None))
        self._target_setting = target_language
        self.lock = LanguageLock(None if target_language in (None, "auto", "off") else target_language, langid,
                                 action=language_action, min_share=min_share)
        self.status.target_language = self.lock.target
        self.status.language = "off" if target_language in (None, "off") else "active"
        self._segmenters = {ch: Segmenter(ch, max_segment_chars) for ch in ("thinking", "answer")}
        self._thinking_over = False        # the first answer text closes the thinking channel
        self._recent: dict[str, deque[Segment]] = {ch: deque(maxlen=self.window_segments)
                                                   for ch in ("prompt", "thinking", "answer")}
        self._events: list[GuardEvent] = []
        self._events_lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._worker: threading.Thread | None = None
        self._notified: set[str] = set()
        self._prepared = False
        if not toxicity_enabled:  # `--no-guard`: off on purpose, and shown as such
            self.scorer = self.multilingual = None
            self.status.toxicity = "disabled"
            self.status.messages.append("toxicity filter disabled for this session")
        elif scorer is None:
            self._mark_unavailable("no toxicity classifier is configured")

    @classmethod
    def from_settings(cls, settings: Any, scorer: Scorer | None, langid: LangId | None, *,
                      target_language: str | None = None, multilingual: Scorer | None = None) -> GuardPipeline:
        """Build from r1desk.settings.Settings; ``target_language`` overrides settings.language.target."""
        target = settings.language.target if target_language is None else target_language
        return cls(settings.policy(), scorer, langid, target, multilingual=multilingual,
                   window_segments=settings.guard.window_segments,
                   max_segment_chars=settings.guard.max_segment_chars,
                   language_action=settings.language.action, min_share=settings.language.min_share)

    # --- status ----------------------------------------------------------------------------------
    def _emit(self, *events: GuardEvent) -> None:
        with self._events_lock:
            self._events.extend(events)

    def _notice_once(self, key: str, kind: str, message: str) -> None:
        if key in self._notified:
            return
        self._notified.add(key)
        self._emit(Notice(kind, message))

    def _mark_unavailable(self, reason: str) -> None:
        if self.status.toxicity != "unavailable":
            self.status.toxicity = "unavailable"
            self.status.messages.append(f"toxicity filter unavailable: {reason}")
            if reason not in _LOGGED_UNAVAILABLE:      # every turn says so in a notice; the log once
                _LOGGED_UNAVAILABLE.add(reason)
                log.warning("toxicity filter unavailable: %s", reason)
        self._notice_once("toxicity", "classifier_unavailable", f"Toxicity filter unavailable: {reason}")

    def prepare(self) -> GuardStatus:
        """Load the classifiers now (not on the first segment), so the status is known before generation."""
        if self._prepared:
            return self.status
        self._prepared = True
        for s in (self.scorer, self.multilingual):
            load = getattr(s, "load", None)
            if load is None:
                continue
            try:
                load()
            except ClassifierUnavailableError as exc:
                if s is self.scorer:
                    self._mark_unavailable(exc.message)
                    self.scorer = None
                else:
                    self.multilingual = None
                    log.warning("multilingual toxicity model unavailable: %s", exc)
        for note in getattr(self.scorer, "notes", []):
            self.status.messages.append(note)
        if self.langid is not None:
            try:
                self.langid.load()
            except ClassifierUnavailableError as exc:
                self.langid = self.lock.langid = None
                self.status.language = "unavailable" if self.status.language != "off" else "off"
                self.status.messages.append(exc.message)
                self._notice_once("langid", "classifier_unavailable", exc.message)
        return self.status

    # --- prompt ----------------------------------------------------------------------------------
    def check_prompt(self, text: str) -> list[Decision]:
        """Score the user's prompt synchronously (before generation) and resolve an 'auto' target."""
        self.resolve_language(text)
        seg = Segmenter("prompt", self.max_segment_chars)
        segments = seg.feed(text) + seg.flush()
        decisions = self._process(segments, text_of={"prompt": text})
        return decisions

    def resolve_language(self, prompt: str) -> str | None:
        """Settle an 'auto' target from the user's prompt (once); returns the target language."""
        self.prepare()
        if self._target_setting == "auto":
            self._target_setting = self.lock.target = resolve_target("auto", prompt, self.langid)
            self.status.target_language = self.lock.target
        return self.lock.target

    def close(self) -> None:
        """Stop the worker without waiting for pending segments (cancel, window closed)."""
        if self._worker is not None and self._worker.is_alive():
            self._queue.put(_STOP)

    def classify(self, channel: str, text: str) -> list[Decision]:
        """Score a whole text synchronously as if it were ``channel`` (``r1desk classify``, the admin view)."""
        if channel == "prompt":
            return self.check_prompt(text)
        self.prepare()
        seg = Segmenter(channel, self.max_segment_chars)
        return self._process(seg.feed(text) + seg.flush(), text_of={channel: text})

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every fed segment has been scored (tests, benchmarks); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending <= 0, timeout=timeout)

    @property
    def target_language(self) -> str | None:
        return self.lock.target

    # --- streaming -------------------------------------------------------------------------------
    def feed(self, channel: str, text: str) -> None:
        """Take a delta of 'thinking' or 'answer' text. Never waits for scoring."""
        if channel == "answer" and not self._thinking_over:
            # Thinking is over: its last sentence (often without a full stop) is complete now,
            # so score it at once rather than at the end of the turn.
            self._thinking_over = True
            tail = self._segmenters["thinking"].flush()
            if tail:
                self._enqueue(tail)
        segments = self._segmenters[channel].feed(text)
        if segments:
            self._enqueue(segments)

    def _enqueue(self, segments: list[Segment]) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="r1desk-guard", daemon=True)
            self._worker.start()
        with self._idle:
            self._pending += len(segments)
        for s in segments:
            self._queue.put(s)

    def _lower_priority(self) -> None:
        """Give the worker thread (only it: Linux niceness is per thread) a lower priority."""
        if self.worker_nice <= 0 or not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
            return
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.worker_nice)
        except OSError as exc:  # a sandbox may forbid it; scoring still works at normal priority
            log.debug("could not lower the guard worker's priority: %s", exc)

    def _run(self) -> None:
        self._lower_priority()
        while True:
            item = self._queue.get()
            batch = [item]
            while True:  # take everything already waiting: one batched classifier call
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(b is _STOP for b in batch)
            segs = [b for b in batch if b is not _STOP]
            try:
                if segs:
                    self._process(segs, text_of={ch: s.text for ch, s in self._segmenters.items()})
            except Exception:  # a bug: keep the guard honest about it rather than dying silently
                log.exception("guard worker failed on %d segments", len(segs))
                self._mark_unavailable("internal error while scoring (see the log)")
            finally:
                with self._idle:
                    self._pending -= len(segs)
                    self._idle.notify_all()
            if stop:
                return

    def poll(self) -> list[GuardEvent]:
        with self._events_lock:
            out, self._events = self._events, []
        return out

    def finish(self, timeout: float | None = None) -> list[GuardEvent]:
        """Flush the unfinished tails, wait for their decisions, add the language reports."""
        tails = [s for seg in self._segmenters.values() for s in seg.flush()]
        if tails:
            self._enqueue(tails)
        with self._idle:
            done = self._idle.wait_for(lambda: self._pending <= 0, timeout=timeout)
        if self._worker is not None:
            self._queue.put(_STOP)
            if done:
                self._worker.join(timeout)
        if not done:
            self._notice_once("timeout", "guard_timeout", "The last segments were not scored in time.")
        self._emit(*self._language_events())
        return self.poll()

    def should_regenerate(self) -> bool:
        return self.lock.should_regenerate()

    def language_report(self) -> dict[str, Any]:
        return {ch: self.lock.report(ch) for ch in ("thinking", "answer")}

    def _language_events(self) -> list[GuardEvent]:
        if self.lock.target is None:
            return []
        out: list[GuardEvent] = []
        for ch in ("thinking", "answer"):
            stats = self.lock.channels.get(ch)
            if stats is None:
                continue
            out.append(LanguageReport(ch, self.lock.target, round(stats.share_in_target, 4), tuple(stats.events)))
            if self.lock.is_mixed(ch):
                others = sorted({e.language for e in stats.events})
                msg = (f"{ch.capitalize()}: {stats.share_in_target:.0%} in {self.lock.target}"
                       + (f"; also {', '.join(others)}" if others else ""))
                kind = "language_annotation" if self.lock.action == "annotate" else "language_mixing"
                out.append(Notice(kind, msg))
        return out

    # --- scoring ---------------------------------------------------------------------------------
    def _language_of(self, text: str) -> tuple[str | None, float]:
        letters = sum(ch.isalpha() for ch in text)
        if letters < MIN_SEGMENT_LETTERS:
            return None, 0.0
        if self.langid is None and not any(ord(ch) > 0x2FF for ch in text):
            return None, 0.0
        lang, prob = detect_language(self.langid, text)
        return (lang, prob) if prob >= 0.5 and lang != "und" else (None, prob)

    def _route(self, language: str | None) -> Scorer | None:
        """Which scorer judges this language; notes limited coverage when none does."""
        if self.scorer is None:
            return None
        if language is None:
            return self.scorer
        chosen = covered((self.scorer, self.multilingual), language)
        if chosen is not None:
            return chosen
        if language not in self.status.coverage_limited:
            self.status.coverage_limited.append(language)
            log.warning("toxicity coverage limited for %s (%s judges %s)", language, self.scorer.name,
                        ", ".join(sorted(self.scorer.languages)))
        self._notice_once(f"coverage:{language}", "coverage_limited",
                          f"Toxicity coverage is limited for '{language}': {self.scorer.name} judges "
                          f"{', '.join(sorted(self.scorer.languages))} well; install the multilingual model "
                          f"for better coverage.")
        return self.scorer

    def _process(self, segments: list[Segment], *, text_of: dict[str, str]) -> list[Decision]:
        """Measure language, score segments (+ rolling windows) in one batch per scorer, decide, emit."""
        jobs: list[dict[str, Any]] = []
        for seg in segments:
            if self.blocked.is_set():
                break
            lang, _ = self._language_of(seg.text)
            if seg.channel != "prompt":
                self.lock.measure(seg.channel, seg.start, seg.text)
            record = {"channel": seg.channel, "start": seg.start, "end": seg.end, "text": seg.text,
                      "language": lang, "scores": None, "window": None}
            self.segments.append(record)
            recent = self._recent[seg.channel]
            recent.append(seg)
            jobs.append({"seg": seg, "window": False, "start": seg.start, "text": seg.text, "lang": lang,
                         "record": record})
            if len(recent) >= 2:
                w_start = recent[0].start
                jobs.append({"seg": seg, "window": True, "start": w_start, "lang": lang, "record": record,
                             "text": text_of[seg.channel][w_start:seg.end]})
        if not jobs or self.scorer is None:
            return []
        groups: dict[int, tuple[Scorer, list[dict[str, Any]]]] = {}
        for job in jobs:
            scorer = self._route(job["lang"])
            if scorer is not None:
                groups.setdefault(id(scorer), (scorer, []))[1].append(job)
        for scorer, group in groups.values():
            try:
                scores = scorer.score([j["text"] for j in group])
            except ClassifierUnavailableError as exc:
                self.scorer = None
                self._mark_unavailable(exc.message)
                return []
            for job, sc in zip(group, scores):
                job["scores"], job["model"] = sc, scorer.name
        made: list[Decision] = []
        for job in jobs:
            scores = job.get("scores")
            if scores is None or self.blocked.is_set():
                continue
            seg: Segment = job["seg"]
            job["record"]["window" if job["window"] else "scores"] = {k: round(v, 6) for k, v in scores.items()}
            decided = self.policy.decide(seg.channel, job["start"], seg.end, job["text"], scores,
                                         window=job["window"], language=job["lang"], model=job["model"])
            if job["window"]:  # report only harm that the single segments did not already explain
                seen = {(d.label, d.action) for d in self.decisions + made
                        if d.channel == seg.channel and d.start >= job["start"]}
                decided = [d for d in decided if (d.label, d.action) not in seen]
            made.extend(decided)
            self._act(seg.channel, decided)
        self.decisions.extend(made)
        return made

    def _act(self, channel: str, decided: list[Decision]) -> None:
        if not decided:
            return
        for d in decided:
            log.info("guard %s: %s %s %.3f >= %.2f on %r", d.action, d.channel, d.label, d.score, d.threshold,
                     d.text[:80])
        if channel == "prompt":
            if any(d.action == "block" for d in decided) and not self.blocked.is_set():
                self.block_decision = decided[0]
                self.blocked.set()
            return
        events: list[GuardEvent] = [GuardDecision(d) for d in decided]
        top = decided[0]
        if top.action == "block" and not self.blocked.is_set():
            self.block_decision = top
            self.blocked.set()
            events.append(Blocked(channel, top.start, block_notice(top)))  # type: ignore[arg-type]
        elif top.action == "redact":
            events.append(Redacted(channel, top.start, top.end, redaction_notice(top)))  # type: ignore[arg-type]
        self._emit(*events)


strongest_action = strongest   # the one definition lives in core.guard.policy (r1desk.vocabulary)
