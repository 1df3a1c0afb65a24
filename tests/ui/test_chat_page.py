"""The chat page against a scripted chat session: event sequences the real model cannot be made to produce."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from r1desk.core import events as ev
from r1desk.errors import ContextOverflowError
from tests.ui.conftest import ui_settings


def _result(turn_id: str, answer: str, reason: str = "stop") -> ev.TurnResult:
    return ev.TurnResult(turn_id=turn_id, conversation_id="c1", thinking="", answer_raw=answer, answer_shown=answer,
                         thinking_shown="", finish_reason=reason, unfinished_thinking=False, blocked=False)


def _turn(turn_id: str, answer: str) -> list[Any]:
    return [ev.TurnStarted(turn_id, "c1", {}, "prompt", {}), ev.Delta("answer", answer),
            ev.TurnFinished(_result(turn_id, answer))]


class ScriptedSession:
    """``run_turn`` plays one script per call: a list of events, or an exception to raise."""

    def __init__(self, *scripts: Any) -> None:
        self.scripts = list(scripts)
        self.requests: list[Any] = []

    def run_turn(self, req: Any, cancel: Any) -> Any:
        self.requests.append(req)
        script = self.scripts.pop(0)
        if isinstance(script, BaseException):
            raise script            # raised by the call itself, not by the first next()
        return iter(script)


@pytest.fixture
def page(qtbot, captured_dialogs):
    from r1desk.ui.app_state import AppState
    from r1desk.ui.chat_page import ChatPage

    engine = SimpleNamespace(loaded=True, info=SimpleNamespace(name="scripted", quantization=None, path="scripted.gguf"))
    state = AppState(settings=ui_settings(), engine=engine, audit=None)
    chat = ChatPage(state)
    qtbot.addWidget(chat)
    yield chat
    assert state.shutdown(10000)


def _run(qtbot, page, text: str) -> None:
    with qtbot.waitSignal(page.state.worker.busy_changed, check_params_cb=lambda busy: busy == 0, timeout=10000):
        page.send(text)


def test_language_retry_replaces_the_mixed_answer(qtbot, page):
    retry = ev.Notice("language_regenerate", "The reply mixed languages; regenerating once.")
    page.state.session = ScriptedSession(_turn("t1", "Bonjour hello") + [retry] + _turn("t2", "Bonjour"))
    _run(qtbot, page, "Salut")
    (user, message), = page.view.exchanges
    assert user.text == "Salut"
    assert message.turn_id == "t2" and message.answer_text() == "Bonjour"
    assert "regenerating" in message.notices.itemAt(0).widget().text()


def test_a_turn_left_for_a_new_chat_does_not_reach_the_new_chat(qtbot, page):
    page.state.session = ScriptedSession(_turn("t1", "late answer"))
    with qtbot.waitSignal(page.state.worker.busy_changed, check_params_cb=lambda busy: busy == 0, timeout=10000):
        page.send("Hello")
        page.new_chat()             # before any of the turn's events arrived
    assert page.view.exchanges == [] and page.conversation_id is None


def test_a_failed_turn_is_shown_and_left_out_of_the_next_history(qtbot, page, captured_dialogs):
    page.state.session = session = ScriptedSession(
        _turn("t0", "first answer"), ContextOverflowError("Your message is too long for this model's context"),
        _turn("t1", "ok"))
    _run(qtbot, page, "first")
    _run(qtbot, page, "x" * 5000)
    message = page.view.last_assistant()
    assert "too long" in message.status.text() and captured_dialogs == []   # shown on the card, once
    _run(qtbot, page, "short")
    assert [m.content for m in session.requests[-1].history] == ["first", "first answer"]


def test_a_bug_in_the_session_is_reported_and_the_worker_keeps_going(qtbot, page, captured_dialogs):
    page.state.session = ScriptedSession(RuntimeError("boom"), _turn("t1", "fine"))
    _run(qtbot, page, "one")
    assert "RuntimeError: boom" in captured_dialogs[0]["text"]
    _run(qtbot, page, "two")
    assert page.view.last_assistant().answer_text() == "fine"


def test_out_of_tokens_shows_one_notice_with_continue_that_carries_on(qtbot, page):
    """Issue 14 item 11: one notice (not three), and Continue streams more into the same message."""
    cut = ev.TurnResult(turn_id="t1", conversation_id="c1", thinking="Let me think", answer_raw="", answer_shown="",
                        thinking_shown="Let me think", finish_reason="length", unfinished_thinking=True,
                        blocked=False, raw_output="Let me think")
    whole = ev.TurnResult(turn_id="t2", conversation_id="c1", thinking="Let me think about it.",
                          answer_raw="Four.", answer_shown="Four.", thinking_shown="Let me think about it.",
                          finish_reason="stop", unfinished_thinking=False, blocked=False,
                          raw_output="Let me think about it.</think>Four.")
    page.state.session = session = ScriptedSession(
        [ev.TurnStarted("t1", "c1", {}, "prompt", {}), ev.Delta("thinking", "Let me think"),
         ev.length_notice(True, 24), ev.TurnFinished(cut)],
        [ev.TurnStarted("t2", "c1", {}, "prompt", {}), ev.Delta("thinking", " about it."),
         ev.Delta("answer", "Four."), ev.TurnFinished(whole)])
    _run(qtbot, page, "What is 2+2?")
    (_user, message), = page.view.exchanges
    assert message.notices.count() == 1 and message.length_notice is not None
    assert "ran out of tokens" in message.length_notice.findChild(type(message.status)).text()
    assert not message.status.isVisible()                      # no second "hit the length limit" line
    assert message.continue_button.isEnabled()
    with qtbot.waitSignal(page.state.worker.busy_changed, check_params_cb=lambda busy: busy == 0, timeout=10000):
        message.continue_button.click()
    request = session.requests[-1]
    assert request.continue_from.turn_id == "t1" and request.continue_from.raw_output == "Let me think"
    assert request.regenerate_of == "t1" and request.user_text == "What is 2+2?" and request.history == []
    (_user, same), = page.view.exchanges
    assert same is message and message.turn_id == "t2" and message.answer_text() == "Four."
    assert message.channels["thinking"].raw == "Let me think about it."
    assert message.notices.count() == 0 and message.length_notice is None


def test_a_reopened_cut_turn_shows_the_same_single_notice(qtbot, page):
    page.show_conversation("c1", [{"id": "t1", "prompt_typed": "Hi", "thinking_shown": "hmm", "answer_shown": "",
                                   "finish_reason": "length", "unfinished_thinking": 1, "raw_output": "hmm"}])
    (_user, message), = page.view.exchanges
    assert message.notices.count() == 1 and message.length_notice is not None
    assert message.length_notice.property("notice_kind") == "unfinished_thinking"


def test_reading_your_message_shows_prompt_progress(qtbot, page):
    """Issue 14 item 15: "Reading your message… n/N tokens" while the model reads the prompt, then the reply."""
    shown = []
    page.state.worker.prompt_progress.connect(
        lambda d, t: shown.append(page.view.last_assistant().answer.toPlainText()))
    page.state.session = ScriptedSession([ev.TurnStarted("t1", "c1", {}, "prompt", {}), ev.PromptProgress(0, 2000),
                                          ev.PromptProgress(1024, 2000), ev.PromptProgress(1999, 2000),
                                          ev.Delta("answer", "Hello"), ev.TurnFinished(_result("t1", "Hello"))])
    _run(qtbot, page, "a long conversation")
    message = page.view.last_assistant()
    assert message.reading is None and message.answer_text() == "Hello"
    assert len(shown) == 3 and shown[1] == "Reading your message… 1,024/2,000 tokens"
    qtbot.waitUntil(lambda: "Hello" in message.answer.toPlainText(), timeout=5000)
    message.set_reading(5, 10)                                    # never over text already shown
    assert "Reading" not in message.answer.toPlainText()


def test_copy_says_copied_then_goes_back(qtbot, page):
    from PySide6.QtGui import QGuiApplication

    page.state.session = ScriptedSession(_turn("t1", "the answer"))
    _run(qtbot, page, "q")
    message = page.view.last_assistant()
    message.copy_button.click()
    assert QGuiApplication.clipboard().text() == "the answer" and message.copy_button.text() == "Copied ✓"
    qtbot.waitUntil(lambda: message.copy_button.text() == "Copy", timeout=5000)


def test_a_server_gets_no_continue_button_and_the_notice_says_what_works(qtbot, page):
    """Continue resends the cut reply inside the assistant turn; a server's chat API cannot (core.chat refuses it
    with an error), so with a server loaded the notice offers regenerating instead of a button that fails."""
    from r1desk.core.events import CONTINUE_HINT
    from r1desk.ui.messages import NO_CONTINUE_HINT

    page.show_conversation("c1", [{"id": "t1", "prompt_typed": "Hi", "thinking_shown": "hmm", "answer_shown": "",
                                   "finish_reason": "length", "unfinished_thinking": 1, "raw_output": "hmm"}])
    (_user, message), = page.view.exchanges
    label = message.length_notice.findChild(type(message.status))
    assert CONTINUE_HINT in label.text() and not message.continue_button.isHidden()
    page.view.set_continue_available(False)           # what loading a server does (model_info is None there)
    assert message.continue_button.isHidden()
    assert CONTINUE_HINT not in label.text() and NO_CONTINUE_HINT in label.text()
    page.view.set_continue_available(True)             # a local model again
    assert not message.continue_button.isHidden() and CONTINUE_HINT in label.text()
    assert NO_CONTINUE_HINT not in label.text()
    page.view.set_continue_available(False)            # a turn cut later, on the server, is offered no button either
    page.show_conversation("c1", [{"id": "t2", "prompt_typed": "Hi", "thinking_shown": "", "answer_shown": "part",
                                   "finish_reason": "length", "raw_output": "part"}])
    (_user, later), = page.view.exchanges
    assert later.continue_button.isHidden() and NO_CONTINUE_HINT in later.length_notice.findChild(
        type(later.status)).text()


def test_loading_a_model_sets_whether_continue_is_offered(qtbot, page, tiny_r1_engine, monkeypatch):
    monkeypatch.setattr(page.state, "engine", tiny_r1_engine)       # a local llama.cpp model
    page.state.model_loaded.emit(tiny_r1_engine.info)
    assert page.view.continue_available is True
    from types import SimpleNamespace

    monkeypatch.setattr(page.state, "engine", SimpleNamespace(loaded=True, kind="openai"))   # a server
    page.state.model_loaded.emit(tiny_r1_engine.describe())
    assert page.view.continue_available is False
