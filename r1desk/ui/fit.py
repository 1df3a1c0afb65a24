"""Text and windows that fit: a label that elides its text to its width (the whole text in its tooltip), and
a window clamped to the screen it is on."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class Elider(QObject):
    """Makes a plain QLabel elide: it never asks for more width than ``min_width`` and shows "…" instead of
    cutting; when elided, the tooltip holds the whole text. Set the text with :meth:`set_text`."""

    def __init__(self, label: QLabel, *, mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle,
                 min_width: int = 60) -> None:
        super().__init__(label)
        self.label = label
        self.mode = mode
        self.full = label.text()
        label.setWordWrap(False)
        label.setMinimumWidth(min_width)
        label.setSizePolicy(QSizePolicy.Policy.Ignored, label.sizePolicy().verticalPolicy())
        label.installEventFilter(self)
        self._apply()

    def set_text(self, text: str) -> None:
        self.full = text
        self._apply()

    @property
    def elided(self) -> bool:
        return self.label.text() != self.full

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.label and event.type() in (QEvent.Type.Resize, QEvent.Type.FontChange,
                                                      QEvent.Type.StyleChange):
            self._apply()
        return False

    def _apply(self) -> None:
        label = self.label
        width = label.contentsRect().width() - 2 * label.margin() - max(label.indent(), 0)
        shown = label.fontMetrics().elidedText(self.full, self.mode, max(width, 1)) if self.full else ""
        label.setText(shown)
        label.setToolTip(self.full if shown != self.full else "")


def elide(label: QLabel, *, mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle, min_width: int = 60) -> Elider:
    return Elider(label, mode=mode, min_width=min_width)


def fit_to_screen(window: QWidget, margin: int = 24) -> None:
    """Shrink (and move) a top-level window so it lies on the available area of its screen."""
    screen = window.screen()
    if screen is None:
        return
    area = screen.availableGeometry().adjusted(margin, margin, -margin, -margin)
    width = min(window.width(), area.width())
    height = min(window.height(), area.height())
    window.setMaximumSize(max(area.width(), window.minimumWidth()), max(area.height(), window.minimumHeight()))
    if (width, height) != (window.width(), window.height()):
        window.resize(width, height)
    frame = window.frameGeometry()
    x = min(max(frame.x(), area.x()), area.right() - frame.width() + 1)
    y = min(max(frame.y(), area.y()), area.bottom() - frame.height() + 1)
    if (x, y) != (frame.x(), frame.y()):
        window.move(max(x, area.x()), max(y, area.y()))
