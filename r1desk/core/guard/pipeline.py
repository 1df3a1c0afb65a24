"""GuardPipeline: moderates the prompt (before generation) and the thinking/answer streams (while they
are generated) and measures the language lock.

Threading: ``feed()`` runs on the generation thread and only segments text and enqueues; the
``core.guard.worker.ScoringWorker`` thread judges the queued segments in batches with every registered
classifier (segments, rolling windows, chunks), applies the policy and queues events. The status it reports
lives in ``core.guard.status``. The chat loop checks ``blocked`` (a threading.Event)
between tokens, drains ``poll()`` as it goes and calls ``finish()`` at the end.

Events are core.events objects: GuardDecision (every flag/redact/block), Redacted, Blocked,
Notice (classifier_unavailable, coverage_limited, language_mixing, language_annotation) and, from
``finish()``, one LanguageReport per generated channel.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Union

from r1desk.core.events import Blocked, GuardDecision, LanguageReport, Notice, Redacted
from r1desk.core.guard.langid import LangId, detect_language
from r1desk.core.guard.langlock import MIN_SEGMENT_LETTERS, LanguageLock, resolve_target
from r1desk.core.guard.classifier import Classifier, ClassifierStatus, Granularity, Item, Judgement, State
from r1desk.core.guard.config import GuardConfig
from r1desk.core.guard.policy import Decision, Policy, severity, strongest as strongest  # re-exported
from r1desk.core.guard.segmenter import Segment, Segmenter
from r1desk.core.guard.status import GuardStatus
from r1desk.core.guard.worker import WORKER_NICE, ScoringWorker
from r1desk.errors import ClassifierUnavailableError

log = logging.getLogger("r1desk.guard")
_LOGGED_UNAVAILABLE: set[str] = set()   # reasons already logged by this process

GuardEvent = Union[GuardDecision, Redacted, Blocked, Notice, LanguageReport]


def redaction_notice(decision: Decision) -> str:
    return f"[removed by the content policy: {decision.label.replace('_', ' ')}]"


def block_notice(decision: Decision) -> str:
    where = {"prompt": "This prompt", "thinking": "This turn", "answer": "This answer"}[decision.channel]
    return (f"{where} was stopped by the content policy ({decision.label.replace('_', ' ')} "
            f"{decision.score:.2f} ≥ {decision.threshold:.2f}).")


@dataclass
class _Job:
    """One span to judge in ``GuardPipeline._process``: a new segment, or the rolling window ending at it."""

    seg: Segment
    window: bool                    # True: the recent segments of the channel together, ending at ``seg``
    start: int                      # span start in the channel's text (the window's first segment for a window)
    text: str
    lang: str | None
    record: dict[str, Any]          # the segment's entry in ``GuardPipeline.segments`` (its scores go there)
    results: list[tuple[Classifier, Judgement]] = field(default_factory=list)


class GuardPipeline:
    """Moderates the prompt (before generation) and the thinking/answer streams (as they are generated):
    segments text, routes it to the registered classifiers (on a ScoringWorker thread), applies the policy,
    measures the language lock and hands out events."""

    def __init__(self, policy: Policy, classifiers: list[Classifier], langid: LangId | None,
                 target_language: str | None, *, window_segments: int = 3, max_segment_chars: int = 400,
                 language_action: str = "flag", min_share: float = 0.9, enabled: bool = True,
                 worker_nice: int | None = None) -> None:
        self.policy = policy
        self.worker_nice = WORKER_NICE if worker_nice is None else worker_nice
        self.classifiers: list[Classifier] = list(classifiers)
        self.langid = langid
        self.window_segments = max(1, window_segments)
        self.max_segment_chars = max_segment_chars
        self.blocked = threading.Event()
        self.block_decision: Decision | None = None
        self.decisions: list[Decision] = []
        self.segments: list[dict[str, Any]] = []  # per-segment scores and languages, for --json and the log
        self.status = GuardStatus(classifiers={c.name: c.status() for c in self.classifiers})
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
        self._worker: ScoringWorker | None = None
        self._notified: set[str] = set()
        self._prepared = False
        self._active: list[Classifier] = list(self.classifiers)
        self._prompt_text = ""
        self._chunk_start: dict[str, int] = {"thinking": 0, "answer": 0, "prompt": 0}
        # how far each channel's text has been judged by every classifier (the chat shows no further
        # when the policy could block or redact there): written by the worker, read by the chat loop
        self.judged_upto: dict[str, int] = {"thinking": 0, "answer": 0}
        self.timed_out = False
        if not enabled:  # `--no-guard`: off on purpose, and shown as such
            self._active = []
            for c in self.classifiers:
                self.status.classifiers[c.name] = ClassifierStatus(c.name, c.title, State.DISABLED,
                                                                   message="disabled for this session")
                self.status.messages.append(f"{c.title.lower()} disabled for this session")

    @classmethod
    def from_config(cls, config: GuardConfig, classifiers: list[Classifier], langid: LangId | None, *,
                    target_language: str | None = None, enabled: bool = True) -> GuardPipeline:
        """Build from a GuardConfig; ``target_language`` overrides its language target."""
        target = config.language_target if target_language is None else target_language
        return cls(Policy.from_config(config), classifiers, langid, target,
                   window_segments=config.window_segments, max_segment_chars=config.max_segment_chars,
                   language_action=config.language_action, min_share=config.min_share, enabled=enabled)

    # --- status ----------------------------------------------------------------------------------
    def _emit(self, *events: GuardEvent) -> None:
        with self._events_lock:
            self._events.extend(events)

    def _notice_once(self, key: str, kind: str, message: str) -> None:
        if key in self._notified:
            return
        self._notified.add(key)
        self._emit(Notice(kind, message))

    def _mark_unavailable(self, classifier: Classifier, reason: str) -> None:
        """A classifier cannot judge: stop calling it, say so in the status, in a notice and (once) the log."""
        if classifier in self._active:
            self._active.remove(classifier)
        if f"unavailable:{classifier.name}" not in self._notified:
            self.status.classifiers[classifier.name] = ClassifierStatus(
                classifier.name, classifier.title, State.UNAVAILABLE, getattr(classifier, "model", None), reason)
            self.status.messages.append(f"{classifier.title.lower()} unavailable: {reason}")
            if reason not in _LOGGED_UNAVAILABLE:      # every turn says so in a notice; the log once
                _LOGGED_UNAVAILABLE.add(reason)
                log.warning("%s unavailable: %s", classifier.title.lower(), reason)
        self._notice_once(f"unavailable:{classifier.name}", "classifier_unavailable",
                          f"{classifier.title} unavailable: {reason}")

    def prepare(self) -> GuardStatus:
        """Load the classifiers now (not on the first segment), so the status is known before generation."""
        if self._prepared:
            return self.status
        self._prepared = True
        for c in list(self._active):
            st = c.status()
            if st.state is State.NOT_INSTALLED:       # optional and absent: said plainly, never "active"
                self._active.remove(c)
                self.status.classifiers[c.name] = st
                self._notice_once(f"not-installed:{c.name}", "guard_status",
                                  f"{c.title} not installed — {st.message or 'not used'}")
                continue
            try:
                c.load()
            except ClassifierUnavailableError as exc:
                self._mark_unavailable(c, _reason(exc.message))
                continue
            st = c.status()
            self.status.classifiers[c.name] = st
            if st.state is not State.ACTIVE:
                self._mark_unavailable(c, st.message or st.state.value)
            self.status.messages.extend(st.notes)
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
        self._prompt_text = text
        seg = Segmenter("prompt", self.max_segment_chars)
        segments = seg.feed(text) + seg.flush()
        decisions = self._process(segments, text_of={"prompt": text})
        return decisions + self._judge_whole("prompt", text)

    def resolve_language(self, prompt: str) -> str | None:
        """Settle an 'auto' target from the user's prompt (once); returns the target language."""
        self.prepare()
        if self._target_setting == "auto":
            self._target_setting = self.lock.target = resolve_target("auto", prompt, self.langid)
            self.status.target_language = self.lock.target
        return self.lock.target

    def close(self) -> None:
        """Stop the worker without waiting for pending segments (cancel, window closed)."""
        if self._worker is not None:
            self._worker.stop()

    def classify(self, channel: str, text: str) -> list[Decision]:
        """Score a whole text synchronously as if it were ``channel`` (``r1desk classify``, the admin view)."""
        if channel == "prompt":
            return self.check_prompt(text)
        self.prepare()
        seg = Segmenter(channel, self.max_segment_chars)
        return self._process(seg.feed(text) + seg.flush(), text_of={channel: text}) + self._judge_whole(channel, text)

    def can_withhold(self, channel: str) -> bool:
        """Whether the policy can block or redact ``channel`` with a classifier that is judging it (then
        the chat holds the channel's text back until it is judged: core.holdback)."""
        self.prepare()
        if not self.policy.enabled.get(channel, True):
            return False
        rules = self.policy.rules.get(channel, {})
        return any(rules[label].action in ("redact", "block") for c in self._active for label in c.labels
                   if label in rules)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every fed segment has been scored (tests, benchmarks); False on timeout."""
        return self._worker.wait_idle(timeout) if self._worker is not None else True

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
            self._worker = ScoringWorker(self._process_batch, nice=self.worker_nice, on_error=self._on_worker_error)
        self._worker.put(segments)

    def _process_batch(self, segments: list[Segment]) -> None:
        """On the worker: judge a batch, then move each channel's judged boundary (read by hold-back)."""
        self._process(segments, text_of={ch: s.text for ch, s in self._segmenters.items()})
        for seg in segments:
            if seg.channel in self.judged_upto:
                self.judged_upto[seg.channel] = max(self.judged_upto[seg.channel], seg.end)

    def _on_worker_error(self) -> None:
        for classifier in list(self._active):
            self._mark_unavailable(classifier, "internal error while scoring (see the log)")

    def poll(self) -> list[GuardEvent]:
        with self._events_lock:
            out, self._events = self._events, []
        return out

    def finish(self, timeout: float | None = None) -> list[GuardEvent]:
        """Flush the unfinished tails, wait for their decisions, add the language reports."""
        tails = [s for seg in self._segmenters.values() for s in seg.flush()]
        if tails:
            self._enqueue(tails)
        done = self.wait_idle(timeout)
        if self._worker is not None:
            self._worker.stop(join_timeout=timeout if done else None)
        self.timed_out = not done
        if not done:
            self._notice_once("timeout", "guard_timeout", "The last segments were not scored in time; "
                                                          "what was not judged is not shown.")
        elif not self.blocked.is_set():
            for channel, segmenter in self._segmenters.items():
                self._judge_whole(channel, segmenter.text)
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
            out.append(LanguageReport(ch, self.lock.target, round(stats.share_in_target, 4), tuple(stats.events),
                                      self.lock.is_mixed(ch)))
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

    def _coverage_limited(self, classifier: Classifier, language: str) -> None:
        if language not in self.status.coverage_limited:
            self.status.coverage_limited.append(language)
            log.warning("%s coverage limited for %s", classifier.name, language)
        covers = getattr(classifier, "coverage", None)
        judged = f" judges {covers()} well" if callable(covers) and covers() else ""
        self._notice_once(f"coverage:{classifier.name}:{language}", "coverage_limited",
                          f"{classifier.title} coverage is limited for '{language}':{judged and ' it' + judged};"
                          f" install the multilingual model for better coverage.")

    def _judge(self, classifier: Classifier, items: list[Item]) -> list[Judgement] | None:
        """One batched call; None when the classifier turned out to be unavailable."""
        try:
            judged = classifier.judge(items)
        except ClassifierUnavailableError as exc:
            self._mark_unavailable(classifier, _reason(exc.message))
            return None
        if len(judged) != len(items):
            log.error("%s returned %d judgements for %d texts", classifier.name, len(judged), len(items))
            self._mark_unavailable(classifier, "internal error while scoring (see the log)")
            return None
        return judged

    def _process(self, segments: list[Segment], *, text_of: dict[str, str]) -> list[Decision]:
        """Measure language, judge segments (+ rolling windows) with every classifier in one batch each,
        decide, emit."""
        jobs: list[_Job] = []
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
            jobs.append(_Job(seg, window=False, start=seg.start, text=seg.text, lang=lang, record=record))
            if len(recent) >= 2:
                w_start = recent[0].start
                jobs.append(_Job(seg, window=True, start=w_start, text=text_of[seg.channel][w_start:seg.end],
                                 lang=lang, record=record))
        if not jobs:
            return []
        for classifier in list(self._active):
            if classifier.granularity in (Granularity.TURN, Granularity.CHUNK):
                continue
            mine = [j for j in jobs if not j.window or classifier.granularity is Granularity.WINDOW]
            if not mine:
                continue
            judged = self._judge(classifier, [Item(j.seg.channel, j.text, j.lang, self._prompt_text)
                                              for j in mine])
            for job, judgement in zip(mine, judged or []):
                job.results.append((classifier, judgement))
                if judgement.coverage_limited and job.lang:
                    self._coverage_limited(classifier, job.lang)
        made: list[Decision] = []
        for job in jobs:
            if not job.results or self.blocked.is_set():
                continue
            seg = job.seg
            merged = {k: round(v, 6) for _, j in job.results for k, v in j.scores.items()}
            key = "window" if job.window else "scores"
            job.record[key] = {**(job.record[key] or {}), **merged}
            decided: list[Decision] = []
            for classifier, judgement in job.results:
                decided += self.policy.decide(seg.channel, job.start, seg.end, job.text, judgement.scores,
                                              window=job.window, language=job.lang, model=judgement.model,
                                              classifier=classifier.name)
            decided.sort(key=lambda d: (-severity(d.action), -d.score))
            if job.window:  # report only harm that the single segments did not already explain
                seen = {(d.label, d.action) for d in self.decisions + made
                        if d.channel == seg.channel and d.start >= job.start}
                decided = [d for d in decided if (d.label, d.action) not in seen]
            made.extend(decided)
            self._act(seg.channel, decided)
        self.decisions.extend(made)
        return made + self._judge_chunks(jobs, text_of)

    def _judge_chunks(self, jobs: list[_Job], text_of: dict[str, str]) -> list[Decision]:
        """CHUNK classifiers: one call per channel with the channel's text up to the last new segment."""
        chunked = [c for c in self._active if c.granularity is Granularity.CHUNK]
        if not chunked:                       # the usual case: no copy of the channel text per batch
            return []
        ends: dict[str, tuple[int, str | None]] = {}
        for job in jobs:
            if not job.window:
                seg = job.seg
                if seg.end > ends.get(seg.channel, (-1, None))[0]:
                    ends[seg.channel] = (seg.end, job.lang)
        made: list[Decision] = []
        for channel, (end, lang) in ends.items():
            start = self._chunk_start.get(channel, 0)
            text = text_of[channel][:end]
            if not chunked or self.blocked.is_set() or not text[start:].strip():
                continue
            for classifier in chunked:
                made += self._judge_span(classifier, channel, text, start, end, lang)
            self._chunk_start[channel] = end
        self.decisions.extend(made)
        return made

    def _judge_span(self, classifier: Classifier, channel: str, text: str, start: int, end: int,
                    lang: str | None) -> list[Decision]:
        """One call with the channel's ``text`` (the judge sees it all); the decisions cover ``[start, end)``."""
        judged = self._judge(classifier, [Item(channel, text, lang, self._prompt_text)])
        if not judged:
            return []
        judgement = judged[0]
        self.segments.append({"channel": channel, "start": start, "end": end, "text": text[start:end][:400],
                              "language": lang, "scores": {k: round(v, 6) for k, v in judgement.scores.items()},
                              "window": None, "classifier": classifier.name, "verdict": judgement.verdict,
                              "raw": judgement.raw})
        decided = self.policy.decide(channel, start, end, text[start:end], judgement.scores, language=lang,
                                     model=judgement.model, classifier=classifier.name,
                                     verdict=judgement.verdict, raw_output=judgement.raw)
        self._act(channel, decided)
        return decided

    def _judge_whole(self, channel: str, text: str) -> list[Decision]:
        """Classifiers of TURN granularity judge a channel's whole text once it is complete."""
        whole = [c for c in self._active if c.granularity is Granularity.TURN]
        if not whole or not text.strip() or self.blocked.is_set():
            return []
        lang, _ = self._language_of(text[:2000])
        made: list[Decision] = []
        for classifier in whole:
            made += self._judge_span(classifier, channel, text, 0, len(text), lang)
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


def _reason(message: str) -> str:
    """"toxicity filter unavailable: X" -> "X" (the status adds the classifier's own title)."""
    head, sep, rest = message.partition(" unavailable: ")
    return rest if sep and len(head) < 40 else message
