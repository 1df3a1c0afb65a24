"""The lock screen shown in place of a protected view: unlock with the role's passphrase, or set the
passphrase on first use. The checks, rate limit and audit events live in ``core.roles.RoleStore``."""
from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QScrollArea, QSizePolicy,
                               QVBoxLayout, QWidget)

from r1desk.core.roles import MIN_LENGTH, ROLE_TITLES, RoleStore
from r1desk.errors import UserFacingError
from r1desk.ui import theme

log = logging.getLogger("r1desk.ui")


class LockPanel(QWidget):
    """Centered card: passphrase (and, on first use, its confirmation); ``unlocked`` when accepted."""

    unlocked = Signal()

    def __init__(self, role: str, store: RoleStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role, self.store = role, store
        card = QFrame()
        card.setObjectName("LockCard")
        card.setMaximumWidth(480)
        card.setMinimumWidth(320)
        # Height for width: the wrapped texts (explanation, a two-line error) get the lines they need.
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        policy.setHeightForWidth(True)
        card.setSizePolicy(policy)
        self.title = QLabel()
        self.title.setObjectName("LockTitle")
        self.body = QLabel()
        self.body.setWordWrap(True)
        self.body.setObjectName("LockBody")
        self.passphrase = QLineEdit()
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase.setPlaceholderText("Passphrase")
        self.confirm = QLineEdit()
        self.confirm.setEchoMode(QLineEdit.EchoMode.Password)
        self.confirm.setPlaceholderText("Repeat the passphrase")
        self.error = QLabel("")
        self.error.setObjectName("LockError")
        self.error.setWordWrap(True)
        self.button = QPushButton()
        self.button.setProperty("primary", True)
        self.button.clicked.connect(self.submit)
        self.passphrase.returnPressed.connect(self.submit)
        self.confirm.returnPressed.connect(self.submit)
        for label in (self.title, self.body, self.error):
            label.setWordWrap(True)
            label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.passphrase.setAccessibleName("Passphrase")
        self.confirm.setAccessibleName("Repeat the passphrase")
        inner = QVBoxLayout(card)
        inner.setContentsMargins(24, 22, 24, 22)
        inner.setSpacing(10)
        inner.addWidget(self.title)
        inner.addWidget(self.body)
        inner.addWidget(self.passphrase)
        inner.addWidget(self.confirm)
        inner.addWidget(self.error)
        inner.addWidget(self.button, 0, Qt.AlignmentFlag.AlignRight)
        # Centred by stretches, not an alignment flag (an aligned widget gets its size hint, never its
        # height for width), inside a scroll area so a small window scrolls instead of clipping.
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 3)
        row.addStretch(1)
        column = QWidget()
        column.setObjectName("LockColumn")
        column_layout = QVBoxLayout(column)
        column_layout.addStretch(1)
        column_layout.addLayout(row)
        column_layout.addStretch(2)
        scroll = QScrollArea(self)
        scroll.setWidget(column)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        p = theme.current()
        self.setStyleSheet(f"#LockColumn {{ background: transparent; }}"
                           f"#LockCard {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: 12px; }}"
                           f"#LockTitle {{ font-size: 14pt; font-weight: 600; }}"
                           f"#LockBody {{ color: {p.muted}; }}"
                           f"#LockError {{ color: {p.danger}; }}")
        self.refresh()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override: the field has the focus when shown
        super().showEvent(event)
        self.passphrase.setFocus(Qt.FocusReason.OtherFocusReason)

    @property
    def setting_up(self) -> bool:
        return not self.store.has_passphrase(self.role)

    def refresh(self) -> None:
        """Show the first-use form or the unlock form, cleared."""
        name = ROLE_TITLES[self.role]
        self.passphrase.clear()
        self.confirm.clear()
        self.error.clear()
        if self.setting_up:
            self.title.setText(f"Set the {name.lower()} passphrase")
            self.body.setText(f"This view is for the {name.lower()} only. Choose a passphrase of at least "
                              f"{MIN_LENGTH} characters; it is stored only as a salted scrypt hash and cannot "
                              "be recovered, only reset by an administrator.")
            self.button.setText("Set passphrase and open")
            self.confirm.show()
        else:
            self.title.setText(f"{name} view locked")
            self.body.setText(f"Enter the {name.lower()} passphrase. Wrong attempts are rate-limited and recorded "
                              "in the audit log.")
            self.button.setText("Unlock")
            self.confirm.hide()
        self.passphrase.setFocus()

    def submit(self) -> bool:
        text = self.passphrase.text()
        try:
            if self.setting_up:
                self.store.set_initial(self.role, text, self.confirm.text())
                self.store.verify(self.role, text)     # logs the unlock like any other
            else:
                self.store.verify(self.role, text)
        except UserFacingError as exc:
            self.error.setText(str(exc))
            self.passphrase.selectAll()
            return False
        self.passphrase.clear()
        self.confirm.clear()
        self.error.clear()
        self.unlocked.emit()
        return True
