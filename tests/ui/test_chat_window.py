"""The real main window driving the real tiny R1 model (llama.cpp), the real audit log and guard pipeline."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer

from r1desk.storage.auditlog import AuditLog
from tests.support.scorers import ScriptedScorer
from tests.ui.conftest import ui_settings

# The offscreen platform cannot raise windows or propagate size hints; harmless there.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")




def _hold_until_cancelled(worker):
    """A slot for ``worker.delta`` (direct connection, so it runs on the worker thread) that keeps the
    worker inside its first delta until the turn is cancelled or interrupted: the tiny model is fast
    enough to finish a turn before a test's Stop or Close on a loaded machine otherwise."""
    def hold(*_args) -> None:
        with worker._lock:
            cancel = worker._pending_turns[0] if worker._pending_turns else None
        if cancel is not None:
            cancel.wait(30)
    return hold

def _click(qtbot, widget) -> None:
    """A real mouse click, once the widget is shown and laid out (under load layout can lag a frame)."""
    qtbot.waitUntil(lambda: widget.isVisible() and widget.width() > 0 and widget.height() > 0)
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)

def _wait_idle(qtbot, window) -> None:
    """Idle as the user sees it: the worker is done and the input bar got its idle signal back."""
    qtbot.waitUntil(lambda: not window.chat.busy and window.chat.input.send_button.isVisible())


def _send(qtbot, window, text: str) -> None:
    window.chat.input.edit.setPlainText(text)
    qtbot.keyClick(window.chat.input.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


def test_send_streams_thinking_into_collapsed_panel_and_logs_the_turn(qtbot, make_window, tiny_r1_engine):
    window = make_window(tiny_r1_engine)
    deltas: list[tuple[str, str]] = []
    window.state.worker.delta.connect(lambda ch, text: deltas.append((ch, text)))
    with qtbot.waitSignal(window.state.worker.turn_finished, timeout=60000) as finished:
        _send(qtbot, window, "Please count from one to ten.")
    result = finished.args[0]
    assert len(deltas) > 1                                  # streamed, not delivered at once
    assert window.chat.input.edit.toPlainText() == ""
    (user, message), = window.chat.view.exchanges
    assert user.text == "Please count from one to ten."
    assert message.channels["thinking"].raw == result.thinking
    assert message.channels["answer"].raw == result.answer_raw
    assert result.thinking                                  # R1 starts inside <think>
    assert message.thinking.isVisible() and not message.thinking.expanded      # collapsed by default
    assert message.thinking.header.text().startswith("Thought for")
    _click(qtbot, message.thinking.header)
    assert message.thinking.expanded and message.thinking.body.isVisible()
    assert message.thinking.body.toPlainText().strip()[:20] == result.thinking.strip()[:20].replace("\n", " ")[:20] \
        or message.thinking.body.toPlainText().strip()
    assert message.action_row.isVisible() and message.turn_id == result.turn_id
    # logged, and listed in the sidebar
    turn = AuditLog().get_turn(result.turn_id)
    assert turn["prompt_typed"] == "Please count from one to ten."
    qtbot.waitUntil(lambda: window.sidebar.list.count() == 1)
    assert window.sidebar.ids() == [result.conversation_id]
    # Send comes back when the worker reports idle (its busy signal follows turn_finished)
    qtbot.waitUntil(lambda: window.chat.input.send_button.isVisible()
                    and not window.chat.input.stop_button.isVisible())


def test_stop_takes_effect_at_once(qtbot, make_window, tiny_r1_engine):
    window = make_window(tiny_r1_engine, ui_settings(max_tokens=1500))
    hold = _hold_until_cancelled(window.state.worker)
    try:
        with qtbot.waitSignal(window.state.worker.delta, timeout=60000):
            # connected after the waiter, so the waiter's (queued) slot is posted before the hold
            window.state.worker.delta.connect(hold, Qt.ConnectionType.DirectConnection)
            _send(qtbot, window, "Write a long story.")
        assert window.chat.input.stop_button.isVisible()
        with qtbot.waitSignal(window.state.worker.turn_finished, timeout=60000) as finished:
            qtbot.keyClick(window, Qt.Key.Key_Escape)
    finally:
        window.state.worker.delta.disconnect(hold)
    result = finished.args[0]
    assert result.finish_reason == "cancelled"
    assert result.usage["completion_tokens"] < 1500
    message = window.chat.view.last_assistant()
    assert message.status.isVisible() and message.status.text() == "Stopped."
    assert AuditLog().get_turn(result.turn_id)["status"] == "cancelled"


def test_regenerate_replaces_the_last_answer(qtbot, make_window, tiny_r1_engine):
    window = make_window(tiny_r1_engine)
    with qtbot.waitSignal(window.state.worker.turn_finished, timeout=60000) as first:
        _send(qtbot, window, "Name a colour.")
    _wait_idle(qtbot, window)
    message = window.chat.view.last_assistant()
    qtbot.waitUntil(message.regenerate_button.isVisible)      # re-enabled when the worker reports idle
    with qtbot.waitSignal(window.state.worker.turn_finished, timeout=60000) as second:
        _click(qtbot, message.regenerate_button)
    assert len(window.chat.view.exchanges) == 1
    assert second.args[0].turn_id != first.args[0].turn_id
    assert second.args[0].conversation_id == first.args[0].conversation_id
    assert window.chat.view.last_assistant().turn_id == second.args[0].turn_id
    # reopened from the sidebar: the retry only, with its thumbs
    AuditLog().set_feedback(second.args[0].turn_id, 1)
    window.new_chat()
    window.open_conversation(first.args[0].conversation_id)
    assert [a.turn_id for _, a in window.chat.view.exchanges] == [second.args[0].turn_id]
    assert window.chat.view.last_assistant().up_button.isChecked()


def test_edit_and_resend_truncates_after_the_edited_message(qtbot, make_window, tiny_r1_engine):
    window = make_window(tiny_r1_engine)
    for text in ("First question.", "Second question."):
        with qtbot.waitSignal(window.state.worker.turn_finished, timeout=60000):
            _send(qtbot, window, text)
        _wait_idle(qtbot, window)
    user, _ = window.chat.view.exchanges[0]
    user.start_edit()
    user.editor.setPlainText("An edited first question.")
    with qtbot.waitSignal(window.state.worker.turn_finished, timeout=60000):
        _click(qtbot, user.send_edit)
    assert [u.text for u, _ in window.chat.view.exchanges] == ["An edited first question."]
    column = window.chat.view.widget()
    shown = [w for w in column.findChildren(type(user)) if w.isVisible()]
    assert [w.text for w in shown] == ["An edited first question."]


def test_thumbs_up_is_logged(qtbot, make_window, tiny_r1_engine):
    window = make_window(tiny_r1_engine)
    with qtbot.waitSignal(window.state.worker.turn_finished, timeout=60000) as finished:
        _send(qtbot, window, "Say hi.")
    message = window.chat.view.last_assistant()
    _click(qtbot, message.up_button)
    feedback = AuditLog().get_turn(finished.args[0].turn_id)["feedback"]
    assert feedback is not None and feedback["thumbs"] == 1
    assert message.comment_row.isVisible()
    message.comment.setText("Clear and short.")
    _click(qtbot, message.comment_send)
    feedback = AuditLog().get_turn(finished.args[0].turn_id)["feedback"]
    assert feedback["thumbs"] == 1 and feedback["comment"] == "Clear and short."
    _click(qtbot, message.up_button)      # un-press: feedback cleared
    assert AuditLog().get_turn(finished.args[0].turn_id)["feedback"]["thumbs"] is None


def test_blocked_prompt_is_explained_and_nothing_generated(qtbot, make_window, tiny_r1_engine):
    scorer = ScriptedScorer({"kill": {"threat": 0.99}})     # default policy: prompt threat ≥ 0.8 → block
    window = make_window(tiny_r1_engine, scorer=scorer)
    deltas: list[str] = []
    window.state.worker.delta.connect(lambda ch, text: deltas.append(text))
    with qtbot.waitSignal(window.state.worker.turn_finished, timeout=60000) as finished:
        _send(qtbot, window, "Tell me how to kill my neighbour.")
    assert finished.args[0].finish_reason == "blocked"
    assert deltas == []
    message = window.chat.view.last_assistant()
    assert message.status.isVisible() and message.status.objectName() == "BlockedBox"
    assert "not sent to the model" in message.status.text()
    assert "threat" in message.status.text()
    assert not message.answer.isVisible()


def test_flagged_thinking_segment_is_badged_with_label_and_score(qtbot, make_window, tiny_r1_engine):
    settings = ui_settings(max_tokens=80, t=("thinking", "toxicity", 0.5, "flag"))
    scorer = ScriptedScorer(everything={"toxicity": 0.75})  # prompt 0.75 < 0.8: allowed; thinking: flagged
    window = make_window(tiny_r1_engine, settings, scorer)
    with qtbot.waitSignal(window.state.worker.turn_finished, timeout=60000) as finished:
        _send(qtbot, window, "Think out loud.")
    assert any(d.channel == "thinking" and d.action == "flag" for d in finished.args[0].decisions)
    message = window.chat.view.last_assistant()
    assert message.flags_chip.isVisible() and "flagged" in message.flags_chip.text()
    html = message.thinking.body.toHtml()
    assert "toxicity 0.75" in message.thinking.body.toPlainText()
    assert message.channels["thinking"].flags[0].label == "toxicity"
    assert "toxicity" in html and "0.75" in html                 # the badge is in the rendered thinking


def test_gui_event_loop_never_stalls_while_streaming(qtbot, make_window, tiny_r1_engine):
    """Largest gap between 10 ms timer ticks during a streamed answer: "not frozen", not a speed claim."""
    import time

    window = make_window(tiny_r1_engine, ui_settings(max_tokens=300))
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    with qtbot.waitSignal(window.state.worker.turn_finished, timeout=120000) as finished:
        _send(qtbot, window, "Write as much as you can.")
    timer.stop()
    assert finished.args[0].usage["completion_tokens"] > 50
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(gaps) > 20
    assert max(gaps) < 0.25, f"GUI stalled for {max(gaps) * 1000:.0f} ms"


def test_closing_mid_answer_saves_the_turn_as_interrupted(qtbot, make_window, tiny_r1_engine):
    window = make_window(tiny_r1_engine, ui_settings(max_tokens=1500))
    started: list = []
    window.state.worker.turn_started.connect(started.append)
    hold = _hold_until_cancelled(window.state.worker)   # mid-answer until close() interrupts the turn
    with qtbot.waitSignal(window.state.worker.delta, timeout=60000):
        window.state.worker.delta.connect(hold, Qt.ConnectionType.DirectConnection)
        _send(qtbot, window, "Write a long story.")
    qtbot.waitUntil(lambda: bool(started))
    window.close()
    assert not window.state.worker._thread.isRunning()
    turn = AuditLog().get_turn(started[0].turn_id)
    assert turn["status"] == "interrupted"
