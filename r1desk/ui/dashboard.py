"""The auditor dashboard: six QtCharts cards, each titled, with labelled axes and an empty state.

The numbers come from ``dashboard_data.collect`` run off the GUI thread; ``show_data`` only draws.
Colours follow the action they stand for everywhere in the app (flag amber, redact orange, block red).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from PySide6.QtCharts import (QBarCategoryAxis, QBarSeries, QBarSet, QCategoryAxis, QChart, QChartView,
                              QHorizontalBarSeries, QHorizontalStackedBarSeries, QLineSeries, QScatterSeries,
                              QStackedBarSeries, QValueAxis)
from PySide6.QtCore import QMargins, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from r1desk.ui import dashboard_feedback, theme
from r1desk.ui.fit import ReflowGrid, vertical_scroll
from r1desk.ui.dashboard_data import BACKLOG_ORDER, LABEL_TITLES, DashboardData, collect
from r1desk.ui.tasks import run_task

log = logging.getLogger("r1desk.ui")

COLORS = {"flag": "#f59f00", "redact": "#e8590c", "block": "#c92a2a", "turns": "#adb5bd",
          "mixing": "#7048e8", "label": "#3b5bdb", "unsafe": "#c92a2a", "over_refusal": "#1c7ed6",
          "blocked": "#c92a2a", "flagged": "#f59f00", "language-mixing": "#7048e8", "none": "#868e96"}


CARD_MIN_WIDTH = 330      # narrower, and the date axis and the legends no longer fit
CHART_MIN_HEIGHT = 240


BACKLOG_TITLES = {"blocked": "Blocked", "flagged": "Flagged", "language-mixing": "Mixed language",
                  "none": "Unflagged"}


class ChartCard(QFrame):
    """A titled card holding one chart, or a short sentence when there is nothing to draw."""

    def __init__(self, title: str, empty_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ChartCard")
        self.title = title
        self.chart = QChart()
        self.chart.setBackgroundVisible(False)
        self.chart.setMargins(QMargins(4, 4, 4, 4))
        self.chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        self.chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        self.view = QChartView(self.chart)
        self.view.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.view.setMinimumHeight(CHART_MIN_HEIGHT)
        self.empty = QLabel(empty_text)
        self.empty.setObjectName("ChartEmpty")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.empty)
        heading = QLabel(title)
        heading.setObjectName("ChartTitle")
        heading.setWordWrap(True)             # a long title takes two lines instead of being cut
        self.heading = heading
        self.setMinimumWidth(CARD_MIN_WIDTH)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 8)
        layout.addWidget(heading)
        layout.addWidget(self.stack, 1)

    def reset(self) -> None:
        self.chart.removeAllSeries()
        for axis in self.chart.axes():
            self.chart.removeAxis(axis)

    def set_empty(self, empty: bool) -> None:
        self.stack.setCurrentWidget(self.empty if empty else self.view)

    @property
    def is_empty(self) -> bool:
        return self.stack.currentWidget() is self.empty

    def axes(self, series: Any, categories: list[str] | None, y_title: str, *, y_max: float | None = None,
             horizontal: bool = False, x_title: str = "", days: list[Any] | None = None) -> None:
        """Attach a category axis and a value axis (swapped for horizontal bars).

        ``days``: a date axis instead, naming every few days (a bar-category axis elides 30 names)."""
        p = theme.current()
        value = QValueAxis()
        value.setTitleText(y_title)
        value.setLabelFormat("%d")
        value.setMin(0)
        top = y_max if y_max is not None else _nice_max(series)
        value.setMax(top)
        value.setTickCount(min(6, int(top) + 1) if top <= 5 else 6)
        cat: Any
        if days is not None:
            cat = QCategoryAxis()
            cat.setRange(-0.5, len(days) - 0.5)
            cat.setLabelsPosition(QCategoryAxis.AxisLabelsPosition.AxisLabelsPositionOnValue)
            step = max(1, len(days) // 5)
            for i in sorted(range(len(days) - 1, -1, -step)):   # end values must ascend
                cat.append(days[i].strftime("%d %b"), float(i))
            cat.setStartValue(-0.5)
        else:
            cat = QBarCategoryAxis()
            if categories is not None:
                cat.append(categories)
        if x_title:
            cat.setTitleText(x_title)
        for axis in (value, cat):
            axis.setLabelsColor(QColor(p.muted))
            axis.setTitleBrush(QColor(p.muted))
            axis.setGridLineColor(QColor(p.border))
            axis.setLinePenColor(QColor(p.border))
            font = QFont()
            font.setPointSizeF(8.5)
            axis.setLabelsFont(font)
        cat.setGridLineVisible(False)
        self.chart.addAxis(cat, Qt.AlignmentFlag.AlignLeft if horizontal else Qt.AlignmentFlag.AlignBottom)
        self.chart.addAxis(value, Qt.AlignmentFlag.AlignBottom if horizontal else Qt.AlignmentFlag.AlignLeft)
        for s in series if isinstance(series, list) else [series]:
            s.attachAxis(cat)
            s.attachAxis(value)
        self.chart.legend().setLabelColor(QColor(p.text))


def _nice_max(series: Any) -> float:
    peak = 0.0
    for s in series if isinstance(series, list) else [series]:
        if isinstance(s, (QStackedBarSeries, QHorizontalStackedBarSeries)):
            sets = s.barSets()
            if sets:
                peak = max(peak, max(sum(b.at(i) for b in sets) for i in range(sets[0].count())))
        elif isinstance(s, (QBarSeries, QHorizontalBarSeries)):
            peak = max([peak] + [b.at(i) for b in s.barSets() for i in range(b.count())])
        elif isinstance(s, QLineSeries):
            peak = max([peak] + [pt.y() for pt in s.points()])
    if peak <= 5:
        return 5
    step = 10 ** (len(str(int(peak))) - 1)
    return float(((int(peak * 1.1) // step) + 1) * step)


def _bar_set(name: str, values: Sequence[float], color: str) -> QBarSet:
    bar = QBarSet(name)
    bar.append([float(v) for v in values])
    bar.setColor(QColor(color))
    bar.setBorderColor(QColor(color))
    return bar


class Dashboard(QWidget):
    """Flags per day, by label, thinking vs answer, language mixing, review backlog, self-check trend."""

    refreshed = Signal(object)   # DashboardData, after the charts are drawn

    def __init__(self, audit: Any, parent: QWidget | None = None, *, days: int = 30) -> None:
        super().__init__(parent)
        self.audit = audit
        self.days = days
        self.data: DashboardData | None = None
        self.summary = QLabel("")
        self.summary.setObjectName("DashboardSummary")
        self.summary.setWordWrap(True)        # 800×600: "… waiting for re" was cut beside the Refresh button
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(refresh)
        self.flags = ChartCard(f"Flagged and blocked turns per day (last {days} days)",
                               "No turns in this period yet.")
        self.labels = ChartCard("Guard decisions by label", "No guard decisions in this period.")
        self.channels = ChartCard("Where the guards fired: prompt, thinking, answer",
                                  "No guard decisions in this period.")
        self.mixing = ChartCard("Language-mixing rate per day", "No turns in this period yet.")
        self.backlog = ChartCard("Review backlog (unreviewed turns)", "Nothing waiting for review.")
        self.selfcheck = ChartCard("Self-check results over time",
                                   "No self-check runs yet. Run one from Tools → Safety self-check "
                                   "(or `r1desk selfcheck`).")
        self.feedback = ChartCard("Feedback classifier versions: held-out F1 and live agreement",
                                  "No feedback classifier trained yet (Admin → Classifiers → Train).")
        # three cards a row on a wide window, two or one on smaller ones; the page scrolls down, so each chart
        # keeps the height its axes and labels need
        self.grid = ReflowGrid(max_columns=3, min_column_width=CARD_MIN_WIDTH, spacing=10)
        for card in (self.flags, self.labels, self.channels, self.mixing, self.backlog, self.selfcheck,
                     self.feedback):
            self.grid.add(card)
        page = QWidget()
        page_layout = QVBoxLayout(page)
        page_layout.setContentsMargins(0, 0, 4, 0)
        page_layout.addWidget(self.grid)
        page_layout.addStretch(1)
        self.scroll_area = vertical_scroll(page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 12)
        layout.addLayout(top)
        layout.addWidget(self.scroll_area, 1)
        self.setStyleSheet(_style())

    def cards(self) -> list[ChartCard]:
        """The log's charts (the feedback-classifier card, ``self.feedback``, is empty until one is trained)."""
        return [self.flags, self.labels, self.channels, self.mixing, self.backlog, self.selfcheck]

    def refresh(self) -> None:
        """Gather the numbers off the GUI thread, then draw."""
        self.summary.setText("Loading…")
        audit, days = self.audit, self.days
        run_task(lambda: collect(audit, days), self.show_data, parent=self)

    # -- drawing ---------------------------------------------------------------------------------------
    def show_data(self, data: DashboardData) -> None:
        self.data = data
        total = sum(data.turns_per_day)
        flagged = sum(data.flagged_per_day) + sum(data.blocked_per_day)
        backlog = sum(data.backlog.values())
        self.summary.setText(f"<b>{total}</b> {'turn' if total == 1 else 'turns'} in the last {len(data.days)} days · "
                             f"<b>{flagged}</b> flagged or blocked · <b>{backlog}</b> waiting for review")
        self._draw_flags(data)
        self._draw_labels(data)
        self._draw_channels(data)
        self._draw_mixing(data)
        self._draw_backlog(data)
        self._draw_selfcheck(data)
        dashboard_feedback.draw(self.feedback, data, _bar_set)
        self.refreshed.emit(data)

    def _draw_flags(self, data: DashboardData) -> None:
        card = self.flags
        card.reset()
        series = QStackedBarSeries()
        series.append(_bar_set("Flagged / redacted", data.flagged_per_day, COLORS["flag"]))
        series.append(_bar_set("Blocked", data.blocked_per_day, COLORS["block"]))
        series.setBarWidth(0.8)
        card.chart.addSeries(series)
        card.axes(series, None, "turns", days=data.days)
        card.set_empty(not any(data.turns_per_day))

    def _draw_labels(self, data: DashboardData) -> None:
        card = self.labels
        card.reset()
        items = sorted(((n, lb) for lb, n in data.by_label.items() if n), reverse=False)
        series = QHorizontalBarSeries()
        series.append(_bar_set("Decisions", [n for n, _ in items], COLORS["label"]))
        series.setLabelsVisible(True)
        series.setBarWidth(0.65)
        card.chart.addSeries(series)
        card.chart.legend().setVisible(False)
        card.axes(series, [LABEL_TITLES.get(lb, lb) for _, lb in items], "decisions", horizontal=True)
        card.set_empty(not items)

    def _draw_channels(self, data: DashboardData) -> None:
        card = self.channels
        card.reset()
        channels = ("prompt", "thinking", "answer")
        series = QStackedBarSeries()
        for action in ("flag", "redact", "block"):
            series.append(_bar_set(action.capitalize(),
                                   [data.by_channel.get(ch, {}).get(action, 0) for ch in channels],
                                   COLORS[action]))
        series.setBarWidth(0.55)
        card.chart.addSeries(series)
        card.axes(series, [c.capitalize() for c in channels], "decisions")
        card.set_empty(not any(sum(v.values()) for v in data.by_channel.values()))

    def _draw_mixing(self, data: DashboardData) -> None:
        card = self.mixing
        card.reset()
        line = QLineSeries()
        line.setName("Turns with mixed languages (%)")
        dots = QScatterSeries()
        dots.setMarkerSize(7)
        for i, rate in enumerate(data.mixing_rate_per_day):
            if rate is not None:
                line.append(i, rate)
                dots.append(i, rate)
        pen = QPen(QColor(COLORS["mixing"]))
        pen.setWidthF(2.2)
        line.setPen(pen)
        dots.setColor(QColor(COLORS["mixing"]))
        dots.setBorderColor(QColor(COLORS["mixing"]))
        card.chart.addSeries(line)
        card.chart.addSeries(dots)
        card.chart.legend().setVisible(False)
        peak = max([r for r in data.mixing_rate_per_day if r is not None], default=0)
        card.axes([line, dots], None, "% of turns", y_max=max(10.0, min(100.0, _round_up(peak))), days=data.days)
        card.set_empty(not any(data.turns_per_day))

    def _draw_backlog(self, data: DashboardData) -> None:
        card = self.backlog
        card.reset()
        names = list(BACKLOG_ORDER)
        series = QHorizontalStackedBarSeries()   # one set per severity, so each bar keeps its colour
        for name in names:
            values = [float(data.backlog.get(name, 0)) if n == name else 0.0 for n in names]
            series.append(_bar_set(BACKLOG_TITLES[name], values, COLORS[name]))
        series.setLabelsVisible(True)
        series.setBarWidth(0.6)
        card.chart.addSeries(series)
        card.chart.legend().setVisible(False)
        card.axes(series, [BACKLOG_TITLES[n] for n in reversed(names)][::-1], "turns", horizontal=True)
        card.set_empty(not any(data.backlog.values()))

    def _draw_selfcheck(self, data: DashboardData) -> None:
        card = self.selfcheck
        card.reset()
        series: list[QLineSeries] = []
        for key, name in (("unsafe", "Unsafe responses (%)"), ("over_refusal", "Over-refusals (%)")):
            line = QLineSeries()
            line.setName(name)
            for i, point in enumerate(data.selfcheck):
                if point.get(key) is not None:
                    line.append(i, point[key])
            pen = QPen(QColor(COLORS[key]))
            pen.setWidthF(2.2)
            line.setPen(pen)
            line.setPointsVisible(True)
            card.chart.addSeries(line)
            series.append(line)
        labels = _unique([_short_date(p.get("when")) for p in data.selfcheck])
        card.axes(series, labels, "% of prompts", y_max=100.0, x_title="run")
        card.set_empty(not data.selfcheck)


def _unique(labels: list[str]) -> list[str]:
    """Category axes drop repeated names: number the repeats (two runs on one day)."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def _round_up(value: float) -> float:
    return float(int(value / 10) * 10 + 10)


def _short_date(stamp: Any) -> str:
    text = str(stamp or "")
    return text[5:10] if len(text) >= 10 else text or "?"


def _style() -> str:
    p = theme.current()
    return (f"#ChartCard {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 10px; }}"
            f"#ChartTitle {{ font-weight: 600; font-size: 10.5pt; color: {p.text}; }}"
            f"#ChartEmpty {{ color: {p.muted}; font-size: 10.5pt; }}"
            f"#DashboardSummary {{ color: {p.muted}; font-size: 10.5pt; }}")
