"""The text box a prompt is typed in (the input bar and the inline edit of a sent message).

Tab moves the focus (never inserts a tab). The send key follows the setting ``enter_sends``: Enter sends and
Shift+Enter starts a new line (as LM Studio, GPT4All and Jan do), or Ctrl+Enter sends and Enter starts a new
line. Ctrl+Enter always sends. Esc asks to leave the box (``cancel``; the inline edit closes).
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtCore import QEvent
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QPlainTextEdit, QWidget

_ENTER = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


class PromptEdit(QPlainTextEdit):
    submit = Signal()
    cancel = Signal()

    def __init__(self, parent: QWidget | None = None, *, enter_sends: Callable[[], bool] | None = None) -> None:
        super().__init__(parent)
        self.setTabChangesFocus(True)
        self.enter_sends: Callable[[], bool] = enter_sends or (lambda: True)
        self.cancellable = False      # Esc emits ``cancel`` (the inline edit box) instead of reaching the window

    def send_hint(self) -> str:
        return "Enter to send, Shift+Enter for a new line" if self.enter_sends() else "Ctrl+Enter to send"

    def event(self, event: QEvent) -> bool:
        # Esc closes the inline edit box before the window's Esc shortcut (Stop / Back to chat) sees it.
        if (event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent)
                and event.key() == Qt.Key.Key_Escape and self.cancellable):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in _ENTER:
            mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if mods & Qt.KeyboardModifier.ControlModifier or (
                    mods == Qt.KeyboardModifier.NoModifier and self.enter_sends()):
                self.submit.emit()
                return
            if mods & Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")        # Shift+Enter: a plain new line, not a paragraph separator
                return
        if event.key() == Qt.Key.Key_Escape and self.cancellable:
            self.cancel.emit()
            return
        super().keyPressEvent(event)
