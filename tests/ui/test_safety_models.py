"""The model manager's Safety models tab: import a guard GGUF, Use it behind the admin passphrase (settings
saved, one settings.change event, the chat's guard shows the harm filter active), turn it off; a chat
model is refused with one dialog; download from the fake Hub with progress and Cancel."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox, QPushButton

from r1desk import paths
from r1desk.core.guard.classifier import State
from r1desk.core.roles import ADMIN, RoleStore
from r1desk.settings import load_settings
from r1desk.storage.auditlog import AuditLog
from tests.support.guard_hub import OFFER_ID, guard_hub, guard_payload  # noqa: F401

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")

PASS = "correct horse battery staple"


def _panel(window):
    window.open_model_manager()
    manager = window._model_manager
    manager.tabs.setCurrentWidget(manager.safety)
    return manager.safety


def _button(table, row: int, col: int) -> QPushButton:
    return table.cellWidget(row, col).findChild(QPushButton)


def _unlock(qtbot, panel) -> None:
    qtbot.waitUntil(lambda: panel.unlock_dialog is not None and panel.unlock_dialog.isVisible(), timeout=5000)
    lock = panel.unlock_dialog.panel
    lock.passphrase.setText(PASS)
    assert lock.submit()


def test_catalog_lists_every_guard_model_with_fit_licence_and_the_right_action(qtbot, make_window):
    panel = _panel(make_window())
    table = panel.catalog_table
    qtbot.waitUntil(lambda: table.rowCount() >= 6, timeout=20000)
    rows = {(table.item(r, 0).text(), table.item(r, 1).text()): r for r in range(table.rowCount())}
    qwen = rows[("Qwen3Guard-Gen 0.6B", "Q8_0")]
    assert table.item(qwen, 2).text().startswith("~") and "estimate" in table.item(qwen, 2).toolTip()
    assert _button(table, qwen, 5).text() == "Import…"                    # no public GGUF
    llama = rows[("Llama Guard 3 1B", "Q4_K_M")]
    assert _button(table, llama, 5).text() == "Download"
    fit = table.cellWidget(llama, 3).findChild(type(panel.status)).text()
    assert fit in {"✓ fits", "~ tight", "✗ won't fit"}
    licence = table.cellWidget(llama, 4).findChild(type(panel.status))
    assert "Llama 3.2 Community License" in licence.text() and "href=\"https://" in licence.text()
    assert "not installed — toxicity only" in panel.status.text()


def test_import_then_use_turns_the_harm_filter_on_for_the_chat(qtbot, make_window, tiny_r1_engine,
                                                               tiny_qwen3guard_path, captured_dialogs):
    RoleStore().set_initial(ADMIN, PASS)
    window = make_window(engine=tiny_r1_engine)
    state = window.state
    assert state.guard_status.state_of("harm") is State.NOT_INSTALLED
    assert "harm filter not installed" in window.chat.disclosure.guard.text()
    panel = _panel(window)
    panel.import_file(str(tiny_qwen3guard_path))
    qtbot.waitUntil(lambda: panel.installed_table.rowCount() == 1, timeout=20000)
    installed = paths.guard_models_dir() / tiny_qwen3guard_path.name
    assert installed.is_file()
    panel.threads.setValue(1)
    with qtbot.waitSignal(state.guard_status_changed, timeout=60000) as changed:
        _button(panel.installed_table, 0, 4).click()          # Use → the admin passphrase first
        _unlock(qtbot, panel)
    assert captured_dialogs == []
    status = changed.args[0]
    assert status.state_of("harm") is State.ACTIVE
    assert status.classifiers["harm"].model.startswith("qwen3guard-gen:")
    assert window.chat.disclosure.guard.text() == "✓ Guard: all filters active"
    assert load_settings().guard.harm_model == str(installed) == state.settings.guard.harm_model
    assert load_settings().guard.harm_threads == 1
    assert state.session.config.guard.extra["harm"]["path"] == str(installed)
    qtbot.waitUntil(lambda: _button(panel.installed_table, 0, 4).text() == "In use", timeout=20000)
    assert not _button(panel.installed_table, 0, 5).isEnabled()        # Remove: turn it off first

    with qtbot.waitSignal(state.guard_status_changed, timeout=60000) as changed:
        panel.turn_off()                                        # still unlocked: no second passphrase
    assert panel.unlock_dialog is None
    assert changed.args[0].state_of("harm") is State.NOT_INSTALLED
    assert load_settings().guard.harm_model is None
    assert "not installed — toxicity only" in panel.status.text()

    audit = AuditLog()
    try:
        qtbot.waitUntil(lambda: len(audit.list_admin_events(action="settings.change")) == 2, timeout=10000)
        events = audit.list_admin_events(action="settings.change")
    finally:
        audit.close()
    keys = [{c["key"] for c in e["details"]["changes"]} for e in reversed(events)]
    assert keys == [{"guard.harm_model"}, {"guard.harm_model"}]     # 1 thread is already the default
    assert all(e["actor"] == ADMIN for e in events)


def test_a_wrong_passphrase_changes_nothing(qtbot, make_window, tiny_qwen3guard_path):
    RoleStore().set_initial(ADMIN, PASS)
    panel = _panel(make_window())
    panel.import_file(str(tiny_qwen3guard_path))
    qtbot.waitUntil(lambda: panel.installed_table.rowCount() == 1, timeout=20000)
    _button(panel.installed_table, 0, 4).click()
    qtbot.waitUntil(lambda: panel.unlock_dialog is not None, timeout=5000)
    lock = panel.unlock_dialog.panel
    lock.passphrase.setText("not the passphrase at all")
    assert not lock.submit()
    panel.unlock_dialog.reject()
    assert load_settings().guard.harm_model is None


def test_importing_a_chat_model_is_refused_with_one_dialog(qtbot, make_window, tiny_r1_path, captured_dialogs):
    panel = _panel(make_window())
    panel.import_file(str(tiny_r1_path))
    qtbot.waitUntil(lambda: bool(captured_dialogs), timeout=20000)
    [dialog] = captured_dialogs
    assert dialog["title"] == "Not a supported guard model"
    assert dialog["icon"] == QMessageBox.Icon.Warning and dialog["details"] == ""
    assert "is not a supported guard model: it is a DeepSeek-R1 chat model" in dialog["text"]
    assert list(paths.guard_models_dir().glob("*.gguf")) == []
    assert panel.installed_table.rowCount() == 0
    assert load_settings().guard.harm_model is None


def test_download_shows_progress_then_the_model_can_be_used(qtbot, make_window, guard_hub, guard_payload):
    panel = _panel(make_window())
    table = panel.catalog_table
    qtbot.waitUntil(lambda: table.rowCount() >= 6, timeout=20000)
    row = next(r for r in range(table.rowCount()) if (table.item(r, 0).text(), table.item(r, 1).text()) == ("Llama Guard 3 1B", "Q4_K_M"))
    _button(table, row, 5).click()
    assert OFFER_ID in panel._downloads
    qtbot.waitUntil(lambda: panel.installed_table.rowCount() == 1, timeout=30000)
    assert panel._downloads == {}
    assert (paths.guard_models_dir() / "Llama-Guard-3-1B.Q4_K_M.gguf").read_bytes() == guard_payload
    qtbot.waitUntil(lambda: _button(table, row, 5).text() == "Use", timeout=20000)


def test_cancelled_download_offers_resume(qtbot, make_window, guard_hub, guard_payload, captured_dialogs):
    guard_hub.drop_next_get_after = None
    panel = _panel(make_window())
    table = panel.catalog_table
    qtbot.waitUntil(lambda: table.rowCount() >= 6, timeout=20000)
    row = next(r for r in range(table.rowCount()) if (table.item(r, 0).text(), table.item(r, 1).text()) == ("Llama Guard 3 1B", "Q4_K_M"))
    from r1desk.core.guard.harm import install

    original = install.download
    offer_rows = []

    def cancel_midway(offer, *, progress=None, cancel=None, endpoint=None):
        def on_progress(p):
            if progress is not None:
                progress(p)
            if p.done >= len(guard_payload) // 3:
                cancel.set()                      # the Cancel button's event, set mid-download
        offer_rows.append(offer.id)
        return original(offer, progress=on_progress, cancel=cancel, endpoint=endpoint)

    install.download = cancel_midway
    try:
        _button(table, row, 5).click()
        qtbot.waitUntil(lambda: "cancelled" in panel.status.text(), timeout=30000)
    finally:
        install.download = original
    assert offer_rows == [OFFER_ID] and captured_dialogs == []
    qtbot.waitUntil(lambda: _button(table, row, 5).text() == "Resume download", timeout=20000)
