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


def test_a_reopened_conversation_keeps_its_stats_language_badge_and_notices(qtbot, make_window, audit):
    """Issue 14 item 12 (the rest): what the answer showed when it streamed comes back when it is reopened."""
    tid = audit.start_turn(conversation_id=None, prompt_typed="Bonjour ?", prompt_sent="Bonjour ?")
    audit.finish_turn(tid, result={
        "thinking": "t", "answer_raw": "Salut hello", "answer_shown": "Salut hello", "finish_reason": "length",
        "unfinished_thinking": False, "raw_output": "t</think>Salut hello",
        "usage": {"completion_tokens": 5, "prompt_tokens": 9},
        "timings": {"decode_tokens_per_s": 21.2, "total_s": 1.1},
        "language": {"target": "fr", "answer": {"share_in_target": 0.5, "events": [
            {"channel": "answer", "kind": "segment_language", "start": 6, "end": 11, "text": "hello",
             "language": "en", "script": None, "probability": 0.9}]}},
        "notices": [{"kind": "info", "message": "Dropped 2 earlier messages to fit the model's 2048-token context"}]})
    window = make_window()
    assert window.open_last_conversation()
    (_user, message), = window.chat.view.exchanges
    assert "21.2 tok/s" in message.stats_label.text() and "5 tokens" in message.stats_label.text()
    assert message.language_chip.isVisibleTo(message) and "50% fr" in message.language_chip.text()
    assert "hello" in message.language_chip.toolTip()
    texts = [message.notices.itemAt(i).widget() for i in range(message.notices.count())]
    assert any("Dropped 2 earlier messages" in getattr(w, "text", lambda: "")() for w in texts)
    assert message.length_notice is not None and message.continue_button.isEnabled()   # the cut answer: one notice


def test_the_app_never_opens_on_a_self_check_conversation(qtbot, make_window, audit):
    chat = _turn(audit, None, "my question")
    check = audit.create_conversation("[self-check 0123abcd] harm-1 · guards off")
    _turn(audit, check, "an unsafe test prompt")                     # newer than the chat
    window = make_window()
    assert window.open_last_conversation() and window.chat.conversation_id == chat
    assert window.sidebar.ids() == [chat]
