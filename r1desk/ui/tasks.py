"""The one way to run work off the GUI thread (after Anki's ``aqt/operations``).

``run_task(op, on_success, on_failure)`` runs ``op()`` in Qt's global thread pool; ``on_success(result)``
or ``on_failure(exc)`` then run on the GUI thread. A failure nobody handles is shown to the user, never
swallowed: a :class:`~r1desk.errors.UserFacingError` as a plain message, anything else as a bug dialog with
its traceback in the log.
"""
from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

from r1desk.errors import UserFacingError

log = logging.getLogger("r1desk.ui")

_live: set[CallbackRelay] = set()   # keeps relays alive until their callback has run on the GUI thread


class CallbackRelay(QObject):
    """Lives on the GUI thread; a worker thread emits into it (queued), the callback runs on the GUI thread.

    Also used by the generation worker for model loads, so both kinds of background work report alike.
    """

    succeeded = Signal(object)
    failed = Signal(object)

    def __init__(self, on_success: Callable[[Any], None] | None,
                 on_failure: Callable[[BaseException], None] | None, parent_widget: QWidget | None) -> None:
        super().__init__()
        self._on_success = on_success
        self._on_failure = on_failure
        self._parent_widget = parent_widget
        self.succeeded.connect(self._on_succeeded)
        self.failed.connect(self._on_failed)

    def _widget_gone(self) -> bool:
        """The widget that asked was closed and deleted meanwhile: nobody is left to show the result to."""
        return self._parent_widget is not None and not shiboken6.isValid(self._parent_widget)

    @Slot(object)
    def _on_succeeded(self, result: Any) -> None:
        _live.discard(self)
        if self._widget_gone():
            log.debug("background task finished after its window was closed; result dropped")
            return
        if self._on_success is not None:
            try:
                self._on_success(result)
            except Exception as exc:  # a bug in a callback: show it, do not lose it
                show_error(self._parent_widget, exc)

    @Slot(object)
    def _on_failed(self, exc: BaseException) -> None:
        _live.discard(self)
        if self._widget_gone():
            log.info("background task failed after its window was closed: %s", exc)
            return
        if self._on_failure is not None:
            try:
                self._on_failure(exc)
                return
            except Exception as callback_exc:
                exc = callback_exc
        show_error(self._parent_widget, exc)


class _Runnable(QRunnable):
    def __init__(self, op: Callable[[], Any], relay: CallbackRelay) -> None:
        super().__init__()
        self._op = op
        self._relay = relay
        self.setAutoDelete(True)

    def run(self) -> None:
        run_and_report(self._op, self._relay)


def new_relay(on_success: Callable[[Any], None] | None, on_failure: Callable[[BaseException], None] | None,
              parent: QWidget | None = None) -> CallbackRelay:
    """Create (on the GUI thread) the object a worker thread reports one result through."""
    relay = CallbackRelay(on_success, on_failure, parent)
    _live.add(relay)
    return relay


def run_and_report(op: Callable[[], Any], relay: CallbackRelay) -> None:
    """Call ``op`` on this (worker) thread and send its result or its exception to the GUI thread."""
    try:
        result = op()
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the GUI thread
        if not isinstance(exc, UserFacingError):
            log.error("background task failed:\n%s", "".join(traceback.format_exception(exc)))
        relay.failed.emit(exc)
    else:
        relay.succeeded.emit(result)


def run_task(op: Callable[[], Any], on_success: Callable[[Any], None] | None = None,
             on_failure: Callable[[BaseException], None] | None = None, *,
             parent: QWidget | None = None) -> None:
    """Run ``op`` off the GUI thread; call back on the GUI thread. ``on_failure`` None → show the error."""
    relay = new_relay(on_success, on_failure, parent)
    QThreadPool.globalInstance().start(_Runnable(op, relay))


def wait_for_tasks(timeout_ms: int = 30000) -> bool:
    """Block until the pool is idle (app shutdown; tests)."""
    return QThreadPool.globalInstance().waitForDone(timeout_ms)


# -- showing errors ------------------------------------------------------------------------------------

def error_text(exc: BaseException) -> tuple[str, str | None]:
    """(message, details): a plain message for the environment's errors, a bug report for the rest."""
    if isinstance(exc, UserFacingError):
        return str(exc), None
    if isinstance(exc, OSError):      # the environment's fault: a full disk, a read-only or missing path
        return (exc.strerror or str(exc)) + (f": {exc.filename}" if exc.filename else ""), None
    details = "".join(traceback.format_exception(exc))
    return (f"Something went wrong inside r1desk (this is a bug): {type(exc).__name__}: {exc}", details)


def show_error(parent: QWidget | None, exc: BaseException, title: str | None = None) -> None:
    """Tell the user. Bugs are logged with their traceback and shown with the details expandable."""
    message, details = error_text(exc)
    box = QMessageBox(parent)
    if details is None:
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle(title or "r1desk")
    else:
        log.error("unhandled error shown to the user:\n%s", details)
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle(title or "r1desk — unexpected error")
        box.setInformativeText("The details below were written to the log. Please include them "
                               "if you report this problem.")
        box.setDetailedText(details)
    box.setText(message)
    present_dialog(box)


def present_dialog(box: QMessageBox) -> int:
    """Show a modal message box. One place, so tests can capture dialogs instead of blocking."""
    return box.exec()
