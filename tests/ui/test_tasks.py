"""Background work whose window was closed and deleted meanwhile: the result is dropped, never shown on a
deleted widget (seen as 'Internal C++ object already deleted' errors when a slow catalog fill outlived
its model manager)."""
from __future__ import annotations

import threading

import shiboken6
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication, QLabel


def test_a_result_for_a_deleted_window_is_dropped(qtbot, captured_dialogs):
    from r1desk.ui.tasks import run_task, wait_for_tasks

    label = QLabel("waiting")
    release, seen = threading.Event(), []
    run_task(lambda: release.wait(10) and "done", lambda result: seen.append(label.setText(result)),
             lambda exc: seen.append(exc), parent=label)
    label.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)   # the window is gone now
    assert not shiboken6.isValid(label)
    release.set()
    assert wait_for_tasks(10000)
    QApplication.processEvents()                  # deliver the queued callback
    assert seen == [] and captured_dialogs == []
