"""Missing classifier weights: what is missing and the two ways to get them — "Download (size)" and "Import
files…" — with progress and Cancel. One widget, shown in the chat's banner (once per app run) and in
Admin → Classifiers. The work is :mod:`r1desk.core.guard.weights`, run off the GUI thread (``run_task``).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QToolButton,
                               QVBoxLayout, QWidget)

from r1desk.errors import UserFacingError
from r1desk.ui.tasks import error_text, run_task

log = logging.getLogger("r1desk.ui")

# Approximate download sizes of Detoxify's checkpoints (the release files), shown on the button.
DOWNLOAD_MB = {"original": 420, "unbiased": 480, "multilingual": 1100, "original-small": 50, "unbiased-small": 50}


class DownloadCancelled(UserFacingError):
    """The user pressed Cancel during a download."""


@dataclass
class Installer:
    """What the panel calls (tests pass fakes): missing() -> model types to install; download(type, progress)
    and import_files(type, checkpoint, config_dir) install one, ``progress(what, done, total)``."""
    missing: Callable[[], list[str]]
    download: Callable[[str, Callable[[str, int, int | None], None]], Any]
    import_files: Callable[[str, Path, Path], Any]


def default_installer(model_types: Callable[[], Sequence[str]]) -> Installer:
    from r1desk.core.guard import weights

    def missing() -> list[str]:
        return [t for t in dict.fromkeys(model_types()) if not weights.status(t).installed]

    return Installer(missing=missing,
                     download=lambda t, progress: weights.download_weights(t, progress=progress),
                     import_files=lambda t, ckpt, cfg: weights.import_weights(t, ckpt, cfg, convert=True))


def configured_types(settings: Any) -> list[str]:
    """The Detoxify model types the settings use (the multilingual one too, when switched on)."""
    types = [settings.guard.model_type]
    if settings.guard.multilingual:
        types.append("multilingual")
    return types


class _Progress(QObject):
    """Carries progress from the download thread to the GUI thread (a queued signal)."""
    changed = Signal(str, object, object)


class WeightsPanel(QFrame):
    """Missing weights, Download / Import files…, progress and Cancel. ``installed`` after a success."""

    installed = Signal()
    dismissed = Signal()

    def __init__(self, installer: Installer, parent: QWidget | None = None, *, dismissable: bool = False) -> None:
        super().__init__(parent)
        self.setObjectName("WeightsPanel")
        self.installer = installer
        self._cancel: threading.Event | None = None
        self._progress = _Progress(self)
        self._progress.changed.connect(self._on_progress)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(12, 8, 12, 8)
        outer.setSpacing(6)
        top = QHBoxLayout()
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        top.addWidget(self.message, 1)
        self.close_button = QToolButton(self)
        self.close_button.setText("✕")
        self.close_button.setToolTip("Hide until the next start")
        self.close_button.setAccessibleName("Hide")
        self.close_button.setVisible(dismissable)
        self.close_button.clicked.connect(self._on_dismiss)
        top.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        outer.addLayout(top)
        row = QHBoxLayout()
        self.download_button = QPushButton("Download", self)
        self.download_button.setProperty("primary", "true")
        self.import_button = QPushButton("Import files…", self)
        self.import_button.setToolTip("Install a Detoxify checkpoint (.ckpt) and a folder with its base model's "
                                      "config and tokenizer files, e.g. copied from another computer")
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setVisible(False)
        row.addWidget(self.download_button)
        row.addWidget(self.import_button)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        row.addStretch(0)
        outer.addLayout(row)
        self.download_button.clicked.connect(self.download)
        self.import_button.clicked.connect(self.choose_files)
        self.cancel_button.clicked.connect(self.cancel)
        self.refresh()

    # -- state --------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._cancel is not None

    def refresh(self) -> list[str]:
        """Re-read what is missing; returns it (empty: all installed)."""
        try:
            missing = self.installer.missing()
        except Exception as exc:          # an unreadable classifiers folder: say so, offer the controls
            log.warning("could not check the classifier weights: %s", exc)
            missing = []
            self.message.setText(f"Could not check the classifier weights: {exc}")
        self._missing = missing
        if missing:
            size = sum(DOWNLOAD_MB.get(t, 0) for t in missing)
            names = ", ".join(f"“{t}”" for t in missing)
            self.message.setText(
                f"The toxicity filter is off: its model weights ({names}) are not installed on this computer. "
                "Download them once, or import files you already have.")
            self.download_button.setText(f"Download (about {_size(size)})" if size else "Download")
        elif not self.busy:
            self.message.setText("The toxicity filter's weights are installed.")
        self._update_buttons()
        return missing

    def _update_buttons(self) -> None:
        busy = self.busy
        self.download_button.setVisible(bool(self._missing) and not busy)
        self.import_button.setVisible(bool(self._missing) and not busy)
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)

    # -- actions ------------------------------------------------------------------------------------
    def download(self) -> None:
        if self.busy or not self._missing:
            return
        cancel = self._cancel = threading.Event()
        types = list(self._missing)
        self.progress.setRange(0, 0)
        self.message.setText("Downloading the toxicity filter's weights…")
        self._update_buttons()

        def progress(what: str, done: int, total: int | None) -> None:
            if cancel.is_set():
                raise DownloadCancelled("Download cancelled.")
            self._progress.changed.emit(what, done, total)

        def op() -> None:
            for model_type in types:
                if cancel.is_set():
                    raise DownloadCancelled("Download cancelled.")
                self.installer.download(model_type, progress)

        run_task(op, self._on_done, self._on_failed, parent=self)

    def choose_files(self) -> None:
        if self.busy or not self._missing:
            return
        model_type = self._missing[0]
        ckpt, _ = QFileDialog.getOpenFileName(self, f"Detoxify “{model_type}” checkpoint", "",
                                              "Checkpoints (*.ckpt *.pt *.pth);;All files (*)")
        if not ckpt:
            return
        config_dir = QFileDialog.getExistingDirectory(
            self, "Folder with the base model's config.json and tokenizer files", str(Path(ckpt).parent))
        if config_dir:
            self.import_files(model_type, Path(ckpt), Path(config_dir))

    def import_files(self, model_type: str, checkpoint: Path, config_dir: Path) -> None:
        self._cancel = threading.Event()
        self.progress.setRange(0, 0)
        self.message.setText(f"Importing {checkpoint.name}…")
        self._update_buttons()
        run_task(lambda: self.installer.import_files(model_type, checkpoint, config_dir), self._on_done,
                 self._on_failed, parent=self)

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.cancel_button.setEnabled(False)
            self.message.setText("Cancelling…")

    def _on_dismiss(self) -> None:
        self.hide()
        self.dismissed.emit()

    # -- results ------------------------------------------------------------------------------------
    def _on_progress(self, what: str, done: Any, total: Any) -> None:
        if self._cancel is None or self._cancel.is_set():
            return
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.progress.setFormat(f"{what}: {_size(done / 2**20)} of {_size(total / 2**20)}")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(what)

    def _finish(self) -> None:
        self._cancel = None
        self.cancel_button.setEnabled(True)

    def _on_done(self, _result: Any) -> None:
        self._finish()
        if not self.refresh():
            self.installed.emit()

    def _on_failed(self, exc: BaseException) -> None:
        cancelled = isinstance(exc, DownloadCancelled)
        self._finish()
        self.refresh()
        if cancelled:
            self.message.setText("Download cancelled. " + self.message.text())
        else:
            message, _details = error_text(exc)
            self.message.setText(f"{message}\n{self.message.text()}")


def _size(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"
