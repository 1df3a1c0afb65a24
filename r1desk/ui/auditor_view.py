"""The auditor browser: search and filter the audit log, read a turn in full, review it, see the dashboard,
export, and verify the hash chain.

Keyboard review queue: N / P (or Alt+Down / Alt+Up) move to the next / previous turn; 1–5 label the
turn (ok, harmful, over-refusal, language-mixing, other), save the review with the note typed so far
and move on; Ctrl+Enter saves with the chosen label. All reads and writes go through ``AuditLog``.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QItemSelectionModel, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QLabel,
                               QLineEdit, QMenu, QPushButton, QSizePolicy, QTableView, QTabWidget, QToolButton,
                               QVBoxLayout, QWidget)

from r1desk.core.guard.policy import known_labels
from r1desk.settings import ReviewPeriodSettings, load_settings
from r1desk.storage.auditlog import AuditLog
from r1desk.storage.queries import TurnFilters
from r1desk.storage.records import REVIEW_LABELS
from r1desk.ui import theme
from r1desk.ui.auditor_detail import TurnDetail
from r1desk.ui.fit import ReflowGrid, ResponsiveSplitter, vertical_scroll
from r1desk.ui.wording import counted
from r1desk.ui.auditor_table import COLUMNS, TurnTableModel
from r1desk.ui.dashboard import Dashboard
from r1desk.ui.period_panel import Clock, PeriodPanel, ReminderBanner
from r1desk.ui.tasks import run_task, show_error
from r1desk.vocabulary import CHANNELS

log = logging.getLogger("r1desk.ui")

PROMPT_COLUMN_WIDTH = 300      # pixels: the prompt column is never squeezed below this (issue 14 item 14)
TURNS_SIDE_BY_SIDE_PX = 900   # narrower: the turn list above the selected turn
EXPORTS = (("jsonl", "JSONL (one turn per line)", "JSON Lines (*.jsonl)"),
           ("csv", "CSV (spreadsheet)", "CSV (*.csv)"),
           ("sft", "Fine-tuning set (reviewed turns)", "JSON Lines (*.jsonl)"))


def _combo(items: list[tuple[str, Any]], tooltip: str) -> QComboBox:
    box = QComboBox()
    for text, value in items:
        box.addItem(text, value)
    box.setToolTip(tooltip)
    # about 12 characters, then "…" (the list shows every choice whole): three filters a row at 800×600
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(12)
    return box


class AuditorView(QWidget):
    """Needs an ``AuditLog``; ``reviewer`` is the name written into reviews and admin events."""

    review_saved = Signal(str, str)          # turn id, label
    verified = Signal(object)                # chain.VerifyResult
    exported = Signal(str, int)              # path, records

    def __init__(self, audit: AuditLog, parent: QWidget | None = None, *, reviewer: str = "auditor",
                 review_settings: Callable[[], ReviewPeriodSettings] | None = None,
                 clock: Clock | None = None) -> None:
        super().__init__(parent)
        self.audit = audit
        self.reviewer = reviewer
        self.model = TurnTableModel(audit, self)
        self._left_queue = False          # set when a review took the current turn out of the review queue

        # -- filter bar
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search prompts, thinking and answers…  (\"exact phrase\", word*, OR)")
        self.search.setClearButtonEnabled(True)
        self.first_focus = self.search        # where the keyboard goes when the view is unlocked
        # at least ~30 characters of query visible, whatever the filters beside it take (issue 14 item 14)
        self.search.setMinimumWidth(self.search.fontMetrics().horizontalAdvance("x" * 30) + 40)
        self.view_mode = _combo([("Review queue (unreviewed)", "queue"), ("All turns", "all"),
                                 ("Reviewed", "reviewed")], "Which turns to list")
        self.channel = _combo([("Any channel", None)] + [(c.capitalize(), c) for c in CHANNELS],
                              "Only turns with a guard decision in this channel")
        self.action = _combo([("Any action", None), ("Flagged", "flag"), ("Redacted", "redact"),
                              ("Blocked", "block")], "Only turns with a decision taking this action")
        self.label = _combo([("Any label", None)] + [(lb.replace("_", " ").capitalize(), lb) for lb in known_labels()],
                            "Only turns with a decision for this classifier label")
        self.mixing = _combo([("Any language", None), ("Mixed languages", True), ("Single language", False)],
                             "Language mixing")
        self.period = _combo([("All time", None), ("Today", 0), ("Last 7 days", 6), ("Last 30 days", 29)],
                             "Date range")
        self.order = _combo([("By severity", "severity"), ("Newest first", "newest"),
                             ("Most useful to review", "useful")],
                            "Sort order. Most useful to review (the review queue): turns where the classifiers "
                            "disagree, a score sits near its threshold, or the language lock and the guard conflict")
        self.count_label = QLabel("")
        self.count_label.setObjectName("CountLabel")
        # the search box on its own row, then what to list, the order and the narrowing filters in as many
        # columns as fit (at 800×600 the search box overlapped the filters beside it)
        filters = QVBoxLayout()
        filters.setSpacing(6)
        filters.addWidget(self.search)
        self.filter_grid = ReflowGrid(max_columns=7, spacing=6, fill=True)
        for w in (self.view_mode, self.order, self.period, self.channel, self.action, self.label, self.mixing):
            self.filter_grid.add(w)
        self.filter_grid.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        filters.addWidget(self.filter_grid)
        for w in (self.view_mode, self.period, self.channel, self.action, self.label, self.mixing, self.order):
            w.currentIndexChanged.connect(self.apply_filters)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(250)
        self._search_timer.timeout.connect(self.apply_filters)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.search.returnPressed.connect(self.apply_filters)

        # -- table + detail
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(False)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(30)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        # the prompt keeps a readable width (the table scrolls sideways before it is squeezed); the model,
        # last, takes what is left
        widths = {"Severity": 96, "When": 112, "Status": 72, "Model": 120, "Prompt": PROMPT_COLUMN_WIDTH,
                  "Answer": 180, "Reviewed": 80}
        for i, name in enumerate(COLUMNS):
            self.table.setColumnWidth(i, widths[name])
        header.setStretchLastSection(True)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _prev: self._on_row(cur.row()))
        self.detail = TurnDetail()
        self.detail.review_requested.connect(self._on_review)
        # side by side on a wide window; on a narrow one the list above and the turn below (the detail scrolls)
        splitter = ResponsiveSplitter(TURNS_SIDE_BY_SIDE_PX, stacked_first=170)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.count_label)
        splitter.addWidget(left)
        self.detail_scroll = vertical_scroll(self.detail)
        splitter.addWidget(self.detail_scroll)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([900, 520])
        turns_page = QWidget()
        turns_layout = QVBoxLayout(turns_page)
        turns_layout.setContentsMargins(12, 8, 12, 8)
        turns_layout.addLayout(filters)
        turns_layout.addWidget(splitter, 1)
        hint = QLabel("Keys: N / P next / previous · 1 OK · 2 Harmful · 3 Over-refusal · 4 Language mixing · "
                      "5 Other (saves and moves on) · Ctrl+Enter save")
        hint.setObjectName("KeyHint")
        hint.setWordWrap(True)
        turns_layout.addWidget(hint)

        self.dashboard = Dashboard(audit)
        self.tabs = QTabWidget()
        # -- periodic review (issue 16): the period's queue, report and sign-off; the reminder banner
        self.periods = PeriodPanel(audit, review_settings=review_settings or (lambda: load_settings().review_period),
                                   reviewer=reviewer, clock=clock)
        self.periods.open_turn.connect(self.show_turn)
        self.periods.reminders_ready.connect(self._on_reminders)
        self.reminder = ReminderBanner()
        self.reminder.show_requested.connect(lambda: self.tabs.setCurrentWidget(self.periods))
        self.tabs.addTab(turns_page, "Turns")
        self.tabs.addTab(self.dashboard, "Dashboard")
        self.tabs.addTab(self.periods, "Review period")
        self.tabs.currentChanged.connect(self._on_tab)

        # -- top bar: export + verify
        title = QLabel("Audit log")
        title.setObjectName("ViewTitle")
        self.export_button = QToolButton()
        self.export_button.setText("Export ▾")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        for fmt, text, _pattern in EXPORTS:
            menu.addAction(text, functools.partial(self.export, fmt))
        self.export_button.setMenu(menu)
        self.verify_button = QPushButton("Verify integrity")
        self.verify_button.clicked.connect(self.verify)
        self.verify_result = QLabel("")
        self.verify_result.setObjectName("VerifyResult")
        self.verify_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top = QHBoxLayout()
        top.setContentsMargins(12, 10, 12, 0)
        top.addWidget(title)
        top.addSpacing(12)
        top.addWidget(self.verify_result, 1)
        top.addWidget(self.verify_button)
        top.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.reminder)
        layout.addWidget(self.tabs, 1)
        self.setStyleSheet(_style())
        self._shortcuts()
        self.apply_filters()

    # -- keyboard ------------------------------------------------------------------------------------
    def _shortcuts(self) -> None:
        """Ctrl+Enter / Alt+Up / Alt+Down work anywhere in the view; the single keys (N, P, 1–5) only
        while the table has the focus, so typing a note never labels a turn."""
        ctx = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for keys, slot in ((("Alt+Down",), self.next_turn), (("Alt+Up",), self.previous_turn),
                           (("Ctrl+Return", "Ctrl+Enter"), self.detail.submit)):
            for key in keys:
                sc = QShortcut(QKeySequence(key), self)
                sc.setContext(ctx)
                sc.activated.connect(slot)
        self.table.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.table and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key = event.key()
            if event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
                return False
            if key == Qt.Key.Key_N:
                self.next_turn()
                return True
            if key == Qt.Key.Key_P:
                self.previous_turn()
                return True
            if Qt.Key.Key_1 <= key <= Qt.Key.Key_1 + len(REVIEW_LABELS) - 1:
                self.quick_label(key - Qt.Key.Key_1 + 1)
                return True
        return super().eventFilter(watched, event)

    def quick_label(self, number: int) -> None:
        """Label the current turn with REVIEW_LABELS[number-1], save, and move to the next."""
        if self.detail.turn is None:
            return
        self.detail.choose_label(number)
        self._left_queue = False
        if self.detail.submit() and not self._left_queue:     # a turn that left the queue: the next is shown
            self.next_turn()

    def current_row(self) -> int:
        index = self.table.currentIndex()
        return index.row() if index.isValid() else -1

    def select_row(self, row: int) -> None:
        while row >= self.model.rowCount() and self.model.canFetchMore():
            self.model.fetchMore()
        if 0 <= row < self.model.rowCount():
            index = self.model.index(row, 0)
            self.table.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
            self.table.scrollTo(index)

    def next_turn(self) -> None:
        self.select_row(self.current_row() + 1)

    def previous_turn(self) -> None:
        self.select_row(max(0, self.current_row() - 1))

    # -- filters -----------------------------------------------------------------------------------------
    def current_filters(self) -> TurnFilters:
        mode = self.view_mode.currentData()
        flt = TurnFilters(channel=self.channel.currentData(), action=self.action.currentData(),
                          label=self.label.currentData(), language_mixing=self.mixing.currentData(),
                          reviewed={"queue": False, "reviewed": True}.get(mode))
        days = self.period.currentData()
        if days is not None:
            from datetime import date, timedelta
            flt.date_from = (date.today() - timedelta(days=days)).isoformat()
        return flt

    def _count_text(self) -> str:
        """"1 turn", "40 turns", "200+ turns" (more rows than fetched so far)."""
        n = self.model.rowCount()
        if self.model.canFetchMore():
            return f"{n:,}+ turns"
        return counted(n, "turn")

    def apply_filters(self) -> None:
        self._search_timer.stop()
        try:
            self.model.set_query(self.search.text(), self.current_filters(), self.order.currentData())
        except Exception as exc:
            show_error(self, exc)
            return
        note = ""
        if self.order.currentData() == "useful" and not self.model.useful_applies:
            note = " · most useful to review orders the review queue without a search or filters: by severity here"
        self.count_label.setText(f"{self._count_text()}{note}")
        if self.model.rowCount():
            self.select_row(0)
        else:
            self.detail.clear()

    def _on_row(self, row: int) -> None:
        if row < 0:
            self.detail.clear()
            return
        try:
            self.detail.show_turn(self.audit.get_turn(self.model.turn_id(row)))
        except Exception as exc:
            show_error(self, exc)

    def _on_tab(self, index: int) -> None:
        if self.tabs.widget(index) is self.dashboard:
            self.dashboard.refresh()
        elif self.tabs.widget(index) is self.periods:
            self.periods.refresh()

    # -- periodic review -----------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override: the view opens
        super().showEvent(event)
        self.periods.check_reminders()

    def _on_reminders(self, notes: list[str]) -> None:
        self.reminder.show_reminders(notes)
        if notes and self.tabs.currentWidget() is self.periods:
            self.periods.refresh()          # the reminder may have drawn the period's queue

    def show_turn(self, turn_id: str) -> None:
        """Read and review one turn (from the period's queue) in the Turns tab's detail pane."""
        try:
            turn = self.audit.get_turn(turn_id)
        except Exception as exc:
            show_error(self, exc)
            return
        self.tabs.setCurrentIndex(0)
        self.table.clearSelection()
        self.detail.show_turn(turn)

    # -- review ------------------------------------------------------------------------------------------
    def _on_review(self, turn_id: str, label: str, note: str, corrected: object) -> None:
        try:
            self.audit.review(turn_id, label, note, reviewer=self.reviewer,
                              corrected_answer=corrected if isinstance(corrected, str) else None)
        except Exception as exc:
            show_error(self, exc)
            return
        if self.view_mode.currentData() == "queue":          # reviewed: it leaves the review queue
            row = self.model.remove_turn(turn_id)
            if row >= 0:
                self._left_queue = True
                self.count_label.setText(f"Saved: {label} · {self._count_text()} left to review")
                if self.model.rowCount() or self.model.canFetchMore():
                    self.select_row(min(row, self.model.rowCount() - 1) if self.model.rowCount() else 0)
                else:
                    self.detail.clear()
        else:
            self.model.mark_reviewed(turn_id)
            self.detail.review_state.setText(f"Saved: {label}")
        period = self.periods.period
        if period is not None and turn_id in period["flagged"] + period["sample"]:
            self.periods.load()
        self.review_saved.emit(turn_id, label)

    # -- export / verify -----------------------------------------------------------------------------
    def export(self, fmt: str) -> None:
        pattern = next(p for f, _t, p in EXPORTS if f == fmt)
        suggested = str(Path.home() / f"r1desk-audit.{'csv' if fmt == 'csv' else 'jsonl'}")
        path, _ = QFileDialog.getSaveFileName(self, "Export the audit log", suggested, pattern)
        if not path:
            return
        filters = self.current_filters()
        audit, actor = self.audit, self.reviewer

        def op() -> int:
            with open(path, "w", encoding="utf-8", newline="") as fh:
                return audit.export(fmt, fh, filters, actor=actor, destination=path)

        self.verify_result.setText(f"Exporting to {path}…")
        self.export_button.setEnabled(False)

        def done(count: int) -> None:
            self.export_button.setEnabled(True)
            self.verify_result.setText(f"Exported {count} records to {path}")
            self.exported.emit(path, count)

        def failed(exc: BaseException) -> None:
            self.export_button.setEnabled(True)
            self.verify_result.setText("")
            show_error(self, exc)

        run_task(op, done, failed, parent=self)

    def verify(self) -> None:
        self.verify_button.setEnabled(False)
        self.verify_result.setText("Verifying the hash chain…")
        self.verify_result.setProperty("state", "")
        run_task(self.audit.verify, self._on_verified, self._on_verify_failed, parent=self)

    def _on_verified(self, result: Any) -> None:
        self.verify_button.setEnabled(True)
        if result.ok:
            self.verify_result.setText(f"✓ Integrity verified: {result.entries} chained records intact")
            self.verify_result.setProperty("state", "ok")
        else:
            extra = f" ({len(result.problems)} problems)" if len(result.problems) > 1 else ""
            self.verify_result.setText(f"✗ Tampering detected: {result.summary()}{extra}")
            self.verify_result.setProperty("state", "broken")
        self.verify_result.style().unpolish(self.verify_result)
        self.verify_result.style().polish(self.verify_result)
        self.verified.emit(result)

    def _on_verify_failed(self, exc: BaseException) -> None:
        self.verify_button.setEnabled(True)
        self.verify_result.setText("")
        show_error(self, exc)


def _style() -> str:
    p = theme.current()
    return (f"#ViewTitle {{ font-size: 14pt; font-weight: 600; }}"
            f"#KeyHint, #CountLabel {{ color: {p.muted}; font-size: 9pt; }}"
            f"#VerifyResult[state='ok'] {{ color: {p.ok}; font-weight: 600; }}"
            f"#VerifyResult[state='broken'] {{ color: {p.danger}; font-weight: 600; }}"
            f"QTableView {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 8px;"
            f" selection-background-color: {p.user_bubble}; selection-color: {p.text}; }}"
            f"#DetailHeader {{ padding: 4px 2px 6px 2px; }}"
            f"#DetailBody {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 8px;"
            f" padding: 4px; }}"
            f"#ReviewForm {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 8px; }}"
            f"#SectionTitle {{ font-weight: 600; }}"
            f"#ReviewLabel {{ border: 1px solid {p.border}; border-radius: 6px; padding: 4px 9px;"
            f" color: {p.text}; }}"
            f"#ReviewLabel:checked {{ background: {p.accent}; color: {p.accent_text}; border-color: {p.accent}; }}"
            f"#ReviewState {{ color: {p.muted}; }}")
