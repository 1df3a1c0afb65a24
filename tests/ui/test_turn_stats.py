"""Issue 14 item 7: the stats line under an answer shows the numbers the audit log records, with a correct
plural."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from r1desk.storage.auditlog import AuditLog
from r1desk.ui.messages import final_stats, format_stats
from tests.ui.conftest import ui_settings

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")


def test_plural():
    assert format_stats(21.2, 0.3, 1) == "21.2 tok/s · 0.3 s · 1 token"
    assert format_stats(21.2, 0.3, 5).endswith("5 tokens")
    assert format_stats(None, None, 0) == "0 tokens"


@pytest.mark.parametrize("max_tokens", [5, 40])
def test_stats_line_matches_the_audit_log(qtbot, make_window, tiny_r1_engine, max_tokens):
    window = make_window(tiny_r1_engine, ui_settings(max_tokens=max_tokens))
    with qtbot.waitSignal(window.state.worker.turn_finished, timeout=60000) as finished:
        window.chat.input.edit.setPlainText("Hi")
        qtbot.keyClick(window.chat.input.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    result = finished.args[0]
    message = window.chat.view.last_assistant()
    logged = AuditLog().get_turn(result.turn_id)
    tokens = logged["usage"]["completion_tokens"]
    assert message.stats_label.text() == final_stats(result)
    assert message.stats_label.text().endswith(f"{tokens} token" + ("" if tokens == 1 else "s"))
    speed = logged["usage"].get("decode_tokens_per_s")
    if speed is not None:
        assert message.stats_label.text().startswith(f"{speed:.1f} tok/s")
