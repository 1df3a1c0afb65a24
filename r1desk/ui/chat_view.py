"""The scrolling list of exchanges of one conversation.

It only displays: the chat page decides what to send. It follows the bottom while the user is at
the bottom, and leaves the scroll position alone when they scrolled up to read.
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

from r1desk.ui.messages import AssistantMessage, UserMessage


class ChatView(QScrollArea):
    edit_resend = Signal(int, str)        # index of the exchange, new text
    regenerate = Signal(int)              # index of the exchange
    continue_turn = Signal(int)           # index of the exchange whose reply ran out of tokens
    feedback = Signal(str, int, str)      # turn id, +1/-1, comment

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ChatScroll")
        self.continue_available = True
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner = QWidget(self)
        self._column = QVBoxLayout(inner)
        self._column.setContentsMargins(32, 16, 32, 16)
        self._column.setSpacing(6)
        self._column.addStretch(1)
        self.setWidget(inner)
        self.exchanges: list[tuple[UserMessage, AssistantMessage]] = []
        self.enter_sends: Callable[[], bool] = lambda: True     # the send key of the inline edit box
        self._follow = True
        self.verticalScrollBar().rangeChanged.connect(self._on_range_changed)
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)

    def clear(self) -> None:
        self.truncate(0)
        self._follow = True

    def add_exchange(self, prompt: str, thinking_visibility: str) -> AssistantMessage:
        user = UserMessage(prompt, self.widget(), enter_sends=self.enter_sends)
        assistant = AssistantMessage(thinking_visibility, self.widget())
        assistant.continue_available = self.continue_available
        index = self._column.count() - 1
        self._column.insertWidget(index, user)
        self._column.insertWidget(index + 1, assistant)
        self.exchanges.append((user, assistant))
        user.resend.connect(self._on_resend)
        assistant.regenerate.connect(self._on_regenerate)
        assistant.continue_requested.connect(self._on_continue)
        assistant.feedback.connect(self._on_feedback)
        self._follow = True
        QTimer.singleShot(0, self.scroll_to_bottom)
        return assistant

    def truncate(self, count: int) -> None:
        """Keep only the first ``count`` exchanges (edit-and-resend, regenerate)."""
        for pair in self.exchanges[count:]:
            for widget in pair:
                widget.hide()                      # gone now, even before the deferred delete runs
                self._column.removeWidget(widget)
                widget.deleteLater()
        del self.exchanges[count:]

    def last_assistant(self) -> AssistantMessage | None:
        return self.exchanges[-1][1] if self.exchanges else None

    def set_continue_available(self, available: bool) -> None:
        """Whether the loaded backend can continue a reply that ran out of tokens (a local model can)."""
        self.continue_available = available
        for _user, assistant in self.exchanges:
            assistant.set_continue_available(available)

    def set_regenerate_enabled(self, enabled: bool) -> None:
        """Only the latest answer can be regenerated, and not while a turn runs."""
        for i, (user, assistant) in enumerate(self.exchanges):
            last = i == len(self.exchanges) - 1
            assistant.regenerate_button.setVisible(last)
            assistant.regenerate_button.setEnabled(enabled)
            user.edit_button.setEnabled(enabled)

    def scroll_to_bottom(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _on_range_changed(self, _min: int, maximum: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(maximum)

    def _on_scrolled(self, value: int) -> None:
        self._follow = value >= self.verticalScrollBar().maximum() - 24

    def index_of(self, widget: object) -> int:
        for i, (user, assistant) in enumerate(self.exchanges):
            if widget is user or widget is assistant:
                return i
        return -1

    def _on_resend(self, user: UserMessage, text: str) -> None:
        index = self.index_of(user)
        if index >= 0:
            self.edit_resend.emit(index, text)

    def _on_regenerate(self, assistant: AssistantMessage) -> None:
        index = self.index_of(assistant)
        if index >= 0:
            self.regenerate.emit(index)

    def _on_continue(self, assistant: AssistantMessage) -> None:
        index = self.index_of(assistant)
        if index >= 0:
            self.continue_turn.emit(index)

    def _on_feedback(self, assistant: AssistantMessage, rating: int, comment: str) -> None:
        if assistant.turn_id:
            self.feedback.emit(assistant.turn_id, rating, comment)
