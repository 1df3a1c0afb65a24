"""`r1desk` with no command: the desktop app."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:                   # PySide6 and the app state load only when the GUI starts
    from PySide6.QtWidgets import QApplication

    from r1desk.ui.app_state import AppState

log = logging.getLogger("r1desk.ui")


def create_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication with r1desk's name and theme (high-DPI is on by default in Qt 6)."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from r1desk.ui import theme

    existing = QApplication.instance()
    if existing is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(argv if argv is not None else sys.argv[:1])
    elif isinstance(existing, QApplication):
        app = existing
    else:
        raise RuntimeError(f"a {type(existing).__name__} without widgets already runs in this process")
    app.setApplicationName("r1desk")
    app.setApplicationDisplayName("r1desk")
    app.setOrganizationName("r1desk")
    theme.apply(app)
    # Qt 6.5+ (PySide6 >= 6.7 is required)
    QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _scheme: theme.apply(app))
    return app


def reopen_last_model(state: AppState) -> bool:
    """Load the model used last time, if its file is still there."""
    path = state.settings.last_model_path
    if path and Path(path).is_file():
        state.load_model(path)
        return True
    return False


def run_app(argv: list[str] | None = None) -> int:
    from r1desk.errors import UserFacingError
    from r1desk.ui.app_state import AppState
    from r1desk.ui.main_window import MainWindow
    from r1desk.ui.period_panel import remind_at_start
    from r1desk.ui.roles_gate import register_part2
    from r1desk.ui.selfcheck_dialog import register_selfcheck
    from r1desk.ui.tasks import show_error, wait_for_tasks

    app = create_app(argv)
    try:
        state = AppState()
    except UserFacingError as exc:     # an unreadable settings file or audit database
        show_error(None, exc, title="r1desk cannot start")
        return exc.exit_code
    window = MainWindow(state)
    register_part2(window)             # Tools → Audit log…, Admin settings… (behind their passphrases)
    register_selfcheck(window)         # Tools → Safety self-check… (auditor or admin)
    window.show()
    remind_at_start(window)            # a review period closed with reviews outstanding (issue 16)
    window.open_last_conversation()    # where the user left off (issue 14 item 12)
    reopen_last_model(state)
    code = app.exec()
    wait_for_tasks(10000)
    return int(code)


