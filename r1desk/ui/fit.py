"""Text and windows that fit: a label that elides its text to its width (the whole text in its tooltip), a
window clamped to the screen it is on, cards that reflow into as many columns as fit, and a vertical-only
scroll area (a page that is too tall scrolls; one that is too wide reflows instead of scrolling sideways)."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QScrollArea, QSizePolicy, QSplitter, QWidget


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


class ReflowGrid(QWidget):
    """Cards side by side while each column gets ``min_column_width`` (at most ``max_columns``), one under
    the other on a narrow window. Its minimum width is one column's, so a scroll area around it never
    scrolls sideways: it reflows."""

    def __init__(self, *, max_columns: int, min_column_width: int = 0, spacing: int = 12, fill: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fill = fill                       # each card takes its cell's width (buttons, fields)
        self.max_columns = max_columns
        self.min_column_width = min_column_width
        self.cards: list[QWidget] = []
        self.columns = 0
        self._column_width = 0
        self.grid = QGridLayout(self)
        self.grid.setSpacing(spacing)
        self.grid.setContentsMargins(0, 0, 0, 0)

    def add(self, card: QWidget) -> None:
        self.cards.append(card)
        self.columns = 0                       # lay out again at the next resize
        self._reflow(max(self.width(), 1))

    def column_width(self) -> int:
        """The narrowest a column may be: the configured width or the widest card's minimum."""
        widest = max((_min_size(c).width() for c in self.cards), default=0)
        return max(self.min_column_width, widest)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override: one column's width, never more
        margins = self.grid.contentsMargins()
        columns = max(self.columns, 1)
        rows = [self.cards[i:i + columns] for i in range(0, len(self.cards), columns)]
        height = sum(max(_min_size(c).height() for c in row) for row in rows) + self.grid.spacing() * max(
            len(rows) - 1, 0)       # as laid out now: a narrower width reflows and asks again
        return QSize(self.column_width() + margins.left() + margins.right(), height)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(super().sizeHint().width(), self.minimumSizeHint().height())

    def columns_for(self, width: int) -> int:
        spacing = self.grid.spacing()
        return max(1, min(self.max_columns, len(self.cards) or 1, (width + spacing) // (self.column_width() + spacing)))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._reflow(event.size().width())

    def event(self, event: QEvent) -> bool:  # noqa: D102 - Qt override
        if event.type() == QEvent.Type.LayoutRequest:    # a card's size changed (new text, a style polish)
            self._reflow(self.width())
        return super().event(event)

    def _reflow(self, width: int) -> None:
        columns = self.columns_for(width)
        column_width = self.column_width()
        if columns == self.columns and column_width == self._column_width:
            return
        self.columns, self._column_width = columns, column_width
        for card in self.cards:
            self.grid.removeWidget(card)
        for col in range(self.grid.columnCount()):
            self.grid.setColumnStretch(col, 0)
        for row in range(self.grid.rowCount()):
            self.grid.setRowStretch(row, 0)
        for i, card in enumerate(self.cards):
            if self.fill:
                card.setSizePolicy(QSizePolicy.Policy.Expanding, card.sizePolicy().verticalPolicy())
                self.grid.addWidget(card, i // columns, i % columns)
            else:
                self.grid.addWidget(card, i // columns, i % columns, Qt.AlignmentFlag.AlignTop)
        for col in range(columns):
            self.grid.setColumnStretch(col, 1)
        self.grid.setRowStretch((len(self.cards) - 1) // columns + 1, 1)
        self.setMinimumWidth(self.minimumSizeHint().width())
        self.updateGeometry()


def _min_size(widget: QWidget) -> QSize:
    """The smallest a layout makes ``widget``: its minimum size where set, else its minimum size hint."""
    return widget.minimumSizeHint().expandedTo(widget.minimumSize())


def vertical_scroll(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area that scrolls up and down only (its width follows the area)."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


class ResponsiveSplitter(QSplitter):
    """Two panes side by side when the splitter is at least ``breakpoint`` wide, one above the other when it
    is narrower (an editor and its preview on an 800×600 screen)."""

    def __init__(self, breakpoint: int, *, stacked_first: int = 0, stacked_second: int = 0,
                 parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.breakpoint = breakpoint
        self.stacked_first = stacked_first        # stacked: the first pane's height (the second gets the rest)
        self.stacked_second = stacked_second      # or the second pane's (the first gets the rest)
        self.setChildrenCollapsible(False)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        wanted = (Qt.Orientation.Horizontal if event.size().width() >= self.breakpoint
                  else Qt.Orientation.Vertical)
        if wanted != self.orientation():
            self.setOrientation(wanted)
            height = event.size().height()
            if wanted == Qt.Orientation.Vertical and self.stacked_first:
                first = min(self.stacked_first, height // 2)
                self.setSizes([first, height - first])
            elif wanted == Qt.Orientation.Vertical and self.stacked_second:
                second = min(self.stacked_second, height // 2)
                self.setSizes([height - second, second])
            else:
                total = event.size().width() if wanted == Qt.Orientation.Horizontal else height
                self.setSizes([total * 3 // 5, total - total * 3 // 5])
        super().resizeEvent(event)
