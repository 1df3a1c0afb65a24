"""The model manager: the R1 catalog with what fits this machine, downloads, local import, load/unload.

Every decision (what fits, where files go, checksums, resume) belongs to core.catalog / core.hardware /
core.downloads; this dialog lists, forwards and shows progress. Downloads and validation run off the GUI
thread (tasks.run_task); loads go through the generation worker (AppState.load_model).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDropEvent
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QProgressBar, QPushButton, QTableWidget, QTableWidgetItem, QTabWidget,
                               QVBoxLayout, QWidget)

from r1desk.core.backend import ModelDescription
from r1desk.core.gguf_info import ModelInfo
from r1desk.ui import model_sources as sources
from r1desk.ui.app_state import AppState
from r1desk.ui.fit import elide, fit_to_screen
from r1desk.ui.messages import set_chip
from r1desk.ui.tasks import run_task, show_error

log = logging.getLogger("r1desk.ui.models")

CATALOG_HEADERS = {   # short headers (the name column gets the room); the tooltips say the rest
    "Model": "The model and its size in parameters (★ recommended for this computer)",
    "Quant": "Quantisation: fewer bits per weight make the file smaller and the answers a little worse",
    "File": "The download size",
    "Memory": "Memory needed to run it with the context length set by the administrator",
    "Fit": "Whether it fits this computer's free memory (or GPU memory)",
    "Speed": "Expected answer speed on this computer, from its measured memory bandwidth",
    "": "",
}
FIT_TEXT = {"fits": "✓ fits", "tight": "~ tight", "wont_fit": "✗ won't fit", "unknown": "?"}
FIT_CHIP = {"fits": "ok", "tight": "warn", "wont_fit": "danger", "unknown": "muted"}
GPU_CHOICES = [("none", "CPU only"), ("auto", "Automatic (as many layers as fit)"), ("all", "All layers on GPU")]


def human_size(n: int | float | None) -> str:
    if not n:
        return "—"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):     # one unit family, as the tooltips (core.hardware)
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit in ("B", "KiB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class _ProgressRelay(QObject):
    """Carries download progress from the download thread to the GUI thread (queued)."""

    progress = Signal(object)             # core.downloads.Progress


class DownloadRow(QWidget):
    """Progress bar, speed, time left and Cancel for one download."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        self.title = QLabel(title, self)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.detail = QLabel("starting…", self)
        self.detail.setMinimumWidth(220)
        set_chip(self.detail, "muted")
        self.cancel_button = QPushButton("Cancel", self)
        layout.addWidget(self.title)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.detail)
        layout.addWidget(self.cancel_button)
        self.cancel_event = threading.Event()
        self.cancel_button.clicked.connect(self._on_cancel)

    def update_progress(self, progress: Any) -> None:
        """A core.downloads.Progress: bytes done/total, speed, time left, phase."""
        done, total = int(progress.done or 0), int(progress.total or 0)
        if total > 0:
            self.bar.setValue(int(1000 * done / total))
        if progress.phase == "verifying":
            self.detail.setText(f"verifying checksum… {human_size(done)} of {human_size(total)}")
            return
        if progress.phase == "done":
            self.detail.setText("done")
            return
        speed = f"{human_size(progress.speed)}/s" if progress.speed else "—/s"
        self.detail.setText(f"{human_size(done)} of {human_size(total)} · {speed} · "
                            f"{human_duration(progress.eta_s)} left")

    def _on_cancel(self) -> None:
        self.cancel_event.set()
        self.cancel_button.setEnabled(False)
        self.detail.setText("cancelling…")


class DropZone(QLabel):
    dropped = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Drop a .gguf file here to import it", parent)
        self.setObjectName("DropZone")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setAcceptDrops(True)

    def _set_hover(self, hover: bool) -> None:
        self.setProperty("hover", "true" if hover else "false")
        self.style().unpolish(self)
        self.style().polish(self)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            self._set_hover(True)
            event.acceptProposedAction()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802 - Qt override
        self._set_hover(False)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self._set_hover(False)
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.dropped.emit(url.toLocalFile())
        event.acceptProposedAction()


class ModelManager(QDialog):
    imported = Signal(object)            # ModelInfo of a validated, imported file

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setWindowTitle("Models")
        self.resize(920, 600)
        self.setAcceptDrops(True)
        self._downloads: dict[str, DownloadRow] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 16, 18, 16)
        layout.setSpacing(10)
        header = QHBoxLayout()
        title = QLabel("Models", self)
        title.setObjectName("AppTitle")
        self.hardware = QLabel("Checking this computer…", self)
        set_chip(self.hardware, "muted")
        self._hardware_text = elide(self.hardware, mode=Qt.TextElideMode.ElideRight)
        header.addWidget(title)
        header.addSpacing(12)
        header.addWidget(self.hardware, 1)
        layout.addLayout(header)
        self.tabs = QTabWidget(self)
        # a long model name takes two lines, not "DeepSeek-R1 Dis…"; short headers, their meaning in tooltips
        self.catalog_table = make_table(self, list(CATALOG_HEADERS), wrap=True)
        header_tips(self.catalog_table, list(CATALOG_HEADERS.values()))
        self.local_table = self._table(["Model", "Quantisation", "Size", "File", ""])
        file_column = self.local_table.horizontalHeader()
        file_column.setSectionResizeMode(3, QHeaderView.ResizeMode.Interactive)   # not as wide as the name
        self.local_table.setColumnWidth(3, 240)
        self.local_table.setTextElideMode(Qt.TextElideMode.ElideMiddle)   # long names: "DeepSeek…Q4_K_M.gguf"
        self.tabs.addTab(self.catalog_table, "DeepSeek-R1 models")
        local_page = QWidget(self)
        local_layout = QVBoxLayout(local_page)
        local_layout.setContentsMargins(0, 0, 0, 0)
        self.local_empty = QLabel("No models on this computer yet. Download one from the DeepSeek-R1 models tab, "
                                  "or import a GGUF file you already have (Import GGUF… or drop it below).", local_page)
        self.local_empty.setWordWrap(True)
        set_chip(self.local_empty, "muted")
        self.local_empty.setVisible(False)
        local_layout.addWidget(self.local_empty)
        local_layout.addWidget(self.local_table, 1)
        self.local_page = local_page
        self.tabs.addTab(local_page, "On this computer")
        from r1desk.ui.remote_server import RemoteServerPanel

        self.remote = RemoteServerPanel(state, self)
        self.remote.use_requested.connect(lambda config, remote: state.load_backend(config, remote))
        self.tabs.addTab(self.remote, "Remote server")
        layout.addWidget(self.tabs, 1)
        from r1desk.ui.safety_models import SafetyModelsPanel    # the guard model (harm filter), issue 13

        self.safety = SafetyModelsPanel(state, self)
        self.tabs.addTab(self.safety, "Safety models")
        self.downloads_box = QVBoxLayout()
        layout.addLayout(self.downloads_box)
        self.drop_zone = DropZone(self)
        self.drop_zone.dropped.connect(self.import_file)
        layout.addWidget(self.drop_zone)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("GPU offload:", self))
        self.gpu = QComboBox(self)
        for value, text in GPU_CHOICES:
            self.gpu.addItem(text, value)
        current = str(state.settings.generation.gpu_layers)
        index = self.gpu.findData(current)
        if index >= 0:
            self.gpu.setCurrentIndex(index)
        self.gpu.currentIndexChanged.connect(self._on_gpu_changed)
        bottom.addWidget(self.gpu)
        bottom.addStretch(1)
        self.status = QLabel(self)                   # its own line: the buttons never squeeze it to "Lo"
        set_chip(self.status, "muted")
        self._status_text = elide(self.status, mode=Qt.TextElideMode.ElideRight)   # never widens the dialog
        layout.addWidget(self.status)
        self.import_button = QPushButton("Import GGUF…", self)
        self.import_button.clicked.connect(self.choose_file)
        self.unload_button = QPushButton("Unload", self)
        self.unload_button.clicked.connect(state.unload_model)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        bottom.addWidget(self.import_button)
        bottom.addWidget(self.unload_button)
        bottom.addWidget(close)
        layout.addLayout(bottom)
        state.model_loading.connect(lambda p: self._set_status(f"Loading {Path(p).name}…"))
        state.model_loaded.connect(self._on_loaded)
        state.model_failed.connect(lambda _e: self._set_status(""))
        state.model_unloaded.connect(self._on_unloaded)
        self.refresh()

    def _table(self, headers: list[str]) -> QTableWidget:
        return make_table(self, headers)

    # -- listing ------------------------------------------------------------------------------------
    def refresh(self) -> None:
        n_ctx = self.state.settings.generation.n_ctx
        run_task(lambda: sources.machine_and_catalog(n_ctx), self._fill_catalog, self._on_catalog_failed, parent=self)
        self.refresh_local()

    def refresh_local(self) -> None:
        run_task(sources.local_models, self._fill_local, parent=self)

    def _on_catalog_failed(self, exc: BaseException) -> None:
        self._hardware_text.set_text(f"Model catalog unavailable: {exc}")

    def _fill_catalog(self, result: tuple[Any, list[sources.CatalogRow]]) -> None:
        machine, rows = result
        self._hardware_text.set_text(sources.describe_machine(machine))
        table = self.catalog_table
        table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            title = QTableWidgetItem(("★ " if row.recommended else "") + row.title)
            if row.recommended:
                title.setToolTip("Recommended for this computer: the largest model that fits and runs at a "
                                 "usable speed")
            table.setItem(i, 0, title)
            table.setItem(i, 1, QTableWidgetItem(row.quant))
            table.setItem(i, 2, QTableWidgetItem(human_size(row.size_bytes)))
            table.setItem(i, 3, QTableWidgetItem(human_size(row.memory_bytes)))
            fit = QLabel(FIT_TEXT.get(row.fit, row.fit), table)
            fit.setToolTip(row.fit_reason)
            set_chip(fit, FIT_CHIP.get(row.fit, "muted"))
            table.setCellWidget(i, 4, _centered(fit))
            speed = QTableWidgetItem(row.speed)
            speed.setToolTip(row.speed_reason)
            table.setItem(i, 5, speed)
            if row.local_path:
                button = QPushButton("Load", table)
                button.clicked.connect(lambda _c=False, p=row.local_path: self.load(p))
            else:
                button = QPushButton("Resume download" if row.partial else "Download", table)
                button.setProperty("primary", "true" if row.recommended else "false")
                button.clicked.connect(lambda _c=False, r=row: self.download(r))
            table.setCellWidget(i, 6, _centered(button))
        fix_button_column(table, 6, ("Load", "Download", "Resume download" if any(r.partial for r in rows) else ""))

    def _fill_local(self, models: list[ModelInfo]) -> None:
        table = self.local_table
        table.setRowCount(len(models))
        self.local_empty.setVisible(not models)
        loaded = self.state.model_info.path if self.state.model_info is not None else None
        for i, info in enumerate(models):
            name = QTableWidgetItem(info.shown_name)
            name.setToolTip(info.name if info.name != info.shown_name else info.shown_name)
            table.setItem(i, 0, name)
            table.setItem(i, 1, QTableWidgetItem(info.quantization or "—"))
            table.setItem(i, 2, QTableWidgetItem(human_size(info.size_bytes)))
            path = str(info.path)
            item = QTableWidgetItem(Path(path).name)
            item.setToolTip(path)
            table.setItem(i, 3, item)
            if loaded is not None and str(loaded) == path:
                button = QPushButton("Loaded", table)
                button.setEnabled(False)
            else:
                button = QPushButton("Load", table)
                button.setProperty("primary", "true")
                button.clicked.connect(lambda _c=False, p=path: self.load(p))
            table.setCellWidget(i, 4, _centered(button))
        fix_button_column(table, 4, ("Load", "Loaded"))

    # -- actions ------------------------------------------------------------------------------------
    def load(self, path: str) -> None:
        self.state.load_model(path, gpu_layers=self.gpu.currentData())

    def choose_file(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Import a GGUF model", str(Path.home()),
                                                    "GGUF models (*.gguf);;All files (*)")
        if path:
            self.import_file(path)

    def import_file(self, path: str) -> None:
        """Validate (off the GUI thread) before listing; a bad file gets a clear dialog."""
        self._set_status(f"Checking {Path(path).name}…")
        run_task(lambda: sources.import_model(path), self._on_imported, self._on_import_failed, parent=self)

    def _on_imported(self, info: ModelInfo) -> None:
        self._set_status(f"Imported {info.shown_name}")
        self.imported.emit(info)
        self.refresh_local()
        self.tabs.setCurrentWidget(self.local_page)
        self.load(str(info.path))

    def _on_import_failed(self, exc: BaseException) -> None:
        self._set_status("")
        show_error(self, exc, title="This file cannot be used")

    def download(self, row: sources.CatalogRow) -> None:
        if row.key in self._downloads:
            return
        line = DownloadRow(f"{row.title} {row.quant}", self)
        self._downloads[row.key] = line
        self.downloads_box.addWidget(line)
        relay = _ProgressRelay(line)
        relay.progress.connect(line.update_progress)

        def op() -> Any:
            return sources.download(row, progress=lambda p: relay.progress.emit(p), cancel=line.cancel_event)

        def finished(path: Any) -> None:
            self._remove_download(row.key)
            if line.cancel_event.is_set():
                self._set_status("Download cancelled — it resumes where it stopped next time")
                return
            self._set_status(f"Downloaded {row.title}")
            self.refresh()
            if path:
                self.load(str(path))

        def failed(exc: BaseException) -> None:
            self._remove_download(row.key)
            if line.cancel_event.is_set():
                self._set_status("Download cancelled — it resumes where it stopped next time")
                return
            show_error(self, exc, title="Download failed")

        run_task(op, finished, failed, parent=self)

    def _remove_download(self, key: str) -> None:
        line = self._downloads.pop(key, None)
        if line is not None:
            line.setParent(None)
            line.deleteLater()

    def shutdown(self) -> None:
        """App closing: cancel downloads (they resume next time)."""
        for line in self._downloads.values():
            line.cancel_event.set()
        self.safety.shutdown()

    def _on_gpu_changed(self) -> None:
        try:
            self.state.set_gpu_layers(self.gpu.currentData())
        except Exception as exc:
            show_error(self, exc)
        else:
            self._set_status("GPU offload applies the next time a model is loaded")

    def _on_unloaded(self) -> None:
        self._set_status("Model unloaded")
        self.refresh_local()

    def _on_loaded(self, info: ModelInfo | ModelDescription) -> None:
        self._set_status(f"Loaded {model_title(info)}")
        self.refresh_local()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override: never larger than the screen
        super().showEvent(event)
        fit_to_screen(self)

    def _set_status(self, text: str) -> None:
        self._status_text.set_text(text)

    # Dropping anywhere on the dialog imports too.
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        self.drop_zone.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self.drop_zone.dropEvent(event)


def header_tips(table: QTableWidget, tips: list[str]) -> None:
    for col, tip in enumerate(tips):
        item = table.horizontalHeaderItem(col)
        if item is not None:
            item.setToolTip(tip)


def model_title(info: ModelInfo | ModelDescription) -> str:
    """What a loaded model is called: a file's shown name, a server's model id."""
    return info.shown_name if isinstance(info, ModelInfo) else info.name


def fix_button_column(table: QTableWidget, column: int, labels: tuple[str, ...]) -> None:
    """Every button in ``column`` as wide as the widest of ``labels``, and the column wide enough for it, so
    a label that changes ("Load" → "Loaded") is never clipped and the column never jumps."""
    width = 0
    for label in filter(None, labels):
        for primary in ("true", "false"):          # the primary style is bold: measure both
            probe = QPushButton(label, table)
            probe.setProperty("primary", primary)
            probe.ensurePolished()
            width = max(width, probe.sizeHint().width())
            probe.deleteLater()
    for row in range(table.rowCount()):
        box = table.cellWidget(row, column)
        button = box.findChild(QPushButton) if box is not None else None
        if button is not None:
            width = max(width, button.sizeHint().width())
    for row in range(table.rowCount()):
        box = table.cellWidget(row, column)
        button = box.findChild(QPushButton) if box is not None else None
        if button is not None:
            button.setFixedWidth(width)
    table.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
    table.setColumnWidth(column, width + 2 * _CELL_MARGIN + 4)


_CELL_MARGIN = 6


def _centered(widget: QWidget) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(_CELL_MARGIN, 3, _CELL_MARGIN, 3)
    layout.addWidget(widget)
    layout.addStretch(1)
    return box


def make_table(parent: QWidget, headers: list[str], *, wrap: bool = False) -> QTableWidget:
    """A read-only table of rows, first column stretching: the model manager's and the safety models' lists.
    ``wrap``: a long first-column name takes two lines instead of being elided (catalog lists)."""
    table = QTableWidget(0, len(headers), parent)
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.setShowGrid(False)
    table.setAlternatingRowColors(False)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    for col in range(1, len(headers)):
        table.horizontalHeader().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
    table.verticalHeader().setDefaultSectionSize(46 if wrap else 40)
    table.setWordWrap(wrap)
    if wrap:
        table.setTextElideMode(Qt.TextElideMode.ElideNone)
        table.horizontalHeader().setMinimumSectionSize(40)
    return table
