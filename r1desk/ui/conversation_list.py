"""The sidebar: New chat, search, and the list of past conversations (rename/delete from the context menu).

Display and forward only: the main window reads and changes conversations through the audit log.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import (QFrame, QInputDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QMenu, QMessageBox, QPushButton, QVBoxLayout, QWidget)

from r1desk.ui.tasks import present_dialog


@dataclass(frozen=True)
class ConversationItem:
    id: str
    title: str
    subtitle: str = ""


class ConversationList(QFrame):
    new_chat = Signal()
    selected = Signal(str)            # conversation id
    rename_requested = Signal(str, str)
    delete_requested = Signal(str)
    search_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Sidebar")
        self.setMinimumWidth(230)
        self.setMaximumWidth(320)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 14, 12, 12)
        layout.setSpacing(10)
        title = QLabel("r1desk", self)
        title.setObjectName("AppTitle")
        layout.addWidget(title)
        self.new_button = QPushButton("+  New chat", self)
        self.new_button.setProperty("primary", "true")
        self.new_button.setToolTip("New chat (Ctrl+N)")
        self.new_button.clicked.connect(lambda *_: self.new_chat.emit())
        layout.addWidget(self.new_button)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search conversations")
        self.search.setClearButtonEnabled(True)
        layout.addWidget(self.search)
        self.list = QListWidget(self)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._on_context_menu)
        self.list.itemClicked.connect(self._on_item_clicked)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        layout.addWidget(self.list, 1)
        self.empty_hint = QLabel("No conversations yet", self)
        self.empty_hint.setProperty("chip", "muted")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.empty_hint)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(200)
        self._search_timer.timeout.connect(lambda: self.search_changed.emit(self.search.text().strip()))
        self.search.textChanged.connect(self._search_timer.start)

    def set_items(self, items: list[ConversationItem], current_id: str | None = None) -> None:
        self.list.clear()
        for conv in items:
            item = QListWidgetItem(conv.title or "Untitled chat")
            item.setData(Qt.ItemDataRole.UserRole, conv.id)
            item.setToolTip(conv.subtitle or conv.title)
            self.list.addItem(item)
            if conv.id == current_id:
                item.setSelected(True)
                self.list.setCurrentItem(item)
        searching = bool(self.search.text().strip())
        self.empty_hint.setText("No matches" if searching else "No conversations yet")
        self.empty_hint.setVisible(not items)

    def select(self, conversation_id: str | None) -> None:
        self.list.clearSelection()
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == conversation_id:
                self.list.setCurrentItem(item)
                return

    def ids(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        self.selected.emit(item.data(Qt.ItemDataRole.UserRole))

    def _on_context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        menu = QMenu(self)
        rename = menu.addAction("Rename…")
        delete = menu.addAction("Delete")
        chosen = menu.exec(self.list.viewport().mapToGlobal(pos))
        if chosen is rename:
            self.ask_rename(item)
        elif chosen is delete:
            self.ask_delete(item)

    def ask_rename(self, item: QListWidgetItem) -> None:
        title, ok = QInputDialog.getText(self, "Rename conversation", "Title:", text=item.text())
        if ok and title.strip():
            self.rename_requested.emit(item.data(Qt.ItemDataRole.UserRole), title.strip())

    def ask_delete(self, item: QListWidgetItem) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, "Delete conversation",
                          f"Delete “{item.text()}” from your chat list?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setInformativeText("The audit log keeps its record of these turns, as your organisation's "
                               "policy requires.")
        if present_dialog(box) == QMessageBox.StandardButton.Yes:
            self.delete_requested.emit(item.data(Qt.ItemDataRole.UserRole))
