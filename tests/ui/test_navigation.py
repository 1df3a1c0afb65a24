"""Issue 14 items 1, 3 and 13: every way back to the chat works, a hidden page never gets keystrokes, Tab moves
focus, and the send key follows the setting."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from r1desk.core.roles import ADMIN, AUDITOR
from tests.ui.conftest import ui_settings

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")


@pytest.fixture
def window(qtbot, make_window, tiny_r1_engine):
    from r1desk.ui.roles_gate import register_part2

    window = make_window(tiny_r1_engine)
    register_part2(window)
    return window


def _open(window, name: str) -> None:
    window.show_view(name)
    assert window.current_view() == name and window.view_header.isVisible()


@pytest.mark.parametrize("view", [ADMIN, AUDITOR])
@pytest.mark.parametrize("way", ["back button", "new chat", "ctrl+n", "escape", "current conversation", "ctrl+l"])
def test_every_way_back_to_chat(qtbot, window, view, way):
    window.chat.conversation_id = "c-current"        # as if a conversation were open
    _open(window, view)
    assert window.back_button.isVisible() and window.view_title.text()
    if way == "back button":
        qtbot.mouseClick(window.back_button, Qt.MouseButton.LeftButton)
    elif way == "new chat":
        window.sidebar.new_chat.emit()
    elif way == "ctrl+n":
        window.new_chat_action.trigger()
    elif way == "escape":
        qtbot.keyClick(window.focusWidget() or window, Qt.Key.Key_Escape)
    elif way == "current conversation":
        window.sidebar.selected.emit("c-current")
    else:
        qtbot.keyClick(window.focusWidget() or window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.current_view() == "chat"
    assert not window.view_header.isVisible()


@pytest.mark.parametrize("view", [ADMIN, AUDITOR])
def test_a_hidden_chat_box_never_receives_keystrokes(qtbot, window, view):
    window.chat.input.focus_input()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.chat.input.edit)
    _open(window, view)
    focus = QApplication.focusWidget()
    assert focus is not window.chat.input.edit
    assert focus is None or window._views[view].isAncestorOf(focus)
    sent: list[str] = []
    window.chat.input.send.connect(sent.append)
    qtbot.keyClicks(focus or window, "hello")
    qtbot.keyClick(focus or window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.chat.input.edit.toPlainText() == "" and sent == []
    # back on the chat page the box has the focus again
    window.show_chat()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.chat.input.edit)
