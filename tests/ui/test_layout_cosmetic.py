"""Issue 14, cosmetic items, as layout checks at the sizes people use (800×600 to 1920×1080): nothing the
user must read is clipped, squashed or pushed behind a sideways scroll bar. The same screens were looked at
under a real X server (see the closing note); these tests keep them that way."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QPushButton, QTableWidget

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")

SIZES = [(800, 600), (1280, 800), (1920, 1080)]


def _buttons(table: QTableWidget, column: int) -> list[QPushButton]:
    out = []
    for row in range(table.rowCount()):
        box = table.cellWidget(row, column)
        button = box.findChild(QPushButton) if box is not None else None
        if button is not None:
            out.append(button)
    return out


def _unclipped(button: QPushButton, table: QTableWidget, column: int) -> bool:
    return button.width() >= button.sizeHint().width() and table.columnWidth(column) >= button.width()


def _text_fits(table: QTableWidget, row: int, column: int) -> bool:
    """The cell's text, wrapped at the column's width, fits the row's height (no "…")."""
    text = table.item(row, column).text()
    width = table.columnWidth(column) - 8
    need = table.fontMetrics().boundingRect(QRect(0, 0, width, 10_000), int(Qt.TextFlag.TextWordWrap), text)
    return need.width() <= width and need.height() <= table.rowHeight(row)


@pytest.mark.parametrize("size", SIZES)
def test_model_manager_names_and_buttons_are_never_cut(qtbot, make_window, tiny_r1_engine, smollm2_path, size,
                                                       monkeypatch):
    """"Loaded" was clipped to ".oade"; catalog names were "DeepSeek-R1 Distill Qwe…" even at 1280×800."""
    from r1desk.core.gguf_info import read_model_info
    from r1desk.ui import model_sources

    for info in (tiny_r1_engine.info, read_model_info(smollm2_path)):     # two models "on this computer"
        monkeypatch.setitem(model_sources._imported, str(info.path), info)
    window = make_window(tiny_r1_engine)
    window.resize(*size)
    window.open_model_manager()
    manager = window._model_manager
    manager.resize(min(920, size[0] - 48), min(600, size[1] - 48))
    qtbot.waitExposed(manager)
    catalog, local = manager.catalog_table, manager.local_table
    qtbot.waitUntil(lambda: catalog.rowCount() > 0 and local.rowCount() > 0, timeout=20000)
    manager.tabs.setCurrentWidget(catalog)
    qtbot.waitUntil(lambda: catalog.isVisible())
    assert catalog.horizontalScrollBar().maximum() == 0                       # no sideways scrolling
    for row in range(catalog.rowCount()):
        assert _text_fits(catalog, row, 0), catalog.item(row, 0).text()
    downloads = _buttons(catalog, 6)
    assert downloads and len({b.width() for b in downloads}) == 1
    assert all(_unclipped(b, catalog, 6) for b in downloads)
    manager.tabs.setCurrentWidget(manager.local_page)
    qtbot.waitUntil(lambda: local.isVisible())
    buttons = _buttons(local, 4)
    assert sorted(b.text() for b in buttons) == ["Load", "Loaded"]
    assert all(_unclipped(b, local, 4) for b in buttons)
    assert len({b.width() for b in buttons}) == 1                        # the column never jumps
    # the status line has its own row: a loaded model's name is shown, not "Lo"
    manager._on_loaded(tiny_r1_engine.info)
    assert manager.status.text() == f"Loaded {tiny_r1_engine.info.shown_name}"
    manager.close()
