"""Admin settings: the guard policy with a live preview, generation defaults and the other settings
(generated from the settings model), passphrases, and policy import/export.

Saving validates everything first (``settings_from_dict``; an invalid value shows a message and
nothing is written), writes the file, records every changed key (old → new) in the audit log as one
``settings.change`` admin event, and hands the new Settings to ``settings_saved`` listeners (the chat
session's ``update_settings``) so the next turn uses them.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QMessageBox, QPushButton, QTabWidget, QVBoxLayout, QWidget)

from r1desk import settings as settings_mod
from r1desk.core.roles import ADMIN, AUDITOR, RoleStore
from r1desk.errors import UserFacingError
from r1desk.core.guard.classifier import REGISTRY, Classifier
from r1desk.settings import Settings, settings_diff, settings_from_dict
from r1desk.ui import theme
from r1desk.ui.admin_form import SettingsForm
from r1desk.ui.admin_policy import PolicyEditor, PreviewBox
from r1desk.ui.fit import ResponsiveSplitter, vertical_scroll
from r1desk.ui.tasks import show_error

log = logging.getLogger("r1desk.ui")


def default_classifiers(settings: Settings) -> list[Classifier]:
    """The classifiers the chat would use (loaded lazily, off the GUI thread, by the preview)."""
    return REGISTRY.build(settings.guard_config())




POLICY_SIDE_BY_SIDE_PX = 1150    # the preview's table needs ~450 px beside the rules' ~600


class AdminView(QWidget):
    settings_saved = Signal(object)   # the new Settings, after a successful save
    weights_installed = Signal()      # classifier weights were installed from Admin → Classifiers

    def __init__(self, *, audit: Any = None, settings: Settings | None = None, settings_path: Path | None = None,
                 roles: RoleStore | None = None, classifiers_factory: Callable[[], list[Classifier]] | None = None,
                 actor: str = ADMIN, audit_reads: Any = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.audit = audit
        self.actor = actor
        self.settings_path = settings_path
        self.settings = settings if settings is not None else settings_mod.load_settings(settings_path)
        self.roles = roles or RoleStore(audit=getattr(audit, "log_admin_event", None))
        self.locked = {k for k in settings_mod.locked_keys() if k}   # (no site file yields {''})
        values = self.settings.to_dict()

        # -- policy tab
        self.policy_editor = PolicyEditor(values["guard"], self.locked)
        factory = classifiers_factory or (lambda: default_classifiers(self.settings))
        self.preview = PreviewBox(self.policy_editor.policy, factory)
        self.policy_editor.changed.connect(self._on_changed)
        self.policy_editor.changed.connect(self.preview.redecide)
        policy_page = ResponsiveSplitter(POLICY_SIDE_BY_SIDE_PX, stacked_second=230)   # preview below the rules when narrow
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(12, 8, 12, 8)
        head = QLabel("Thresholds and actions per channel")
        head.setObjectName("SectionTitle")
        left_layout.addWidget(head)
        left_layout.addWidget(self.policy_editor, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(12, 8, 12, 8)
        right_layout.addWidget(self.preview)
        policy_page.addWidget(left)
        policy_page.addWidget(right)
        policy_page.setSizes([760, 560])
        self.policy_page = policy_page

        # -- generated settings tabs
        self.general_form = SettingsForm(values, self.locked,
                                         only_groups=("generation", "", "language", "preamble"))
        self.guard_form = SettingsForm(values, self.locked, only_groups=("guard",))
        self.review_form = SettingsForm(values, self.locked, only_groups=("review_period",))
        for form in (self.general_form, self.guard_form, self.review_form):
            form.changed.connect(self._on_changed)
        self.editors = {**self.general_form.editors, **self.guard_form.editors, **self.review_form.editors}

        self.tabs = QTabWidget()
        self.tabs.addTab(policy_page, "Guard policy")
        self.tabs.addTab(vertical_scroll(self.general_form), "Generation and language")
        from r1desk.ui.weights_panel import WeightsPanel, configured_types, default_installer

        self.weights = WeightsPanel(default_installer(lambda: configured_types(self.settings)))
        self.weights.installed.connect(self.weights_installed)
        classifiers_page = QWidget()
        classifiers_layout = QVBoxLayout(classifiers_page)
        classifiers_layout.setContentsMargins(0, 0, 0, 0)
        classifiers_layout.addWidget(self.weights)
        from r1desk.ui.feedback_panel import FeedbackPanel

        self.feedback = FeedbackPanel(events=audit, reads=audit_reads if audit_reads is not None else audit,
                                      settings_path=settings_path, actor=actor)
        self.feedback.settings_changed.connect(self._on_feedback_changed)
        classifiers_body = QWidget()
        body_layout = QVBoxLayout(classifiers_body)
        body_layout.setContentsMargins(12, 8, 12, 0)
        body_layout.addWidget(self.feedback)
        body_layout.addWidget(self.guard_form, 1)
        classifiers_layout.addWidget(vertical_scroll(classifiers_body), 1)
        self.tabs.addTab(classifiers_page, "Classifiers")
        self.tabs.addTab(vertical_scroll(self.review_form), "Periodic review")
        self.tabs.addTab(self._roles_page(), "Passphrases")

        # -- bottom bar
        title = QLabel("Admin settings")
        title.setObjectName("ViewTitle")
        self.lock_note = QLabel("")
        self.lock_note.setObjectName("LockNote")
        if self.locked:
            self.lock_note.setText(f"{len(self.locked)} setting(s) are set by your organisation's site policy "
                                   f"({settings_mod.site_policy_path()}) and are read-only.")
        self.status = QLabel("")
        self.status.setObjectName("SaveStatus")
        self.import_button = QPushButton("Import policy…")
        self.export_button = QPushButton("Export policy…")
        self.revert_button = QPushButton("Revert")
        self.save_button = QPushButton("Save")
        self.save_button.setProperty("primary", True)
        self.save_button.setShortcut("Ctrl+S")
        self.import_button.clicked.connect(self.import_policy)
        self.export_button.clicked.connect(self.export_policy)
        self.revert_button.clicked.connect(self.revert)
        self.save_button.clicked.connect(self.save)
        top = QHBoxLayout()
        top.setContentsMargins(12, 10, 12, 0)
        top.addWidget(title)
        top.addSpacing(12)
        top.addWidget(self.lock_note, 1)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(12, 6, 12, 10)
        bottom.addWidget(self.status, 1)
        for b in (self.import_button, self.export_button, self.revert_button, self.save_button):
            bottom.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(bottom)
        self.setStyleSheet(_style())
        self._dirty = False
        self._update_buttons()

    # -- passphrases -----------------------------------------------------------------------------------
    def _roles_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(12, 10, 12, 10)
        self.pass_fields: dict[str, dict[str, QLineEdit]] = {}
        for role, title, needs_current in ((ADMIN, "Change the admin passphrase", True),
                                           (AUDITOR, "Set a new auditor passphrase", False)):
            box = QGroupBox(title)
            form = QFormLayout(box)
            fields: dict[str, QLineEdit] = {}
            names = (("current", "Current passphrase"),) if needs_current else ()
            for name, text in names + (("new", "New passphrase"), ("confirm", "Repeat it")):
                edit = QLineEdit()
                edit.setEchoMode(QLineEdit.EchoMode.Password)
                edit.setObjectName(f"pass:{role}.{name}")
                fields[name] = edit
                form.addRow(text, edit)
            button = QPushButton("Change" if needs_current else "Set")
            button.clicked.connect(lambda _c=False, r=role: self.change_passphrase(r))
            form.addRow("", button)
            self.pass_fields[role] = fields
            layout.addWidget(box)
        note = QLabel("Passphrases are stored only as salted scrypt hashes. Wrong guesses are rate-limited and "
                      "every attempt is written to the audit log.")
        note.setObjectName("GroupHint")
        note.setWordWrap(True)
        layout.addWidget(note)
        layout.addStretch(1)
        return page

    def change_passphrase(self, role: str) -> bool:
        f = self.pass_fields[role]
        try:
            if role == ADMIN:
                self.roles.change(ADMIN, f["current"].text(), f["new"].text(), f["confirm"].text())
            else:
                self.roles.reset(role, f["new"].text(), f["confirm"].text(), actor=self.actor)
        except UserFacingError as exc:
            QMessageBox.warning(self, "Passphrase not changed", str(exc))
            return False
        for edit in f.values():
            edit.clear()
        self.status.setText(f"The {role} passphrase was changed.")
        return True

    def _on_feedback_changed(self, saved: Settings) -> None:
        """Enable / Disable / Roll back saved ``guard.feedback_model`` and logged it already: keep this view's
        copy in step (a later Save must not put the old version back) and apply it from the next turn."""
        guard = dataclasses.replace(self.settings.guard, feedback_model=saved.guard.feedback_model)
        self.settings = dataclasses.replace(self.settings, guard=guard)
        self.settings_saved.emit(self.settings)

    # -- editing --------------------------------------------------------------------------------------
    def _on_changed(self) -> None:
        self._dirty = True
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.save_button.setEnabled(self._dirty)
        self.revert_button.setEnabled(self._dirty)
        if self._dirty:
            self.status.setText("Unsaved changes — they apply to the next turn once saved.")

    def edited_dict(self) -> dict[str, Any]:
        data = copy.deepcopy(self.settings.to_dict())
        self.general_form.apply_to(data)
        self.guard_form.apply_to(data)
        self.review_form.apply_to(data)
        data["guard"].update(self.policy_editor.guard_values())
        return data

    def edited_settings(self) -> Settings:
        """The settings as edited, validated (raises SettingsError naming the bad key)."""
        return settings_from_dict(self.edited_dict(), path="admin settings")

    def load(self, settings: Settings) -> None:
        values = settings.to_dict()
        self.general_form.load(values)
        self.guard_form.load(values)
        self.review_form.load(values)
        self.policy_editor.load(values["guard"])
        self.preview.redecide()

    def revert(self) -> None:
        self.load(self.settings)
        self._dirty = False
        self._update_buttons()
        self.status.setText("Changes discarded.")

    def save(self) -> bool:
        """Validate, save, audit, apply. False (with a message, nothing saved) when invalid."""
        try:
            new = self.edited_settings()
            settings_mod.save_settings(new, self.settings_path)
        except (UserFacingError, OSError) as exc:     # invalid, site-locked, read-only or full disk
            QMessageBox.warning(self, "Settings not saved", str(exc))
            self.status.setText("Not saved: " + str(exc))
            return False
        diff = settings_diff(self.settings, new)
        if diff and self.audit is not None:
            try:
                self.audit.log_admin_event(actor=self.actor, action="settings.change", details={
                    "changes": [{"key": k, "old": old, "new": value} for k, old, value in diff]})
            except Exception as exc:  # noqa: BLE001 - saved already: apply it, and say it is not in the log
                show_error(self, exc, title="Settings saved, but the change is not in the audit log")
        self.settings = new
        self._dirty = False
        self._update_buttons()
        self.status.setText(f"Saved {len(diff)} change(s); they apply from the next turn." if diff
                            else "Saved (nothing changed).")
        self.settings_saved.emit(new)
        return True

    # -- policy files ---------------------------------------------------------------------------------
    def export_policy(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the guard policy", str(Path.home() / "r1desk-policy.json"),
                                              "Policy (*.json)")
        if not path:
            return
        try:
            settings_mod.export_policy(self.edited_settings(), Path(path))
        except (UserFacingError, OSError) as exc:
            QMessageBox.warning(self, "Policy not exported", str(exc))
            return
        if self.audit is not None:
            self.audit.log_admin_event(actor=self.actor, action="policy.export", details={"path": path})
        self.status.setText(f"Policy exported to {path}")

    def import_policy(self) -> None:
        """Load a policy file into the editor (validated); it is saved only when Save is pressed."""
        path, _ = QFileDialog.getOpenFileName(self, "Import a guard policy", str(Path.home()), "Policy (*.json)")
        if not path:
            return
        try:
            imported = settings_mod.import_policy(Path(path), self.edited_settings())
        except (UserFacingError, OSError) as exc:
            QMessageBox.warning(self, "Policy not imported", str(exc))
            return
        self.load(imported)
        self._on_changed()
        self.status.setText(f"Imported {Path(path).name}: review the thresholds, then Save to apply.")


def _style() -> str:
    p = theme.current()
    return (f"#ViewTitle {{ font-size: 14pt; font-weight: 600; }}"
            f"#SectionTitle {{ font-weight: 600; font-size: 10.5pt; }}"
            f"#GroupHint, #SaveStatus, #PreviewStatus {{ color: {p.muted}; }}"
            f"#LockNote {{ color: {p.warn}; }}"
            f"#ColumnHead {{ color: {p.muted}; font-weight: 600; }}"
            f"#FieldNote {{ color: {p.muted}; }}"
            f"#FieldNote[warn='true'] {{ color: {p.danger}; font-weight: 600; }}"
            f"QGroupBox {{ font-weight: 600; border: 1px solid {p.border}; border-radius: 8px; margin-top: 14px;"
            f" padding: 10px 8px 8px 8px; background: {p.surface}; }}"
            f"QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; }}"
            f"QGroupBox QLabel {{ font-weight: normal; }}"
            f"QTableWidget {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 8px; }}"
            f"#ChannelTabs::tab {{ padding: 6px 18px; }}")
