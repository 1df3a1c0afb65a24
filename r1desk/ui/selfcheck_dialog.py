"""Tools → Safety self-check…: the GUI of ``r1desk selfcheck`` (issue 7), for auditors and admins.

Choose the suite (built-in, or a SimpleSafetyTests / XSTest CSV), guards on/off/both, how many prompts,
the seed, the answer length and where the HTML report goes; run it on the loaded model with a progress
bar and a cooperative Cancel; read the headline rates and open the report.

Concurrency: the run is queued on the app's one generation worker (``selfcheck_job``), so it never
overlaps a chat answer. Start is disabled while a chat answer is streaming, and the dialog is modal to
the main window, so no chat turn can be started while it is open (one would queue behind it anyway).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from r1desk.ui import theme
from r1desk.ui.app_state import AppState
from r1desk.ui.selfcheck_form import SelfCheckForm
from r1desk.ui.wording import counted
from r1desk.ui.selfcheck_job import ProgressRelay, selfcheck_op
from r1desk.ui.selfcheck_results import ResultsCard, summary_note
from r1desk.ui.tasks import show_error

log = logging.getLogger("r1desk.ui.selfcheck")

class SelfCheckDialog(QDialog):
    """Options, progress and results of one self-check at a time on ``state``'s loaded model."""

    run_finished = Signal(object)        # the SelfCheckRun (finished or cancelled), after the view shows it
    run_failed = Signal(object)          # the exception, after it was shown

    def __init__(self, state: AppState, parent: QWidget | None = None, *,
                 open_model_manager: Callable[[], None] | None = None,
                 session_factory: Callable[..., Any] | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._open_model_manager = open_model_manager
        self._session_factory = session_factory
        self.setWindowTitle("Safety self-check")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(640)
        self.resize(700, 560)
        self.cancel_event: threading.Event | None = None
        self.last_run: Any = None
        self.report_path: Path | None = None
        self._run_report: Path | None = None
        self._prompt_text: dict[str, str] = {}
        self._started = 0.0
        self._close_when_done = False
        self._relay = ProgressRelay(self)
        self._relay.progressed.connect(self._on_progress)
        self._build()
        self._update_plan()
        for signal in (state.model_loading, state.model_loaded, state.model_unloaded, state.model_failed,
                       state.worker.busy_changed):
            signal.connect(lambda *_a: self._refresh())
        self._refresh()

    # -- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        p = theme.current()
        title = QLabel("Safety self-check")
        title.setObjectName("SelfCheckTitle")
        intro = QLabel("Sends a prompt suite through the loaded model, with the guards on and in monitor mode, and "
                       "measures how often it helps with unsafe requests and how often it refuses safe look-alikes. "
                       "Every prompt is logged in the audit log.")
        intro.setWordWrap(True)
        intro.setObjectName("SelfCheckIntro")
        self.model_label = QLabel()
        self.model_label.setObjectName("SelfCheckModel")
        self.model_label.setWordWrap(True)
        self.models_button = QPushButton("Open the model manager")
        self.models_button.clicked.connect(self._on_open_models)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_label, 1)
        model_row.addWidget(self.models_button)

        self.form = SelfCheckForm(self.state.settings.generation.max_tokens)
        self.form.plan_changed.connect(self._update_plan)

        self.progress = QProgressBar()
        self.progress.setFormat("%v of %m")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.status = QLabel("")
        self.status.setObjectName("SelfCheckStatus")
        self.status.setWordWrap(True)
        self.results = ResultsCard()
        self.results.hide()

        self.open_report_button = QPushButton("Open report")
        self.open_report_button.clicked.connect(lambda: self.open_report())
        self.open_report_button.setEnabled(False)
        self.start_button = QPushButton("Start")
        self.start_button.setProperty("primary", "true")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(lambda: self.start())
        self.cancel_button = QPushButton("Cancel run")
        self.cancel_button.setProperty("danger", "true")
        self.cancel_button.clicked.connect(lambda: self.cancel())
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        self.hint = QLabel("")
        self.hint.setObjectName("SelfCheckMuted")
        self.hint.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_report_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 18, 22, 18)
        layout.setSpacing(10)
        layout.addWidget(title)
        layout.addWidget(intro)
        layout.addLayout(model_row)
        layout.addWidget(self.form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.results)
        layout.addStretch(1)
        layout.addWidget(self.hint)
        layout.addLayout(buttons)
        self.setStyleSheet(f"#SelfCheckTitle {{ font-size: 15pt; font-weight: 600; }}"
                           f"#SelfCheckIntro, #SelfCheckMuted {{ color: {p.muted}; }}"
                           f"#SelfCheckModel[missing='true'] {{ color: {p.warn}; background: {p.warn_bg}; "
                           f"border-radius: 8px; padding: 8px 10px; }}"
                           f"#SelfCheckModel {{ font-weight: 600; }}"
                           f"#SelfCheckCard {{ background: {p.surface}; border: 1px solid {p.border}; "
                           f"border-radius: 10px; }}"
                           f"#SelfCheckStatus[tone='danger'] {{ color: {p.danger}; }}"
                           f"#SelfCheckStatus[tone='warn'] {{ color: {p.warn}; }}"
                           f"#SelfCheckStatus[tone='ok'] {{ color: {p.ok}; }}")

    # -- state --------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.cancel_event is not None

    def _model_ready(self) -> bool:
        return self.state.model_info is not None and self.state.loading_path is None

    def _refresh(self) -> None:
        """Enable what can be used now; say why Start is disabled when it is."""
        info = self.state.model_info
        missing = info is None
        if self.state.loading_path is not None:
            text = f"A model is loading ({Path(self.state.loading_path).name}); the self-check can start when it is ready."
        elif info is None:
            text = ("No model is loaded. Load the model you want to check in the model manager first "
                    "(Models → Model manager…).")
        else:
            quant = info.quantization
            text = f"Model: {info.shown_name}" + (f" · {quant}" if quant else "")
        self.model_label.setText(text)
        self.model_label.setProperty("missing", "true" if missing else "false")
        self.model_label.style().unpolish(self.model_label)
        self.model_label.style().polish(self.model_label)
        self.models_button.setVisible(missing)
        chat_busy = bool(self.state.worker.busy)
        cancel_event = self.cancel_event
        running = cancel_event is not None
        self.start_button.setEnabled(not running and self._model_ready() and not chat_busy)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(cancel_event is not None and not cancel_event.is_set())
        self.close_button.setEnabled(not running)
        self.form.setEnabled(not running)
        if running:
            self.hint.setText("The chat waits while the self-check runs; Cancel stops it after the current token.")
        elif chat_busy:
            self.hint.setText("A chat answer is being generated. The self-check can start when it has finished "
                              "(or stop it in the chat).")
        else:
            self.hint.setText("")
        self.hint.setVisible(bool(self.hint.text()))
        self.open_report_button.setEnabled(self.report_path is not None and self.report_path.is_file())

    def _set_status(self, text: str, tone: str = "") -> None:
        self.status.setText(text)
        self.status.setProperty("tone", tone)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    def _update_plan(self) -> None:
        if self.running:
            return
        turns = self.form.planned_turns()
        self.progress.setRange(0, max(turns, 1))
        self.progress.setValue(0)
        if self.last_run is None:
            mode = self.form.guards()
            how = "guards on, then off, for each prompt" if mode == "both" else f"guards {mode}"
            self._set_status(f"{counted(turns, 'turn')} planned ({how}).", "")

    # -- running ------------------------------------------------------------------------------------
    def start(self) -> bool:
        """Queue the run on the generation worker; False (and a message) when it cannot start."""
        if self.running:
            return False
        if not self._model_ready():
            self._refresh()
            return False
        if self.state.worker.busy:
            self._refresh()
            return False
        self.form.renew_report_path()        # a default name already written by the last run gets a fresh one
        try:
            opts = self.form.options()
        except Exception as exc:  # noqa: BLE001 - shown as a message, never a crash
            show_error(self, exc, title="Cannot start the self-check")
            return False
        _spec, _name, prompts = self.form.selected_suite()
        self._prompt_text = {p.id: p.text for p in prompts}
        self.cancel_event = threading.Event()
        self._run_report = opts.report
        self.last_run = None
        self.report_path = None
        self.results.hide()
        turns = self.form.planned_turns()
        self.progress.setRange(0, max(turns, 1))
        self.progress.setValue(0)
        self._set_status("Waiting for the model…", "")
        self._started = time.monotonic()
        self._refresh()
        log.info("self-check started from the GUI: %s, guards %s, limit %s, seed %s", opts.suite, opts.guards,
                 opts.limit, opts.seed)
        op = selfcheck_op(self.state, opts, self._relay, self.cancel_event, self._session_factory)
        self.state.worker.submit(op, self._on_done, self._on_failed)
        return True

    def cancel(self) -> None:
        """Cooperative: the engine stops within one token, the partial turn is left out, the report written."""
        if self.cancel_event is None or self.cancel_event.is_set():
            return
        self.cancel_event.set()
        self._set_status("Cancelling… the run stops after the current token.", "warn")
        self._refresh()

    def _on_progress(self, progress: Any) -> None:
        if not self.running:
            return
        self.progress.setRange(0, max(progress.total, 1))
        self.progress.setValue(progress.done)
        if self.cancel_event is not None and self.cancel_event.is_set():
            return
        if progress.outcome is None:
            text = " ".join(self._prompt_text.get(progress.prompt_id, "").split())
            if len(text) > 90:
                text = text[:89] + "…"
            self._set_status(f"Prompt {progress.done + 1} of {progress.total} · {progress.prompt_id} · guards "
                             f"{progress.guards}: “{text}”", "")

    def _finish(self) -> None:
        self.cancel_event = None
        self._refresh()
        parent = self.parentWidget()
        refresh = getattr(parent, "refresh_conversations", None)
        if callable(refresh):
            try:
                refresh()                      # each prompt was logged as a conversation
            except Exception:  # noqa: BLE001 - the sidebar is a convenience here
                log.exception("refreshing the conversation list")
        if self._close_when_done:
            self._close_when_done = False
            self.close()

    def _on_done(self, run: Any) -> None:
        elapsed = time.monotonic() - self._started
        self.last_run = run
        self.report_path = self._run_report if self._run_report and self._run_report.is_file() else None
        done = len(run.outcomes)
        planned = run.prompts_planned * (2 if run.guards == "both" else 1)
        minutes, seconds = divmod(int(elapsed), 60)
        took = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
        if run.cancelled:
            self._set_status(f"Cancelled after {done} of {planned} turns ({took}). The rates and the report cover "
                             "the turns that finished.", "warn")
        else:
            self._set_status(f"Finished {counted(done, 'turn')} in {took} · logged as self-check {run.run_id[:8]}."
                             + (f" Report: {self.report_path}" if self.report_path else ""), "ok")
        self.progress.setRange(0, max(planned, 1))
        self.progress.setValue(done)
        self.results.show_metrics(run.metrics, summary_note(run))
        self.results.show()
        self.fit_height()
        # the Report field keeps showing the file just written; the next Start picks a fresh default name
        self._finish()
        self.run_finished.emit(run)

    def _on_failed(self, exc: BaseException) -> None:
        self._set_status(f"The self-check failed: {exc}", "danger")
        self._finish()
        show_error(self, exc, title="The self-check failed")
        self.run_failed.emit(exc)

    def fit_height(self) -> None:
        """Grow to show everything at the current width (wrapped labels need height-for-width)."""
        layout = self.layout()
        if layout is None:
            raise RuntimeError("the self-check dialog has no layout")     # __init__ sets one; a bug otherwise
        layout.activate()
        needed = layout.totalHeightForWidth(self.width())
        if needed > self.height():
            self.resize(self.width(), needed)

    # -- report, models, closing -------------------------------------------------------------------
    def open_report(self) -> bool:
        if self.report_path is None or not self.report_path.is_file():
            return False
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.report_path))):
            return True
        # no browser (or no desktop integration): say where the file is, selectable, so it can be opened by hand
        self._set_status(f"No web browser could open the report. It is saved at: {self.report_path}", "warn")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return False

    def _on_open_models(self) -> None:
        if self._open_model_manager is not None:
            self._open_model_manager()

    def reject(self) -> None:  # Escape / Close while running: cancel, then close when the run has ended
        if self.running:
            self._close_when_done = True
            self.cancel()
            return
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.running:
            self._close_when_done = True
            self.cancel()
            event.ignore()
            return
        super().closeEvent(event)


class SelfCheckLauncher(QObject):
    """The Tools menu entry: passphrase (auditor or admin) → the dialog; cancels a run when the app closes."""

    def __init__(self, window: Any, *, store: Any = None,
                 session_factory: Callable[..., Any] | None = None) -> None:
        super().__init__(window)
        from r1desk.core.roles import RoleStore

        self.window = window
        from r1desk.ui.roles_gate import admin_events

        self.store = store or RoleStore(audit=getattr(admin_events(window.state), "log_admin_event", None))
        self.session_factory = session_factory
        self.dialog: SelfCheckDialog | None = None
        self.unlock: Any = None
        self.action = window.add_tool_action("Safety self-check…", self.open, "Ctrl+Shift+K")
        window.installEventFilter(self)

    def open(self) -> None:
        """Raise the dialog if it is open; otherwise ask for the auditor or admin passphrase first."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            self.dialog.activateWindow()
            return
        from r1desk.ui.selfcheck_unlock import SelfCheckUnlock

        self.unlock = SelfCheckUnlock(self.store, self.window)
        self.unlock.accepted.connect(self.show_dialog)
        self.unlock.open()

    def show_dialog(self) -> SelfCheckDialog:
        if self.dialog is None:
            manager = getattr(self.window, "open_model_manager", None)
            self.dialog = SelfCheckDialog(self.window.state, self.window, open_model_manager=manager,
                                          session_factory=self.session_factory)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.window and event.type() == QEvent.Type.Close and self.dialog is not None:
            if self.dialog.cancel_event is not None:
                self.dialog.cancel_event.set()     # the worker then finishes quickly and the app can exit
        return False


def register_selfcheck(window: Any, **kwargs: Any) -> SelfCheckLauncher:
    """Add Tools → "Safety self-check…" to the main window (auditor or admin passphrase required)."""
    return SelfCheckLauncher(window, **kwargs)
