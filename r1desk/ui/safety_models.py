"""The model manager's "Safety models" tab: the guard model that the harm filter runs (issue 13).

Lists each guard-model profile's catalog (size — marked when it is an estimate —, fit for this computer,
licence with a link), downloads (progress, resume, checksum, Cancel) and imports guard GGUFs, and
chooses the one in use with its threads and GPU offload. Files, fit and checks are
``core.guard.harm.install``'s; the choice is an admin settings change made by ``r1desk.guard_admin``
behind the admin passphrase (the same lock panel as Admin settings) and recorded as a
``settings.change`` admin event. The chat session picks it up on its next turn; the guard is preloaded on
the generation worker so the disclosure bar shows the harm filter's real state.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QDialog, QFileDialog, QHBoxLayout, QLabel, QMessageBox, QPushButton, QSpinBox,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from r1desk.core.guard.harm import install
from r1desk.core.roles import ADMIN, RELOCK_AFTER_S, IdleLock, RoleStore
from r1desk.ui.lock_dialog import LockPanel
from r1desk.ui.messages import set_chip
from r1desk.ui.model_manager import (FIT_CHIP, FIT_TEXT, DownloadRow, _centered, _ProgressRelay, human_size,
                                     fix_button_column, header_tips, make_table)
from r1desk.ui.roles_gate import admin_events, apply_settings
from r1desk.ui.tasks import present_dialog, run_task, show_error

log = logging.getLogger("r1desk.ui.models")

_FIT_KEY = {"fits": "fits", "tight": "tight", "won't fit": "wont_fit"}


@dataclass(frozen=True)
class OfferRow:
    offer: install.GuardOffer
    fit: str                 # fits | tight | wont_fit
    memory_bytes: int
    local_path: str | None
    partial: bool


def _listing(n_ctx: int) -> tuple[Any, list[OfferRow], list[install.InstalledGuard]]:
    """Off the GUI thread: this machine, the catalog with fit labels, the installed guard models."""
    from r1desk.core import hardware

    hw = hardware.detect()
    rows = [OfferRow(o, _FIT_KEY.get(install.fit(o, hw, n_ctx), "wont_fit"), o.memory_needed(n_ctx),
                     str(o.local_path) if o.local_path else None, o.partial) for o in install.offers()]
    return hw, rows, install.installed()


def _alive(widget: QWidget, callback: Any) -> Any:
    """``callback`` unless ``widget`` was deleted by the time the generation worker reports (a closed dialog).
    ``run_task(parent=...)`` does this itself; the worker's relay has no parent, because its success callback
    must still update the app state."""
    def call(value: Any) -> None:
        if shiboken6.isValid(widget):
            callback(value)
    return call


def confirm(parent: QWidget, title: str, text: str) -> bool:
    """Ask yes/no (one place, so tests answer instead of blocking)."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, parent)
    return present_dialog(box) == QMessageBox.StandardButton.Yes


class AdminUnlockDialog(QDialog):
    """The admin passphrase (or, on first use, setting it) before a guard-model settings change."""

    def __init__(self, store: RoleStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Admin passphrase")
        self.setMinimumSize(520, 380)
        intro = QLabel("Choosing the guard model is an admin setting. Unlock with the admin passphrase.")
        intro.setWordWrap(True)
        self.panel = LockPanel(ADMIN, store, self)
        self.panel.unlocked.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.panel, 1)


class SafetyModelsPanel(QWidget):
    """See the module docstring. ``changed`` carries the new Settings after a saved change."""

    changed = Signal(object)

    def __init__(self, state: Any, parent: QWidget | None = None, *, store: RoleStore | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.events = admin_events(state)
        self.store = store or RoleStore(audit=getattr(self.events, "log_admin_event", None))
        self.idle = IdleLock(RELOCK_AFTER_S)
        self.idle.lock()
        self.unlock_dialog: AdminUnlockDialog | None = None
        self._downloads: dict[str, DownloadRow] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.catalog_table = make_table(self, ["Guard model", "Quant", "File", "Fit", "Licence", ""], wrap=True)
        header_tips(self.catalog_table, ["The guard model and its size", "Quantisation", "The download size",
                                         "Whether it fits beside the chat model in this computer's memory",
                                         "The model's licence (read it before use)", ""])
        layout.addWidget(self.catalog_table, 3)
        installed_title = QLabel("Guard models on this computer", self)
        installed_title.setObjectName("SectionTitle")
        layout.addWidget(installed_title)
        self.installed_table = make_table(self, ["Model", "Type", "Size", "File", "", ""])
        layout.addWidget(self.installed_table, 2)
        self.downloads_box = QVBoxLayout()
        layout.addLayout(self.downloads_box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Threads:", self))
        self.threads = QSpinBox(self)
        self.threads.setRange(1, 256)
        self.threads.setToolTip("CPU threads for the guard model; it shares the cores with the chat model")
        row.addWidget(self.threads)
        row.addWidget(QLabel("GPU layers:", self))
        self.gpu_layers = QSpinBox(self)
        self.gpu_layers.setRange(-1, 1000)
        self.gpu_layers.setSpecialValueText("all")          # -1
        self.gpu_layers.setToolTip("Layers of the guard model offloaded to the GPU (all, or 0 for CPU only)")
        row.addWidget(self.gpu_layers)
        self.apply_button = QPushButton("Apply", self)
        self.apply_button.clicked.connect(self.apply_options)
        row.addWidget(self.apply_button)
        row.addStretch(1)
        self.import_button = QPushButton("Import guard GGUF…", self)
        self.import_button.clicked.connect(self.choose_file)
        self.off_button = QPushButton("Turn harm filter off", self)
        self.off_button.clicked.connect(self.turn_off)
        row.addWidget(self.import_button)
        row.addWidget(self.off_button)
        layout.addLayout(row)
        self._load_options()
        self._show_state()
        self.refresh()

    # -- listing ------------------------------------------------------------------------------------
    @property
    def settings(self) -> Any:
        return self.state.settings

    def refresh(self) -> None:
        n_ctx = install.DEFAULT_CONTEXT
        run_task(lambda: _listing(n_ctx), self._fill, self._on_listing_failed, parent=self)  # dropped if closed

    def _on_listing_failed(self, exc: BaseException) -> None:
        self.status.setText(f"Guard-model catalog unavailable: {exc}")

    def _fill(self, result: tuple[Any, list[OfferRow], list[install.InstalledGuard]]) -> None:
        _hw, rows, present = result
        table = self.catalog_table
        table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            e = row.offer.entry
            name = QTableWidgetItem(e.label.rsplit(" · ", 1)[0])     # the quantisation has its own column
            name.setToolTip(e.label + (f"\n{e.note}" if e.note else "") + f"\nfrom {e.source_repo}")
            table.setItem(i, 0, name)
            table.setItem(i, 1, QTableWidgetItem(e.quant))
            size = QTableWidgetItem(f"~{human_size(e.approx_bytes)}" if e.size_is_estimate
                                    else human_size(e.approx_bytes))
            if e.size_is_estimate:
                size.setToolTip("An estimate: the repository does not state the file's size")
            table.setItem(i, 2, size)
            fit = QLabel(FIT_TEXT.get(row.fit, row.fit), table)
            fit.setToolTip(f"Needs about {row.memory_bytes / 2**30:.1f} GiB (estimated) beside the chat model")
            set_chip(fit, FIT_CHIP.get(row.fit, "muted"))
            table.setCellWidget(i, 3, _centered(fit))
            licence = QLabel(f'<a href="{row.offer.profile.licence_url}">{row.offer.profile.licence}</a>', table)
            licence.setOpenExternalLinks(True)
            licence.setToolTip(row.offer.profile.licence_url)
            table.setCellWidget(i, 4, _centered(licence))
            if row.local_path:
                button = QPushButton("Use", table)
                button.clicked.connect(lambda _c=False, p=row.local_path: self.use(p))
            elif row.offer.downloadable:
                button = QPushButton("Resume download" if row.partial else "Download", table)
                button.clicked.connect(lambda _c=False, r=row: self.download(r))
            else:
                button = QPushButton("Import…", table)
                button.setToolTip(e.note or "no public GGUF: convert it with llama.cpp and import the file")
                button.clicked.connect(self.choose_file)
            button.setObjectName(f"offer-{row.offer.id}")
            table.setCellWidget(i, 5, _centered(button))
        fix_button_column(table, 5, ("Use", "Download"))
        self._fill_installed(present)

    def _fill_installed(self, present: list[install.InstalledGuard]) -> None:
        from r1desk.guard_admin import in_use

        table = self.installed_table
        table.setRowCount(len(present))
        for i, guard in enumerate(present):
            name = QTableWidgetItem(guard.info.shown_name)
            name.setToolTip(guard.info.name)
            table.setItem(i, 0, name)
            table.setItem(i, 1, QTableWidgetItem(guard.profile.name))
            table.setItem(i, 2, QTableWidgetItem(human_size(guard.info.size_bytes)))
            item = QTableWidgetItem(guard.path.name)
            item.setToolTip(str(guard.path))
            table.setItem(i, 3, item)
            active = in_use(self.settings, guard.path)
            use = QPushButton("In use" if active else "Use", table)
            use.setEnabled(not active)
            use.setProperty("primary", "false" if active else "true")
            use.clicked.connect(lambda _c=False, p=str(guard.path): self.use(p))
            table.setCellWidget(i, 4, _centered(use))
            remove = QPushButton("Remove", table)
            remove.setEnabled(not active)
            remove.setToolTip("In use: turn the harm filter off first" if active else "Delete this file")
            remove.clicked.connect(lambda _c=False, p=str(guard.path): self.remove(p))
            table.setCellWidget(i, 5, _centered(remove))

    def _load_options(self) -> None:
        self.threads.setValue(int(self.settings.guard.harm_threads))
        self.gpu_layers.setValue(int(self.settings.guard.harm_gpu_layers))

    def _show_state(self, message: str = "") -> None:
        current = self.settings.guard.harm_model
        if current:
            text = f"Harm filter: {Path(current).name}"
            status = getattr(self.state, "guard_status", None)
            harm = status.classifiers.get("harm") if status is not None else None
            if harm is not None:
                text += f" — {harm.state.value}" + (f": {harm.message}" if harm.message and
                                                    harm.state.value != "active" else "")
            kind = "ok" if harm is not None and harm.state.value == "active" else "muted"
        else:
            text, kind = "Harm filter not installed — toxicity only. Download or import a guard model.", "warn"
        self.status.setText(text + (f"  ·  {message}" if message else ""))
        set_chip(self.status, kind)

    # -- files --------------------------------------------------------------------------------------
    def choose_file(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Import a guard model", str(Path.home()),
                                                    "GGUF models (*.gguf);;All files (*)")
        if path:
            self.import_file(path)

    def import_file(self, path: str) -> None:
        """Check (off the GUI thread) that it is a supported guard model; a refused file gets one dialog."""
        self._show_state(f"Checking {Path(path).name}…")
        run_task(lambda: install.import_file(path), self._on_imported, self._on_import_failed, parent=self)

    def _on_imported(self, guard: install.InstalledGuard) -> None:
        self._show_state(f"Imported {guard.info.shown_name} ({guard.profile.name}) — press Use to make it the harm filter")
        self.refresh()

    def _on_import_failed(self, exc: BaseException) -> None:
        self._show_state()
        show_error(self, exc, title="Not a supported guard model")

    def download(self, row: OfferRow) -> None:
        key = row.offer.id
        if key in self._downloads:
            return
        line = DownloadRow(row.offer.entry.label, self)
        self._downloads[key] = line
        self.downloads_box.addWidget(line)
        relay = _ProgressRelay(line)
        relay.progress.connect(line.update_progress)

        def op() -> install.InstalledGuard:
            return install.download(row.offer, progress=relay.progress.emit, cancel=line.cancel_event)

        def finished(guard: install.InstalledGuard) -> None:
            self._remove_download(key)
            self._show_state(f"Downloaded {guard.path.name} — press Use to make it the harm filter")
            self.refresh()

        def failed(exc: BaseException) -> None:
            self._remove_download(key)
            if line.cancel_event.is_set():
                self._show_state("Download cancelled — it resumes where it stopped next time")
                self.refresh()
                return
            show_error(self, exc, title="Download failed")
            self.refresh()

        run_task(op, finished, failed, parent=self)

    def _remove_download(self, key: str) -> None:
        line = self._downloads.pop(key, None)
        if line is not None:
            line.setParent(None)
            line.deleteLater()

    def remove(self, path: str) -> None:
        if not confirm(self, "Remove guard model", f"Delete {Path(path).name} from this computer?"):
            return
        try:
            install.remove(path)
        except Exception as exc:  # noqa: BLE001 - shown to the user (a plain message for UserFacingError)
            show_error(self, exc, title="Not removed")
            return
        self._show_state(f"Removed {Path(path).name}")
        self.refresh()

    def shutdown(self) -> None:
        """The manager is closing: cancel downloads (they resume next time)."""
        for line in self._downloads.values():
            line.cancel_event.set()

    # -- admin settings -----------------------------------------------------------------------------
    def use(self, path: str) -> None:
        """Make ``path`` the harm filter's guard model (admin), with the threads and GPU layers shown."""
        self._as_admin(lambda: self._change(model=path, threads=self.threads.value(),
                                            gpu_layers=self.gpu_layers.value()))

    def turn_off(self) -> None:
        self._as_admin(lambda: self._change(model=None))

    def apply_options(self) -> None:
        self._as_admin(lambda: self._change(threads=self.threads.value(), gpu_layers=self.gpu_layers.value()))

    def _as_admin(self, action: Any) -> None:
        """Run ``action`` once the admin passphrase is given (kept unlocked until idle, as the admin view)."""
        if not self.idle.locked:
            self.idle.touch()
            action()
            return
        dialog = AdminUnlockDialog(self.store, self)
        self.unlock_dialog = dialog

        def unlocked() -> None:
            self.idle.unlock()
            self.unlock_dialog = None
            action()

        dialog.accepted.connect(unlocked)
        dialog.rejected.connect(lambda: setattr(self, "unlock_dialog", None))
        dialog.open()

    def _change(self, **changes: Any) -> None:
        from r1desk.guard_admin import change

        try:
            new, diff = change(self.settings, self.events, actor=ADMIN, **changes)
        except Exception as exc:  # noqa: BLE001 - not a guard model, a site-locked key, a full disk: shown
            title = "Not a supported guard model" if "model" in changes and changes["model"] else "Not saved"
            show_error(self, exc, title=title)
            return
        if not diff:
            self._show_state("Nothing changed")
            return
        apply_settings(self.state, new)
        self._load_options()
        self._show_state(f"Saved {len(diff)} change(s); checking the guard model…")
        self.changed.emit(new)
        self.refresh()
        self._preload_guard()

    def _preload_guard(self) -> None:
        """Load the (new) classifiers on the generation worker and show their real state."""
        session = getattr(self.state, "session", None)
        if session is None:
            self._show_state("It is used from the next chat.")
            return
        self.state.worker.submit(session.guard.preload, self._on_guard_ready, _alive(self, self._on_guard_failed))

    def _on_guard_ready(self, status: Any) -> None:
        self.state.guard_status = status
        self.state.guard_status_changed.emit(status)
        if shiboken6.isValid(self):
            self._show_state()

    def _on_guard_failed(self, exc: BaseException) -> None:
        self._show_state()
        show_error(self, exc, title="The guard model could not be loaded")
