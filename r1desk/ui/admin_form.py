"""Settings editors generated from the settings model's field metadata (title, description, choices,
range), so a new setting shows up in the admin view without UI code. Keys locked by the site policy
are shown read-only with the reason.
"""
from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QLineEdit,
                               QPlainTextEdit, QSizePolicy, QSpinBox, QVBoxLayout, QWidget)

from r1desk.settings import describe_fields
from r1desk.ui.fit import ReflowGrid

log = logging.getLogger("r1desk.ui")

# Shown elsewhere (policy editor) or not an admin's business.
SKIP_KEYS = {"schema_version", "last_model_path", "guard.rules", "guard.channels",
             "guard.feedback_model",   # enabled through r1desk guard enable (eligibility checked), not typed in
             "guard.harm_model"}       # chosen in the model manager's Safety models section (validated first)
MULTILINE_KEYS = {"preamble.text"}
R1_RECOMMENDED = {"generation.temperature": 0.6, "generation.top_p": 0.95}
TEMPERATURE_RANGE = (0.5, 0.7)


class FieldEditor(QWidget):
    """One setting: an input widget matching the field's type and metadata; ``changed`` on edits."""

    changed = Signal()

    def __init__(self, spec: dict[str, Any], value: Any, *, locked: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self.key: str = spec["key"]
        self.spec = spec
        self.kind = _kind(spec, value)
        layout = QVBoxLayout(self)      # the input, and under it (full width) the R1 note or warning
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.widget = self._make(spec)
        wide = self.kind in ("text", "str")
        layout.addWidget(self.widget, 0, Qt.AlignmentFlag(0) if wide else Qt.AlignmentFlag.AlignLeft)
        self.note = QLabel("")
        self.note.setObjectName("FieldNote")
        self.note.setWordWrap(True)          # a narrow form wraps the R1 note instead of widening the page
        self.set_value(value)
        if self.key in R1_RECOMMENDED:
            # the row's whole width for the note, so "R1 recommended: 0.6" stays on one line
            self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            layout.addWidget(self.note)
            self.changed.connect(self._update_note)
            self._update_note()
        self.widget.setToolTip(spec.get("description") or "")
        if locked:
            self.setEnabled(False)
            self.setToolTip("Locked by the site policy file: only your organisation's administrator can change it.")

    def _make(self, spec: dict[str, Any]) -> QWidget:
        kind = self.kind
        w: QWidget
        if kind == "bool":
            check = QCheckBox()
            check.toggled.connect(self.changed)
            w = check
        elif kind == "choice":
            combo = QComboBox()
            for choice in spec["choices"]:
                combo.addItem(_choice_label(self.key, choice), choice)
            combo.currentIndexChanged.connect(self.changed)
            w = combo
        elif kind == "int":
            spin = QSpinBox()
            spin.setRange(int(spec["min"] if spec["min"] is not None else -2**31),
                          int(min(spec["max"], 2**31 - 1) if spec["max"] is not None else 2**31 - 1))
            spin.valueChanged.connect(self.changed)
            w = spin
        elif kind == "float":
            dspin = QDoubleSpinBox()
            dspin.setDecimals(2)
            dspin.setSingleStep(0.05)
            dspin.setRange(float(spec["min"] if spec["min"] is not None else -1e9),
                           float(spec["max"] if spec["max"] is not None else 1e9))
            dspin.valueChanged.connect(self.changed)
            w = dspin
        elif kind == "text":
            plain = QPlainTextEdit()
            plain.setFixedHeight(64)
            plain.textChanged.connect(self.changed)
            w = plain
        else:
            line = QLineEdit()
            line.textChanged.connect(self.changed)
            w = line
        w.setObjectName("field:" + self.key)
        w.ensurePolished()                      # never below what its own text needs (the seed's 11 digits)
        w.setMinimumWidth(max({"bool": 20, "choice": 160, "int": 120, "float": 120, "text": 220}.get(kind, 200),
                              w.minimumSizeHint().width()))
        if isinstance(w, QComboBox):                  # never narrower than its longest choice: the form reflows
            w.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)   # "Auto (the prompt's language)"
            w.setMinimumWidth(max(160, w.sizeHint().width()))
        if kind in ("text", "str"):
            w.setSizePolicy(QSizePolicy.Policy.Expanding, w.sizePolicy().verticalPolicy())
        return w

    def value(self) -> Any:
        w = self.widget         # its class follows self.kind (see _make)
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QComboBox):
            return w.currentData()
        if isinstance(w, QSpinBox):
            return int(w.value())
        if isinstance(w, QDoubleSpinBox):
            return round(float(w.value()), 4)
        if isinstance(w, QPlainTextEdit):
            return w.toPlainText()
        if isinstance(w, QLineEdit):
            return w.text()
        raise TypeError(f"no editor value for {type(w).__name__} ({self.key})")

    def set_value(self, value: Any) -> None:
        w = self.widget
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            i = w.findData(value)
            w.setCurrentIndex(i if i >= 0 else 0)
        elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.setValue(value)
        elif isinstance(w, QPlainTextEdit):
            if w.toPlainText() != value:
                w.setPlainText(str(value or ""))
        elif isinstance(w, QLineEdit):
            w.setText("" if value is None else str(value))
        else:
            raise TypeError(f"no editor for {type(w).__name__} ({self.key})")

    def _update_note(self) -> None:
        value = self.value()
        recommended = R1_RECOMMENDED[self.key]
        warning = f"⚠ Outside {TEMPERATURE_RANGE[0]}–{TEMPERATURE_RANGE[1]} (R1 recommended: {recommended})"
        warn = self.key == "generation.temperature" and not (TEMPERATURE_RANGE[0] <= value <= TEMPERATURE_RANGE[1])
        self.note.setText(warning if warn else f"R1 recommended: {recommended}")
        self.note.setToolTip("R1 models repeat themselves or ramble outside 0.5–0.7." if warn else "")
        self.note.setProperty("warn", warn)
        self.note.style().unpolish(self.note)
        self.note.style().polish(self.note)

    @property
    def warning(self) -> bool:
        return bool(self.note.property("warn"))


def _choice_label(key: str, choice: Any) -> str:
    """What a dropdown shows: template titles and language names rather than bare codes."""
    from r1desk.core.prompts import LANGUAGE_NAMES, TEMPLATES

    if key == "template" and choice in TEMPLATES:
        return TEMPLATES[choice].title
    if key == "language.target":
        special = {"auto": "Auto (the prompt's language)", "off": "Off (no language lock)"}
        return special.get(choice) or f"{LANGUAGE_NAMES.get(choice, choice)} ({choice})"
    return str(choice)


def _kind(spec: dict[str, Any], value: Any) -> str:
    if spec.get("choices"):
        return "choice"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if spec["key"] in MULTILINE_KEYS:
        return "text"
    return "str"


def _get(data: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def set_path(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        data = data[part]
    data[parts[-1]] = value


class SettingsForm(QWidget):
    """Group boxes of FieldEditors for every setting not in ``skip`` (from ``describe_fields``)."""

    changed = Signal()

    def __init__(self, values: dict[str, Any], locked: set[str], *, skip: set[str] | None = None,
                 only_groups: tuple[str, ...] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editors: dict[str, FieldEditor] = {}
        skip = SKIP_KEYS | set(skip or ())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        self.cards = ReflowGrid(max_columns=2)           # two columns on a wide window, one on a small one
        layout.addWidget(self.cards)
        layout.addStretch(1)
        groups: dict[str, tuple[str, str, list[dict[str, Any]]]] = {"": ("General", "", [])}
        for spec in describe_fields():
            key = spec["key"]
            if key in skip:
                continue
            top = key.split(".")[0] if "." in key else ""
            if spec.get("group"):
                groups[key] = (spec["title"], spec["description"], [])
                continue
            groups.setdefault(top, (top, "", []))[2].append(spec)
        for name, (title, description, specs) in groups.items():
            if not specs or (only_groups is not None and name not in only_groups):
                continue
            box = QGroupBox(title)
            form = QFormLayout(box)
            form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
            form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)   # narrow: the label goes above
            if description:
                hint = QLabel(description)
                hint.setObjectName("GroupHint")
                hint.setWordWrap(True)
                form.addRow(hint)
            for spec in specs:
                key = spec["key"]
                is_locked = key in locked or any(key.startswith(k + ".") for k in locked)
                editor = FieldEditor(spec, _get(values, key), locked=is_locked)
                editor.changed.connect(self.changed)
                self.editors[key] = editor
                label = QLabel(spec["title"] + (" (site policy)" if is_locked else ""))
                label.setToolTip(spec.get("description") or "")
                form.addRow(label, editor)
            self.cards.add(box)

    def apply_to(self, data: dict[str, Any]) -> None:
        """Write every editor's value into a settings dict (validation happens on save)."""
        for key, editor in self.editors.items():
            set_path(data, key, editor.value())

    def load(self, values: dict[str, Any]) -> None:
        for key, editor in self.editors.items():
            editor.set_value(_get(values, key))
