"""The headline of a finished self-check: unsafe-response and over-refusal rates, guards on vs off.

Reads ``SelfCheckRun.metrics`` (``core.selfcheck.metrics.compute_metrics``); everything else (per harm
area, the answers, the policy) is in the HTML report.
"""
from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

from r1desk.ui import theme

# (metrics key, row title, tooltip); rates where lower is better are marked so.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("unsafe_response_rate", "Unsafe responses",
     "Unsafe prompts the model helped with and the guards did not stop (lower is better)"),
    ("over_refusal_rate", "Over-refusals",
     "Safe look-alike prompts that were refused or blocked (lower is better)"),
    ("blocked_rate", "Blocked by the guards", "Turns stopped by a block action"),
    ("flag:thinking", "Thinking flagged", "Turns whose thinking trace had a flagged segment"),
    ("flag:answer", "Answer flagged", "Turns whose answer had a flagged segment"),
)
MODES = (("on", "Guards on"), ("off", "Guards off (monitor)"))


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f} %"


def metric(mode: dict[str, Any], key: str) -> float | None:
    if key.startswith("flag:"):
        return (mode.get("flag_rates") or {}).get(key[5:])
    return mode.get(key)


def tone(key: str, rate: float | None) -> str:
    """Colour for a headline rate: any unsafe response is red, any over-refusal amber, none green."""
    if rate is None or key not in ("unsafe_response_rate", "over_refusal_rate"):
        return ""
    if rate == 0:
        return "ok"
    return "danger" if key == "unsafe_response_rate" else "warn"


class ResultsCard(QFrame):
    """A small table: one row per headline rate, one column per guard mode that ran."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SelfCheckResults")
        p = theme.current()
        self.setStyleSheet(f"#SelfCheckResults {{ background: {p.surface}; border: 1px solid {p.border}; "
                           f"border-radius: 10px; }}"
                           f"#SelfCheckResults QLabel[role='head'] {{ color: {p.muted}; font-weight: 600; }}"
                           f"#SelfCheckResults QLabel[role='value'] {{ font-size: 11pt; font-weight: 600; }}"
                           f"#SelfCheckResults QLabel[role='headline'] {{ font-size: 14pt; font-weight: 700; }}"
                           f"#SelfCheckResults QLabel[role='note'] {{ color: {p.muted}; }}"
                           f"#SelfCheckResults QLabel[tone='danger'] {{ color: {p.danger}; }}"
                           f"#SelfCheckResults QLabel[tone='warn'] {{ color: {p.warn}; }}"
                           f"#SelfCheckResults QLabel[tone='ok'] {{ color: {p.ok}; }}")
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(28)
        self.grid.setVerticalSpacing(8)
        self.note = QLabel("")
        self.note.setProperty("role", "note")
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 14)
        layout.addLayout(self.grid)
        layout.addWidget(self.note)
        self.values: dict[tuple[str, str], QLabel] = {}

    def clear(self) -> None:
        while self.grid.count():
            item = self.grid.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.values = {}
        self.note.clear()

    def show_metrics(self, metrics: dict[str, Any], note: str = "") -> None:
        """Fill the table from a run's metrics (modes that did not run are left out)."""
        self.clear()
        modes = [(key, title) for key, title in MODES if key in (metrics.get("modes") or {})]
        if not modes:
            empty = QLabel("No prompt finished, so there is nothing to measure yet.")
            empty.setProperty("role", "note")
            self.grid.addWidget(empty, 0, 0)
        for col, (_key, title) in enumerate(modes, start=1):
            head = QLabel(title)
            head.setProperty("role", "head")
            self.grid.addWidget(head, 0, col, Qt.AlignmentFlag.AlignRight)
        for row, (key, title, tip) in enumerate(ROWS if modes else (), start=1):
            label = QLabel(title)
            label.setToolTip(tip)
            self.grid.addWidget(label, row, 0)
            for col, (mode, _title) in enumerate(modes, start=1):
                rate = metric(metrics["modes"][mode], key)
                value = QLabel(pct(rate))
                value.setProperty("role", "headline" if row <= 2 else "value")
                value.setProperty("tone", tone(key, rate))
                value.setToolTip(tip)
                value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.grid.addWidget(value, row, col)
                self.values[(mode, key)] = value
        self.grid.setColumnStretch(0, 1)
        for label in self.findChildren(QLabel):
            label.ensurePolished()             # the stylesheet's fonts set the size hints before layout
        self.note.setText(note)
        self.note.setVisible(bool(note))

    def text_of(self, mode: str, key: str) -> str | None:
        """The shown value (tests, accessibility)."""
        label = self.values.get((mode, key))
        return label.text() if label is not None else None


def summary_note(run: Any) -> str:
    """Caveats under the numbers: unjudged turns, missing classifiers, errors."""
    notes = []
    no_answer = sum(bool(getattr(o, "no_answer", False)) for o in run.outcomes)
    if no_answer:
        notes.append(f"{no_answer} turn(s) ran out of tokens while thinking and are not rated; raise Max tokens.")
    notices = list(run.metrics.get("notices") or {})
    notes += [n.split(": ", 1)[-1] for n in notices if n.startswith("classifier_unavailable")]
    limited = sorted({m.group(1) for n in notices if n.startswith("coverage_limited")
                      for m in [re.search(r"'([A-Za-z-]+)'", n)] if m})
    if limited:
        notes.append(f"Toxicity coverage is limited for {', '.join(limited)}: the installed classifier judges "
                     "those languages less well.")
    if run.metrics.get("n_errors"):
        notes.append(f"{run.metrics['n_errors']} prompt(s) failed; see the report.")
    modes = run.metrics.get("modes") or {}
    if "on" in modes and "off" in modes:
        on, off = modes["on"].get("unsafe_response_rate"), modes["off"].get("unsafe_response_rate")
        if on is not None and off is not None:
            notes.insert(0, f"Unsafe responses: {pct(off)} without the guards, {pct(on)} with them.")
    notes.append("Per harm area, thinking vs answer, language consistency and every answer: open the report.")
    return "\n".join(notes)
