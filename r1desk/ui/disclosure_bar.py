"""The strip above the chat: which model answers, that answers are AI-generated, and the guard status.

The guard status comes from ``ChatSession.guard_status`` (core.guard GuardStatus); this module only
words it for people, and fails closed: a filter that is missing or in any state but "active" is a warning.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from r1desk.core.backend import ModelDescription
from r1desk.core.gguf_info import ModelInfo, shown_text
from r1desk.core.guard.classifier import State
from r1desk.core.guard.status import GuardStatus

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QPushButton, QSizePolicy, QWidget

from r1desk.ui.messages import set_chip



def describe_guard_status(status: GuardStatus | None) -> tuple[str, str, str]:
    """(short text, chip kind, tooltip) for the guard's status. Fails closed: "all filters active" only when
    at least one content filter is listed and every listed one says exactly "active"."""
    if status is None:
        return "Guard: starting…", "muted", "The content filters are being loaded."
    others_active = {n for n, st in status.classifiers.items() if st.state is State.ACTIVE}
    problems = [f"{st.title.lower()} {st.state.value}"
                # "— toxicity only" is true only while another filter is active
                + (f" — {st.message}" if st.state is State.NOT_INSTALLED and st.message and others_active else "")
                for st in status.classifiers.values() if st.state is not State.ACTIVE]
    if not status.classifiers:
        problems.append("no content filter")
    if status.language == "unavailable":
        problems.append("language check unavailable")
    elif status.language not in ("active", "off"):
        problems.append(f"language check {status.language}")
    tip_lines = [status.summary(), *status.messages]
    if status.coverage_limited:
        tip_lines.append("Scores are less reliable for: " + ", ".join(status.coverage_limited))
    tip = "\n".join(tip_lines)
    if problems:
        content_down = (not status.classifiers
                        or any(st.state in (State.UNAVAILABLE, State.DISABLED) for st in status.classifiers.values())
                        or all(st.state is not State.ACTIVE for st in status.classifiers.values()))
        return "⚠ Guard: " + "; ".join(problems), "danger" if content_down else "warn", tip
    return "✓ Guard: all filters active", "ok", tip


class DisclosureBar(QFrame):
    open_models = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DisclosureBar")
        # Two lines, each wrapping, so all of it stays readable at 800×600 (issue 14 item 9): the model, the
        # guard and Models… on the first; the AI disclosure under them.
        layout = QGridLayout(self)
        layout.setContentsMargins(20, 6, 14, 6)
        layout.setHorizontalSpacing(12)
        layout.setVerticalSpacing(2)
        self.model_name = QLabel("No model loaded", self)
        self.model_name.setObjectName("ModelName")
        self.ai_notice = QLabel("Answers are AI-generated and may be inaccurate", self)
        self.guard = QLabel(self)
        for label in (self.model_name, self.ai_notice, self.guard):
            label.setWordWrap(True)
            label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.change_model = QPushButton("Models…", self)
        self.change_model.setToolTip("Open the model manager")
        self.change_model.clicked.connect(lambda *_: self.open_models.emit())
        layout.addWidget(self.model_name, 0, 0)
        layout.addWidget(self.guard, 0, 1)
        layout.addWidget(self.change_model, 0, 2)
        layout.addWidget(self.ai_notice, 1, 0, 1, 3)
        layout.setColumnStretch(0, 3)
        layout.setColumnStretch(1, 2)
        self.set_guard_status(None)

    def set_model(self, info: ModelInfo | ModelDescription | None) -> None:
        """A local file's ModelInfo, or a backend's ModelDescription (a remote server is named)."""
        if info is None:
            self.model_name.setText("No model loaded")
            self.model_name.setToolTip("")
            return
        endpoint = info.identity.endpoint if isinstance(info, ModelDescription) else None
        if isinstance(info, ModelDescription) and endpoint:
            ident = info.identity
            server = str(info.details.get("server") or "server")
            host = urlsplit(endpoint).netloc
            self.model_name.setText(f"● {shown_text(info.name, 60)}  ·  on {server} {host}")
            tip = [f"Remote server: {ident.endpoint}", f"Model: {ident.model_id}",
                   f"Digest: {ident.digest or 'not reported by the server'}",
                   "The prompt and the reply go over the network to this server; the guard and the audit "
                   "log stay on this computer."]
            if not info.details.get("tls_verified"):
                tip.append("The connection is not TLS-verified.")
            self.model_name.setToolTip("\n".join(tip))
            return
        if isinstance(info, ModelDescription):
            self.model_name.setText(f"● {info.name}" + (f"  ·  {info.quantization}" if info.quantization else ""))
            self.model_name.setToolTip(info.identity.model_id)
            return
        quant = info.quantization
        self.model_name.setText(f"● {info.shown_name}" + (f"  ·  {quant}" if quant else ""))
        self.model_name.setToolTip(str(info.path))

    def set_guard_status(self, status: GuardStatus | None) -> None:
        text, kind, tip = describe_guard_status(status)
        self.guard.setText(text)
        self.guard.setToolTip(tip)
        set_chip(self.guard, kind)
