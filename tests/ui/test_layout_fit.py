"""Issue 14 items 5 and 6 (and layouts checked at 800×600): labels get the height their text needs, fields
their size hint, long names elide with a tooltip, dialogs never exceed the screen."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QWidget

from r1desk.core.roles import AUDITOR, RoleStore, ScryptParams

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")

LONG_ERROR = ("The passphrases do not match. Type the same passphrase twice; it must be at least twelve "
              "characters long and it cannot be recovered later, only reset by an administrator.")


def _fits(widget: QWidget) -> None:
    """Every visible label is as tall as its wrapped text, every line edit as tall as its size hint."""
    for label in widget.findChildren(QLabel):
        if label.isVisible() and label.text():
            need = label.heightForWidth(label.width()) if label.wordWrap() else label.sizeHint().height()
            assert label.height() >= need - 1, (label.text()[:40], label.height(), need)
            assert label.width() >= min(label.minimumSizeHint().width(), widget.width()) - 1
    for edit in widget.findChildren(QLineEdit):
        if edit.isVisible():
            assert edit.height() >= edit.sizeHint().height() - 1 and edit.width() >= 120


@pytest.mark.parametrize("size", [(800, 600), (760, 520), (1280, 800)])
@pytest.mark.parametrize("setup", [True, False])
def test_passphrase_screen_lays_out_at_its_size_hint(qtbot, audit, size, setup):
    from r1desk.ui.lock_dialog import LockPanel

    store = RoleStore(audit=audit.log_admin_event, params=ScryptParams(n=2 ** 10))
    if not setup:
        store.set_initial(AUDITOR, "correct horse battery")
    panel = LockPanel(AUDITOR, store)
    qtbot.addWidget(panel)
    panel.resize(*size)
    panel.show()
    qtbot.waitExposed(panel)
    panel.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is panel.passphrase)     # the field is focused
    _fits(panel)
    panel.error.setText(LONG_ERROR)                                              # a two-line error grows
    qtbot.waitUntil(lambda: panel.error.height() >= panel.error.heightForWidth(panel.error.width()) - 1)
    _fits(panel)


LONG_NAME = "DeepSeek-R1-Distill-Qwen-14B-abliterated-v2-imatrix-calibrated-" + "x" * 80 + "-Q4_K_M.gguf"


def test_model_manager_with_a_long_file_name_stays_on_screen(qtbot, make_window):
    from PySide6.QtWidgets import QPushButton, QTableWidgetItem

    window = make_window()
    window.resize(800, 600)
    window.open_model_manager()
    manager = window._model_manager
    qtbot.waitExposed(manager)
    manager._set_status(f"Loading {LONG_NAME}…")
    manager.local_table.setRowCount(1)
    item = QTableWidgetItem(LONG_NAME)
    item.setToolTip("/models/" + LONG_NAME)
    manager.local_table.setItem(0, 3, item)
    manager.local_table.setItem(0, 0, QTableWidgetItem(LONG_NAME))
    manager.adjustSize()
    screen = manager.screen().availableGeometry()
    assert manager.minimumSizeHint().width() <= 800
    assert manager.width() <= screen.width() and manager.height() <= screen.height()
    assert manager._status_text.elided and "…" in manager.status.text()     # elided, not cut
    assert LONG_NAME in manager.status.toolTip()
    assert manager.status.width() <= manager.width()
    close = next(b for b in manager.findChildren(QPushButton) if b.text() == "Close")
    top_left = close.mapTo(manager, close.rect().topLeft())
    assert manager.rect().contains(close.rect().translated(top_left))            # Close is reachable
    # a huge dialog is clamped to the screen when shown
    manager.hide()
    manager.resize(screen.width() + 900, screen.height() + 700)
    manager.show()
    qtbot.waitUntil(lambda: manager.width() <= screen.width() and manager.height() <= screen.height())
    manager.close()


@pytest.mark.parametrize("size", [(800, 600), (1280, 800), (1920, 1080)])
def test_disclosure_bar_is_readable_at_every_window_size(qtbot, make_window, tiny_r1_engine, size):
    window = make_window(tiny_r1_engine)
    window.resize(*size)
    qtbot.waitUntil(lambda: window.width() == size[0])
    bar = window.chat.disclosure
    bar.guard.setText("⚠ Guard: toxicity filter unavailable; language check unavailable")
    qtbot.waitUntil(lambda: bar.guard.height() >= bar.guard.heightForWidth(bar.guard.width()) - 1)
    for label in (bar.model_name, bar.ai_notice, bar.guard):
        assert label.isVisible()
        assert label.height() >= label.heightForWidth(label.width()) - 1, label.text()
        assert bar.rect().contains(label.geometry())
    assert "may be inaccurate" in bar.ai_notice.text()


def test_the_main_window_starts_within_a_small_screen(qtbot, make_window):
    """The default size is for a laptop; on an 800×600 screen the window must start on it (seen under Xvfb)."""
    window = make_window()
    area = window.screen().availableGeometry()
    window.resize(area.width() + 400, area.height() + 300)
    window._fit_screen()
    assert window.width() <= area.width() and window.height() <= area.height()
    assert window.isMaximized()          # the window manager fits it, title bar and borders included
    window.showNormal()
    window.resize(area.width() - 10, area.height() - 10)     # not capped: it may grow again
    assert window.maximumWidth() > area.width()


def test_reflow_grid_puts_as_many_columns_as_fit(qtbot):
    """The settings forms, the dashboard, the audit filters and the review buttons use it: they reflow instead
    of scrolling sideways or eliding."""
    from r1desk.ui.fit import ReflowGrid

    grid = ReflowGrid(max_columns=3, spacing=10)
    qtbot.addWidget(grid)
    cards = [QWidget() for _ in range(5)]
    for card in cards:
        card.setMinimumSize(100, 40)
        grid.add(card)
    assert grid.minimumSizeHint().width() == 100                  # one column's width: never wider
    for width, columns in ((100, 1), (209, 1), (210, 2), (319, 2), (320, 3), (2000, 3)):
        grid.resize(width, 400)
        grid.show()
        assert grid.columns == columns, width
        assert grid.columns_for(width) == columns
    grid.resize(210, 400)                                          # 2 columns: 3 rows of 40 and 2 gaps of 10
    assert grid.minimumSizeHint().height() == 3 * 40 + 2 * 10


def test_responsive_splitter_stacks_below_its_breakpoint(qtbot):
    from PySide6.QtCore import Qt

    from r1desk.ui.fit import ResponsiveSplitter

    splitter = ResponsiveSplitter(900, stacked_first=170)
    qtbot.addWidget(splitter)
    for _ in range(2):
        splitter.addWidget(QWidget())
    splitter.resize(1200, 600)
    splitter.show()
    qtbot.waitUntil(lambda: splitter.orientation() == Qt.Orientation.Horizontal)
    splitter.resize(600, 600)
    qtbot.waitUntil(lambda: splitter.orientation() == Qt.Orientation.Vertical)
    assert abs(splitter.sizes()[0] - 170) <= splitter.handleWidth()   # the list above keeps its rows
    splitter.resize(1000, 600)
    qtbot.waitUntil(lambda: splitter.orientation() == Qt.Orientation.Horizontal)
