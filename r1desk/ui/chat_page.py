"""The chat page: disclosure bar, the conversation, the input bar — and the wiring between them and the
generation worker. It builds a ``TurnRequest`` from what the user did and displays the events; every
decision (prompt, guard, logging) is core.chat's.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QProgressBar, QVBoxLayout, QWidget

from r1desk.core import events as ev
from r1desk.ui.app_state import AppState
from r1desk.ui.chat_view import ChatView
from r1desk.ui.disclosure_bar import DisclosureBar
from r1desk.ui.input_bar import InputBar
from r1desk.ui.messages import AssistantMessage
from r1desk.ui.tasks import error_text
from r1desk.ui.weights_panel import WeightsPanel, configured_types, default_installer

if TYPE_CHECKING:
    from r1desk.core.guard.status import GuardStatus

log = logging.getLogger("r1desk.ui")


class ChatPage(QWidget):
    conversation_started = Signal(str)      # a new conversation id got its first turn
    turn_done = Signal(object)              # TurnResult (tests and the sidebar listen)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.conversation_id: str | None = None
        self._current: AssistantMessage | None = None     # the message the worker's events go to
        self._last: AssistantMessage | None = None        # the one that just finished (language retry)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.disclosure = DisclosureBar(self)
        layout.addWidget(self.disclosure)
        # Missing classifier weights: one banner per app run, with Download / Import files… (issue 14 item 4)
        self.weights_banner = WeightsPanel(default_installer(lambda: configured_types(self.state.settings)),
                                           self, dismissable=True)
        self.weights_banner.setVisible(False)
        self.weights_banner.installed.connect(self._on_weights_installed)
        self.weights_banner.dismissed.connect(lambda: setattr(self, "_weights_dismissed", True))
        self._weights_dismissed = False
        layout.addWidget(self.weights_banner)
        self.loading = QProgressBar(self)
        self.loading.setRange(0, 0)          # llama.cpp reports no load progress: a busy bar
        self.loading.setTextVisible(False)
        self.loading.setFixedHeight(4)
        self.loading.setVisible(False)
        layout.addWidget(self.loading)
        self.view = ChatView(self)
        layout.addWidget(self.view, 1)
        self.input = InputBar(self)
        layout.addWidget(self.input)
        self.input.set_template(state.settings.template)
        lang = state.settings.language.target
        self.input.set_language(lang)

        enter_sends = lambda: bool(self.state.settings.enter_sends)   # noqa: E731 - read at each key press
        self.input.set_enter_sends(enter_sends)
        self.view.enter_sends = enter_sends
        self.input.send.connect(self.send)
        self.input.stop.connect(self.stop)
        self.view.edit_resend.connect(self._on_edit_resend)
        self.view.regenerate.connect(self._on_regenerate)
        self.view.continue_turn.connect(self._on_continue)
        self.view.feedback.connect(self._on_feedback)
        w = state.worker
        w.turn_started.connect(self._on_turn_started)
        w.notice.connect(self._on_notice)
        w.prompt_blocked.connect(self._on_prompt_blocked)
        w.delta.connect(self._on_delta)
        w.checking.connect(self._on_checking)
        w.guard_decision.connect(self._on_guard_decision)
        w.redacted.connect(self._on_redacted)
        w.blocked.connect(self._on_blocked)
        w.language_report.connect(self._on_language)
        w.stats.connect(self._on_stats)
        w.prompt_progress.connect(self._on_prompt_progress)
        w.turn_finished.connect(self._on_turn_finished)
        w.turn_failed.connect(self._on_turn_failed)
        w.busy_changed.connect(self._on_busy_changed)
        state.model_loading.connect(self._on_model_loading)
        state.model_loaded.connect(self._on_model_loaded)
        state.model_failed.connect(lambda _e: self._set_loading(False))
        state.model_unloaded.connect(self._on_model_unloaded)
        state.guard_status_changed.connect(self.disclosure.set_guard_status)
        state.guard_status_changed.connect(self._on_guard_status)
        self.disclosure.set_model(state.model_info)
        self._update_can_send()

    # -- actions --------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.state.worker.busy

    def send(self, text: str, *, keep: int | None = None, regenerate_of: str | None = None) -> None:
        """Send ``text`` as a new turn after the first ``keep`` exchanges (default: all of them)."""
        if self.busy or self.state.session is None:
            return
        if keep is not None:
            self.view.truncate(keep)
        history = self._history()
        self._last = None
        self._current = self.view.add_exchange(text, self.state.thinking_visibility)
        from r1desk.core.chat import TurnRequest

        request = TurnRequest(user_text=text, conversation_id=self.conversation_id, history=history,
                              template=self.input.template_key(), language=self.input.language_code(),
                              regenerate_of=regenerate_of)
        self.view.set_regenerate_enabled(False)
        self.input.set_busy(True)
        self.state.worker.start_turn(self.state.session, request)

    def stop(self) -> None:
        self.state.worker.cancel()

    def new_chat(self) -> None:
        if self.busy:
            self.stop()
        self._detach()
        self.conversation_id = None
        self.view.clear()
        self.input.focus_input()

    def _detach(self) -> None:
        """The view is about to be cleared: the rest of a stopped turn's events go nowhere."""
        self._current = None
        self._last = None

    def show_conversation(self, conversation_id: str, turns: list[Any]) -> None:
        """Display a stored conversation (turn records from the audit log)."""
        self._detach()
        self.conversation_id = conversation_id
        self.view.clear()
        for record in turns:
            get = record.get if isinstance(record, dict) else lambda k, d=None, r=record: getattr(r, k, d)
            if get("superseded"):
                continue          # regenerated: the chat shows the retry only (the audit log keeps both)
            message = self.view.add_exchange(str(get("prompt_typed", "") or ""), self.state.thinking_visibility)
            message.turn_id = get("id") or get("turn_id")
            thinking = get("thinking_shown") or get("thinking") or ""
            answer = get("answer_shown") or ""
            if thinking:
                message.append("thinking", thinking)
            if answer:
                message.append("answer", answer)
            reason = get("finish_reason") or get("status") or "stop"
            if reason == "blocked" and not answer:
                message.show_prompt_blocked("This message was blocked by the guard.")
            for notice in get("notices") or ():           # the turn's stored notices (context trimmed, few-shot…)
                if isinstance(notice, dict) and notice.get("message"):
                    message.add_notice(str(notice.get("kind") or "info"), str(notice["message"]))
            language = get("language") or {}
            answer_language = language.get("answer") if isinstance(language, dict) else None
            if isinstance(answer_language, dict) and language.get("target"):
                events = _mixing_events(answer_language.get("events"))
                # the lock's stored verdict; a record without one is shown as mixed when it lists mixing events
                mixed = answer_language.get("mixed")
                message.set_language(str(language["target"]), float(answer_language.get("share_in_target") or 0.0),
                                     events, bool(events) if mixed is None else bool(mixed))
            message.finish(_StoredResult(message.turn_id, answer, reason, unfinished=bool(get("unfinished_thinking")),
                                         raw_output=str(get("raw_output") or ""), usage=get("usage") or {},
                                         timings=get("timings") or {}))
            rating = get("feedback_rating") or get("rating")
            if rating:
                (message.up_button if int(rating) > 0 else message.down_button).setChecked(True)
        self.view.set_regenerate_enabled(True)

    # -- worker events ------------------------------------------------------------------------------
    def _on_turn_started(self, event: ev.TurnStarted) -> None:
        if self._current is None:
            return                  # a turn the user left (new chat, another conversation)
        self._current.turn_id = event.turn_id
        if self.conversation_id is None:
            self.conversation_id = event.conversation_id
            self.conversation_started.emit(event.conversation_id)

    def _on_notice(self, event: ev.Notice) -> None:
        if event.kind == "guard_status":    # a filter not installed: the disclosure bar says so, not every answer
            return
        if self._current is None and event.kind == "language_regenerate" and self._last is not None:
            # The language lock regenerates once, as a new turn of the same request: its answer
            # replaces the one that mixed languages, as the Regenerate button does.
            index = self.view.index_of(self._last)
            if index >= 0:
                user_text = self.view.exchanges[index][0].text
                self.view.truncate(index)
                self._current = self.view.add_exchange(user_text, self.state.thinking_visibility)
            self._last = None
        if (event.kind == "classifier_unavailable" and event.message.lower().startswith("toxicity")
                and self._offer_weights()):
            return                  # the banner says it once per run, with the way to fix it (not every answer)
        if self._current is not None:
            self._current.add_notice(event.kind, event.message)

    def _on_prompt_blocked(self, event: ev.PromptBlocked) -> None:
        if self._current is not None:
            self._current.show_prompt_blocked(event.message, tuple(event.decisions))

    def _on_checking(self, channel: str, held: int) -> None:
        if self._current is not None:
            self._current.set_checking(channel, held)

    def _on_delta(self, channel: str, text: str) -> None:
        if self._current is not None:
            self._current.append(channel, text)

    def _on_guard_decision(self, event: ev.GuardDecision) -> None:
        if self._current is not None:
            self._current.add_decision(event.decision)

    def _on_redacted(self, event: ev.Redacted) -> None:
        if self._current is not None:
            self._current.redact(event.channel, event.start, event.end, event.notice)

    def _on_blocked(self, event: ev.Blocked) -> None:
        if self._current is not None:
            if event.channel == "prompt":
                self._current.show_prompt_blocked(event.notice)
            else:
                self._current.block(event.channel, event.start, event.notice)

    def _on_language(self, event: ev.LanguageReport) -> None:
        if self._current is not None and event.channel == "answer":
            self._current.set_language(event.target, event.share_in_target, tuple(event.events), event.mixed)

    def _on_stats(self, event: ev.Stats) -> None:
        if self._current is not None:
            self._current.set_stats(event.tokens_per_s, event.elapsed_s, event.completion_tokens)
        self.input.stats.setText(f"{event.tokens_per_s:.1f} tok/s · {event.elapsed_s:.1f} s")

    def _on_prompt_progress(self, done: int, total: int) -> None:
        if self._current is not None:
            self._current.set_reading(done, total)

    def _on_turn_finished(self, result: ev.TurnResult) -> None:
        if self._current is not None:
            self._current.finish(result)
        self._last, self._current = self._current, None
        self.turn_done.emit(result)

    def _on_turn_failed(self, exc: BaseException) -> None:
        message, _details = error_text(exc)
        shown_inline = self._current is not None
        if self._current is not None:
            self._current.fail(message)
        self._current = self._last = None
        from r1desk.errors import UserFacingError

        if not (shown_inline and isinstance(exc, UserFacingError)):
            from r1desk.ui.tasks import show_error

            show_error(self, exc)

    def _on_busy_changed(self, busy: int) -> None:
        self.input.set_busy(bool(busy))
        if not busy:
            self.view.set_regenerate_enabled(True)
            self.input.stats.setText("")

    # -- classifier weights ---------------------------------------------------------------------------
    def _on_guard_status(self, status: GuardStatus | None) -> None:
        from r1desk.core.guard.classifier import State

        if status is None or any(st.state is State.UNAVAILABLE for st in status.classifiers.values()):
            self._offer_weights()

    def _offer_weights(self) -> bool:
        """Weights are missing: show the banner (unless hidden this run); False when none are missing."""
        if self.weights_banner.busy:
            return True
        if not self.weights_banner.refresh():
            return False
        if not self._weights_dismissed:
            self.weights_banner.setVisible(True)
        return True

    def _on_weights_installed(self) -> None:
        self.weights_banner.setVisible(False)
        self.state.reload_guard()

    # -- model --------------------------------------------------------------------------------------
    def _set_loading(self, loading: bool) -> None:
        self.loading.setVisible(loading)
        self._update_can_send()

    def _on_model_loading(self, path: str) -> None:
        self.disclosure.model_name.setText(f"Loading {path.rsplit('/', 1)[-1]}…")
        self._set_loading(True)

    def _on_model_loaded(self, info: Any) -> None:
        self.disclosure.set_model(info)
        self._set_loading(False)
        # Continue resends the cut reply as the start of the assistant turn: a local model can, a server's chat
        # API cannot (core.chat refuses it), so a server's notices offer what works instead
        self.view.set_continue_available(self.state.model_info is not None)

    def _on_model_unloaded(self) -> None:
        self.disclosure.set_model(None)
        self._update_can_send()

    def _update_can_send(self) -> None:
        ready = self.state.has_model and not self.loading.isVisible()
        self.input.set_can_send(ready, "Load a model first (Models…)")

    # -- exchange actions -------------------------------------------------------------------------------
    def _history(self, upto: int | None = None) -> list[Any]:
        from r1desk.core.prompts import Message

        history: list[Any] = []
        for user, assistant in self.view.exchanges[:upto]:
            answer = assistant.answer_text()
            if assistant.result is None and not answer:
                continue          # the turn failed before the model answered (e.g. prompt too long)
            reason = assistant.result.finish_reason if assistant.result is not None else "stop"
            if reason == "blocked" and not answer:
                continue          # a blocked prompt never reached the model
            history.append(Message(role="user", content=user.text))
            history.append(Message(role="assistant", content=answer))
        return history

    def _on_edit_resend(self, index: int, text: str) -> None:
        """An edit starts a new branch: the logged turns from this exchange on are replaced (the audit log
        keeps them; reopening the conversation shows, and the model is sent, the edited branch only)."""
        replaced = next((a.turn_id for _u, a in self.view.exchanges[index:] if a.turn_id), None)
        self.send(text, keep=index, regenerate_of=replaced)

    def _on_regenerate(self, index: int) -> None:
        if index != len(self.view.exchanges) - 1 or self.busy:
            return
        user, assistant = self.view.exchanges[index]
        self.send(user.text, keep=index, regenerate_of=assistant.turn_id)

    def _on_continue(self, index: int) -> None:
        """Continue a reply that ran out of tokens: the same message streams on (core.chat.Continuation);
        only the latest reply, so the conversation after it stays what the model saw."""
        if index != len(self.view.exchanges) - 1 or self.busy or self.state.session is None:
            return
        user, assistant = self.view.exchanges[index]
        result = assistant.result
        if result is None or not result.turn_id or not result.raw_output:
            return
        from r1desk.core.chat import Continuation, TurnRequest

        request = TurnRequest(user_text=user.text, conversation_id=self.conversation_id,
                              history=self._history(index), template=self.input.template_key(),
                              language=self.input.language_code(), regenerate_of=result.turn_id,
                              continue_from=Continuation(result.turn_id, result.raw_output))
        assistant.resume()
        self._last, self._current = None, assistant
        self.view.set_regenerate_enabled(False)
        self.input.set_busy(True)
        self.state.worker.start_turn(self.state.session, request)

    def _on_feedback(self, turn_id: str, rating: int, comment: str) -> None:
        audit = self.state.audit
        if audit is None:
            return
        try:
            audit.set_feedback(turn_id, rating, comment)
        except Exception as exc:
            from r1desk.ui.tasks import show_error

            show_error(self, exc)


class _StoredResult:
    """Enough of a TurnResult to finish a message rebuilt from the audit log."""

    def __init__(self, turn_id: str | None, answer: str, reason: str, *, unfinished: bool = False,
                 raw_output: str = "", usage: dict[str, Any] | None = None,
                 timings: dict[str, Any] | None = None) -> None:
        self.turn_id = turn_id
        self.answer_shown = answer
        self.finish_reason = reason
        self.unfinished_thinking = unfinished
        self.raw_output = raw_output
        self.usage: dict[str, Any] = dict(usage or {})       # the logged numbers: the stats line comes back
        self.timings: dict[str, Any] = dict(timings or {})


def _mixing_events(raw: Any) -> tuple[Any, ...]:
    """The stored language-mixing events (MixingEvent.to_dict) back as MixingEvents, for the badge's tooltip."""
    from r1desk.core.guard.langlock import MixingEvent

    events = []
    for item in raw if isinstance(raw, list) else ():
        try:
            events.append(MixingEvent(**item))
        except TypeError:
            continue
    return tuple(events)
