"""The auditor's table of turns: a lazy QAbstractTableModel over AuditLog searches.

Rows are fetched a page at a time (``canFetchMore``/``fetchMore``) as the view scrolls, so a log of
100k turns opens as fast as one of ten. The order comes from the audit log: by severity (blocked,
flagged, language mixing, the rest; newest first within each) or newest first.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from r1desk.storage.auditlog import AuditLog
from r1desk.storage.queries import TurnFilters
from r1desk.ui import theme

log = logging.getLogger("r1desk.ui")

PAGE = 200
QUEUE_ORDERS = ("severity", "useful")   # the orders ``AuditLog.review_queue`` knows
COLUMNS = ("Severity", "When", "Prompt", "Answer", "Status", "Reviewed", "Model")
SEVERITY_TEXT = {3: "Blocked", 2: "Flagged", 1: "Mixed language", 0: "—"}
SEVERITY_COLORS = {3: ("#c92a2a", "#fff0f0"), 2: ("#b35c00", "#fff1dc"), 1: ("#6741d9", "#f3f0ff")}
TurnIdRole = Qt.ItemDataRole.UserRole + 1
RowRole = Qt.ItemDataRole.UserRole + 2

_Index = QModelIndex | QPersistentModelIndex


class TurnTableModel(QAbstractTableModel):
    """Summary rows of the turns matching ``query`` and ``filters``, loaded page by page."""

    def __init__(self, audit: AuditLog, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.audit = audit
        self.query = ""
        self.filters = TurnFilters()
        self.order = "severity"
        self._rows: list[dict[str, Any]] = []
        self._exhausted = True

    # -- what to show ------------------------------------------------------------------------------
    def set_query(self, query: str, filters: TurnFilters, order: str = "severity") -> None:
        self.query, self.filters, self.order = query.strip(), replace(filters), order
        self.reload()

    def reload(self) -> None:
        self.beginResetModel()
        self._rows = []
        self._exhausted = False
        self.endResetModel()
        self.fetchMore(QModelIndex())

    def _page(self, offset: int) -> list[dict[str, Any]]:
        if self.order in QUEUE_ORDERS and not self.query and self.filters == TurnFilters(reviewed=False):
            # the review queue, as the log orders it (by severity, or most useful to review first)
            return self.audit.review_queue(limit=PAGE, offset=offset, order=self.order)
        # "most useful" ranks the whole unreviewed queue; with a search or other filters, by severity
        order = "severity" if self.order == "useful" else self.order
        return self.audit.search(self.query or None, self.filters, limit=PAGE, offset=offset, order=order)

    @property
    def useful_applies(self) -> bool:
        """Whether the "most useful" order is in force (the plain review queue), not the severity fallback."""
        return self.order == "useful" and not self.query and self.filters == TurnFilters(reviewed=False)

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: N802 - Qt override
        return not parent.isValid() and not self._exhausted

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: N802 - Qt override
        if parent.isValid() or self._exhausted:
            return
        rows = self._page(len(self._rows))
        if len(rows) < PAGE:
            self._exhausted = True
        if rows:
            self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows) + len(rows) - 1)
            self._rows.extend(rows)
            self.endInsertRows()

    def fetch_all(self) -> None:
        while self.canFetchMore():
            self.fetchMore()

    # -- access ------------------------------------------------------------------------------------
    def row_at(self, row: int) -> dict[str, Any]:
        return self._rows[row]

    def turn_id(self, row: int) -> str:
        return str(self._rows[row]["id"])

    def row_of(self, turn_id: str) -> int:
        for i, r in enumerate(self._rows):
            if r["id"] == turn_id:
                return i
        return -1

    def mark_reviewed(self, turn_id: str) -> None:
        row = self.row_of(turn_id)
        if row >= 0:
            self._rows[row]["reviewed"] = 1
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def remove_turn(self, turn_id: str) -> int:
        """Take a turn out of the list (reviewed while the review queue is shown); returns its row, or -1."""
        row = self.row_of(turn_id)
        if row >= 0:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._rows[row]
            self.endRemoveRows()
        return row

    # -- Qt model ----------------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802 - Qt override
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802 - Qt override
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt override
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        col = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(row, col)
        if role == Qt.ItemDataRole.ToolTipRole and col == "Severity" and row.get("useful_reasons"):
            return "Useful to review: " + "; ".join(str(r) for r in row["useful_reasons"])
        if role == Qt.ItemDataRole.ToolTipRole and col in ("Prompt", "Answer"):
            return row.get("snippet") or row.get("prompt" if col == "Prompt" else "answer_preview")
        if role == TurnIdRole:
            return row["id"]
        if role == RowRole:
            return row
        sev = int(row.get("severity") or 0)
        if col == "Severity" and sev in SEVERITY_COLORS:
            fg, bg = SEVERITY_COLORS[sev]
            if theme.current().dark:
                fg, bg = bg, fg
            if role == Qt.ItemDataRole.ForegroundRole:
                return QBrush(QColor(fg))
            if role == Qt.ItemDataRole.BackgroundRole:
                return QBrush(QColor(bg))
            if role == Qt.ItemDataRole.FontRole:
                font = QFont()
                font.setBold(True)
                return font
        if role == Qt.ItemDataRole.ForegroundRole and col in ("When", "Model", "Answer", "Reviewed"):
            return QBrush(QColor(theme.current().muted))
        return None


def _display(row: dict[str, Any], col: str) -> str:
    if col == "Severity":
        return SEVERITY_TEXT.get(int(row.get("severity") or 0), "—")
    if col == "When":
        stamp = str(row.get("created") or "")
        return stamp[:16].replace("T", " ")
    if col == "Status":
        return str(row.get("status") or "")
    if col == "Model":
        return str(row.get("model_name") or "")
    if col == "Prompt":
        return " ".join(str(row.get("prompt") or "").split())
    if col == "Answer":
        return " ".join(str(row.get("answer_preview") or "").split())
    if col == "Reviewed":
        return "✓ reviewed" if row.get("reviewed") else ""
    return ""
