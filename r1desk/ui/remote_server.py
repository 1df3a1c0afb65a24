"""The model manager's "Remote server" section: an OpenAI-compatible server's URL, API key, TLS and timeouts;
its model list; "Use this model".

The network work (listing ``/v1/models``) runs off the GUI thread (tasks.run_task) and can be cancelled:
Cancel re-enables the form at once and the late answer is dropped (the request itself is bounded by the
timeouts). Opening the model goes through the generation worker (AppState.load_backend), so it queues
behind a running turn. The API key is kept in the operating system's credential store (core.remote.
credentials) when the user asks and one exists; where none exists the section says so and the key is
used for this session only.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QVBoxLayout, QWidget)

from r1desk.core.remote import credentials
from r1desk.core.remote.backend import RemoteOptions, probe
from r1desk.core.remote.http import RemoteError, parse_endpoint
from r1desk.core.remote.server import ServerInfo, ServerModel, ignored_settings
from r1desk.ui.messages import set_chip
from r1desk.ui.tasks import run_task, show_error

log = logging.getLogger("r1desk.ui.remote")


def describe_model(info: ServerInfo, model: ServerModel) -> str:
    """What r1desk knows about a served model, in one or two lines."""
    ctx = model.context_length or model.trained_context
    bits = [f"{info.title}", f"context {ctx:,} tokens" if ctx else "context length not reported",
            "DeepSeek-R1 recipe" if model.looks_r1 else "not an R1 model by its id"]
    bits.append(f"digest {model.digest[:23]}" if model.digest else "no digest reported")
    text = " · ".join(bits)
    ignored = ignored_settings(info.server_type)
    if ignored:
        text += f"\nNot sent to this server (its defaults apply): {', '.join(ignored)}"
    return text


class RemoteServerPanel(QWidget):
    use_requested = Signal(object, object)        # core.backend.BackendConfig, settings.RemoteSettings

    def __init__(self, state: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        remote = state.settings.remote
        self._info: ServerInfo | None = None
        self._ticket = 0                          # bumps on each request and on Cancel: late answers are dropped
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.url = QLineEdit(remote.url, self)
        self.url.setPlaceholderText("http://gpu-server:8080")
        self.key = QLineEdit(self)
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("optional")
        self.remember_key = QCheckBox("Keep the key in this computer's credential store", self)
        self.key_note = QLabel(self)
        self.key_note.setWordWrap(True)
        if not credentials.store_available():
            self.remember_key.setEnabled(False)
            self.key_note.setText("This computer has no credential store, so the key is not kept: enter it "
                                  "each time (it is never written to the settings file or the log).")
            set_chip(self.key_note, "warn")
        self.verify_tls = QCheckBox("Verify the server's TLS certificate", self)
        self.verify_tls.setChecked(remote.verify_tls)
        self.connect_timeout = self._seconds(remote.connect_timeout_s, 0.5, 300.0)
        self.read_timeout = self._seconds(remote.read_timeout_s, 1.0, 3600.0)
        form.addRow("Server URL", self.url)
        form.addRow("API key", self.key)
        form.addRow("", self.remember_key)
        form.addRow("", self.key_note)
        form.addRow("", self.verify_tls)
        form.addRow("Connect timeout (s)", self.connect_timeout)
        form.addRow("Read timeout (s)", self.read_timeout)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.list_button = QPushButton("List models", self)
        self.list_button.clicked.connect(self._on_list)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._on_cancel)
        self.models = QComboBox(self)
        self.models.setMinimumWidth(260)
        self.models.currentIndexChanged.connect(self._on_model_changed)
        self.use_button = QPushButton("Use this model", self)
        self.use_button.setProperty("primary", "true")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._on_use)
        for w in (self.list_button, self.cancel_button, self.models):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(self.use_button)
        layout.addLayout(row)
        self.details = QLabel("Enter the server's URL and list its models.", self)
        self.details.setWordWrap(True)
        set_chip(self.details, "muted")
        layout.addWidget(self.details)
        layout.addStretch(1)

    def _seconds(self, value: float, lo: float, hi: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox(self)
        box.setRange(lo, hi)
        box.setDecimals(1)
        box.setValue(value)
        return box

    # -- the form ------------------------------------------------------------------------------------
    def options(self) -> RemoteOptions:
        key = self.key.text().strip() or None
        return RemoteOptions(url=self.url.text().strip(), verify_tls=self.verify_tls.isChecked(),
                             connect_timeout_s=self.connect_timeout.value(), read_timeout_s=self.read_timeout.value(),
                             api_key=credentials.Secret(key) if key else None)

    def _set_busy(self, busy: bool, text: str | None = None) -> None:
        self.list_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        if text is not None:
            self.details.setText(text)

    def _on_list(self) -> None:
        try:
            options = self.options()
            parse_endpoint(options.url)
        except RemoteError as exc:
            show_error(self, exc)
            return
        self._ticket += 1
        ticket = self._ticket
        self._set_busy(True, f"Asking {options.url} for its models…")
        run_task(lambda: probe(options), lambda info: self._on_listed(ticket, info),
                 lambda exc: self._on_list_failed(ticket, exc), parent=self)

    def _on_cancel(self) -> None:
        self._ticket += 1
        self._set_busy(False, "Cancelled.")

    def _on_listed(self, ticket: int, info: ServerInfo) -> None:
        if ticket != self._ticket:
            return
        self._set_busy(False)
        self._info = info
        self.models.clear()
        for m in info.models:
            self.models.addItem(m.id, m.id)
        saved = self.state.settings.remote.model
        index = self.models.findData(saved) if saved else -1
        self.models.setCurrentIndex(index if index >= 0 else 0)
        if not info.models:
            self.details.setText(f"{info.title} at {info.endpoint.url} serves no model.")
        self.use_button.setEnabled(bool(info.models))

    def _on_list_failed(self, ticket: int, exc: BaseException) -> None:
        if ticket != self._ticket:
            return
        self._set_busy(False, "")
        show_error(self, exc, title="The server cannot be used")

    def _on_model_changed(self) -> None:
        model = self._selected()
        if self._info is not None and model is not None:
            self.details.setText(describe_model(self._info, model))

    def _selected(self) -> ServerModel | None:
        if self._info is None:
            return None
        return self._info.find(self.models.currentData() or "")

    def _on_use(self) -> None:
        model = self._selected()
        if model is None:
            return
        options = self.options()
        if self.remember_key.isChecked() and options.api_key:
            try:
                credentials.set_api_key(parse_endpoint(options.url).url, options.api_key)
            except credentials.CredentialStoreError as exc:
                show_error(self, exc)
        remote = dataclasses.replace(self.state.settings.remote, url=parse_endpoint(options.url).url, model=model.id,
                                     verify_tls=options.verify_tls, connect_timeout_s=options.connect_timeout_s,
                                     read_timeout_s=options.read_timeout_s)
        config = remote.backend_config(self.state.settings.chat_config().generation, api_key=options.api_key)
        self.details.setText(f"Opening {model.id} on {remote.url}…")
        self.use_requested.emit(config, remote)
