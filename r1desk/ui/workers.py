"""The generation worker: one model, one worker (style rule 4).

A single long-lived QThread owns every call into the loaded model: chat turns and model loads/unloads
queue behind each other, so a model swap never races a generation. A turn consumes
``ChatSession.run_turn`` events on the worker thread and emits one Qt signal per event; the GUI thread
receives them queued. Cancel = set a ``threading.Event`` (checked between tokens by the engine); the
thread is never terminated.
"""
from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from r1desk.core import events as ev
from r1desk.ui.tasks import CallbackRelay, new_relay, run_and_report

log = logging.getLogger("r1desk.ui.worker")


class InterruptEvent(threading.Event):
    """A cancel event that can say *why*: "cancelled" (Stop) or "interrupted" (the app is closing).

    It is still a plain ``threading.Event`` to the core; on "interrupted" the worker also closes the
    turn's generator, which core.chat logs as an interrupted turn.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reason = "cancelled"

    def interrupt(self) -> None:
        self.reason = "interrupted"
        self.set()


@dataclass
class _TurnJob:
    session: Any
    request: Any
    cancel: InterruptEvent


@dataclass
class _CallJob:
    op: Callable[[], Any]
    relay: CallbackRelay


_STOP = object()


class _Thread(QThread):
    def __init__(self, worker: GenerationWorker) -> None:
        super().__init__()
        self._worker = worker
        self.setObjectName("r1desk-generation")

    def run(self) -> None:
        self._worker._loop()


class GenerationWorker(QObject):
    """Signals carry the core's event dataclasses (frozen, safe across threads)."""

    turn_started = Signal(object)        # events.TurnStarted
    notice = Signal(object)              # events.Notice
    checking = Signal(str, int)          # channel, characters held back until the guard has judged them
    prompt_blocked = Signal(object)      # events.PromptBlocked
    delta = Signal(str, str)             # channel, text
    guard_decision = Signal(object)      # events.GuardDecision
    redacted = Signal(object)            # events.Redacted
    blocked = Signal(object)             # events.Blocked
    language_report = Signal(object)     # events.LanguageReport
    stats = Signal(object)               # events.Stats
    prompt_progress = Signal(int, int)   # prompt tokens read, prompt tokens (events.PromptProgress)
    turn_finished = Signal(object)       # events.TurnResult
    turn_failed = Signal(object)         # the exception (UserFacingError or a bug)
    busy_changed = Signal(int)           # 1: a turn started, 0: the last turn ended (int: PySide6 bool refcount bug)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()
        self._pending_turns: list[InterruptEvent] = []
        self._closing = False
        self._thread = _Thread(self)
        self._thread.start()

    # -- GUI-thread API ------------------------------------------------------------------------------
    def start_turn(self, session: Any, request: Any) -> InterruptEvent:
        """Queue one turn; returns its cancel event (Stop sets it)."""
        cancel = InterruptEvent()
        with self._lock:
            self._pending_turns.append(cancel)
        self._jobs.put(_TurnJob(session, request, cancel))
        return cancel

    def submit(self, op: Callable[[], Any], on_success: Callable[[Any], None] | None = None,
               on_failure: Callable[[BaseException], None] | None = None) -> None:
        """Run ``op`` (a model load/unload) on the worker thread, after any turn in progress."""
        self._jobs.put(_CallJob(op, new_relay(on_success, on_failure)))

    def cancel(self) -> None:
        """Stop the running turn (and any queued one) now."""
        with self._lock:
            for event in self._pending_turns:
                event.set()

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._pending_turns)

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Interrupt the running turn (saved as "interrupted"), finish the queue, join the thread."""
        if self._closing:
            return self._thread.wait(timeout_ms)
        self._closing = True
        with self._lock:
            for event in self._pending_turns:
                event.interrupt()
        self._jobs.put(_STOP)
        return self._thread.wait(timeout_ms)

    # -- worker thread ---------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            if isinstance(job, _CallJob):
                run_and_report(job.op, job.relay)
            elif isinstance(job, _TurnJob):
                self._run_turn(job)

    def _run_turn(self, job: _TurnJob) -> None:
        self.busy_changed.emit(1)
        try:
            events = job.session.run_turn(job.request, job.cancel)
            for event in events:
                self._emit(event)
                if job.cancel.reason == "interrupted":
                    # The app is closing: closing the generator makes core.chat save the partial
                    # turn as "interrupted" (its GeneratorExit path) instead of finishing it.
                    events.close()
                    break
        except BaseException as exc:  # noqa: BLE001 - reported to the GUI, never swallowed
            log.error("turn failed:\n%s", "".join(traceback.format_exception(exc)))
            self.turn_failed.emit(exc)
        finally:
            with self._lock:
                if job.cancel in self._pending_turns:
                    self._pending_turns.remove(job.cancel)
                still_busy = bool(self._pending_turns)
            self.busy_changed.emit(int(still_busy))

    def _emit(self, event: object) -> None:
        if isinstance(event, ev.Delta):
            self.delta.emit(event.channel, event.text)
        elif isinstance(event, ev.Checking):
            self.checking.emit(event.channel, event.held)
        elif isinstance(event, ev.Stats):
            self.stats.emit(event)
        elif isinstance(event, ev.PromptProgress):
            self.prompt_progress.emit(event.done, event.total)
        elif isinstance(event, ev.TurnStarted):
            self.turn_started.emit(event)
        elif isinstance(event, ev.Notice):
            self.notice.emit(event)
        elif isinstance(event, ev.PromptBlocked):
            self.prompt_blocked.emit(event)
        elif isinstance(event, ev.GuardDecision):
            self.guard_decision.emit(event)
        elif isinstance(event, ev.Redacted):
            self.redacted.emit(event)
        elif isinstance(event, ev.Blocked):
            self.blocked.emit(event)
        elif isinstance(event, ev.LanguageReport):
            self.language_report.emit(event)
        elif isinstance(event, ev.TurnFinished):
            self.turn_finished.emit(event.result)
        else:
            log.warning("unknown chat event %r ignored", type(event).__name__)
