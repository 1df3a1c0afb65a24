"""The lock screen in front of a protected view: first-use setup, right/wrong passphrase, rate limit,
idle relock (fake clock), and the audit events written for each."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel

from r1desk.core import roles
from r1desk.core.roles import AUDITOR, IdleLock, RoleStore, ScryptParams
from r1desk.ui.roles_gate import RoleGate

FAST = ScryptParams(n=2 ** 10)


class Clock:
    def __init__(self) -> None:
        self.t = 5000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock()


def make_gate(qtbot, audit, clock, *, setup=True):
    store = RoleStore(audit=audit.log_admin_event, clock=clock, params=FAST)
    if setup:
        store.set_initial(AUDITOR, "correct horse")
    created = []

    def factory():
        created.append(QLabel("secret view"))
        return created[-1]

    gate = RoleGate(AUDITOR, store, factory, idle=IdleLock(60, clock=clock))
    qtbot.addWidget(gate)
    return gate, created


def actions(audit):
    return [e["action"] for e in reversed(audit.list_admin_events(limit=100))]


def test_right_passphrase_unlocks_and_is_audited(qtbot, audit, clock):
    gate, created = make_gate(qtbot, audit, clock)
    assert gate.is_locked and not created
    gate.panel.passphrase.setText("correct horse")
    with qtbot.waitSignal(gate.unlocked):
        gate.panel.button.click()
    assert not gate.is_locked and gate.currentWidget() is created[0]
    assert "role.unlock" in actions(audit)


def test_wrong_passphrase_stays_locked_and_is_audited(qtbot, audit, clock):
    gate, created = make_gate(qtbot, audit, clock)
    gate.panel.passphrase.setText("wrong horse")
    gate.panel.button.click()
    assert gate.is_locked and not created
    assert "Wrong passphrase" in gate.panel.error.text()
    assert actions(audit).count("role.unlock_failed") == 1


def test_rate_limit_refuses_even_the_right_passphrase(qtbot, audit, clock):
    gate, created = make_gate(qtbot, audit, clock)
    for _ in range(roles.FREE_FAILURES):
        gate.panel.passphrase.setText("wrong")
        assert not gate.panel.submit()
    gate.panel.passphrase.setText("correct horse")
    assert not gate.panel.submit()
    assert "try again" in gate.panel.error.text()
    assert gate.is_locked and "role.unlock_refused" in actions(audit)
    clock.t += roles.BASE_DELAY_S
    assert gate.panel.submit()
    assert not gate.is_locked


def test_first_use_sets_the_passphrase(qtbot, audit, clock):
    gate, created = make_gate(qtbot, audit, clock, setup=False)
    assert gate.panel.setting_up and gate.panel.confirm.isVisibleTo(gate.panel)
    gate.panel.passphrase.setText("short")
    gate.panel.confirm.setText("short")
    assert not gate.panel.submit() and "at least" in gate.panel.error.text()
    gate.panel.passphrase.setText("a long passphrase")
    gate.panel.confirm.setText("a long passphrase")
    assert gate.panel.submit()
    assert not gate.is_locked
    assert actions(audit)[-2:] == ["role.passphrase_set", "role.unlock"]


def test_idle_relock(qtbot, audit, clock):
    gate, created = make_gate(qtbot, audit, clock)
    gate.panel.passphrase.setText("correct horse")
    gate.panel.submit()
    clock.t += 59
    gate.check_idle()
    assert not gate.is_locked
    gate.idle.touch()               # activity postpones the relock
    clock.t += 59
    gate.check_idle()
    assert not gate.is_locked
    clock.t += 1
    with qtbot.waitSignal(gate.locked):
        gate.check_idle()
    assert gate.is_locked and gate.panel.passphrase.text() == ""
    # unlocking again reuses the same view
    gate.panel.passphrase.setText("correct horse")
    gate.panel.submit()
    assert len(created) == 1 and gate.currentWidget() is created[0]


def test_register_part2_adds_gated_views_to_the_main_window(qtbot, audit):
    from r1desk.settings import Settings
    from r1desk.ui.app_state import AppState
    from r1desk.ui.main_window import MainWindow
    from r1desk.ui.roles_gate import register_part2

    state = AppState(settings=Settings(), engine=None, audit=audit)
    window = MainWindow(state)
    qtbot.addWidget(window)
    gates = register_part2(window)
    texts = [a.text() for a in window.tools_menu.actions()]
    assert texts == ["Audit log…", "Admin settings…"]
    window.tools_menu.actions()[0].trigger()
    assert window.stack.currentWidget() is gates[AUDITOR] and gates[AUDITOR].is_locked
    gate = gates[AUDITOR]
    gate.panel.passphrase.setText("auditor passphrase")
    gate.panel.confirm.setText("auditor passphrase")
    assert gate.panel.submit()                       # first use: sets it and opens the browser
    from r1desk.ui.auditor_view import AuditorView
    assert isinstance(gate.currentWidget(), AuditorView)
    state.shutdown()


def test_unlocking_the_audit_log_gives_it_the_keyboard(qtbot, audit, clock):
    """After the passphrase the focus was nowhere: Ctrl+Tab and the review keys did nothing until a click."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from r1desk.ui.auditor_view import AuditorView

    store = RoleStore(audit=audit.log_admin_event, clock=clock, params=FAST)
    store.set_initial(AUDITOR, "correct horse")
    gate = RoleGate(AUDITOR, store, lambda: AuditorView(audit, reviewer="auditor"), idle=IdleLock(60, clock=clock))
    qtbot.addWidget(gate)
    gate.show()
    qtbot.waitExposed(gate)
    gate.activateWindow()
    gate.panel.passphrase.setText("correct horse")
    gate.panel.button.click()
    view = gate.view
    qtbot.waitUntil(lambda: QApplication.focusWidget() is view.search)
    qtbot.keyClick(view.search, Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert view.tabs.currentWidget() is view.dashboard
