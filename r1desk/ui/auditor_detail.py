"""One turn in full for the auditor: prompt, thinking and answer with every flagged span highlighted,
the decisions with their scores, the model and settings used, and the review form.

Highlights come from the stored decision spans (offsets into each channel's raw text); numbered
markers link each highlight to its row in the decisions table below.
"""
from __future__ import annotations

import html
import json
import logging
from typing import Any

from r1desk.vocabulary import severity

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QFrame, QHBoxLayout, QLabel, QPlainTextEdit,
                               QPushButton, QTextBrowser, QToolButton, QVBoxLayout, QWidget)

from r1desk.storage.records import REVIEW_LABELS
from r1desk.ui import theme
from r1desk.ui.fit import ReflowGrid

log = logging.getLogger("r1desk.ui")

ACTION_COLORS = {"flag": ("#8a4b00", "#ffe8b3"), "redact": ("#9c3500", "#ffd8bf"), "block": ("#ffffff", "#c92a2a")}
LABEL_TITLES = {"ok": "OK", "harmful": "Harmful", "over-refusal": "Over-refusal",
                "language-mixing": "Language mixing", "other": "Other"}


def highlight_html(text: str, decisions: list[dict[str, Any]], numbers: dict[int, int]) -> str:
    """``text`` as HTML with each decision span marked (most severe action wins where spans overlap)."""
    if not text:
        return f"<i style='color:{theme.current().muted}'>(empty)</i>"
    marks = [0] * (len(text) + 1)
    starts: dict[int, list[int]] = {}
    for i, d in enumerate(decisions):
        a, b = max(0, int(d["start"])), min(len(text), int(d["end"]))
        if b <= a:
            continue
        starts.setdefault(a, []).append(numbers.get(i, i + 1))
        for k in range(a, b):
            marks[k] = max(marks[k], severity(str(d["action"])))
    out: list[str] = []
    names = {1: "flag", 2: "redact", 3: "block"}
    i = 0
    while i < len(text):
        if i in starts:
            refs = ",".join(str(n) for n in sorted(set(starts[i])))
            out.append(f"<sup style='color:#c92a2a;font-weight:600'>[{refs}]</sup>")
        level = marks[i]
        j = i + 1
        while j < len(text) and marks[j] == level and j not in starts:
            j += 1
        chunk = html.escape(text[i:j]).replace("\n", "<br>")
        if level:
            fg, bg = ACTION_COLORS[names[level]]
            out.append(f"<span style='background:{bg};color:{fg};'>{chunk}</span>")
        else:
            out.append(chunk)
        i = j
    return "".join(out)


BODY_MIN_HEIGHT = 180


class TurnDetail(QWidget):
    """The selected turn; ``review_requested(turn_id, label, note, corrected)`` when the form is saved."""

    review_requested = Signal(str, str, str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.turn: dict[str, Any] | None = None
        self.header = QLabel("Select a turn to see it in full.")
        self.header.setObjectName("DetailHeader")
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.body = QTextBrowser()
        self.body.setObjectName("DetailBody")
        self.body.setOpenLinks(False)

        # review form
        self.label_group = QButtonGroup(self)
        self.label_group.setExclusive(True)
        labels_row = ReflowGrid(max_columns=len(REVIEW_LABELS), spacing=6, fill=True)   # wraps, never "3 Ov…fusal"
        self.label_buttons: dict[str, QToolButton] = {}
        for n, label in enumerate(REVIEW_LABELS, start=1):
            button = QToolButton()
            button.setText(f"{n}  {LABEL_TITLES[label]}")
            button.setCheckable(True)
            button.setObjectName("ReviewLabel")
            button.setProperty("label", label)
            button.setToolTip(f"Press {n} to label the turn '{label}', save and go to the next one")
            self.label_group.addButton(button, n)
            self.label_buttons[label] = button
            labels_row.add(button)
        self.note = QPlainTextEdit()
        self.note.setPlaceholderText("Note for the review (optional)")
        self.note.setFixedHeight(52)
        self.corrected = QPlainTextEdit()
        self.corrected.setPlaceholderText("Corrected answer for the fine-tuning export (optional): what the "
                                          "model should have answered")
        self.corrected.setFixedHeight(70)
        self.save_button = QPushButton("Save review")
        self.save_button.setProperty("primary", True)
        self.save_button.setToolTip("Ctrl+Enter")
        self.save_button.clicked.connect(self._on_save)
        self.review_state = QLabel("")
        self.review_state.setObjectName("ReviewState")
        save_row = QHBoxLayout()
        save_row.addWidget(self.review_state, 1)
        save_row.addWidget(self.save_button)
        form = QFrame()
        form.setObjectName("ReviewForm")
        form_layout = QVBoxLayout(form)
        form_layout.setContentsMargins(10, 8, 10, 10)
        title = QLabel("Review")
        title.setObjectName("SectionTitle")
        form_layout.addWidget(title)
        form_layout.addWidget(labels_row)
        form_layout.addWidget(self.note)
        form_layout.addWidget(self.corrected)
        form_layout.addLayout(save_row)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(self.body, 1)
        layout.addWidget(form)
        self.body.setMinimumHeight(BODY_MIN_HEIGHT)     # a short window scrolls the detail instead of hiding the turn
        self.set_enabled_form(False)

    # -- showing a turn ----------------------------------------------------------------------------
    def set_enabled_form(self, enabled: bool) -> None:
        for w in (*self.label_buttons.values(), self.note, self.corrected, self.save_button):
            w.setEnabled(enabled)

    def clear(self) -> None:
        self.turn = None
        self.header.setText("Select a turn to see it in full.")
        self.body.clear()
        self.set_enabled_form(False)

    def show_turn(self, turn: dict[str, Any]) -> None:
        self.turn = turn
        p = theme.current()
        decisions = [d for d in turn.get("decisions") or [] if d.get("action") != "allow"]
        sev = turn.get("severity_name", "none")
        chip = {"blocked": "danger", "flagged": "flag", "language-mixing": "warn"}.get(sev)
        status = html.escape(str(turn.get("status") or ""))
        when = html.escape(str(turn.get("created") or "")[:19].replace("T", " "))
        model = html.escape(str(turn.get("model_name") or "unknown model"))
        quant = html.escape(str(turn.get("model_quantization") or ""))
        chip_html = (f"&nbsp;<span style='color:{_chip_fg(chip)};background:{_chip_bg(chip)};'>&nbsp;{sev}&nbsp;"
                     "</span>" if chip else "")
        reviewed = ("&nbsp;·&nbsp;<span style='color:%s'>✓ reviewed</span>" % p.ok) if turn.get("reviewed") else ""
        self.header.setText(
            f"<span style='font-size:12pt;font-weight:600'>Turn {html.escape(str(turn['id'])[:12])}</span>"
            f"{chip_html}{reviewed}<br><span style='color:{p.muted}'>{when} UTC · {model} {quant} · status "
            f"{status} · {len(decisions)} guard decision(s)</span>")

        by_channel: dict[str, list[tuple[int, dict[str, Any]]]] = {"prompt": [], "thinking": [], "answer": []}
        for i, d in enumerate(decisions):
            by_channel.setdefault(d["channel"], []).append((i, d))
        sections = [
            ("Prompt (as typed)", "prompt", turn.get("prompt_typed") or ""),
            ("Thinking", "thinking", turn.get("thinking") or ""),
            ("Answer (as generated)", "answer", turn.get("answer") or ""),
        ]
        parts: list[str] = [f"<div style='font-family:sans-serif;color:{p.text}'>"]
        for title, channel, text in sections:
            items = by_channel.get(channel, [])
            count = f" <span style='color:{p.danger}'>· {len(items)} flagged</span>" if items else ""
            parts.append(f"<h3 style='margin:10px 0 4px 0'>{title}{count}</h3>")
            body = highlight_html(text, [d for _, d in items], {k: i + 1 for k, (i, _) in enumerate(items)})
            # white-space: the auditor reads the text exactly as logged (code indentation, double spaces)
            parts.append(f"<div style='background:{p.code_bg};border:1px solid {p.border};padding:8px;"
                         f"white-space:pre-wrap;'>{body}</div>")
        shown = turn.get("answer_shown")
        if shown is not None and shown != turn.get("answer"):
            parts.append("<h3 style='margin:10px 0 4px 0'>Answer as shown to the user</h3>")
            parts.append(f"<div style='padding:6px;white-space:pre-wrap;'>"
                         f"{html.escape(shown).replace(chr(10), '<br>')}</div>")
        parts.append(self._decisions_html(decisions, by_channel))
        parts.append(self._context_html(turn))
        parts.append(self._reviews_html(turn))
        parts.append("</div>")
        self.body.setHtml("".join(parts))
        self._load_review(turn)
        self.set_enabled_form(True)

    def _decisions_html(self, decisions: list[dict[str, Any]], by_channel: dict[str, list[tuple[int, dict[str, Any]]]]) -> str:
        p = theme.current()
        if not decisions:
            return f"<h3 style='margin:12px 0 4px 0'>Guard decisions</h3><p style='color:{p.muted}'>None.</p>"
        rows = [f"<tr style='background:{p.sidebar}'><th>#</th><th>Channel</th><th>Label</th><th>Score</th>"
                "<th>Threshold</th><th>Action</th><th align='left'>Text</th></tr>"]
        for channel, items in by_channel.items():
            for k, (_, d) in enumerate(items, start=1):
                fg, bg = ACTION_COLORS.get(d.get("action", "flag"), ("#000", "#eee"))
                window = " (window)" if d.get("window") else ""
                text = html.escape(str(d.get("text") or "")[:160])
                rows.append(
                    f"<tr><td>{channel[0].upper()}{k}</td><td>{channel}</td><td>{html.escape(str(d['label']))}</td>"
                    f"<td align='right'><b>{float(d.get('score') or 0):.2f}</b></td>"
                    f"<td align='right'>{float(d.get('threshold') or 0):.2f}</td>"
                    f"<td><span style='background:{bg};color:{fg}'>&nbsp;{d['action']}&nbsp;</span>{window}</td>"
                    f"<td>{text}</td></tr>")
        return ("<h3 style='margin:12px 0 4px 0'>Guard decisions</h3>"
                f"<table cellspacing='0' cellpadding='4' width='100%' style='border:1px solid {p.border}'>"
                + "".join(rows) + "</table>")

    def _context_html(self, turn: dict[str, Any]) -> str:
        p = theme.current()
        settings = turn.get("settings") or {}
        gen = settings.get("generation") or {}
        items = [
            ("Model", f"{turn.get('model_name') or '?'} ({turn.get('model_quantization') or '?'})"),
            ("Model sha256", (turn.get("model_sha256") or "?")[:16] + "…"),
            ("Temperature / top-p", f"{gen.get('temperature', '?')} / {gen.get('top_p', '?')}"),
            ("Max tokens", gen.get("max_tokens", "?")),
            ("Template", settings.get("template", "?")),
            ("Language lock", settings.get("language") or "off"),
            ("Safety preamble", "on" if settings.get("preamble") else "off"),
            ("Finish reason", turn.get("finish_reason") or "?"),
            ("Policy", (turn.get("policy_hash") or "none")[:12]),
        ]
        language = turn.get("language") or {}
        if isinstance(language, dict):
            for channel in ("thinking", "answer"):
                rep = language.get(channel)
                if isinstance(rep, dict) and rep.get("share_in_target") is not None:
                    items.append((f"{channel.capitalize()} in {rep.get('target', 'target')}",
                                  f"{100 * float(rep['share_in_target']):.0f} %"))
        rows = "".join(f"<tr><td style='color:{p.muted}'>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in items)
        extra = json.dumps(settings, indent=1, sort_keys=True)[:1200] if settings else "{}"
        return ("<h3 style='margin:12px 0 4px 0'>Model and settings</h3>"
                f"<table cellpadding='2'>{rows}</table>"
                f"<p style='color:{p.muted};font-size:8pt'>Settings snapshot: {html.escape(extra)}</p>")

    def _reviews_html(self, turn: dict[str, Any]) -> str:
        reviews = turn.get("reviews") or []
        if not reviews:
            return ""
        p = theme.current()
        items = "".join(
            f"<li><b>{html.escape(LABEL_TITLES.get(r['label'], r['label']))}</b> by {html.escape(r['reviewer'])}, "
            f"{html.escape(str(r['created'])[:16].replace('T', ' '))}"
            + (f" — {html.escape(r['note'])}" if r.get("note") else "") + "</li>" for r in reviews)
        return f"<h3 style='margin:12px 0 4px 0'>Reviews</h3><ul style='color:{p.text}'>{items}</ul>"

    def _load_review(self, turn: dict[str, Any]) -> None:
        reviews: list[dict[str, Any]] = turn.get("reviews") or []
        last = reviews[-1] if reviews else None
        last_label = last["label"] if last else None
        self.label_group.setExclusive(False)
        for button in self.label_buttons.values():
            button.setChecked(bool(last) and button.property("label") == last_label)
        self.label_group.setExclusive(True)
        self.note.setPlainText(last.get("note", "") if last else "")
        self.corrected.setPlainText((last.get("corrected_answer") or "") if last else "")
        self.review_state.setText(f"Last review: {last['label']}" if last else "Not reviewed yet")

    # -- review ------------------------------------------------------------------------------------
    def selected_label(self) -> str | None:
        button = self.label_group.checkedButton()
        return str(button.property("label")) if button is not None else None

    def choose_label(self, number: int) -> None:
        button = self.label_group.button(number)
        if button is not None and button.isEnabled():
            button.setChecked(True)

    def _on_save(self) -> None:
        self.submit()

    def submit(self) -> bool:
        """Ask for the review to be saved; False (and a hint) when no label is chosen."""
        if self.turn is None:
            return False
        label = self.selected_label()
        if label is None:
            self.review_state.setText("Choose a label first (keys 1–5).")
            return False
        corrected = self.corrected.toPlainText().strip() or None
        self.review_requested.emit(str(self.turn["id"]), label, self.note.toPlainText().strip(), corrected)
        return True


def _chip_fg(kind: str | None) -> str:
    p = theme.current()
    return {"danger": p.danger, "flag": p.flag, "warn": p.warn}.get(kind or "", p.muted)


def _chip_bg(kind: str | None) -> str:
    p = theme.current()
    return {"danger": p.danger_bg, "flag": p.flag_bg, "warn": p.warn_bg}.get(kind or "", p.surface)

