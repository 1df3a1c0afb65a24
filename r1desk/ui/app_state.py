"""What the window shares: settings, the engine, the chat session and the generation worker.

Every call into the model goes through the one worker thread (loads, unloads, turns), and the
ChatSession with its audit-log connection is created on that thread, so the session's SQLite
connection lives where it is used. The GUI thread has its own AuditLog for the sidebar and feedback.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from r1desk.storage.auditlog import AuditLog
from r1desk.storage.pending import PendingQueue, SpillError
from r1desk.ui.workers import GenerationWorker

if TYPE_CHECKING:
    from r1desk.core.backend import BackendConfig, InferenceBackend
    from r1desk.core.chat import ChatSession
    from r1desk.core.gguf_info import ModelInfo
    from r1desk.core.guard.status import GuardStatus
    from r1desk.settings import RemoteSettings, Settings

log = logging.getLogger("r1desk.ui")

_UNSET = object()


class AppState(QObject):
    model_loading = Signal(str)          # path
    model_loaded = Signal(object)        # ModelInfo (a local file) or ModelDescription (a server)
    model_unloaded = Signal()
    model_failed = Signal(object)        # the exception
    guard_status_changed = Signal(object)
    conversations_changed = Signal()

    def __init__(self, *, settings: Settings | None = None, engine: InferenceBackend | None = None,
                 audit: Any = _UNSET,
                 session_kwargs: dict[str, Any] | None = None, parent: QObject | None = None) -> None:
        """``engine``: an Engine (tests pass one already loaded); ``session_kwargs``: extra ChatSession
        arguments (tests inject a deterministic scorer); ``audit``: the GUI thread's AuditLog."""
        super().__init__(parent)
        self.settings: Settings = settings if settings is not None else _load_settings()
        self.engine: InferenceBackend | None = engine
        self.audit = _open_audit() if audit is _UNSET else audit
        # The GUI thread's own audit writes (admin events, role unlocks): a locked database delays them,
        # never loses them; what is still refused at exit is spilled beside the database (core.turn_log).
        self.admin_log = PendingQueue(self.audit) if isinstance(self.audit, AuditLog) else None
        self.session_kwargs = dict(session_kwargs or {})
        self.worker = GenerationWorker(self)
        self.session: ChatSession | None = None
        self.guard_status: GuardStatus | None = None
        self.loading_path: str | None = None
        self.unsaved_error: SpillError | None = None   # audit writes no disk could take at exit

    # -- model --------------------------------------------------------------------------------------
    @property
    def model_info(self) -> ModelInfo | None:
        """The loaded GGUF's header (local backends; a server has none)."""
        from r1desk.core.engine import Engine

        return self.engine.info if isinstance(self.engine, Engine) else None

    @property
    def has_model(self) -> bool:
        """A model is loaded, local or on a server (``model_info`` is None for a server)."""
        return self.engine is not None and self.engine.loaded

    def load_model(self, path: str | Path, gpu_layers: str | int | None = None) -> None:
        """Load on the worker thread (after any running turn); then remember it for the next start."""
        path = str(path)
        self.loading_path = path
        self.model_loading.emit(path)
        config = self.settings.chat_config().generation.backend_config(path, gpu_layers=gpu_layers)

        def op() -> tuple[ModelInfo | None, GuardStatus | None]:
            from r1desk.core.backend import open_backend

            if self.engine is not None:
                self.engine.unload()          # free the old model's memory before the new one loads
            self.engine = open_backend(config)
            if self.session is not None:
                self.session.engine = self.engine
            return self.model_info, self._ensure_session()

        self.worker.submit(op, self._on_loaded, self._on_load_failed)

    def load_backend(self, config: BackendConfig, remote: RemoteSettings | None = None) -> None:
        """Open any backend (a remote server: core.remote) on the worker thread, like ``load_model``;
        ``remote``: the server settings to save once it opened (never the API key: that is in keyring)."""
        self.loading_path = None
        self.model_loading.emit(config.model)

        def op() -> tuple[Any, GuardStatus | None]:
            from r1desk.core.backend import open_backend

            backend = open_backend(config)       # the old model stays usable if the server cannot be used
            if self.engine is not None:
                self.engine.unload()
            self.engine = backend
            if self.session is not None:
                self.session.engine = self.engine
            return backend.describe(), self._ensure_session()

        def done(result: tuple[Any, GuardStatus | None]) -> None:
            if remote is not None:
                self._save_remote(remote)
            self._on_loaded(result)

        self.worker.submit(op, done, self._on_load_failed)

    def _save_remote(self, remote: RemoteSettings) -> None:
        try:
            from r1desk.settings import save_settings

            self.settings = dataclasses.replace(self.settings, remote=remote)
            save_settings(self.settings)
        except Exception:  # remembering is a convenience: never fail a load over it
            log.exception("could not save the remote server settings")

    def unload_model(self) -> None:
        def op() -> None:
            if self.engine is not None:
                self.engine.unload()

        self.worker.submit(op, lambda _r: self.model_unloaded.emit(), self._on_load_failed)

    def start_session(self) -> None:
        """With an engine loaded before the window opened (tests, CLI hand-over): create the session."""
        self.worker.submit(self._ensure_session, self._on_session_ready, self._on_load_failed)

    def _ensure_session(self) -> GuardStatus:
        """On the worker thread: one ChatSession per app, bound to the (re)loaded engine."""
        if self.session is None:
            from r1desk.core.chat import ChatSession

            if self.engine is None:
                raise RuntimeError("no model is loaded")
            audit = self.session_kwargs.pop("audit", _UNSET)
            if audit is _UNSET:
                audit = AuditLog()
            self.session = ChatSession(self.engine, audit=audit, config=self.settings.chat_config(),
                                       **self.session_kwargs)
            try:
                return self.session.guard.preload()      # load the classifiers now, not in the first turn
            except Exception:
                log.exception("guard preload failed; the status says which filter is missing")
        return self.session.guard_status

    def reload_guard(self) -> None:
        """The classifiers' weights changed (installed from the GUI): load them again, on the worker."""
        session = self.session
        if session is None:
            return

        def op() -> GuardStatus:
            session.guard.reload()
            return session.guard.preload()

        self.worker.submit(op, self._on_session_ready, self._on_load_failed)

    def _on_session_ready(self, status: GuardStatus | None) -> None:
        self.guard_status = status
        self.guard_status_changed.emit(status)

    def _on_loaded(self, result: tuple[ModelInfo | None, GuardStatus | None]) -> None:
        info, status = result
        path, self.loading_path = self.loading_path, None
        self.remember_model(path)
        self.model_loaded.emit(info)
        self._on_session_ready(status)

    def _on_load_failed(self, exc: BaseException) -> None:
        self.loading_path = None
        self.model_failed.emit(exc)

    # -- settings -----------------------------------------------------------------------------------
    def remember_model(self, path: str | None) -> None:
        if path is None or self.settings.last_model_path == path:
            return
        try:
            from r1desk.settings import save_settings

            self.settings = dataclasses.replace(self.settings, last_model_path=path)
            if self.session is not None:
                self.session.update_config(self.settings.chat_config())
            save_settings(self.settings)
        except Exception:  # remembering is a convenience: never fail a load over it
            log.exception("could not save the last model path")

    def set_gpu_layers(self, value: str) -> None:
        from r1desk.settings import save_settings

        gen = dataclasses.replace(self.settings.generation, gpu_layers=value)
        self.settings = dataclasses.replace(self.settings, generation=gen)
        save_settings(self.settings)

    @property
    def thinking_visibility(self) -> str:
        return self.settings.thinking_visibility

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Interrupt a running turn (saved as interrupted), wait for the worker, release the model.

        Audit writes that neither the database nor any spill file could take (every disk full) stay in
        memory: ``unsaved_error`` says so, and the window asks the user to free space and
        ``retry_unsaved()`` before it quits.
        """
        done = self.worker.shutdown(timeout_ms)
        if done and self.session is not None:
            try:
                problem = self.session.close()  # the guard's threads; pending audit writes
                if problem:
                    log.warning("%s", problem)
            except SpillError as exc:
                self.unsaved_error = exc
            except Exception:
                log.exception("closing the chat session")
        self._close_admin_log()
        if self.unsaved_error is None:
            self._close_audit()
        return done

    def _close_admin_log(self) -> None:
        if self.admin_log is not None and self.admin_log.pending:
            try:
                spilled = self.admin_log.close()
                if spilled:
                    log.warning("admin audit events kept in %s until the next start", spilled)
            except SpillError as exc:
                self.unsaved_error = self.unsaved_error or exc
            except OSError:
                log.exception("could not keep %d admin audit events", self.admin_log.pending)

    def _close_audit(self) -> None:
        if self.audit is not None:
            try:
                self.audit.close()
            except Exception:
                log.exception("closing the audit log")

    def retry_unsaved(self) -> SpillError | None:
        """Try again to store (or spill) what ``shutdown`` could not; None once nothing is left."""
        self.unsaved_error = None
        writer = self.session.log.writer if self.session is not None else None
        if writer is not None and writer.pending:
            try:
                writer.close()
            except SpillError as exc:
                self.unsaved_error = exc
        self._close_admin_log()
        if self.unsaved_error is None:
            self._close_audit()
        return self.unsaved_error

    def discard_unsaved(self) -> int:
        """The user chose to quit anyway: how many audit writes are lost (logged as an error)."""
        writer = self.session.log.writer if self.session is not None else None
        lost = sum(q.pending for q in (writer, self.admin_log) if q is not None)
        log.error("quitting with %d audit log entries unsaved: %s", lost, self.unsaved_error)
        self.unsaved_error = None
        self._close_audit()
        return lost


def _load_settings() -> Any:
    from r1desk.settings import SitePolicyError, load_settings, safe_settings

    try:
        return load_settings()
    except SitePolicyError as exc:   # fail closed: the safe defaults, every key locked in the admin view
        log.error("%s", exc)
        return safe_settings()


def _open_audit() -> AuditLog:
    return AuditLog()
