"""The main window: sidebar of conversations, the chat page (or the first-start empty state), menus.

Other views (the auditor browser, admin settings: issue 6) plug in through :meth:`MainWindow.add_view`
and :meth:`MainWindow.add_tool_action` under the Tools menu; this module does not know them.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QShowEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (QDialog, QDockWidget, QHBoxLayout, QLabel, QMainWindow, QMenu, QMessageBox, QPushButton,
                               QSplitter, QStackedWidget, QVBoxLayout, QWidget)

from r1desk.ui.app_state import AppState
from r1desk.ui.wording import counted
from r1desk.ui.chat_page import ChatPage
from r1desk.ui.conversation_list import ConversationItem, ConversationList
from r1desk.ui.empty_state import EmptyState
from r1desk.ui.tasks import present_dialog, show_error

log = logging.getLogger("r1desk.ui")


FRAME_ROOM = (16, 48)   # width, height a window manager may add around a window


class MainWindow(QMainWindow):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setWindowTitle("r1desk")
        self.resize(1180, 780)
        self.setMinimumSize(760, 520)
        self._fitted = False                 # shrunk to the screen at the first show (800×600 works)
        self._closing = False
        self._model_manager: Any = None

        self.sidebar = ConversationList(self)
        self.chat = ChatPage(state, self)
        self.empty = EmptyState(self)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.chat)
        self._views: dict[str, QWidget] = {"empty": self.empty, "chat": self.chat}
        self._titles: dict[str, str] = {}
        # Above every page but the chat: where you are, and the way back (Esc, Ctrl+N and the sidebar too).
        self.view_header = QWidget(self)
        self.view_header.setObjectName("ViewHeader")
        header = QHBoxLayout(self.view_header)
        header.setContentsMargins(8, 6, 8, 6)
        self.back_button = QPushButton("← Back to chat", self.view_header)
        self.back_button.setToolTip("Back to the conversation (Esc)")
        self.back_button.clicked.connect(self.show_chat)
        self.view_title = QLabel(self.view_header)
        self.view_title.setObjectName("ViewTitle")
        header.addWidget(self.back_button)
        header.addWidget(self.view_title, 1)
        self.view_header.setVisible(False)
        main = QWidget(self)
        main_layout = QVBoxLayout(main)
        main_layout.setContentsMargins(0, 0, 0, 0)
        main_layout.setSpacing(0)
        main_layout.addWidget(self.view_header)
        main_layout.addWidget(self.stack, 1)
        self._main_layout = main_layout
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.sidebar)
        splitter.addWidget(main)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([260, 920])
        splitter.setChildrenCollapsible(False)
        splitter.setHandleWidth(1)
        self.setCentralWidget(splitter)
        self._build_menus()
        self._build_shortcuts()

        self.sidebar.new_chat.connect(self.new_chat)
        self.sidebar.selected.connect(self.open_conversation)
        self.sidebar.rename_requested.connect(self._on_rename)
        self.sidebar.delete_requested.connect(self._on_delete)
        self.sidebar.search_changed.connect(self.refresh_conversations)
        self.empty.choose_model.connect(self.open_model_manager)
        self.empty.import_model.connect(lambda: self.open_model_manager(import_file=True))
        self.chat.disclosure.open_models.connect(self.open_model_manager)
        self.chat.conversation_started.connect(lambda _cid: self.refresh_conversations())
        self.chat.turn_done.connect(lambda _r: self.refresh_conversations())
        state.model_loading.connect(lambda _p: self.show_view("chat"))
        state.model_loaded.connect(lambda _i: self.show_view("chat"))
        state.model_failed.connect(self._on_model_failed)
        state.model_unloaded.connect(self._update_page)
        self._update_page()
        self.refresh_conversations()

    # -- extension points (issue 6) -------------------------------------------------------------------
    def add_view(self, name: str, widget: QWidget, title: str | None = None) -> None:
        """Add a page to the main area; :meth:`show_view` switches to it, :meth:`show_chat` back."""
        self._views[name] = widget
        self._titles[name] = title or name.replace("_", " ").capitalize()
        self.stack.addWidget(widget)

    def add_banner(self, widget: QWidget) -> None:
        """A banner above every page (e.g. the review-period reminder at start); it hides itself."""
        self._main_layout.insertWidget(0, widget)

    def show_view(self, name: str) -> None:
        widget = self._views[name]
        on_chat = name in ("chat", "empty")
        previous = self.stack.currentWidget()
        self.stack.setCurrentWidget(widget)
        self.view_header.setVisible(not on_chat)
        self.view_title.setText("" if on_chat else self._titles.get(name, name))
        if previous is not widget:
            self._focus_page(widget)

    def current_view(self) -> str:
        current = self.stack.currentWidget()
        return next((name for name, w in self._views.items() if w is current), "")

    def show_chat(self) -> None:
        """Back to the conversation (the welcome page while no model is loaded or loading)."""
        has_model = self.state.has_model or self.state.loading_path is not None
        self.show_view("chat" if has_model or self.chat.conversation_id is not None else "empty")

    def _focus_page(self, page: QWidget) -> None:
        """Keystrokes go to the page on screen, never to a hidden one (the chat box kept its focus)."""
        if page is self.chat:
            self.chat.input.focus_input()
            return
        focus = self.focusWidget()
        if focus is not None and page.isAncestorOf(focus):
            return                      # the page focused its own field when shown (the passphrase)
        if focus is not None:
            focus.clearFocus()
        widget = page.nextInFocusChain()
        while widget is not None and widget is not page:
            if (page.isAncestorOf(widget) and widget.isVisible() and widget.isEnabled()
                    and widget.focusPolicy() & Qt.FocusPolicy.TabFocus):
                widget.setFocus(Qt.FocusReason.TabFocusReason)
                return
            widget = widget.nextInFocusChain()

    def _on_escape(self) -> None:
        if self.current_view() in ("chat", "empty"):
            self.chat.stop()
        else:
            self.show_chat()

    def _focus_input(self) -> None:
        if self.current_view() not in ("chat", "empty"):
            self.show_chat()

    def add_tool_action(self, text: str, callback: Callable[[], None], shortcut: str | None = None) -> QAction:
        """A Tools menu entry (e.g. "Audit log…", "Admin settings…")."""
        action = self.tools_menu.addAction(text)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(callback)
        self.tools_menu.menuAction().setVisible(True)
        return action

    def add_dock(self, title: str, widget: QWidget,
                 area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    # -- menus and keys ---------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.new_chat_action = file_menu.addAction("New chat", self.new_chat)
        self.new_chat_action.setShortcut(QKeySequence("Ctrl+N"))
        file_menu.addAction("Import a GGUF model…", lambda: self.open_model_manager(import_file=True))
        file_menu.addSeparator()
        quit_action = file_menu.addAction("Quit", self.close)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        models = bar.addMenu("&Models")
        models.addAction("Model manager…", self.open_model_manager).setShortcut(QKeySequence("Ctrl+M"))
        models.addAction("Unload model", self.state.unload_model)
        self.view_menu: QMenu = bar.addMenu("&View")
        sidebar_action = self.view_menu.addAction("Conversations sidebar")
        sidebar_action.setCheckable(True)
        sidebar_action.setChecked(True)
        sidebar_action.toggled.connect(self.sidebar.setVisible)
        self.tools_menu: QMenu = bar.addMenu("&Tools")
        self.tools_menu.menuAction().setVisible(False)      # shown once a tool is added
        help_menu = bar.addMenu("&Help")
        help_menu.addAction("About r1desk", self._about)

    def _build_shortcuts(self) -> None:
        stop = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        stop.activated.connect(self._on_escape)
        focus = QShortcut(QKeySequence("Ctrl+L"), self)
        focus.activated.connect(self._focus_input)

    def _about(self) -> None:
        from r1desk import __version__

        box = QMessageBox(QMessageBox.Icon.Information, "About r1desk",
                          f"r1desk {__version__}\n\nDistilled DeepSeek-R1 models on your own computer, "
                          "with guardrails, language locking and an audit log.", QMessageBox.StandardButton.Ok,
                          self)
        present_dialog(box)

    # -- pages ----------------------------------------------------------------------------------------
    def _update_page(self) -> None:
        has_model = self.state.has_model or self.state.loading_path is not None
        if self.stack.currentWidget() in (self.empty, self.chat):
            self.show_view("chat" if has_model else "empty")

    def new_chat(self) -> None:
        self.chat.new_chat()
        self.sidebar.select(None)
        self.show_chat()

    def open_model_manager(self, import_file: bool = False) -> None:
        from r1desk.ui.model_manager import ModelManager

        if self._model_manager is None:
            self._model_manager = ModelManager(self.state, self)
        self._model_manager.show()
        self._model_manager.raise_()
        if import_file:
            self._model_manager.choose_file()

    def _on_model_failed(self, exc: BaseException) -> None:
        self._update_page()
        show_error(self, exc, title="Could not load the model")

    # -- conversations ----------------------------------------------------------------------------------
    def refresh_conversations(self, query: str | None = None) -> None:
        audit = self.state.audit
        if audit is None:
            return
        query = self.sidebar.search.text().strip() if query is None else query
        try:
            rows = audit.list_conversations(query=query or None, include_selfcheck=False)   # audit log keeps them
        except Exception as exc:
            log.warning("could not list conversations: %s", exc)
            return
        items = [ConversationItem(str(r["id"]), str(r.get("title") or "Untitled chat"),
                                  f"{counted(int(r.get('turns') or 0), 'turn')} · {str(r.get('updated') or '')[:16]}") for r in rows]
        self.sidebar.set_items(items, self.chat.conversation_id)

    def open_last_conversation(self) -> bool:
        """At start: reopen the most recently active conversation (False when there is none)."""
        audit = self.state.audit
        try:
            rows = audit.list_conversations(limit=1, include_selfcheck=False) if audit is not None else []
        except Exception as exc:
            log.warning("could not list conversations: %s", exc)
            return False
        if not rows:
            return False
        self.open_conversation(str(rows[0]["id"]))
        self.sidebar.select(str(rows[0]["id"]))
        return True

    def open_conversation(self, conversation_id: str) -> None:
        if conversation_id == self.chat.conversation_id:
            self.show_view("chat")      # the conversation on screen, from any other page
            return
        if self.chat.busy:
            self.chat.stop()
        audit = self.state.audit
        try:
            turns = audit.get_conversation(conversation_id)["turns"] if audit is not None else []
        except Exception as exc:
            show_error(self, exc)
            return
        self.chat.show_conversation(conversation_id, turns)
        self.show_view("chat")      # readable without a model; Send stays disabled until one is loaded

    def _on_rename(self, conversation_id: str, title: str) -> None:
        try:
            self.state.audit.rename_conversation(conversation_id, title)
        except Exception as exc:
            show_error(self, exc)
        self.refresh_conversations()

    def _on_delete(self, conversation_id: str) -> None:
        try:
            self.state.audit.delete_conversation(conversation_id)
        except Exception as exc:
            show_error(self, exc)
        if conversation_id == self.chat.conversation_id:
            self.new_chat()
        self.refresh_conversations()

    # -- closing ----------------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._fitted:
            self._fitted = True
            self._fit_screen()

    def _fit_screen(self) -> None:
        """The default size is for a laptop; on a smaller screen (800×600) start within it (not capped: the
        window may still grow on a bigger monitor)."""
        screen = self.screen()
        if screen is None:
            return
        area = screen.availableGeometry()
        # the window manager's title bar and borders come on top of the window's own size (seen under Xvfb at
        # 800×600: an 800×600 window ran 20 px off the bottom, cutting the input bar)
        if self.width() > area.width() - FRAME_ROOM[0] or self.height() > area.height() - FRAME_ROOM[1]:
            self.resize(min(self.width(), area.width()), min(self.height(), area.height()))
            self.move(area.topLeft())
            self.setWindowState(self.windowState() | Qt.WindowState.WindowMaximized)   # fitted, frame included

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Mid-answer: interrupt (the partial turn is saved as interrupted), wait for the worker, exit."""
        if not self._closing:
            self._closing = True
            if self._model_manager is not None:
                self._model_manager.shutdown()
            self.state.shutdown()
            while self.state.unsaved_error is not None:
                if ask_retry_unsaved(self, self.state.unsaved_error):
                    self.state.retry_unsaved()
                else:
                    self.state.discard_unsaved()
            for dialog in self.findChildren(QDialog):     # the model manager, the self-check: quitting closes them
                if dialog.isVisible():
                    dialog.close()
        event.accept()


def ask_retry_unsaved(parent: QWidget, error: Exception) -> bool:
    """Audit entries could not be saved anywhere (disk full): Retry (True) or Quit anyway (False)."""
    box = QMessageBox(QMessageBox.Icon.Critical, "Audit log entries not saved", str(error), parent=parent)
    box.setInformativeText("Free some disk space, then press Retry. If you quit now, these entries are lost.")
    retry = box.addButton("Retry", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Quit anyway", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(retry)
    present_dialog(box)
    return box.clickedButton() is retry
