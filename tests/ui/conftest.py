"""Build the real main window around the real tiny R1 model, a real audit log and a scripted scorer."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from r1desk import settings as S
from tests.support.scorers import ScriptedScorer


def ui_settings(max_tokens: int = 48, **rules: tuple[str, str, float, str]) -> S.Settings:
    """Short answers (tests stay fast); language lock off (random weights write no language)."""
    s = S.Settings()
    s.generation.max_tokens = max_tokens
    s.generation.n_ctx = 2048
    s.generation.gpu_layers = "none"
    s.guard.max_segment_chars = 50        # random text has few sentence ends: cut it into segments
    s.language.target = "off"
    for name, (channel, label, threshold, action) in rules.items():
        s.guard.rules[channel][label] = S.RuleSetting(threshold, action)
    return s


@pytest.fixture
def audit() -> Iterator[Any]:
    """The GUI thread's audit log in the isolated profile."""
    from r1desk.storage.auditlog import AuditLog

    log = AuditLog()
    yield log
    log.close()


@pytest.fixture
def captured_dialogs(monkeypatch) -> list[Any]:
    """Every QMessageBox the app shows, captured instead of blocking the test."""
    from r1desk.ui import conversation_list, main_window, tasks

    shown: list[Any] = []

    def present(box) -> int:
        shown.append({"text": box.text(), "title": box.windowTitle(), "details": box.detailedText(),
                      "icon": box.icon()})
        return 0

    monkeypatch.setattr(tasks, "present_dialog", present)
    monkeypatch.setattr(conversation_list, "present_dialog", present)
    monkeypatch.setattr(main_window, "present_dialog", present)
    return shown


@pytest.fixture
def make_window(qtbot, captured_dialogs) -> Iterator[Callable[..., Any]]:
    """make_window(engine=None, settings=None, scorer=None) -> a shown MainWindow, session ready."""
    from r1desk.core.guard.session import GuardSession
    from r1desk.core.guard.toxicity import ToxicityClassifier
    from r1desk.ui import theme
    from r1desk.ui.app_state import AppState
    from r1desk.ui.main_window import MainWindow
    from PySide6.QtWidgets import QApplication

    theme.apply(QApplication.instance(), dark=False)
    windows: list[Any] = []

    def make(engine: Any = None, settings: S.Settings | None = None, scorer: Any = None) -> Any:
        settings = settings or ui_settings()
        guard = GuardSession(settings.guard_config(), classifiers=[ToxicityClassifier(scorer or ScriptedScorer())])
        state = AppState(settings=settings, engine=engine, session_kwargs={"guard": guard})
        window = MainWindow(state)
        qtbot.addWidget(window)
        windows.append(window)
        window.show()
        if engine is not None:
            with qtbot.waitSignal(state.guard_status_changed, timeout=30000):
                state.start_session()
            window.chat._update_can_send()
            window.chat.disclosure.set_model(engine.info)
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.state.worker._thread.isRunning()
