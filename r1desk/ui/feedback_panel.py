"""Admin → Classifiers: the classifier trained on the auditors' reviews (issue 16). Train (off the GUI
thread, with its steps shown and Cancel), import labelled CSV/JSONL examples, the versions with their held-out
metrics and live agreement, and Enable / Disable / Roll back.

The work is the CLI's: :mod:`r1desk.core.feedback.versions` trains and lists, :mod:`r1desk.feedback_admin`
enables, disables, rolls back and imports, writing the same ``classifier.*`` admin events. The panel sits in
the admin view, so it is behind the admin passphrase like ``r1desk guard`` is.
"""
from __future__ import annotations

import html
import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QProgressBar, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from r1desk import feedback_admin
from r1desk.core.feedback import versions
from r1desk.errors import UserFacingError
from r1desk.settings import Settings, SettingsStore
from r1desk.ui.tasks import run_task, show_error
from r1desk.ui.fit import ReflowGrid

log = logging.getLogger("r1desk.ui")

COLUMNS = ("Version", "Trained", "Examples (train / held-out)", "Macro F1", "Can be enabled", "Live flags confirmed",
           "In use")


class FeedbackLog:
    """Admin events go where the admin view writes them (the app's write-behind queue); reads come from
    the audit log. This is what ``feedback_admin`` and ``versions.train_version`` are given."""

    def __init__(self, events: Any, reads: Any) -> None:
        self.events = events
        self.reads = reads

    def log_admin_event(self, *, actor: str, action: str, details: dict[str, Any] | None = None) -> int:
        return int(self.events.log_admin_event(actor=actor, action=action, details=details))

    def list_admin_events(self, *, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
        return list(self.reads.list_admin_events(limit=limit, action=action))

    def training_turns(self, *, weak_thumbs: bool = True) -> list[dict[str, Any]]:
        return list(self.reads.training_turns(weak_thumbs=weak_thumbs))

    def guard_outcomes(self, turn_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        return dict(self.reads.guard_outcomes(turn_ids))

    def live_agreement(self) -> dict[str, dict[str, Any]]:
        return dict(self.reads.live_agreement())


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}"


def live_text(live: dict[str, Any] | None) -> str:
    if not live:
        return "no live flags yet"
    if not live.get("reviewed_later"):
        return f"{live['flagged_turns']} flagged, none reviewed yet"
    return (f"{live['confirmed']} of {live['reviewed_later']} ({live['agreement']:.0%}); "
            f"{live['flagged_turns']} flagged")


def describe_html(v: versions.Version, live: dict[str, Any] | None) -> str:
    """Per-label precision/recall/F1, the held-out size, the comparison with the running classifiers,
    live agreement and, for a version that cannot be enabled, why."""
    ev, meta = v.evaluation or {}, v.meta
    counts = meta.get("counts") or {}
    parts = [f"<b>{html.escape(v.name)}</b> — trained {html.escape(str(meta.get('created', '?')))}; "
             f"{ev.get('test_examples', 0)} held-out examples from "
             f"{(counts.get('conversations') or {}).get('test', 0)} conversations (split by conversation)"]
    rows = "".join(f"<tr><td>{html.escape(lb)}</td><td>{_num(m.get('precision'))}</td><td>{_num(m.get('recall'))}"
                   f"</td><td>{_num(m.get('f1'))}</td><td>{m.get('support', 0)}</td></tr>"
                   for lb, m in (ev.get("per_label") or {}).items())
    if rows:
        parts.append("<table cellspacing=0 cellpadding=3><tr><th align=left>label</th><th>precision</th>"
                     f"<th>recall</th><th>F1</th><th>held-out</th></tr>{rows}</table>")
    comp = ev.get("comparison") or {}
    if comp.get("feedback"):
        parts.append(f"On {comp['turns']} held-out turns from the log, finding problem turns: this classifier F1 "
                     f"{_num(comp['feedback']['f1'])}, the running classifiers F1 {_num(comp['guard']['f1'])}, "
                     f"both together F1 {_num(comp['combined']['f1'])}. Caught only by this one: "
                     f"{comp['caught_only_by_feedback']}; only by the running ones: {comp['caught_only_by_guard']}.")
    else:
        parts.append("No held-out turns from the audit log (imported examples only): no comparison with the "
                     "running classifiers yet.")
    parts.append("Live flags later reviewed: " + html.escape(live_text(live)))
    if not v.eligible:
        parts.append("<b>Cannot be enabled:</b> " + html.escape("; ".join(v.problems)))
    return "<br>".join(parts)


class _Progress(QObject):
    """Carries the training steps from the worker thread to the GUI thread (a queued signal)."""
    step = Signal(str)


class FeedbackPanel(QGroupBox):
    """The feedback classifier's versions and controls. ``settings_changed(Settings)`` after Enable,
    Disable or Roll back (already saved and logged), so the admin view and the chat pick it up."""

    settings_changed = Signal(object)
    trained = Signal(str)          # the new version
    imported = Signal(int)         # examples kept
    busy_changed = Signal(bool)

    def __init__(self, *, events: Any, reads: Any, settings_path: Path | None = None, actor: str = "admin",
                 parent: QWidget | None = None) -> None:
        super().__init__("Classifier trained on reviews (feedback loop)", parent)
        self.setObjectName("FeedbackPanel")
        self.log = FeedbackLog(events, reads) if events is not None and reads is not None else None
        self.settings_path = settings_path
        self.actor = actor
        self.versions: list[versions.Version] = []
        self.live: dict[str, dict[str, Any]] = {}
        self._cancel: threading.Event | None = None
        self._progress = _Progress(self)
        self._progress.step.connect(self._on_step)

        hint = QLabel("A fastText classifier learnt from the auditors' reviews (and examples you import). Each "
                      "training run is a new version, evaluated on conversations it never saw. A version can be "
                      f"enabled when every label has at least {versions.MIN_TRAIN_PER_LABEL} training and "
                      f"{versions.MIN_TEST_PER_LABEL} held-out examples.")
        hint.setObjectName("GroupHint")
        hint.setWordWrap(True)
        self.current_label = QLabel("")
        self.train_button = QPushButton("Train new version")
        self.import_button = QPushButton("Import examples…")
        self.import_button.setToolTip("A CSV or JSONL file of labelled examples (text, label, channel), e.g. your "
                                      "organisation's policy examples; kept for every later training")
        self.enable_button = QPushButton("Enable selected")
        self.disable_button = QPushButton("Disable")
        self.rollback_button = QPushButton("Roll back")
        self.rollback_button.setToolTip("Go back to the version in use before the current one")
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setVisible(False)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.status = QLabel("")
        self.status.setObjectName("SaveStatus")
        self.status.setWordWrap(True)
        actions = ReflowGrid(max_columns=5, spacing=6, fill=True)     # wraps on a narrow page, never cut off
        for b in (self.train_button, self.import_button, self.enable_button, self.disable_button,
                  self.rollback_button):
            actions.add(b)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.cancel_button)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(120)
        self.details = QLabel("")
        self.details.setObjectName("FeedbackDetails")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.current_label)
        layout.addWidget(actions)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.table)
        layout.addWidget(self.details)
        self.train_button.clicked.connect(self.train)
        self.import_button.clicked.connect(self.choose_import)
        self.enable_button.clicked.connect(self.enable_selected)
        self.disable_button.clicked.connect(self.disable)
        self.rollback_button.clicked.connect(self.rollback)
        self.cancel_button.clicked.connect(self.cancel)
        self.table.itemSelectionChanged.connect(self._on_selection)
        if self.log is None:
            self.status.setText("The audit log is not open here: the feedback classifier cannot be changed.")
        self.refresh()

    # -- state -------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._cancel is not None

    def _store(self) -> SettingsStore:
        return SettingsStore(self.settings_path)

    def enabled_version(self) -> str | None:
        try:
            return feedback_admin.current(self._store())
        except UserFacingError:
            return None

    def refresh(self) -> None:
        """Read the versions (small JSON files) and their live agreement (one query)."""
        selected = self.selected_version()
        self.versions = versions.list_versions()
        try:
            self.live = self.log.live_agreement() if self.log is not None else {}
        except Exception as exc:  # noqa: BLE001 - the list still shows; say why the live column is empty
            log.warning("live agreement unavailable: %s", exc)
            self.live = {}
        enabled = self.enabled_version()
        self.current_label.setText(f"In use: <b>{html.escape(enabled)}</b>" if enabled
                                   else "In use: none (the guard does not use a feedback classifier)")
        self.table.setRowCount(len(self.versions))
        for row, v in enumerate(reversed(self.versions)):       # newest first
            counts = v.meta.get("counts") or {}
            train_n = sum((counts.get("train") or {}).values())
            cells = (v.name, str(v.meta.get("created", "?"))[:16].replace("T", " "),
                     f"{train_n} / {(v.evaluation or {}).get('test_examples', 0)}",
                     _num((v.evaluation or {}).get("macro_f1")), "yes" if v.eligible else "no",
                     live_text(self.live.get(versions.model_name(v.name))), "✓" if v.name == enabled else "")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, v.name)
                if col == 4 and not v.eligible:
                    item.setToolTip("; ".join(v.problems))
                self.table.setItem(row, col, item)
        names = [v.name for v in reversed(self.versions)]
        if names:
            self.table.selectRow(names.index(selected) if selected in names else 0)
        else:
            self.details.setText("No version trained yet. Review turns in the audit log or import labelled "
                                 "examples, then train.")
        self._update_buttons()

    def selected_version(self) -> str | None:
        items = self.table.selectedItems()
        return str(items[0].data(Qt.ItemDataRole.UserRole)) if items else None

    def _version(self, name: str | None) -> versions.Version | None:
        return next((v for v in self.versions if v.name == name), None)

    def _on_selection(self) -> None:
        v = self._version(self.selected_version())
        if v is not None:
            self.details.setText(describe_html(v, self.live.get(versions.model_name(v.name))))
        self._update_buttons()

    def _update_buttons(self) -> None:
        ready = self.log is not None and not self.busy
        enabled = self.enabled_version()
        self.train_button.setEnabled(not self.busy)
        self.import_button.setEnabled(ready)
        self.enable_button.setEnabled(ready and self.selected_version() is not None
                                      and self.selected_version() != enabled)
        self.disable_button.setEnabled(ready and enabled is not None)
        self.rollback_button.setEnabled(ready)
        self.progress.setVisible(self.busy)
        self.cancel_button.setVisible(self.busy)

    def _set_busy(self, cancel: threading.Event | None) -> None:
        self._cancel = cancel
        self._update_buttons()
        self.busy_changed.emit(self.busy)

    # -- training -----------------------------------------------------------------------------------
    def train(self) -> None:
        if self.busy:
            return
        cancel = threading.Event()
        self._set_busy(cancel)
        self.status.setText("Training: starting…")
        feedback_log, actor, progress = self.log, self.actor, self._progress

        def op() -> versions.Version:
            return versions.train_version(feedback_log, actor=actor, progress=progress.step.emit, cancel=cancel)

        run_task(op, self._on_trained, self._on_train_failed, parent=self)

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.status.setText("Cancelling: stopping after the current step (nothing will be written)…")

    def _on_step(self, step: str) -> None:
        if self.busy and not (self._cancel is not None and self._cancel.is_set()):
            self.status.setText(f"Training: {step}…")

    def _on_trained(self, version: versions.Version) -> None:
        self._set_busy(None)
        f1 = (version.evaluation or {}).get("macro_f1")
        verdict = "it can be enabled." if version.eligible else \
            "it cannot be enabled: " + "; ".join(version.problems) + "."
        self.status.setText(f"Trained {version.name} (macro F1 {_num(f1)} on held-out conversations); {verdict}")
        self.refresh()
        self.trained.emit(version.name)

    def _on_train_failed(self, exc: BaseException) -> None:
        self._set_busy(None)
        if isinstance(exc, versions.TrainingCancelled):
            self.status.setText(str(exc))
            return
        self.status.setText("Not trained: " + str(exc))
        show_error(self, exc, title="Training failed")

    # -- imports ------------------------------------------------------------------------------------
    def choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import labelled examples", str(Path.home()),
                                              "Labelled examples (*.csv *.jsonl *.json)")
        if path:
            self.import_file(Path(path))

    def import_file(self, path: Path) -> None:
        if self.log is None or self.busy:
            return
        self._set_busy(threading.Event())
        self.status.setText(f"Importing {path.name}…")
        feedback_log, actor = self.log, self.actor
        run_task(lambda: feedback_admin.import_examples(feedback_log, path, actor=actor),
                 self._on_imported, self._on_import_failed, parent=self)

    def _on_imported(self, result: tuple[Path, list[Any], list[str]]) -> None:
        self._set_busy(None)
        _dest, examples, problems = result
        skipped = f"; {len(problems)} line(s) skipped: " + "; ".join(problems[:3]) if problems else ""
        self.status.setText(f"Imported {len(examples)} examples; they are used from the next training{skipped}")
        self.imported.emit(len(examples))

    def _on_import_failed(self, exc: BaseException) -> None:
        self._set_busy(None)
        self.status.setText("Not imported: " + str(exc))
        show_error(self, exc, title="Examples not imported")

    # -- enable / disable / roll back --------------------------------------------------------------------
    def enable_selected(self) -> bool:
        name = self.selected_version()
        return name is not None and self._change("enable", name)

    def disable(self) -> bool:
        return self._change("disable")

    def rollback(self) -> bool:
        return self._change("rollback")

    def _change(self, what: str, version: str | None = None) -> bool:
        """Through ``feedback_admin`` (the CLI's code and admin events). A refusal is said in plain words."""
        if self.log is None:
            return False
        store = self._store()
        try:
            old, new = feedback_admin.change(store, self.log, what, version=version, actor=self.actor)
        except (UserFacingError, OSError) as exc:
            self.status.setText("Not changed: " + str(exc))
            show_error(self, exc, title="Feedback classifier not changed")
            return False
        self.status.setText(f"Feedback classifier: {old or 'off'} → {new or 'off'} (from the next turn; "
                            "recorded in the audit log).")
        self.refresh()
        settings: Settings = store.current
        self.settings_changed.emit(settings)
        return True
