"""Issue 14 item 4: missing classifier weights — one banner per app run with Download (size) and Import
files…, the same controls in Admin → Classifiers, with progress and Cancel; no per-answer CLI notice."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from r1desk.core import events as ev
from r1desk.ui.weights_panel import Installer, WeightsPanel

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")


class FakeInstaller:
    """Scripted: ``missing`` until installed; the download reports progress and can wait for a gate."""

    def __init__(self) -> None:
        self.missing_types = ["original"]
        self.gate = threading.Event()
        self.gate.set()
        self.downloads: list[str] = []
        self.imports: list[tuple[str, Path, Path]] = []

    def installer(self) -> Installer:
        return Installer(missing=lambda: list(self.missing_types), download=self.download,
                         import_files=self.import_files)

    def download(self, model_type, progress) -> None:
        self.downloads.append(model_type)
        for done in range(0, 101, 10):
            progress("checkpoint.ckpt", done * 2**20, 100 * 2**20)
            if done == 50:
                self.gate.wait(30)
        self.missing_types = []

    def import_files(self, model_type, checkpoint, config_dir) -> None:
        self.imports.append((model_type, checkpoint, config_dir))
        self.missing_types = []


def test_download_shows_size_progress_and_installs(qtbot):
    fake = FakeInstaller()
    panel = WeightsPanel(fake.installer())
    qtbot.addWidget(panel)
    panel.show()
    assert panel.download_button.text() == "Download (about 420 MB)"
    assert panel.import_button.isVisible() and "r1desk classify" not in panel.message.text()
    with qtbot.waitSignal(panel.installed, timeout=10000):
        panel.download_button.click()
    assert fake.downloads == ["original"]
    assert not panel.download_button.isVisible() and not panel.progress.isVisible()
    assert "installed" in panel.message.text()


def test_cancel_stops_the_download(qtbot):
    fake = FakeInstaller()
    fake.gate.clear()
    panel = WeightsPanel(fake.installer())
    qtbot.addWidget(panel)
    panel.show()
    panel.download_button.click()
    qtbot.waitUntil(lambda: panel.progress.value() >= 500)        # halfway, on the GUI thread's progress bar
    assert panel.cancel_button.isVisible() and "MB of" in panel.progress.format()
    panel.cancel_button.click()
    fake.gate.set()
    qtbot.waitUntil(lambda: not panel.busy)
    assert "cancelled" in panel.message.text().lower()
    assert fake.missing_types == ["original"] and panel.download_button.isVisible()


def test_import_files_installs(qtbot, tmp_path):
    fake = FakeInstaller()
    panel = WeightsPanel(fake.installer())
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.installed, timeout=10000):
        panel.import_files("original", tmp_path / "x.ckpt", tmp_path)
    assert fake.imports == [("original", tmp_path / "x.ckpt", tmp_path)]


def test_chat_shows_one_banner_per_run_instead_of_a_notice_per_answer(qtbot, make_window, monkeypatch):
    window = make_window()
    page = window.chat
    fake = FakeInstaller()
    page.weights_banner.installer = fake.installer()
    page._current = page.view.add_exchange("hi", "collapsed")
    notice = ev.Notice("classifier_unavailable", "Toxicity filter unavailable: weights missing")
    page._on_notice(notice)
    assert not page.weights_banner.isHidden()
    assert not page._current.findChildren(type(page._current.status), "NoticeBox")
    page.weights_banner.close_button.click()
    page._current = page.view.add_exchange("again", "collapsed")
    page._on_notice(notice)
    assert page.weights_banner.isHidden()               # hidden for the rest of this run
    # installed weights: the guard is loaded again
    reloads: list[int] = []
    monkeypatch.setattr(window.state, "reload_guard", lambda: reloads.append(1))
    page.weights_banner.setVisible(True)
    with qtbot.waitSignal(page.weights_banner.installed, timeout=10000):
        page.weights_banner.download_button.click()
    assert reloads == [1] and page.weights_banner.isHidden()


def test_admin_classifiers_tab_has_the_same_controls(qtbot):
    from r1desk.ui.admin_view import AdminView

    view = AdminView()
    qtbot.addWidget(view)
    index = next(i for i in range(view.tabs.count()) if view.tabs.tabText(i) == "Classifiers")
    view.tabs.setCurrentIndex(index)
    view.show()
    assert view.tabs.widget(index).isAncestorOf(view.weights)
    assert view.weights.download_button.isVisible() and view.weights.import_button.isVisible()
    assert view.weights.download_button.text().startswith("Download (about")
