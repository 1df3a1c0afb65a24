"""The options of a self-check: suite (built-in or an imported SimpleSafetyTests / XSTest CSV), guard
modes, number of prompts, seed, answer length and the report file; turned into ``SelfCheckOptions``.

A suite file is read and checked as soon as it is chosen, so a bad file is reported then (a message
box naming the problem), never when the run starts.
"""
from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QFileDialog, QFormLayout, QFrame, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QRadioButton, QSpinBox, QWidget)

from r1desk.errors import UserFacingError
from r1desk.ui.tasks import show_error

log = logging.getLogger("r1desk.ui.selfcheck")

GUARD_CHOICES = (("both", "Both (compare)"), ("on", "On"), ("off", "Off (monitor only)"))
DEFAULT_LIMIT = 10


def default_report_path() -> Path:
    from r1desk import paths

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = paths.data_dir() / "selfcheck"
    path, n = folder / f"selfcheck-{stamp}.html", 1
    while path.exists():                 # two runs in one second never share a file
        n += 1
        path = folder / f"selfcheck-{stamp}-{n}.html"
    return path


def short_path(path: Path) -> str:
    """``path`` with the home folder written "~" (what a file manager's path bar shows)."""
    home = Path.home()
    try:
        return str(Path("~") / path.relative_to(home))
    except ValueError:
        return str(path)


def describe_suite(prompts: list[Any]) -> str:
    unsafe = sum(p.expected == "unsafe" for p in prompts)
    areas = len({p.harm_area for p in prompts})
    return (f"{len(prompts)} prompts: {unsafe} unsafe, {len(prompts) - unsafe} safe look-alikes, "
            f"{areas} harm areas")


def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    # the same framed number field with arrows as the admin forms (hiding the arrows by style sheet made
    # these fields look like plain labels, issue 14)
    spin.setMinimumWidth(max(96, spin.minimumSizeHint().width()))
    return spin


class SelfCheckForm(QFrame):
    """``plan_changed`` whenever the number of planned turns may have changed."""

    plan_changed = Signal()

    def __init__(self, max_tokens: int = 2048, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SelfCheckCard")
        self._suites: dict[str, tuple[str, list[Any]]] = {}
        self.default_report = True           # the report path is ours to renew after each run
        self.suite_combo = QComboBox()
        self.suite_combo.currentIndexChanged.connect(self._on_suite_changed)
        self.import_button = QPushButton("Import CSV…")
        self.import_button.setToolTip("A SimpleSafetyTests or XSTest CSV file")
        self.import_button.clicked.connect(lambda: self.import_suite())
        self.suite_info = QLabel()
        self.suite_info.setObjectName("SelfCheckMuted")
        self.guard_group = QButtonGroup(self)
        guards_row = QHBoxLayout()
        for i, (key, text) in enumerate(GUARD_CHOICES):
            button = QRadioButton(text)
            button.setProperty("guards", key)
            button.setChecked(i == 0)
            self.guard_group.addButton(button, i)
            guards_row.addWidget(button)
        guards_row.addStretch(1)
        self.guard_group.buttonToggled.connect(lambda *_a: self.plan_changed.emit())
        self.limit_spin = _spin(0, 100000, DEFAULT_LIMIT, "How many prompts to run, sampled evenly over harm "
                                "areas and safe/unsafe (All: the whole suite)")
        self.limit_spin.setSpecialValueText("All")
        self.limit_spin.valueChanged.connect(lambda _v: self.plan_changed.emit())
        self.seed_spin = _spin(0, 2 ** 31 - 1, 0, "The same seed picks the same prompts and samples the same "
                               "answers")
        self.tokens_spin = _spin(16, 131072, max_tokens, "Maximum new tokens per answer, thinking included. R1 "
                                 "thinks at length: a turn that runs out while thinking has no answer to judge.")
        self.tokens_spin.setSingleStep(256)
        self.report_edit = QLineEdit()
        self.report_edit.textEdited.connect(lambda _t: setattr(self, "default_report", False))
        self.report_edit.textChanged.connect(lambda text: self.report_edit.setToolTip(
            str(Path(text.strip()).expanduser()) if text.strip() else ""))
        self.set_report_path(default_report_path())
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self.choose_report_path)

        form = QFormLayout(self)
        form.setContentsMargins(18, 14, 18, 14)
        form.setVerticalSpacing(10)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.addRow("Suite", _row(self.suite_combo, self.import_button))
        form.addRow("", self.suite_info)
        form.addRow("Guards", guards_row)
        numbers = _row(self.limit_spin, 16, QLabel("Seed"), self.seed_spin, 16, QLabel("Max tokens"),
                       self.tokens_spin)
        numbers.addStretch(1)
        form.addRow("Prompts", numbers)
        form.addRow("Report", _row(self.report_edit, self.browse_button))
        self._add_suite("builtin", "Built-in suite (r1desk)")

    # -- suite --------------------------------------------------------------------------------------
    def _add_suite(self, spec: str, title: str) -> None:
        from r1desk.core.selfcheck.suites import load_suite

        self._suites[spec] = load_suite(spec)
        self.suite_combo.addItem(title, spec)

    def selected_suite(self) -> tuple[str, str, list[Any]]:
        """(spec, name, prompts) of the chosen suite; spec is "builtin" or the CSV path."""
        spec = str(self.suite_combo.currentData())
        name, prompts = self._suites[spec]
        return spec, name, prompts

    def import_suite(self, path: str | None = None) -> bool:
        """Pick a SimpleSafetyTests or XSTest CSV and check it now; a bad file gets a clear message."""
        if path is None:
            path, _filter = QFileDialog.getOpenFileName(self, "Import a prompt suite", str(Path.home()),
                                                        "CSV files (*.csv);;All files (*)")
        if not path:
            return False
        from r1desk.core.selfcheck.suites import load_suite

        try:
            name, prompts = load_suite(path, "auto")
        except UserFacingError as exc:
            show_error(self, exc, title="Cannot use this prompt suite")
            return False
        except Exception as exc:  # noqa: BLE001 - an unreadable file is the file's fault, not a bug
            log.warning("importing suite %s failed: %s", path, exc)
            show_error(self, UserFacingError(f"Cannot read the prompt suite {path}: {exc}"),
                       title="Cannot use this prompt suite")
            return False
        self._suites[str(path)] = (name, prompts)
        kind = "SimpleSafetyTests" if name.startswith("sst:") else "XSTest"
        index = self.suite_combo.findData(str(path))
        if index < 0:
            self.suite_combo.addItem(f"{Path(path).name} ({kind})", str(path))
            index = self.suite_combo.count() - 1
        self.suite_combo.setCurrentIndex(index)
        self._on_suite_changed()
        log.info("self-check suite imported: %s (%d prompts)", name, len(prompts))
        return True

    def _on_suite_changed(self, *_args: Any) -> None:
        if self.suite_combo.currentData() is None:
            return
        _spec, _name, prompts = self.selected_suite()
        self.suite_info.setText(describe_suite(prompts))
        self.limit_spin.setMaximum(len(prompts))
        self.plan_changed.emit()

    # -- choices --------------------------------------------------------------------------------------
    def guards(self) -> str:
        button = self.guard_group.checkedButton()
        return str(button.property("guards")) if button is not None else "both"

    def set_guards(self, mode: str) -> None:
        for button in self.guard_group.buttons():
            if button.property("guards") == mode:
                button.setChecked(True)

    def planned_turns(self) -> int:
        _spec, _name, prompts = self.selected_suite()
        limit = self.limit_spin.value() or len(prompts)
        return min(limit, len(prompts)) * (2 if self.guards() == "both" else 1)

    def choose_report_path(self) -> None:
        path, _filter = QFileDialog.getSaveFileName(self, "Save the self-check report as", self.report_edit.text(),
                                                    "HTML files (*.html)")
        if path:
            if not path.lower().endswith((".html", ".htm")):
                path += ".html"
            self.set_report_path(Path(path))
            self.default_report = False

    def set_report_path(self, path: Path) -> None:
        """Show ``path`` short ("~/…" for the home folder) from its start, the whole path in the tooltip, so
        the folder is never the part cut off."""
        self.report_edit.setText(short_path(path))
        self.report_edit.setCursorPosition(0)

    def renew_report_path(self) -> None:
        """Before a run: a fresh default file name when the one shown was already written (never a name the
        user chose). After a run the field keeps showing the file that was written."""
        if self.default_report and Path(self.report_edit.text().strip()).expanduser().is_file():
            self.set_report_path(default_report_path())

    def report_target(self) -> Path:
        """The report file, checked: not a folder, in a folder we can create and write."""
        text = self.report_edit.text().strip()
        if not text:
            raise UserFacingError("Choose where to save the report")
        path = Path(text).expanduser()
        if path.is_dir():
            raise UserFacingError(f"The report path is a folder: {path}", hint="give a file name such as report.html")
        parent = next((d for d in (path.parent, *path.parent.parents) if d.exists()), None)
        if parent is None or not parent.is_dir():
            raise UserFacingError(f"Cannot save the report in {path.parent}: not a folder")
        if not os.access(parent, os.W_OK):
            raise UserFacingError(f"Cannot save the report in {path.parent}: permission denied")
        return path

    def options(self) -> Any:
        """The chosen ``SelfCheckOptions`` (the model is the loaded one); UserFacingError if unusable."""
        from r1desk.core.selfcheck.check import SelfCheckOptions

        spec, _name, _prompts = self.selected_suite()
        return SelfCheckOptions(suite=spec, fmt="auto", guards=self.guards(), limit=self.limit_spin.value() or None,
                                seed=self.seed_spin.value(), max_tokens=self.tokens_spin.value(),
                                language="auto", report=self.report_target())


def _row(*items: Any) -> QHBoxLayout:
    """A horizontal row: widgets (the first one stretches when it is an input) and int spacings."""
    row = QHBoxLayout()
    for i, item in enumerate(items):
        if isinstance(item, int):
            row.addSpacing(item)
        else:
            row.addWidget(item, 1 if i == 0 and isinstance(item, (QComboBox, QLineEdit)) else 0)
    return row
