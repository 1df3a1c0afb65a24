"""Issue 14 item 12 (in part): the app opens on the last conversation, not a blank chat."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")


def _turn(audit, cid, prompt):
    tid = audit.start_turn(conversation_id=cid, prompt_typed=prompt, prompt_sent=prompt)
    audit.finish_turn(tid, result={"thinking": "t", "answer_raw": "A", "answer_shown": "A", "finish_reason": "stop",
                                   "usage": {"completion_tokens": 1}, "timings": {"total_s": 0.2}})
    return audit.get_turn(tid)["conversation_id"]


def test_the_app_opens_on_the_last_conversation(qtbot, make_window, audit):
    _turn(audit, None, "older conversation")
    last = _turn(audit, None, "latest conversation")
    window = make_window()
    assert window.open_last_conversation()
    assert window.chat.conversation_id == last
    assert [u.text for u, _ in window.chat.view.exchanges] == ["latest conversation"]
    assert window.current_view() == "chat"


def test_no_conversation_yet_keeps_the_welcome_page(qtbot, make_window):
    window = make_window()
    assert not window.open_last_conversation()
    assert window.current_view() == "empty"
