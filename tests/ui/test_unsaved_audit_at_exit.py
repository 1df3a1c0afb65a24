"""Closing the window when no disk takes the audit writes asks the user instead of losing them."""
from __future__ import annotations

from pathlib import Path

from r1desk.settings import Settings
from r1desk.storage.auditlog import AuditLog
from r1desk.storage.pending import PendingQueue
from tests.support.locks import write_lock_held


def test_close_asks_to_free_space_and_retries_until_the_entries_are_stored(qtbot, tmp_path, monkeypatch):
    from r1desk.ui import main_window
    from r1desk.ui.app_state import AppState
    from r1desk.ui.main_window import MainWindow

    db = tmp_path / "audit.db"
    nowhere = tmp_path / "a-file"
    nowhere.write_text("not a folder")            # every spill place refuses (as a full disk would)
    monkeypatch.setattr(PendingQueue, "spill_dirs", lambda self: [(nowhere / "x", "audit.db")])
    state = AppState(settings=Settings(), engine=None, audit=AuditLog(db, busy_timeout=0.05))
    window = MainWindow(state)
    qtbot.addWidget(window)
    asked: list[str] = []
    lock = write_lock_held(db)
    lock.__enter__()

    def ask(parent, error) -> bool:
        asked.append(str(error))
        if len(asked) == 1:
            return True                            # retry while still refused: asked again
        lock.__exit__(None, None, None)            # the user freed the space
        return True

    monkeypatch.setattr(main_window, "ask_retry_unsaved", ask)
    assert state.admin_log.log_admin_event(actor="admin", action="settings.change", details={"k": 1}) is False
    window.close()
    assert len(asked) == 2 and "1 audit log entry could not be saved" in asked[0]
    assert state.unsaved_error is None
    audit = AuditLog(db)
    try:
        assert [e["actor"] for e in audit.list_admin_events(action="settings.change")] == ["admin"]
    finally:
        audit.close()
    assert not list(Path(tmp_path).glob("audit.db.pending-*"))
