"""The prompt box with its template picker, output-language selector, Send/Stop and the few-shot warning.

Enter sends and Shift+Enter starts a new line, or Ctrl+Enter sends (the ``enter_sends`` setting; see
:mod:`r1desk.ui.prompt_edit`). Tab moves the focus.
"""
from __future__ import annotations

import logging

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from r1desk.ui.prompt_edit import PromptEdit

log = logging.getLogger("r1desk.ui")

# Shown names for core.prompts.TEMPLATES keys (the picker lists the keys core offers, in this order).
TEMPLATE_TITLES = {
    "plain": "R1 recommended",
    "step_by_step": "Step-by-step reasoning",
    "math": "Math (boxed answer)",
    "json": "JSON output",
    "table": "Markdown table",
}

LANGUAGES = [
    ("auto", "Answer in my language"), (None, "Any language (no lock)"), ("en", "English"),
    ("fr", "French"), ("de", "German"), ("es", "Spanish"), ("it", "Italian"), ("pt", "Portuguese"),
    ("nl", "Dutch"), ("pl", "Polish"), ("ru", "Russian"), ("uk", "Ukrainian"), ("tr", "Turkish"),
    ("ar", "Arabic"), ("hi", "Hindi"), ("zh", "Chinese"), ("ja", "Japanese"), ("ko", "Korean"),
    ("vi", "Vietnamese"), ("id", "Indonesian"),
]


def template_keys() -> list[str]:
    try:
        from r1desk.core.prompts import TEMPLATES
    except ImportError:
        return list(TEMPLATE_TITLES)
    keys = [k for k in TEMPLATE_TITLES if k in TEMPLATES]
    return keys + [k for k in TEMPLATES if k not in keys]


def looks_few_shot(text: str) -> bool:
    try:
        from r1desk.core.prompts import looks_few_shot as detect
    except ImportError:
        return False
    return bool(detect(text))


class InputBar(QWidget):
    send = Signal(str)          # the prompt text
    stop = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(32, 4, 32, 14)
        outer.setSpacing(4)
        self.few_shot_warning = QLabel(
            "⚠ This looks like a few-shot prompt (worked examples). R1 models answer better when you "
            "just describe the task and the output you want.", self)
        self.few_shot_warning.setObjectName("FewShotWarning")
        self.few_shot_warning.setWordWrap(True)
        self.few_shot_warning.setVisible(False)
        outer.addWidget(self.few_shot_warning)
        frame = QFrame(self)
        frame.setObjectName("InputFrame")
        inner = QVBoxLayout(frame)
        inner.setContentsMargins(12, 8, 10, 8)
        inner.setSpacing(6)
        self.edit = PromptEdit(frame)
        self.edit.setAccessibleName("Message")
        self.edit.setFixedHeight(76)
        inner.addWidget(self.edit)
        row = QHBoxLayout()
        row.setSpacing(8)
        self.template = QComboBox(frame)
        self.template.setToolTip("Prompt template")
        for key in template_keys():
            self.template.addItem(TEMPLATE_TITLES.get(key, key.replace("_", " ").title()), key)
        self.language = QComboBox(frame)
        self.language.setToolTip("Language of the answer (the guard checks the answer stays in it)")
        for code, name in LANGUAGES:
            self.language.addItem(name, code)
        self.stats = QLabel(frame)
        self.stats.setObjectName("StatsLabel")
        self.send_button = QPushButton("Send", frame)
        self.send_button.setProperty("primary", "true")
        self.stop_button = QPushButton("■ Stop", frame)
        self.stop_button.setToolTip("Stop generating (Esc)")
        self.stop_button.setVisible(False)
        row.addWidget(self.template)
        row.addWidget(self.language)
        row.addStretch(1)
        row.addWidget(self.stats)
        row.addWidget(self.send_button)
        row.addWidget(self.stop_button)
        inner.addLayout(row)
        outer.addWidget(frame)
        self._few_shot_timer = QTimer(self)
        self._few_shot_timer.setSingleShot(True)
        self._few_shot_timer.setInterval(300)
        self._few_shot_timer.timeout.connect(self._check_few_shot)
        self.edit.textChanged.connect(self._few_shot_timer.start)
        self.edit.submit.connect(self._on_send)
        self.send_button.clicked.connect(self._on_send)
        self.stop_button.clicked.connect(lambda *_: self.stop.emit())
        self._busy = False
        self._can_send = True
        self.set_enter_sends(self.edit.enter_sends)

    # -- state --------------------------------------------------------------------------------------
    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.send_button.setVisible(not busy)
        self.stop_button.setVisible(busy)

    def set_can_send(self, ok: bool, why: str = "") -> None:
        self._can_send = ok
        self.send_button.setEnabled(ok)
        self.send_button.setToolTip(f"Send ({self.edit.send_hint()})" if ok else why)

    def set_enter_sends(self, enter_sends: Callable[[], bool]) -> None:
        """Where the send key is read from (the settings, at each key press)."""
        self.edit.enter_sends = enter_sends
        self.update_send_hint()

    def update_send_hint(self) -> None:
        self.edit.setPlaceholderText(f"Ask anything…  ({self.edit.send_hint()})")
        if self._can_send:
            self.send_button.setToolTip(f"Send ({self.edit.send_hint()})")

    def template_key(self) -> str:
        return self.template.currentData() or "plain"

    def language_code(self) -> str | None:
        code: str | None = self.language.currentData()      # the items' data: a language code, or None (auto)
        return code

    def set_template(self, key: str) -> None:
        index = self.template.findData(key)
        if index >= 0:
            self.template.setCurrentIndex(index)

    def set_language(self, code: str | None) -> None:
        index = self.language.findData(code)
        if index >= 0:
            self.language.setCurrentIndex(index)

    def focus_input(self) -> None:
        self.edit.setFocus(Qt.FocusReason.ShortcutFocusReason)

    # -- slots --------------------------------------------------------------------------------------
    def _on_send(self) -> None:
        text = self.edit.toPlainText().strip()
        if not text or self._busy or not self._can_send:
            return
        self.edit.clear()
        self.few_shot_warning.setVisible(False)
        self.send.emit(text)

    def _check_few_shot(self) -> None:
        self.few_shot_warning.setVisible(looks_few_shot(self.edit.toPlainText()))
