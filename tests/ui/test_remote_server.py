"""The model manager's Remote server section against a fake server on 127.0.0.1: list off the GUI thread,
use a model, the disclosure bar names the server, a turn runs and is audited; a failure is one dialog."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from r1desk.core.backend import ModelDescription
from r1desk.settings import load_settings
from tests.support.fake_openai import FakeOpenAIServer, Scenario

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")


@pytest.fixture
def server():
    srv = FakeOpenAIServer(Scenario(shape="ollama"))
    yield srv
    srv.close()


def test_remote_server_is_listed_used_named_and_audited(qtbot, make_window, server, audit):
    window = make_window()
    window.open_model_manager()
    panel = window._model_manager.remote
    panel.url.setText(server.url)
    panel.list_button.click()
    qtbot.waitUntil(lambda: panel.models.count() == 2, timeout=20000)
    assert "Ollama" in panel.details.text() and "digest sha256:0123abcd" in panel.details.text()
    assert "top_k, min_p, repeat_penalty" in panel.details.text()
    with qtbot.waitSignal(window.state.model_loaded, timeout=30000) as loaded:
        panel.use_button.click()
    description = loaded.args[0]
    assert isinstance(description, ModelDescription) and description.identity.endpoint == server.url
    bar = window.chat.disclosure.model_name
    assert "deepseek-r1-distill-qwen-7b" in bar.text() and "Ollama" in bar.text()
    assert server.url in bar.toolTip()
    saved = load_settings().remote
    assert (saved.url, saved.model) == (server.url, "deepseek-r1-distill-qwen-7b")
    with qtbot.waitSignal(window.state.worker.turn_finished, timeout=30000) as finished:
        window.chat.input.edit.setPlainText("What is 2+2?")
        window.chat.input.send_button.click()
    result = finished.args[0]
    assert result.answer_raw == "The answer is 4." and result.thinking == "Let me think about it."
    row = audit.get_turn(result.turn_id)
    assert row["model"]["endpoint"] == server.url and row["model"]["backend"] == "openai"


def test_an_unreachable_server_is_one_dialog_and_the_form_stays_usable(qtbot, make_window, captured_dialogs):
    window = make_window()
    window.open_model_manager()
    panel = window._model_manager.remote
    panel.url.setText("http://r1desk-test.invalid:8080")
    panel.list_button.click()
    qtbot.waitUntil(lambda: bool(captured_dialogs), timeout=20000)
    assert captured_dialogs[0]["icon"] == QMessageBox.Icon.Warning
    assert "does not resolve" in captured_dialogs[0]["text"]
    assert panel.list_button.isEnabled() and not panel.use_button.isEnabled()


def test_cancel_frees_the_form_at_once(qtbot, make_window, server):
    window = make_window()
    window.open_model_manager()
    panel = window._model_manager.remote
    panel.url.setText(server.url)
    panel.list_button.click()
    assert not panel.list_button.isEnabled()
    panel.cancel_button.click()
    assert panel.list_button.isEnabled() and panel.details.text() == "Cancelled."
    from r1desk.ui.tasks import wait_for_tasks

    assert wait_for_tasks(20000)
    qtbot.wait(50)                       # let the dropped answer's queued callback run
    assert panel.models.count() == 0     # the late answer was dropped
