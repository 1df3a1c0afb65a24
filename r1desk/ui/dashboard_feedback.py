"""The dashboard's feedback-classifier card (issue 16): per version, the held-out macro F1 beside the share
of its live flags that later reviews confirmed, and the per-label numbers under the chart."""
from __future__ import annotations

import html
from typing import Any

from PySide6.QtCharts import QBarSeries
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from r1desk.ui.dashboard_data import DashboardData

COLORS = {"f1": "#3b5bdb", "agreement": "#2b8a3e"}


def _pct(value: Any) -> float:
    return 0.0 if value is None else 100.0 * float(value)


def version_line(v: dict[str, Any]) -> str:
    labels = ", ".join(f"{lb} P {m.get('precision') or 0:.2f} R {m.get('recall') or 0:.2f} F1 {m.get('f1') or 0:.2f}"
                       for lb, m in v["per_label"].items())
    live = v.get("live")
    if not live:
        agreed = "no live flags yet"
    elif not live.get("reviewed_later"):
        agreed = f"{live['flagged_turns']} live flags, none reviewed since"
    else:
        agreed = (f"{live['confirmed']} of {live['reviewed_later']} live flags confirmed by later reviews "
                  f"({live['flagged_turns']} flagged)")
    return f"<b>{html.escape(v['version'])}</b> (held-out {v['test_examples']}): {html.escape(labels)}; {agreed}"


def draw(card: Any, data: DashboardData, bar_set: Any) -> None:
    """Draw ``data.feedback`` on ``card`` (a dashboard ChartCard); ``bar_set(name, values, colour)``."""
    card.reset()
    rows = data.feedback
    series = QBarSeries()
    series.append(bar_set("Held-out macro F1 (%)", [_pct(v["macro_f1"]) for v in rows], COLORS["f1"]))
    series.append(bar_set("Live flags confirmed by later reviews (%)",
                          [_pct((v.get("live") or {}).get("agreement")) for v in rows], COLORS["agreement"]))
    series.setBarWidth(0.7)
    card.chart.addSeries(series)
    card.axes(series, [v["version"] for v in rows], "%", y_max=100.0)
    card.set_empty(not rows)
    note: QLabel | None = card.findChild(QLabel, "FeedbackNote")
    if note is None:
        note = QLabel(card)
        note.setObjectName("FeedbackNote")
        note.setWordWrap(True)
        note.setTextFormat(Qt.TextFormat.RichText)
        card.layout().addWidget(note)
    note.setText("<br>".join(version_line(v) for v in rows[-3:]))
