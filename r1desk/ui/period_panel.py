"""Periodic review in the auditor view (issue 16): the current period's queue (every flagged turn plus the
reproducible random sample of unflagged ones), Draw, the report (HTML + JSON) and the chained sign-off, and
the reminder banner when a period has closed with reviews outstanding. The work is
:mod:`r1desk.core.feedback.periods` (what ``r1desk audit period`` runs), off the GUI thread.
"""
from __future__ import annotations

import html
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFrame, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QTableWidget, QTableWidgetItem, QToolButton, QVBoxLayout, QWidget)

from r1desk.core.feedback import periods
from r1desk.settings import ReviewPeriodSettings
from r1desk.ui.tasks import run_task, show_error
from r1desk.ui.wording import counted

log = logging.getLogger("r1desk.ui")

Clock = Callable[[], datetime]


def open_url(path: Path) -> bool:
    """Open a written report in the system's browser (one place, so tests do not open one)."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def _rate(r: dict[str, Any]) -> str:
    if r.get("rate") is None:
        return "no reviews yet"
    lo, hi = r["ci95"]
    return f"{r['rate']:.1%} (95% interval {lo:.1%}–{hi:.1%}, {r['k']}/{r['n']})"


class ReminderBanner(QFrame):
    """"Review period … has closed with N turns still to review": shown until dismissed."""

    show_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PeriodReminder")
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.show_button = QPushButton("Show the period", self)
        self.show_button.clicked.connect(self.show_requested)
        close = QToolButton(self)
        close.setText("✕")
        close.setAccessibleName("Hide")
        close.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 6, 8, 6)
        row.addWidget(self.message, 1)
        row.addWidget(self.show_button)
        row.addWidget(close)
        self.setVisible(False)

    def show_reminders(self, notes: list[str]) -> None:
        self.message.setText(" ".join(notes))
        self.setVisible(bool(notes))


class PeriodPanel(QWidget):
    """One review period at a time. ``open_turn(turn_id)``: the auditor wants to read / review a turn."""

    open_turn = Signal(str)
    loaded = Signal(object)            # the period's summary (dict), or None when no period is drawn
    reminders_ready = Signal(list)     # plain-words reminders (empty: nothing outstanding)
    report_written = Signal(str)       # the HTML report's path
    signed_off = Signal(dict)

    def __init__(self, audit: Any, *, review_settings: Callable[[], ReviewPeriodSettings],
                 reviewer: str = "auditor", clock: Clock | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.audit = audit
        self.review_settings = review_settings
        self.reviewer = reviewer
        self.clock: Clock = clock or (lambda: datetime.now(timezone.utc))
        self.period: dict[str, Any] | None = None
        self.summary: dict[str, Any] | None = None
        self.cadence_label = QLabel("")
        self.cadence_label.setObjectName("GroupHint")
        self.cadence_label.setWordWrap(True)
        self.period_box = QComboBox()
        self.period_box.setToolTip("Review periods whose queue has been drawn")
        self.period_box.setMinimumContentsLength(10)
        self.draw_button = QPushButton("Draw")
        self.draw_button.setToolTip("Record the last closed period's queue: every flagged turn plus a reproducible "
                                    "random sample of the unflagged ones (logged, drawn once)")
        top = QHBoxLayout()
        top.addWidget(QLabel("Period"))
        top.addWidget(self.period_box)
        top.addWidget(self.draw_button)
        top.addStretch(1)
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Turn", "In the queue because", "Review"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):                 # whole headers ("In the queue because" was cut to "e queue bec")
            self.table.horizontalHeader().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setToolTip("Double-click (or Enter) a turn to read and review it")
        self.table.itemActivated.connect(self._on_activated)
        self.report_button = QPushButton("Open report")
        self.report_button.setToolTip("Write the period report (self-contained HTML and JSON) and open it")
        self.note = QLineEdit()
        self.note.setPlaceholderText("Sign-off note (optional)")
        self.signoff_button = QPushButton("Sign off")
        self.signoff_button.setToolTip("Keep the report and sign it off (chained in the audit log)")
        self.status = QLabel("")
        self.status.setObjectName("CountLabel")
        self.status.setWordWrap(True)
        bottom = QHBoxLayout()
        bottom.addWidget(self.report_button)
        bottom.addWidget(self.note, 1)
        bottom.addWidget(self.signoff_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.addWidget(self.cadence_label)
        layout.addLayout(top)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)
        layout.addWidget(self.status)
        self.draw_button.clicked.connect(self.draw)
        self.report_button.clicked.connect(self.open_report)
        self.signoff_button.clicked.connect(self.sign_off)
        self.period_box.activated.connect(lambda _i: self.load())
        self._update_buttons()

    # -- what is there ------------------------------------------------------------------------------
    def settings(self) -> ReviewPeriodSettings:
        return self.review_settings()

    def last_closed(self) -> str | None:
        cadence = self.settings().cadence
        return periods.last_closed(cadence, self.clock()) if cadence in periods.CADENCES else None

    def refresh(self) -> None:
        """List the drawn periods, say the cadence, and load the chosen (or the newest) period."""
        cfg = self.settings()
        if cfg.cadence in periods.CADENCES:
            self.cadence_label.setText(f"Periodic review: {cfg.cadence}, {cfg.sample_size} unflagged turns sampled "
                                       "per period (set by the admin). Times are UTC.")
        else:
            self.cadence_label.setText("Periodic review is off. An admin switches it on in Admin settings → "
                                       "Periodic review; periods drawn before are listed here.")
        chosen = self.period_box.currentData()
        try:
            ids = [p["id"] for p in self.audit.list_periods()]
        except Exception as exc:  # noqa: BLE001 - an unreadable log: say so, keep the view
            show_error(self, exc)
            ids = []
        self.period_box.clear()
        for pid in ids:
            self.period_box.addItem(pid, pid)
        if chosen in ids:
            self.period_box.setCurrentIndex(ids.index(chosen))
        closed = self.last_closed()
        self.draw_button.setText(f"Draw {closed}" if closed and closed not in ids else "Draw")
        self.draw_button.setEnabled(bool(closed) and closed not in ids)
        self.load()

    def load(self) -> None:
        period_id = self.period_box.currentData()
        if not period_id:
            self.period, self.summary = None, None
            self.summary_label.setText("No review period has been drawn yet." if self.period_box.count() == 0 else "")
            self.table.setRowCount(0)
            self._update_buttons()
            self.loaded.emit(None)
            return
        audit = self.audit

        def op() -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
            period = audit.get_period(period_id)
            if period is None:
                raise RuntimeError(f"period {period_id} listed but not found")
            info = audit.latest_reviews(period["flagged"] + period["sample"])
            return period, periods.summary(audit, period), info

        run_task(op, self._on_loaded, parent=self)

    def _on_loaded(self, result: tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]) -> None:
        period, s, info = result
        self.period, self.summary = period, s
        signoffs = period.get("signoffs") or []
        signed = (f"Signed off by {html.escape(signoffs[-1]['auditor'])} on {html.escape(signoffs[-1]['created'][:16])}"
                  if signoffs else "Not signed off yet")
        self.summary_label.setText(
            f"<b>{html.escape(period['id'])}</b> ({html.escape(period['period_start'][:10])} to "
            f"{html.escape(period['period_end'][:10])}): {s['flagged']} flagged + {s['sampled']} sampled of "
            f"{s['population_unflagged']} unflagged turns; <b>{s['outstanding']}</b> still to review. "
            f"{signed}.<br>Estimated miss rate (any channel): {html.escape(_rate(s['miss_rate']['any']))}; "
            f"false-flag rate: {html.escape(_rate(s['false_flag_rate']['any']))}.")
        rows = [(t, "flagged by the guard") for t in period["flagged"]] + \
               [(t, "random sample of unflagged turns") for t in period["sample"]]
        self.table.setRowCount(len(rows))
        for i, (tid, why) in enumerate(rows):
            review = info.get(tid, {}).get("review")
            text = review["label"] + (f" ({review['channel']})" if review.get("channel") else "") if review \
                else "outstanding"
            for col, value in enumerate((tid, why, text)):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, tid)
                self.table.setItem(i, col, item)
        self._update_buttons()
        self.loaded.emit(s)

    def _update_buttons(self) -> None:
        has = self.period is not None
        self.report_button.setEnabled(has)
        self.signoff_button.setEnabled(has)
        self.signoff_button.setText("Sign off" if not self.summary or not self.summary["outstanding"]
                                    else f"Sign off ({self.summary['outstanding']} outstanding)")

    def _on_activated(self, item: QTableWidgetItem) -> None:
        self.open_turn.emit(str(item.data(Qt.ItemDataRole.UserRole)))

    # -- actions --------------------------------------------------------------------------------------
    def draw(self) -> None:
        period_id = self.last_closed()
        if period_id is None:
            return
        audit, size, actor, now = self.audit, self.settings().sample_size, self.reviewer, self.clock()
        self.draw_button.setEnabled(False)
        self.status.setText(f"Drawing {period_id}…")

        def done(period: dict[str, Any]) -> None:
            self.status.setText(f"Drew {period['id']}: {len(period['flagged'])} flagged + {len(period['sample'])} "
                                f"sampled (seed {period['seed'][:12]}…).")
            self.period_box.addItem(period["id"], period["id"])
            self.period_box.setCurrentIndex(self.period_box.count() - 1)
            self.refresh()

        run_task(lambda: periods.draw(audit, period_id, sample_size=size, actor=actor, now=now), done,
                 self._on_failed, parent=self)

    def open_report(self) -> None:
        if self.period is None:
            return
        audit, period_id = self.audit, self.period["id"]
        self.status.setText("Writing the report…")
        run_task(lambda: periods.write_report(periods.build_report(audit, period_id)), self._on_report,
                 self._on_failed, parent=self)

    def _on_report(self, written: tuple[Path, Path, str]) -> None:
        json_path, html_path, _digest = written
        self.status.setText(f"Report written: {html_path} (and {json_path.name})")
        open_url(html_path)
        self.report_written.emit(str(html_path))

    def sign_off(self) -> None:
        if self.period is None:
            return
        audit, period_id, auditor, note = self.audit, self.period["id"], self.reviewer, self.note.text()
        self.signoff_button.setEnabled(False)
        self.status.setText("Signing off…")

        def done(result: dict[str, Any]) -> None:
            left = f"; {counted(result['outstanding'], 'turn')} {'was' if result['outstanding'] == 1 else 'were'} still unreviewed" if result["outstanding"] else ""
            self.status.setText(f"{period_id} signed off (report sha256 {result['report_sha256'][:16]}…, kept in "
                                f"{result['html']}){left}.")
            self.note.clear()
            self.refresh()
            self.signed_off.emit(result)

        run_task(lambda: periods.sign_off(audit, period_id, auditor=auditor, note=note), done, self._on_failed,
                 parent=self)

    def _on_failed(self, exc: BaseException) -> None:
        self.status.setText("")
        self._update_buttons()
        show_error(self, exc)

    # -- reminders -----------------------------------------------------------------------------------
    def check_reminders(self) -> None:
        """The last closed period: reviews outstanding or no sign-off (draws its queue if nobody has yet)."""
        cfg = self.settings()
        if cfg.cadence not in periods.CADENCES:
            self.reminders_ready.emit([])
            return
        audit, actor, now = self.audit, self.reviewer, self.clock()

        def op() -> list[str]:
            return periods.reminders(audit, cfg.cadence, sample_size=cfg.sample_size, actor=actor, now=now)

        def failed(exc: BaseException) -> None:
            log.warning("review period reminders unavailable: %s", exc)
            self.reminders_ready.emit([])

        run_task(op, self.reminders_ready.emit, failed, parent=self)


def remind_at_start(window: Any, *, roles: Any = None, clock: Clock | None = None) -> ReminderBanner | None:
    """On app start, where this installation has auditors (an auditor passphrase is set) and periodic review
    is on: a banner above the pages when the last closed period has reviews outstanding or no sign-off,
    with the way to the audit log. The check runs off the GUI thread."""
    from r1desk.core.roles import AUDITOR, RoleStore

    cfg: ReviewPeriodSettings = window.state.settings.review_period
    store = roles if roles is not None else RoleStore()
    if cfg.cadence not in periods.CADENCES or not store.has_passphrase(AUDITOR):
        return None
    banner = ReminderBanner()
    banner.show_button.setText("Open the audit log")
    banner.show_requested.connect(lambda: window.show_view(AUDITOR))
    banner.show_requested.connect(banner.hide)
    window.add_banner(banner)
    audit, now = window.state.audit, (clock or (lambda: datetime.now(timezone.utc)))()

    def op() -> list[str]:
        notes = periods.reminders(audit, cfg.cadence, sample_size=cfg.sample_size, actor="r1desk (start-up reminder)",
                                  now=now)
        return ["For the auditor: " + " ".join(notes)] if notes else []

    def failed(exc: BaseException) -> None:
        log.warning("review period reminders unavailable at start: %s", exc)

    run_task(op, banner.show_reminders, failed, parent=window)
    return banner
