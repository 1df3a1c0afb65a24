"""A protected view behind its role's passphrase, relocking after idle time, and the hook that adds the
auditor browser and admin settings to the main window (``register_part2``)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QStackedWidget, QWidget

from r1desk.core.roles import ADMIN, AUDITOR, RELOCK_AFTER_S, IdleLock, RoleStore
from r1desk.ui.lock_dialog import LockPanel

log = logging.getLogger("r1desk.ui")

_ACTIVITY = {QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.Wheel, QEvent.Type.MouseMove}


class RoleGate(QStackedWidget):
    """The lock panel until the passphrase is given; then the view built by ``factory``.

    The view is created on the first unlock and hidden (not destroyed) on relock; ``idle`` decides when
    to relock, checked every ``check_ms`` — the clock is injectable so tests need no waiting."""

    unlocked = Signal()
    locked = Signal()

    def __init__(self, role: str, store: RoleStore, factory: Callable[[], QWidget], *,
                 idle: IdleLock | None = None, check_ms: int = 1000, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.store = store
        self.factory = factory
        self.idle = idle or IdleLock(RELOCK_AFTER_S)
        self.view: QWidget | None = None
        self.panel = LockPanel(role, store)
        self.panel.unlocked.connect(self._on_unlocked)
        self.addWidget(self.panel)
        self._timer = QTimer(self)
        self._timer.setInterval(check_ms)
        self._timer.timeout.connect(self.check_idle)

    @property
    def is_locked(self) -> bool:
        return self.currentWidget() is self.panel

    def _on_unlocked(self) -> None:
        if self.view is None:
            self.view = self.factory()
            self.addWidget(self.view)
        self.idle.unlock()
        self.setCurrentWidget(self.view)
        focus_first(self.view)      # the keyboard goes on in the view (Ctrl+Tab, the review keys), not nowhere
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        self._timer.start()
        log.info("%s view unlocked", self.role)
        self.unlocked.emit()

    def lock(self) -> None:
        if self.is_locked:
            return
        self.idle.lock()
        self._timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self.panel.refresh()
        self.setCurrentWidget(self.panel)
        log.info("%s view locked", self.role)
        self.locked.emit()

    def check_idle(self) -> None:
        if not self.is_locked and self.idle.locked:
            self.lock()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() in _ACTIVITY and self.isVisible():
            self.idle.touch()
        return False

    def hideEvent(self, event: Any) -> None:  # noqa: N802 - Qt override: leaving the view locks it
        super().hideEvent(event)
        self.lock()


def focus_first(view: QWidget) -> None:
    """Give the keyboard focus to the view's ``first_focus`` widget when it names one (the audit log: its search
    box), else to the first widget in ``view`` that takes it from the Tab key."""
    chosen = getattr(view, "first_focus", None)
    if isinstance(chosen, QWidget):
        chosen.setFocus(Qt.FocusReason.OtherFocusReason)
        return
    widget = view.nextInFocusChain()
    while widget is not None and widget is not view:
        if (view.isAncestorOf(widget) and widget.isVisibleTo(view) and widget.isEnabled()
                and widget.focusPolicy() & Qt.FocusPolicy.TabFocus):
            widget.setFocus(Qt.FocusReason.OtherFocusReason)
            return
        widget = widget.nextInFocusChain()


def admin_events(state: Any) -> Any:
    """Where the GUI writes admin events: the app's write-behind queue when it has one (nothing lost to a
    locked database), else the audit log itself."""
    return getattr(state, "admin_log", None) or getattr(state, "audit", None)


def register_part2(window: Any) -> dict[str, RoleGate]:
    """Add "Audit log…" and "Admin settings…" to the main window's Tools menu, each behind its gate.

    Saved settings go to ``window.state`` (and its chat session) so the next turn uses them."""
    from r1desk.ui.admin_view import AdminView
    from r1desk.ui.auditor_view import AuditorView

    state = window.state
    audit = state.audit
    events = admin_events(state)
    store = RoleStore(audit=getattr(events, "log_admin_event", None))

    def make_admin() -> QWidget:
        view = AdminView(audit=events, settings=state.settings, roles=store, audit_reads=audit)
        view.settings_saved.connect(lambda s: apply_settings(state, s))
        view.weights_installed.connect(state.reload_guard)
        return view

    gates = {AUDITOR: RoleGate(AUDITOR, store,
                               lambda: AuditorView(audit, review_settings=lambda: state.settings.review_period)),
             ADMIN: RoleGate(ADMIN, store, make_admin)}
    titles = {AUDITOR: "Audit log", ADMIN: "Admin settings"}
    for role, gate in gates.items():
        window.add_view(role, gate, titles[role])
    window.add_tool_action("Audit log…", lambda: window.show_view(AUDITOR), "Ctrl+Shift+A")
    window.add_tool_action("Admin settings…", lambda: window.show_view(ADMIN), "Ctrl+Shift+,")
    return gates


def apply_settings(state: Any, settings: Any) -> None:
    """The new settings apply from the next turn: the app state and the live chat session."""
    state.settings = settings
    session = getattr(state, "session", None)
    if session is not None:
        session.update_config(settings.chat_config())
