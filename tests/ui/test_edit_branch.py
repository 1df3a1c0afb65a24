"""Issue 14 item 2: edit-and-resend sticks — the conversation shows and sends the edited branch from then on,
also after reopening it; the audit log keeps every branch."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from r1desk.storage.auditlog import AuditLog

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")


def _send(qtbot, window, text: str):
    with qtbot.waitSignal(window.state.worker.turn_finished, timeout=60000) as finished:
        window.chat.input.edit.setPlainText(text)
        qtbot.keyClick(window.chat.input.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.chat.busy and window.chat.input.send_button.isVisible())
    return finished.args[0]


def test_an_edit_sticks_after_reopening_and_the_next_prompt_sends_the_edited_branch(qtbot, make_window,
                                                                                    tiny_r1_engine):
    window = make_window(tiny_r1_engine)
    first = _send(qtbot, window, "First question.")
    _send(qtbot, window, "Second question.")
    user, _ = window.chat.view.exchanges[0]
    user.start_edit()
    user.editor.setPlainText("An edited first question.")
    with qtbot.waitSignal(window.state.worker.turn_finished, timeout=60000) as edited:
        qtbot.mouseClick(user.send_edit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.chat.busy and window.chat.input.send_button.isVisible())
    assert edited.args[0].conversation_id == first.conversation_id
    # reopened: the edited branch only
    window.new_chat()
    window.open_conversation(first.conversation_id)
    assert [u.text for u, _ in window.chat.view.exchanges] == ["An edited first question."]
    # the next prompt carries the edited branch, not the replaced turns
    third = _send(qtbot, window, "Third question.")
    sent = AuditLog().get_turn(third.turn_id)["prompt_sent"]
    assert "An edited first question." in sent
    assert "Second question." not in sent and "First question." not in sent
    # the audit log keeps every branch
    turns = AuditLog().get_conversation(first.conversation_id)["turns"]
    assert [t["prompt_typed"] for t in turns] == ["First question.", "Second question.",
                                                  "An edited first question.", "Third question."]
    assert AuditLog().verify().ok
