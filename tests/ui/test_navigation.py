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


def test_tab_moves_focus_and_never_types_a_tab(qtbot, window):
    edit = window.chat.input.edit
    window.chat.input.focus_input()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is edit)
    seen = []
    for _ in range(10):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
    assert "\t" not in edit.toPlainText()
    assert seen[0] is not edit and len({id(w) for w in seen}) > 2     # focus walks through the controls
    for widget in seen:                 # every stop is a visible control of the window (focus order)
        assert widget is not None and widget.isVisible() and window.isAncestorOf(widget)


def _prompt_keys(qtbot, edit, sent, key_mods):
    for mods in key_mods:
        edit.setPlainText("hi")
        edit.moveCursor(edit.textCursor().MoveOperation.End)
        qtbot.keyClick(edit, Qt.Key.Key_Return, mods)
    return sent


def test_enter_sends_and_shift_enter_is_a_new_line_by_default(qtbot, window):
    assert window.state.settings.enter_sends is True
    sent: list[str] = []
    window.chat.input.send.connect(sent.append)
    window.chat.input.send.disconnect(window.chat.send)         # keep the model out of it
    edit = window.chat.input.edit
    edit.setPlainText("line one")
    edit.moveCursor(edit.textCursor().MoveOperation.End)
    qtbot.keyClick(edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(edit, "line two")
    assert edit.toPlainText() == "line one\nline two" and sent == []
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert sent == ["line one\nline two"]
    assert "Enter to send" in edit.placeholderText()
    # the other setting: Enter is a new line, Ctrl+Enter sends
    window.state.settings.enter_sends = False
    edit.setPlainText("a")
    edit.moveCursor(edit.textCursor().MoveOperation.End)
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert edit.toPlainText() == "a\n" and len(sent) == 1
    qtbot.keyClick(edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert sent[-1] == "a"


@pytest.mark.parametrize("enter_sends", [True, False])
def test_the_inline_edit_box_sends_with_the_send_key_and_esc_cancels(qtbot, window, enter_sends):
    window.state.settings.enter_sends = enter_sends
    window.chat.view.add_exchange("first", "collapsed")
    user, _ = window.chat.view.exchanges[0]
    resent: list[tuple[int, str]] = []
    window.chat.view.edit_resend.disconnect()
    window.chat.view.edit_resend.connect(lambda i, t: resent.append((i, t)))
    user.start_edit()
    qtbot.waitUntil(user.editor.isVisible)
    qtbot.keyClick(user.editor, Qt.Key.Key_Escape)
    assert not user.editor.isVisible() and resent == []
    user.start_edit()
    user.editor.setPlainText("edited")
    qtbot.keyClick(user.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert resent == [(0, "edited")]
    user.start_edit()
    user.editor.setPlainText("again")
    user.editor.moveCursor(user.editor.textCursor().MoveOperation.End)
    qtbot.keyClick(user.editor, Qt.Key.Key_Return)
    assert resent[1:] == ([(0, "again")] if enter_sends else [])


def test_keyboard_focus_is_visible(window):
    from r1desk.ui import theme

    sheet = theme.stylesheet(theme.current())
    for selector in ("QPushButton:focus", "QToolButton:focus", "QComboBox:focus", "QPlainTextEdit:focus"):
        assert selector in sheet


def test_a_locked_page_focuses_its_passphrase_field(qtbot, window):
    window.activateWindow()
    window.chat.input.focus_input()
    window.show_view(ADMIN)
    gate = window._views[ADMIN]
    qtbot.waitUntil(lambda: QApplication.focusWidget() is gate.panel.passphrase)
    qtbot.keyClicks(QApplication.focusWidget(), "abc")
    assert gate.panel.passphrase.text() == "abc" and window.chat.input.edit.toPlainText() == ""
