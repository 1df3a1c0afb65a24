"""First start, the model manager's import path (good and bad files), load and reopen-at-start."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from r1desk.settings import load_settings
from tests.ui.conftest import ui_settings

# The offscreen platform cannot raise windows or propagate size hints; harmless there.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")


def test_first_start_shows_the_empty_state_leading_to_the_model_manager(qtbot, make_window):
    window = make_window()                      # no engine, no model ever loaded
    assert window.stack.currentWidget() is window.empty
    assert window.empty.isVisible()
    window.empty.choose_button.click()
    manager = window._model_manager
    assert manager is not None and manager.isVisible()
    qtbot.waitUntil(lambda: manager.catalog_table.rowCount() > 0, timeout=20000)
    fits = {manager.catalog_table.cellWidget(r, 4).findChild(type(manager.status)).text()
            for r in range(manager.catalog_table.rowCount())}
    assert fits <= {"✓ fits", "~ tight", "✗ won't fit"}
    titles = [manager.catalog_table.item(r, 0).text() for r in range(manager.catalog_table.rowCount())]
    assert any("Qwen 7B" in t for t in titles) and any("Llama 70B" in t for t in titles)
    assert any("R1-0528 Qwen3 8B" in t for t in titles)
    # one unit (GiB) in the columns and the tooltips; an expected speed per row (issue 14 item 8)
    table = manager.catalog_table
    assert all(table.item(r, 3).text().endswith("GiB") for r in range(table.rowCount()))
    assert all("GiB" in table.cellWidget(r, 4).findChild(type(manager.status)).toolTip()
               for r in range(table.rowCount()))
    assert all(table.item(r, 5).text().endswith("tok/s") for r in range(table.rowCount()))
    # nothing downloaded yet: "On this computer" says what to do instead of showing an empty table
    qtbot.waitUntil(lambda: not manager.local_empty.isHidden(), timeout=20000)
    assert "Download one" in manager.local_empty.text() and manager.local_table.rowCount() == 0
    manager.close()


@pytest.mark.parametrize("case", ["wrong_magic", "truncated", "empty", "directory", "unsupported_arch"])
def test_importing_a_bad_file_shows_a_clear_dialog(qtbot, make_window, captured_dialogs, bad_model_files, case):
    window = make_window()
    window.open_model_manager()
    manager = window._model_manager
    manager.import_file(str(bad_model_files[case]))
    qtbot.waitUntil(lambda: bool(captured_dialogs), timeout=20000)
    dialog = captured_dialogs[0]
    assert dialog["title"] == "This file cannot be used"
    assert dialog["icon"] == QMessageBox.Icon.Warning          # the file's fault, not a bug report
    assert dialog["details"] == ""
    assert bad_model_files[case].name in dialog["text"] or "GGUF" in dialog["text"] or "model" in dialog["text"]
    assert window.state.model_info is None
    assert window.stack.currentWidget() is window.empty        # still alive, nothing loaded


def test_import_good_file_loads_it_and_it_is_reopened_next_start(qtbot, make_window, tiny_r1_path):
    from r1desk.ui.app import reopen_last_model

    window = make_window(settings=ui_settings())
    window.open_model_manager()
    manager = window._model_manager
    with qtbot.waitSignal(window.state.model_loaded, timeout=60000) as loaded:
        manager.import_file(str(tiny_r1_path))
    info = loaded.args[0]
    assert info.is_r1
    assert window.stack.currentWidget() is window.chat
    assert window.chat.input.send_button.isEnabled()
    assert window.chat.disclosure.model_name.text().startswith("●")
    qtbot.waitUntil(lambda: manager.local_table.rowCount() == 1, timeout=20000)
    assert load_settings().last_model_path == str(info.path)
    window.close()

    second = make_window(settings=load_settings())
    with qtbot.waitSignal(second.state.model_loaded, timeout=60000):
        assert reopen_last_model(second.state)
    assert str(second.state.model_info.path) == str(info.path)


def test_closing_the_main_window_closes_the_model_manager(qtbot, make_window):
    """Quitting must not leave the model manager open (it would keep the app running)."""
    window = make_window()
    window.open_model_manager()
    manager = window._model_manager
    assert manager is not None and manager.isVisible()
    window.close()
    assert not manager.isVisible()
