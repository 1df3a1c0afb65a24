"""The desktop app given hostile files and links: a clear dialog, quickly, and no link opened unasked."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QMessageBox

from tests.hostile import builders as b

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")

HOSTILE_FILES = {
    "nested_arrays": (lambda d: b.nested_arrays(d / "nested.gguf"), "array items"),
    "many_tensors": (lambda d: b.many_tensors(d / "tensors.gguf"), "tensors"),
    "duplicate_arch": (lambda d: b.duplicate_arch(d / "dup.gguf"), "appears twice"),
    "symlink_loop": (lambda d: b.symlink_loop(d), "symbolic link loop"),
    "fifo": (lambda d: b.fifo(d), "FIFO"),
}


@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_importing_a_hostile_file_shows_a_dialog_quickly(qtbot, make_window, captured_dialogs, tmp_path: Path,
                                                          case: str) -> None:
    build, reason = HOSTILE_FILES[case]
    path = build(tmp_path)
    window = make_window()
    window.open_model_manager()
    started = time.monotonic()
    window._model_manager.import_file(str(path))
    qtbot.waitUntil(lambda: bool(captured_dialogs), timeout=10000)
    assert time.monotonic() - started < 5.0
    dialog = captured_dialogs[0]
    assert dialog["title"] == "This file cannot be used"
    assert dialog["icon"] == QMessageBox.Icon.Warning and dialog["details"] == ""
    assert reason in dialog["text"] and len(dialog["text"]) < 600
    assert window.state.model_info is None


@pytest.fixture
def link_view(qtbot, monkeypatch):
    from r1desk.ui import messages

    asked: list[str] = []
    warned: list[str] = []
    opened: list[str] = []
    answer = {"button": QMessageBox.StandardButton.Cancel}

    def question(parent, title, text, *args):
        asked.append(text)
        return answer["button"]

    monkeypatch.setattr(messages.QMessageBox, "question", staticmethod(question))
    monkeypatch.setattr(messages.QMessageBox, "warning", staticmethod(lambda p, t, text, *a: warned.append(text)))
    monkeypatch.setattr(messages.QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url.toString())
                                                                          or True))
    view = messages.MessageText()
    qtbot.addWidget(view)
    return view, answer, asked, warned, opened


def test_a_link_opens_only_after_the_user_sees_and_confirms_its_target(link_view) -> None:
    view, answer, asked, warned, opened = link_view
    assert not view.openExternalLinks() and not view.openLinks()
    view.anchorClicked.emit(QUrl("https://example.org/page?x=1"))
    assert asked and "https://example.org/page?x=1" in asked[0] and opened == []     # cancelled
    answer["button"] = QMessageBox.StandardButton.Open
    view.anchorClicked.emit(QUrl("https://example.org/page?x=1"))
    assert opened == ["https://example.org/page?x=1"]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,hi", "smb://host/x"])
def test_other_schemes_are_never_opened(link_view, url: str) -> None:
    view, answer, asked, warned, opened = link_view
    answer["button"] = QMessageBox.StandardButton.Open
    view.anchorClicked.emit(QUrl(url))
    assert opened == [] and asked == [] and warned
