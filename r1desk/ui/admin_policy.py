"""The guard policy editor (channel × label: threshold slider + number, action) and the live preview.

The preview scores the typed text with the real classifiers off the GUI thread (``tasks.run_task``),
then asks ``Policy.decide`` — the same code the chat uses — what the *edited* policy would do in each
channel. Editing a threshold re-decides at once from the cached scores, without rescoring.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QHeaderView, QLabel,
                               QPlainTextEdit, QScrollArea, QSlider, QStackedWidget, QTabBar, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from r1desk.core.guard.classifier import Classifier
from r1desk.core.guard.pipeline import GuardPipeline
from r1desk.core.guard.policy import Policy, known_labels
from r1desk.ui import theme
from r1desk.ui.fit import vertical_scroll
from r1desk.vocabulary import CHANNEL_ACTIONS, CHANNELS, severity
from r1desk.ui.tasks import run_task

log = logging.getLogger("r1desk.ui")

LABEL_TITLES = {"toxicity": "Toxicity", "severe_toxicity": "Severe toxicity", "obscene": "Obscene",
                "threat": "Threat", "insult": "Insult", "identity_attack": "Identity attack",
                "sexual_explicit": "Sexual explicit"}
ACTION_TEXT = {"allow": "Allow", "flag": "Flag", "redact": "Redact", "block": "Block"}
ACTION_COLORS = {"allow": "#2b8a3e", "flag": "#b35c00", "redact": "#d9480f", "block": "#c92a2a"}
CHANNEL_HINTS = {
    "prompt": "The user's own words, checked before anything is generated. Blocking here refuses the turn.",
    "thinking": "The model's reasoning trace. R1 often restates a harmful request while deciding to refuse, "
                "so flags are usually better than blocks here.",
    "answer": "What the user reads. Redact replaces the sentence; block stops the answer.",
}


class RuleRow:
    """Slider (0–100) and spin box (0.00–1.00) kept in sync, plus the action."""

    def __init__(self, channel: str, label: str, threshold: float, action: str, locked: bool) -> None:
        self.channel, self.label = channel, label
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setObjectName(f"slider:{channel}.{label}")
        self.spin = QDoubleSpinBox()
        self.spin.setRange(0.0, 1.0)
        self.spin.setDecimals(2)
        self.spin.setSingleStep(0.01)
        self.spin.setObjectName(f"spin:{channel}.{label}")
        self.action = QComboBox()
        for a in CHANNEL_ACTIONS[channel]:
            self.action.addItem(ACTION_TEXT[a], a)
        self.slider.valueChanged.connect(lambda v: self._sync_spin(v))
        self.spin.valueChanged.connect(lambda v: self._sync_slider(v))
        self.set(threshold, action)
        for w in (self.slider, self.spin, self.action):
            w.setEnabled(not locked)
            if locked:
                w.setToolTip("Locked by the site policy file")

    def _sync_spin(self, value: int) -> None:
        if round(self.spin.value() * 100) != value:
            self.spin.setValue(value / 100)

    def _sync_slider(self, value: float) -> None:
        if self.slider.value() != round(value * 100):
            self.slider.blockSignals(True)
            self.slider.setValue(round(value * 100))
            self.slider.blockSignals(False)

    def set(self, threshold: float, action: str) -> None:
        self.spin.setValue(float(threshold))
        i = self.action.findData(action)
        self.action.setCurrentIndex(i if i >= 0 else 0)

    def value(self) -> dict[str, Any]:
        return {"threshold": round(float(self.spin.value()), 4), "action": self.action.currentData()}


class PolicyEditor(QWidget):
    """Edits ``guard.rules`` and ``guard.channels``; ``changed`` on every edit."""

    changed = Signal()

    def __init__(self, guard: dict[str, Any], locked: set[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: dict[tuple[str, str], RuleRow] = {}
        self.enabled: dict[str, QCheckBox] = {}
        self.scrolls: dict[str, QScrollArea] = {}
        self.tabs = QTabBar()
        self.tabs.setObjectName("ChannelTabs")
        self.pages = QStackedWidget()
        for channel in CHANNELS:
            self.tabs.addTab(channel.capitalize())
            self.pages.addWidget(self._page(channel, guard, locked))
        self.tabs.currentChanged.connect(self.pages.setCurrentIndex)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        layout.addWidget(self.pages)

    def _page(self, channel: str, guard: dict[str, Any], locked: set[str]) -> QWidget:
        """The channel's hint and switch, then its rules in a scroll area: every row keeps its height
        (thirty-odd labels since the harm guard used to be squeezed into the page's height)."""
        page = QWidget()
        outer = QVBoxLayout(page)
        outer.setContentsMargins(0, 6, 0, 0)
        hint = QLabel(CHANNEL_HINTS[channel])
        hint.setWordWrap(True)
        hint.setObjectName("GroupHint")
        outer.addWidget(hint)
        on = QCheckBox(f"Moderate the {channel}")
        on.setChecked(bool(guard["channels"].get(channel, True)))
        on.setEnabled(not _is_locked(f"guard.channels.{channel}", locked))
        on.toggled.connect(self.changed)
        self.enabled[channel] = on
        outer.addWidget(on)
        rules = QWidget()
        grid = QGridLayout(rules)
        grid.setContentsMargins(0, 0, 8, 0)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(6)
        for col, text in enumerate(("Label", "Threshold", "", "Action")):
            head = QLabel(text)
            head.setObjectName("ColumnHead")
            grid.addWidget(head, 0, col)
        labels = list(guard["rules"][channel])
        for r, label in enumerate(labels, start=1):
            rule = guard["rules"][channel][label]
            key = f"guard.rules.{channel}.{label}"
            row = RuleRow(channel, label, rule["threshold"], rule["action"], _is_locked(key, locked))
            for w in (row.slider, row.spin):
                w.valueChanged.connect(self.changed)
            row.action.currentIndexChanged.connect(self.changed)
            self.rows[(channel, label)] = row
            name = QLabel(label_title(label) + (" (site policy)" if _is_locked(key, locked) else ""))
            grid.addWidget(name, r, 0)
            grid.addWidget(row.slider, r, 1)
            grid.addWidget(row.spin, r, 2)
            grid.addWidget(row.action, r, 3)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(len(labels) + 1, 1)
        self.scrolls[channel] = vertical_scroll(rules)
        outer.addWidget(self.scrolls[channel], 1)
        return page

    def row(self, channel: str, label: str) -> RuleRow:
        return self.rows[(channel, label)]

    def guard_values(self) -> dict[str, Any]:
        """{"rules": ..., "channels": ...} as in the settings' guard section."""
        rules: dict[str, dict[str, Any]] = {ch: {} for ch in CHANNELS}
        for (ch, lb), row in self.rows.items():
            rules[ch][lb] = row.value()
        return {"rules": rules, "channels": {ch: box.isChecked() for ch, box in self.enabled.items()}}

    def load(self, guard: dict[str, Any]) -> None:
        for (ch, lb), row in self.rows.items():
            rule = guard["rules"][ch][lb]
            row.set(rule["threshold"], rule["action"])
        for ch, box in self.enabled.items():
            box.setChecked(bool(guard["channels"].get(ch, True)))

    def policy(self) -> Policy:
        """The edited policy (what the preview and the next turn would use)."""
        return Policy.from_dict(self.guard_values())


def _is_locked(key: str, locked: set[str]) -> bool:
    """``key`` or a part of it (or a section holding it) is set by the site policy."""
    return key in locked or any(key.startswith(k + ".") or k.startswith(key + ".") for k in locked)


class PreviewBox(QWidget):
    """Type text; see each label's score and what the edited policy does with it in each channel."""

    scored = Signal(object)    # {scorer name: {label: score}} after a scoring run

    def __init__(self, policy_source: Callable[[], Policy], classifiers_factory: Callable[[], list[Classifier]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.policy_source = policy_source
        self.classifiers_factory = classifiers_factory
        self.classifiers: list[Classifier] | None = None
        self.labels = known_labels()
        self.scores: dict[str, dict[str, float]] = {}   # classifier name -> label -> score
        self._busy = False
        self._again = False
        title = QLabel("Live preview")
        title.setObjectName("SectionTitle")
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Type or paste text to see how the classifiers score it and what this "
                                     "policy would do…")
        self.text.setFixedHeight(64)
        self.status = QLabel("")
        self.status.setObjectName("PreviewStatus")
        self.status.setWordWrap(True)
        self.table = QTableWidget(len(self.labels), 2 + len(CHANNELS))
        self.table.setHorizontalHeaderLabels(["Label", "Score"] + [c.capitalize() for c in CHANNELS])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()      # the label takes the room; scores and actions their text
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, 2 + len(CHANNELS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setMinimumSectionSize(48)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        for r, label in enumerate(self.labels):
            self.table.setItem(r, 0, QTableWidgetItem(label_title(label)))
        self.summary = QLabel("")
        self.summary.setObjectName("PreviewSummary")
        self.summary.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addWidget(self.text)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(400)
        self._timer.timeout.connect(self.score_now)
        self.text.textChanged.connect(self._timer.start)

    def score_now(self) -> None:
        """Score the text off the GUI thread (one run at a time; the latest text wins)."""
        self._timer.stop()
        text = self.text.toPlainText().strip()
        if not text:
            self.scores = {}
            self.status.setText("")
            self.redecide()
            return
        if self._busy:
            self._again = True
            return
        self._busy = True
        self.status.setText("Scoring…")

        def op() -> dict[str, dict[str, float]]:
            if self.classifiers is None:
                self.classifiers = self.classifiers_factory()
            return preview_scores(self.classifiers, text)

        run_task(op, self._on_scored, self._on_failed, parent=self)

    def _on_scored(self, scores: dict[str, dict[str, float]]) -> None:
        self._busy = False
        self.scores = scores
        self.status.setText("Scored by " + ", ".join(scores) if scores else "No classifier available.")
        self.redecide()
        self.scored.emit(scores)
        if self._again:
            self._again = False
            self.score_now()

    def _on_failed(self, exc: BaseException) -> None:
        self._busy = False
        self.scores = {}
        self.status.setText(f"⚠ {exc}")
        self.redecide()

    def redecide(self) -> None:
        """Fill the table from the cached scores and the current (edited) policy."""
        p = theme.current()
        try:
            policy: Policy = self.policy_source()
        except ValueError as exc:
            self.summary.setText(f"⚠ {exc}")
            return
        main = {label: score for scores in self.scores.values() for label, score in scores.items()}
        worst: dict[str, str] = {}
        for r, label in enumerate(self.labels):
            score = main.get(label)
            owner = next((name for name, s in self.scores.items() if label in s), None)
            item = QTableWidgetItem("—" if score is None else f"{score:.2f}")
            if owner:
                item.setToolTip(f"scored by {owner}")
            self.table.setItem(r, 1, item)
            for c, channel in enumerate(CHANNELS, start=2):
                if score is None:
                    self.table.setItem(r, c, QTableWidgetItem(""))
                    continue
                decisions = policy.decide(channel, 0, 1, "", {label: score})
                action = decisions[0].action if decisions else "allow"
                rule = policy.rule(channel, label)
                cell = QTableWidgetItem(f"{ACTION_TEXT[action]} ≥ {rule.threshold:.2f}" if decisions
                                        else ("off" if not policy.enabled.get(channel, True) else "—"))
                cell.setForeground(QColor(ACTION_COLORS[action] if decisions else p.muted))
                self.table.setItem(r, c, cell)
                if decisions:
                    worst[channel] = max(worst.get(channel, "allow"), action, key=_rank)
        if not main:
            self.summary.setText("")
            return
        parts = [f"{ch}: <b style='color:{ACTION_COLORS[worst.get(ch, 'allow')]}'>"
                 f"{ACTION_TEXT[worst.get(ch, 'allow')].lower()}</b>" for ch in CHANNELS]
        self.summary.setText("With this policy, this text would be — " + " · ".join(parts))

    def decision_for(self, channel: str) -> str:
        """The strongest action the edited policy takes on the scored text in ``channel``."""
        main = {label: score for scores in self.scores.values() for label, score in scores.items()}
        decisions = self.policy_source().decide(channel, 0, 1, "", main)
        return decisions[0].action if decisions else "allow"


def _rank(action: str) -> int:
    return severity(action)



def label_title(label: str) -> str:
    """"severe_toxicity" -> "Severe toxicity"; "harm.self_harm" -> "Harm: self harm"."""
    if label in LABEL_TITLES:
        return LABEL_TITLES[label]
    head, _, tail = label.rpartition(".")
    text = tail.replace("_", " ")
    return f"{head.replace('_', ' ').capitalize()}: {text}" if head else text.capitalize()


def preview_scores(classifiers: list[Classifier], text: str) -> dict[str, dict[str, float]]:
    """Each usable classifier's highest score per label over the text, through the guard pipeline's own
    ``classify`` (segments, rolling windows, language routing), as the chat would judge an answer."""
    pipe = GuardPipeline(Policy(), classifiers, None, None)
    status = pipe.prepare()
    pipe.classify("answer", text)
    owner = {label: c.name for c in classifiers for label in c.labels}
    out: dict[str, dict[str, float]] = {}
    for segment in pipe.segments:
        for key in ("scores", "window"):
            for label, score in (segment.get(key) or {}).items():
                name = owner.get(label, "?")
                out.setdefault(name, {})
                out[name][label] = max(out[name].get(label, 0.0), float(score))
    if not out and not any(st.state.value == "active" for st in status.classifiers.values()):
        raise RuntimeError("No classifier available: " + "; ".join(status.messages or ["none is installed"]))
    return out
