"""The widgets of one exchange: the user's bubble and the assistant's card (thinking panel, answer,
guard marks, notices, stats and actions).

The assistant card keeps the raw text of each channel plus the guard's marks, appends every chunk at
once and redraws the whole buffer through a throttle (style rule 6).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCursor, QDesktopServices, QGuiApplication, QResizeEvent, QTextOption
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton,
                               QSizePolicy, QTextBrowser, QToolButton, QToolTip, QVBoxLayout, QWidget)

from r1desk.core.events import CONTINUE_HINT, LENGTH_NOTICE_KINDS, length_notice
from r1desk.ui import theme
from r1desk.textsafe import printable
from r1desk.ui.markdown_render import COPY_SCHEME, Flag, Redaction, Renderer, code_block_text, link_allowed
from r1desk.ui.prompt_edit import PromptEdit
from r1desk.ui.throttle import Throttle
from r1desk.ui.wording import counted

if TYPE_CHECKING:
    from r1desk.core.guard.langlock import MixingEvent
    from r1desk.core.guard.policy import Decision

REPAINT_MS = 40
NO_CONTINUE_HINT = ("A server cannot continue a reply: regenerate it, or ask your administrator for a higher "
                    "maximum of new tokens.")
COPIED_FEEDBACK_MS = 1500


class FinishedTurn(Protocol):
    """What a finished message reads of its turn: a core ``TurnResult``, or one rebuilt from the audit log."""

    @property
    def turn_id(self) -> str | None: ...
    @property
    def answer_shown(self) -> str: ...
    @property
    def finish_reason(self) -> str: ...
    @property
    def unfinished_thinking(self) -> bool: ...
    @property
    def usage(self) -> Mapping[str, Any]: ...
    @property
    def timings(self) -> Mapping[str, Any]: ...
    @property
    def raw_output(self) -> str: ...

_renderers: dict[bool, Renderer] = {}


def renderer() -> Renderer:
    pal = theme.current()
    if pal.dark not in _renderers:
        _renderers[pal.dark] = Renderer(pal)
    return _renderers[pal.dark]


def open_link_after_confirm(parent: QWidget, url: QUrl) -> bool:
    """Open an http(s)/mailto link from model output in the browser, after showing its full target
    and asking; any other scheme is refused. Returns True when the link was opened."""
    target = url.toString()
    if not link_allowed(target):
        QMessageBox.warning(parent, "Link not opened",
                            f"r1desk opens only http, https and mailto links. This one is:\n\n{printable(target)[:500]}")
        return False
    answer = QMessageBox.question(
        parent, "Open link?",
        f"The model's reply links to:\n\n{printable(target)[:500]}\n\nOpen it in your browser?",
        QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
    if answer != QMessageBox.StandardButton.Open:
        return False
    return QDesktopServices.openUrl(url)


def set_chip(label: QLabel, kind: str) -> None:
    label.setProperty("chip", kind)
    label.style().unpolish(label)
    label.style().polish(label)


class MessageText(QTextBrowser):
    """A read-only rich-text block that grows to fit its content (no inner scroll bar)."""

    code_copied = Signal(int)     # a code block's "Copy code" link put it on the clipboard

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._html = ""
        # Model output is untrusted: a click shows the target and asks before the browser opens it.
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self._on_anchor_clicked)
        self.highlighted.connect(self._on_link_hovered)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.document().setDocumentMargin(2)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)
        self.setFixedHeight(24)

    def _on_link_hovered(self, url: QUrl) -> None:
        self.setToolTip(url.toString() if url.isValid() and not url.isEmpty() else "")

    def setHtml(self, text: str) -> None:  # noqa: N802 - Qt override: keep what was shown for "Copy code"
        self._html = text
        super().setHtml(text)

    def _on_anchor_clicked(self, url: QUrl) -> None:
        if url.scheme() == COPY_SCHEME:
            self.copy_code(int(url.path()) if url.path().isdigit() else -1)
            return
        open_link_after_confirm(self, url)

    def copy_code(self, index: int) -> bool:
        """Put code block ``index`` on the clipboard and say so where the pointer is."""
        code = code_block_text(self._html, index)
        if code is None:
            return False
        QGuiApplication.clipboard().setText(code)
        QToolTip.showText(QCursor.pos(), "Copied ✓", self)
        self.code_copied.emit(index)
        return True

    def _fit(self, *_: object) -> None:
        height = int(self.document().size().height()) + 4
        if height != self.height():
            self.setFixedHeight(max(height, 20))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self.document().setTextWidth(self.viewport().width())
        self._fit()

    def sizeHint(self) -> QSize:
        return QSize(400, self.height())


def format_stats(tokens_per_s: float | None, elapsed_s: float | None, tokens: int) -> str:
    parts = []
    if tokens_per_s is not None:
        parts.append(f"{tokens_per_s:.1f} tok/s")
    if elapsed_s is not None:
        parts.append(f"{elapsed_s:.1f} s")
    parts.append(counted(tokens, "token"))
    return " · ".join(parts)


def final_stats(result: FinishedTurn) -> str | None:
    """The stats line from a finished turn's usage and timings (what ``audit show`` prints), if it has them."""
    usage, timings = result.usage, result.timings
    tokens = usage.get("completion_tokens")
    if tokens is None:
        return None
    speed = timings.get("decode_tokens_per_s", usage.get("decode_tokens_per_s"))
    total = timings.get("total_s", usage.get("total_s"))
    return format_stats(None if speed is None else float(speed), None if total is None else float(total), int(tokens))


class ThinkingPanel(QFrame):
    """Collapsible "Thinking" panel (collapsed by default) with the time the model spent thinking."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ThinkingPanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.header = QToolButton(self)
        self.header.setObjectName("ThinkingHeader")
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setArrowType(Qt.ArrowType.RightArrow)
        self.header.setCheckable(True)
        self.header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.header.toggled.connect(self._on_toggled)
        self.body = MessageText(self)
        self.body.setContentsMargins(10, 0, 10, 8)
        body_wrap = QWidget(self)
        wrap_layout = QVBoxLayout(body_wrap)
        wrap_layout.setContentsMargins(12, 0, 12, 10)
        wrap_layout.addWidget(self.body)
        self.body_wrap = body_wrap
        layout.addWidget(self.header)
        layout.addWidget(body_wrap)
        body_wrap.setVisible(False)
        self.set_title("Thinking…")

    @property
    def expanded(self) -> bool:
        return self.header.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        self.header.setChecked(expanded)

    def set_title(self, text: str) -> None:
        self.header.setText(text)

    def _on_toggled(self, checked: bool) -> None:
        self.header.setArrowType(Qt.ArrowType.DownArrow if checked else Qt.ArrowType.RightArrow)
        self.body_wrap.setVisible(checked)


class UserMessage(QFrame):
    """The user's prompt, right-aligned, with Copy and Edit (edit-and-resend)."""

    resend = Signal(object, str)      # self, new text

    def __init__(self, text: str, parent: QWidget | None = None, *,
                 enter_sends: Callable[[], bool] | None = None) -> None:
        super().__init__(parent)
        self.text = text
        outer = QVBoxLayout(self)
        outer.setContentsMargins(80, 6, 0, 2)
        outer.setSpacing(2)
        self.bubble = QFrame(self)
        self.bubble.setObjectName("UserBubble")
        bubble_layout = QVBoxLayout(self.bubble)
        bubble_layout.setContentsMargins(14, 10, 14, 10)
        self.label = QLabel(text, self.bubble)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bubble_layout.addWidget(self.label)
        self.editor = PromptEdit(self.bubble, enter_sends=enter_sends)
        self.editor.setAccessibleName("Edit message")
        self.editor.setVisible(False)
        self.editor.setFixedHeight(90)
        bubble_layout.addWidget(self.editor)
        self.edit_buttons = QWidget(self.bubble)
        eb = QHBoxLayout(self.edit_buttons)
        eb.setContentsMargins(0, 0, 0, 0)
        eb.addStretch(1)
        self.cancel_edit = QPushButton("Cancel", self.edit_buttons)
        self.send_edit = QPushButton("Send", self.edit_buttons)
        self.send_edit.setProperty("primary", "true")
        eb.addWidget(self.cancel_edit)
        eb.addWidget(self.send_edit)
        self.edit_buttons.setVisible(False)
        bubble_layout.addWidget(self.edit_buttons)
        outer.addWidget(self.bubble)
        actions = QHBoxLayout()
        actions.setContentsMargins(0, 0, 4, 0)
        actions.addStretch(1)
        self.copy_button = QToolButton(self)
        self.copy_button.setText("Copy")
        self.edit_button = QToolButton(self)
        self.edit_button.setText("Edit")
        self.edit_button.setToolTip("Edit this message and send it again")
        actions.addWidget(self.copy_button)
        actions.addWidget(self.edit_button)
        outer.addLayout(actions)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text))
        self.edit_button.clicked.connect(self.start_edit)
        self.cancel_edit.clicked.connect(self._stop_edit)
        self.send_edit.clicked.connect(self._on_send_edit)
        self.editor.submit.connect(self._on_send_edit)
        self.editor.cancel.connect(self._stop_edit)
        self.editor.cancellable = True

    def start_edit(self) -> None:
        self.editor.setPlainText(self.text)
        self.label.setVisible(False)
        self.editor.setVisible(True)
        self.edit_buttons.setVisible(True)
        self.editor.setFocus()

    def _stop_edit(self) -> None:
        self.label.setVisible(True)
        self.editor.setVisible(False)
        self.edit_buttons.setVisible(False)

    def _on_send_edit(self) -> None:
        new_text = self.editor.toPlainText().strip()
        if not new_text:
            return
        self._stop_edit()
        self.resend.emit(self, new_text)


@dataclass
class ChannelState:
    raw: str = ""
    flags: list[Flag] = field(default_factory=list)
    redactions: list[Redaction] = field(default_factory=list)
    block_start: int | None = None
    block_notice: str | None = None


class AssistantMessage(QFrame):
    """One answer as it streams: thinking panel, answer, guard marks, notices, stats and actions."""

    regenerate = Signal(object)               # self
    feedback = Signal(object, int, str)       # self, +1/-1, comment
    continue_requested = Signal(object)       # self: generate more of a reply that ran out of tokens

    def __init__(self, thinking_visibility: str = "collapsed", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AssistantCard")
        self.turn_id: str | None = None
        self.result: FinishedTurn | None = None
        self.streaming = True
        self.thinking_visibility = thinking_visibility
        self.channels = {"thinking": ChannelState(), "answer": ChannelState()}
        self._started = time.monotonic()
        self._thinking_started: float | None = None
        self._thinking_s: float | None = None
        self._dirty: set[str] = set()
        self._throttle = Throttle(self._repaint, REPAINT_MS, self)
        self.reading: tuple[int, int] | None = None  # prompt tokens read / total while the model reads the prompt
        self.length_notice: QFrame | None = None     # the one "ran out of tokens" notice, with Continue
        self.continue_button: QPushButton | None = None
        self.continue_available = True       # the loaded backend can continue a cut reply (a local model can)
        self._length_message = ""

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 60, 6)
        layout.setSpacing(6)
        self.notices = QVBoxLayout()
        self.notices.setSpacing(4)
        layout.addLayout(self.notices)
        self.thinking = ThinkingPanel(self)
        self.thinking.setVisible(False)
        self.thinking.set_expanded(thinking_visibility == "shown")
        layout.addWidget(self.thinking)
        self.thinking_hidden = QLabel("Reasoning hidden by your organisation's settings", self)
        set_chip(self.thinking_hidden, "muted")
        self.thinking_hidden.setVisible(False)
        layout.addWidget(self.thinking_hidden)
        self.answer = MessageText(self)
        layout.addWidget(self.answer)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setVisible(False)
        layout.addWidget(self.status)
        chips = QHBoxLayout()
        chips.setSpacing(6)
        self.language_chip = QLabel(self)
        self.language_chip.setVisible(False)
        self.flags_chip = QLabel(self)
        self.flags_chip.setVisible(False)
        self.stats_label = QLabel(self)
        self.stats_label.setObjectName("StatsLabel")
        chips.addWidget(self.language_chip)
        chips.addWidget(self.flags_chip)
        chips.addStretch(1)
        chips.addWidget(self.stats_label)
        self.checking = QLabel("checking…", self)     # text generated but not yet judged (core.holdback)
        self.checking.setObjectName("StatsLabel")
        self.checking.setToolTip("The guard is judging the next sentence; it appears once it is judged.")
        self.checking.setVisible(False)
        chips.addWidget(self.checking)
        layout.addLayout(chips)
        actions = QHBoxLayout()
        actions.setSpacing(2)
        self.copy_button = QToolButton(self)
        self.copy_button.setText("Copy")
        self.regenerate_button = QToolButton(self)
        self.regenerate_button.setText("↻ Regenerate")
        self.up_button = QToolButton(self)
        self.up_button.setText("▲ Helpful")
        self.up_button.setCheckable(True)
        self.down_button = QToolButton(self)
        self.down_button.setText("▼ Not helpful")
        self.down_button.setCheckable(True)
        for button in (self.copy_button, self.regenerate_button, self.up_button, self.down_button):
            actions.addWidget(button)
        actions.addStretch(1)
        self.action_row = QWidget(self)       # not "actions": that would hide QWidget.actions()
        self.action_row.setLayout(actions)
        self.action_row.setVisible(False)
        layout.addWidget(self.action_row)
        self.comment_row = QWidget(self)
        comment_layout = QHBoxLayout(self.comment_row)
        comment_layout.setContentsMargins(0, 0, 0, 0)
        self.comment = QLineEdit(self.comment_row)
        self.comment.setPlaceholderText("Add a comment (optional) — what was good or wrong?")
        self.comment_send = QPushButton("Send feedback", self.comment_row)
        comment_layout.addWidget(self.comment, 1)
        comment_layout.addWidget(self.comment_send)
        self.comment_row.setVisible(False)
        layout.addWidget(self.comment_row)
        self._rating = 0
        self.comment_send.clicked.connect(self._on_comment)
        self.comment.returnPressed.connect(self._on_comment)
        self.copy_button.clicked.connect(self._on_copy)
        self._copied_timer = QTimer(self)
        self._copied_timer.setSingleShot(True)
        self._copied_timer.setInterval(COPIED_FEEDBACK_MS)
        self._copied_timer.timeout.connect(lambda: self.copy_button.setText("Copy"))
        self.regenerate_button.clicked.connect(lambda: self.regenerate.emit(self))
        self.up_button.clicked.connect(lambda: self._on_feedback(1))
        self.down_button.clicked.connect(lambda: self._on_feedback(-1))
        self._show_waiting()

    # -- streaming ----------------------------------------------------------------------------------
    def append(self, channel: str, text: str) -> None:
        state = self.channels.get(channel)
        if state is None:
            return
        state.raw += text
        if self.reading is not None:           # the model has started to write: the reading line goes
            self.reading = None
            if not self.channels["answer"].raw:
                self._show_waiting()
        if channel == "thinking":
            if self._thinking_started is None:
                self._thinking_started = time.monotonic()
            self._show_thinking_panel()
        elif self._thinking_started is not None and self._thinking_s is None and text.strip():
            self._thinking_s = time.monotonic() - self._thinking_started
        self._dirty.add(channel)
        self._throttle()

    def set_reading(self, done: int, total: int) -> None:
        """The model is reading the prompt (a long conversation on a busy CPU takes a while): say how far."""
        if self.channels["thinking"].raw or self.channels["answer"].raw:
            return
        self.reading = (done, total)
        self.answer.setHtml(f'<span style="color:{theme.current().muted}">Reading your message… '
                            f'{done:,}/{total:,} tokens</span>')

    def add_decision(self, decision: Decision) -> None:
        channel, action = decision.channel, decision.action
        if channel not in self.channels or action not in ("flag", "redact", "block"):
            return
        state = self.channels[channel]
        state.flags.append(Flag(int(decision.start), int(decision.end), str(decision.label), float(decision.score),
                                decision.threshold, action))
        self._update_flag_chip()
        self._dirty.add(channel)
        self._throttle()

    def set_checking(self, channel: str, held: int) -> None:
        """``held`` characters of ``channel`` wait for the guard: a quiet "checking…", never the text."""
        self.checking.setVisible(held > 0 and (channel == "answer" or self.thinking.isVisible()))

    def redact(self, channel: str, start: int, end: int, notice: str) -> None:
        if channel in self.channels:
            self.channels[channel].redactions.append(Redaction(start, end, notice))
            self._dirty.add(channel)
            self._throttle()

    def block(self, channel: str, start: int, notice: str) -> None:
        if channel in self.channels:
            self.channels[channel].block_start = start
            self.channels[channel].block_notice = notice
            self._dirty.add(channel)
            self._throttle()

    def show_prompt_blocked(self, message: str, decisions: tuple[Decision, ...] = ()) -> None:
        """The prompt itself was blocked: explain why instead of an answer."""
        labels = ", ".join(sorted({str(d.label).replace("_", " ") for d in decisions} - {""}))
        text = message + (f"\n\nWhat the guard found: {labels}." if labels else "")
        self.status.setObjectName("BlockedBox")
        self.status.setText("⊘ Your message was not sent to the model.\n" + text)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
        self.status.setVisible(True)
        self.answer.setVisible(False)

    def add_notice(self, kind: str, message: str) -> None:
        if kind in LENGTH_NOTICE_KINDS:
            self._set_length_notice(kind, message)
            return
        label = QLabel(f"⚠ {message}" if kind != "context_trimmed" else f"ⓘ {message}", self)
        label.setObjectName("NoticeBox")
        label.setWordWrap(True)
        label.setProperty("notice_kind", kind)
        self.notices.addWidget(label)

    def _set_length_notice(self, kind: str, message: str) -> None:
        """One notice for a reply that ran out of tokens (never one per source), with a Continue button."""
        self._length_message = message
        if self.length_notice is not None:
            self.length_notice.setProperty("notice_kind", kind)
            self.set_continue_available(self.continue_available)     # the text for this backend
            return
        box = QFrame(self)
        box.setObjectName("NoticeBox")
        box.setProperty("notice_kind", kind)
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        label = QLabel(f"⚠ {message}", box)
        label.setWordWrap(True)
        row.addWidget(label, 1)
        button = QPushButton("Continue", box)
        button.setToolTip("Generate more of this reply (up to the maximum of new tokens your administrator set)")
        button.setEnabled(False)              # until the turn has finished
        button.clicked.connect(lambda: self.continue_requested.emit(self))
        row.addWidget(button)
        self.notices.addWidget(box)
        self.length_notice, self.continue_button = box, button
        self.set_continue_available(self.continue_available)

    def set_continue_available(self, available: bool) -> None:
        """A server's chat API cannot carry on a reply: no Continue button then, and the notice says what to do."""
        self.continue_available = available
        if self.length_notice is None or self.continue_button is None:
            return
        self.continue_button.setVisible(available)
        label = self.length_notice.findChild(QLabel)
        if label is not None:
            message = self._length_message
            label.setText(f"⚠ {message}" if available else f"⚠ {message.removesuffix(CONTINUE_HINT).rstrip()} "
                                                           f"{NO_CONTINUE_HINT}")

    def resume(self) -> None:
        """Continue was pressed: the message streams again, the notice goes (a new one comes if it runs out again)."""
        if self.length_notice is not None:
            self.notices.removeWidget(self.length_notice)
            self.length_notice.hide()
            self.length_notice.deleteLater()
        self.length_notice = self.continue_button = None
        self.result = None
        self.streaming = True
        self._started = time.monotonic()
        self.status.setVisible(False)
        self.action_row.setVisible(False)

    def set_language(self, target: str | None, share: float, events: tuple[MixingEvent, ...], mixed: bool) -> None:
        """Show the language lock's verdict (core.guard.langlock decides what counts as mixed)."""
        mixing = mixed
        if target is None:
            return
        self.language_chip.setText(f"Language mixing: {share:.0%} {target}" if mixing
                                   else f"✓ {target} {share:.0%}")
        lines = [f"Share of the answer in the target language ({target}): {share:.0%}"]
        for event in events[:8]:
            lines.append(f"• {event.language}: “{event.text[:60]}”")
        self.language_chip.setToolTip("\n".join(lines))
        set_chip(self.language_chip, "warn" if mixing else "ok")
        self.language_chip.setVisible(True)
        self.language_chip.setProperty("mixing", "true" if mixing else "false")

    def set_stats(self, tokens_per_s: float, elapsed_s: float, tokens: int) -> None:
        """Live numbers while streaming; :meth:`finish` replaces them with the turn's logged ones."""
        self.stats_label.setText(format_stats(tokens_per_s, elapsed_s, tokens))
        if self._thinking_started is not None and self._thinking_s is None:
            self.thinking.set_title(f"Thinking… {time.monotonic() - self._thinking_started:.0f} s")

    def finish(self, result: FinishedTurn) -> None:
        """The turn ended (stop, length, cancelled, blocked, interrupted, error)."""
        self.result = result
        self.streaming = False
        self.checking.setVisible(False)
        self.turn_id = result.turn_id
        if self._thinking_started is not None and self._thinking_s is None:
            self._thinking_s = time.monotonic() - self._thinking_started
        if result.timings.get("thinking_s"):
            self._thinking_s = float(result.timings["thinking_s"])
        self._throttle.flush()
        self._dirty = {"thinking", "answer"}
        self._repaint()
        final = final_stats(result)
        if final is not None:           # one source of truth: the numbers the audit log records
            self.stats_label.setText(final)
        reason = result.finish_reason
        messages = {"cancelled": "Stopped.", "interrupted": "Interrupted (the app was closed).",
                    "error": "Generation failed."}
        if reason == "length":                # one notice, whether the core said it already or the turn was reopened
            if self.length_notice is None:
                notice = length_notice(result.unfinished_thinking)
                self.add_notice(notice.kind, notice.message)
            if self.continue_button is not None:
                self.continue_button.setEnabled(bool(result.turn_id and result.raw_output))
        if reason in messages and not self.status.isVisible():
            self.status.setText(messages[reason])
            set_chip(self.status, "muted")
            self.status.setVisible(True)
        self.action_row.setVisible(True)

    def fail(self, message: str) -> None:
        self.streaming = False
        self._throttle.flush()
        self.status.setText(message)
        set_chip(self.status, "danger")
        self.status.setVisible(True)
        self.action_row.setVisible(True)

    # -- text ---------------------------------------------------------------------------------------
    def answer_text(self) -> str:
        shown = self.result.answer_shown if self.result is not None else None
        return shown if shown is not None else self.channels["answer"].raw

    def thinking_title(self) -> str:
        if self._thinking_s is None:
            return "Thinking…"
        return f"Thought for {self._thinking_s:.1f} s"

    def _show_waiting(self) -> None:
        self.answer.setHtml(f'<span style="color:{theme.current().muted}">…</span>')

    def _show_thinking_panel(self) -> None:
        if self.thinking_visibility == "hidden":
            self.thinking_hidden.setVisible(True)
        elif not self.thinking.isVisible():
            self.thinking.setVisible(True)

    def _repaint(self) -> None:
        render = renderer()
        for channel in sorted(self._dirty):
            state = self.channels[channel]
            html = render.render(state.raw, flags=state.flags, redactions=state.redactions,
                                 block_start=state.block_start, block_notice=state.block_notice,
                                 streaming=self.streaming, muted=channel == "thinking")
            if channel == "thinking":
                if self.thinking_visibility != "hidden":
                    self.thinking.body.setHtml(html)
            elif state.raw or state.block_start is not None:
                self.answer.setHtml(html)
        self._dirty.clear()
        self.thinking.set_title(self.thinking_title())

    def _update_flag_chip(self) -> None:
        flags = [f for st in self.channels.values() for f in st.flags]
        if not flags:
            return
        in_thinking = sum(1 for f in self.channels["thinking"].flags)
        text = f"⚑ {len(flags)} flagged"
        if in_thinking:
            text += f" ({in_thinking} in thinking)"
        self.flags_chip.setText(text)
        self.flags_chip.setToolTip("\n".join(f"{f.label.replace('_', ' ')}: {f.score:.2f}" for f in flags))
        set_chip(self.flags_chip, "flag")
        self.flags_chip.setVisible(True)

    def _on_copy(self) -> None:
        QGuiApplication.clipboard().setText(self.answer_text())
        self.copy_button.setText("Copied ✓")          # visible feedback, then back to "Copy"
        self._copied_timer.start()

    def _on_feedback(self, rating: int) -> None:
        """Log the thumb at once; offer an optional comment, logged as the latest feedback."""
        (self.down_button if rating > 0 else self.up_button).setChecked(False)
        pressed = (self.up_button if rating > 0 else self.down_button).isChecked()
        self._rating = rating if pressed else 0
        self.feedback.emit(self, self._rating, "")
        self.comment_row.setVisible(pressed)
        if pressed:
            self.comment.setFocus()

    def _on_comment(self) -> None:
        text = self.comment.text().strip()
        if text and self._rating:
            self.feedback.emit(self, self._rating, text)
            self.comment.clear()
            self.comment_row.setVisible(False)
