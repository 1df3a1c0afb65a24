"""The passphrase step before the safety self-check: the auditor or the administrator may run it.

The same lock panel as the auditor browser and admin settings (``ui.lock_dialog.LockPanel``, checks
and rate limit in ``core.roles.RoleStore``), one per role, with a switch between the two.
"""
from __future__ import annotations

import functools
import logging

from PySide6.QtWidgets import (QButtonGroup, QDialog, QFrame, QHBoxLayout, QLabel, QRadioButton, QStackedWidget,
                               QVBoxLayout, QWidget)

from r1desk.core.roles import ADMIN, AUDITOR, ROLE_TITLES, RoleStore
from r1desk.ui.lock_dialog import LockPanel

log = logging.getLogger("r1desk.ui.selfcheck")

ALLOWED_ROLES = (AUDITOR, ADMIN)
CARD_WIDTH = 460                        # LockPanel's card: its maximum width (24 px margins inside)


class SelfCheckUnlock(QDialog):
    """Accepted once the chosen role's passphrase is given; ``role`` says which role unlocked."""

    def __init__(self, store: RoleStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Safety self-check — unlock")
        self.setMinimumSize(560, 440)          # the stacked lock panels' wrapped text needs the height
        self.store = store
        self.role: str | None = None
        intro = QLabel("The safety self-check is for the auditor or the administrator. "
                       "Unlock with either passphrase.")
        intro.setWordWrap(True)
        self.panels: dict[str, LockPanel] = {}
        self.switch = QButtonGroup(self)
        self.stack = QStackedWidget(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Unlock as:"))
        for role in ALLOWED_ROLES:
            button = QRadioButton(ROLE_TITLES[role])
            button.setObjectName(f"role-{role}")
            self.switch.addButton(button)
            row.addWidget(button)
            panel = LockPanel(role, store, self)
            panel.unlocked.connect(lambda r=role: self._on_unlocked(r))
            self.panels[role] = panel
            self.stack.addWidget(panel)
            button.toggled.connect(functools.partial(self._on_role_toggled, role))
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 18, 22, 18)
        layout.addWidget(intro)
        layout.addLayout(row)
        layout.addWidget(self.stack)
        # Default: the first role that already has a passphrase (the auditor when both or neither do).
        default = next((r for r in ALLOWED_ROLES if store.has_passphrase(r)), AUDITOR)
        self.choose(default)

    @property
    def panel(self) -> LockPanel:
        panel = self.stack.currentWidget()
        if not isinstance(panel, LockPanel):
            raise RuntimeError(f"the unlock stack shows a {type(panel).__name__}, not a lock panel")
        return panel

    def _on_role_toggled(self, role: str, on: bool) -> None:
        if on:
            self.choose(role)

    def choose(self, role: str) -> None:
        """Show the lock panel of ``role`` (auditor or admin)."""
        for button in self.switch.buttons():
            if button.objectName() == f"role-{role}" and not button.isChecked():
                button.setChecked(True)
        panel = self.panels[role]
        panel.refresh()
        if not panel.setting_up:
            panel.title.setText(f"Safety self-check: {ROLE_TITLES[role].lower()}")
        # The card centres itself with an alignment, which loses height-for-width: give it its full width
        # and reserve the wrapped text's height.
        card = panel.findChild(QFrame, "LockCard")
        if card is not None:
            card.setMinimumWidth(CARD_WIDTH)
        panel.body.ensurePolished()
        panel.body.setMinimumHeight(panel.body.heightForWidth(CARD_WIDTH - 2 * 24))
        self.stack.setCurrentWidget(panel)

    def _on_unlocked(self, role: str) -> None:
        self.role = role
        log.info("self-check unlocked by the %s", role)
        self.accept()
