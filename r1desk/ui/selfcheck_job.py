"""Running a self-check from the GUI: on the generation worker, reporting progress to the GUI thread.

The loaded model serves one generation at a time (style rule 4), so the run is queued on the app's one
generation worker (``AppState.worker``), the thread that owns every chat turn and model load: it
starts after a turn in progress and a model swap waits for it. The guard classifiers already loaded
for the chat are shared (no second Detoxify load); the audit log is the chat session's, which lives on
that same thread.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from r1desk.core.config import ChatConfig
    from r1desk.core.engine import Engine
    from r1desk.storage.auditlog import AuditLog


log = logging.getLogger("r1desk.ui.selfcheck")


class ProgressRelay(QObject):
    """Created on the GUI thread; the worker emits into it and the slot runs on the GUI thread (queued)."""

    progressed = Signal(object)          # core.selfcheck.runner.Progress

    def report(self, progress: Any) -> None:
        self.progressed.emit(progress)


def shared_guard_factory(state: Any) -> Callable[..., Any]:
    """A ``session_factory`` for ``run_model_selfcheck`` that reuses the chat's classifiers.

    Each guard mode gets its own GuardSession (its own configuration: "off" is monitor mode) around the
    classifiers and language id the chat session already holds (loaded once)."""
    from r1desk.core.chat import ChatSession
    from r1desk.core.guard.session import GuardSession

    def make(engine: Engine, *, audit: AuditLog | None, config: ChatConfig, guarded: bool = True) -> ChatSession:
        session = state.session
        chat_guard = session.guard if session is not None else None
        guard = GuardSession(config.guard, enabled=guarded,
                             classifiers=chat_guard.classifiers if chat_guard is not None else (),
                             langid=chat_guard.langid if chat_guard is not None else None)
        return ChatSession(engine, audit=audit, config=config, guard=guard, guarded=guarded)

    return make


def selfcheck_op(state: Any, opts: Any, relay: ProgressRelay, cancel: threading.Event,
                 session_factory: Callable[..., Any] | None = None) -> Callable[[], Any]:
    """The job run on the generation worker: returns the finished (or cancelled) ``SelfCheckRun``."""
    settings = state.settings
    factory = session_factory or shared_guard_factory(state)

    def op() -> Any:
        from r1desk.core.selfcheck.check import run_model_selfcheck
        from r1desk.errors import UserFacingError

        engine = state.engine
        if engine is None or getattr(engine, "info", None) is None:
            raise UserFacingError("No model is loaded", hint="load one in the model manager (Models → Model manager…)")
        audit = getattr(getattr(state, "session", None), "audit", None)
        own_audit = None
        if audit is None:                      # no chat session yet: log to the default audit database
            from r1desk.storage.auditlog import AuditLog

            audit = own_audit = AuditLog()
        try:
            return run_model_selfcheck(opts, config=settings.chat_config(), audit=audit, engine=engine,
                                       session_factory=factory, progress=relay.report, cancel=cancel)
        finally:
            if own_audit is not None:
                own_audit.close()

    return op
