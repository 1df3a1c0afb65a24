"""One guarded, audited chat turn: template → engine → splitter → guard → audit log → events.

The CLI, the Qt worker and the self-check all run turns through ``ChatSession.run_turn`` so there
is exactly one code path. The audit log sees the prompt before generation starts and the partial
output after every completed sentence, so a crash loses at most the sentence being written.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from r1desk.core.backend import InferenceBackend, LinkedEvent, TextStream
from r1desk.core.config import ChatConfig
from r1desk.core.engine import GenParams, GenStats
from r1desk.core.events import (ChatEvent, FinishReason, GuardDecision, Notice, PromptBlocked, PromptProgress,
                                Stats, TurnFinished, TurnResult, TurnStarted, length_notice)
from r1desk.core.guard.status import GuardStatus
from r1desk.core.guard.policy import Decision
from r1desk.core.guard.session import GuardSession, TurnGuard
from r1desk.core.holdback import HoldBack
from r1desk.core.prompts import BuiltPrompt, Message, PromptRequest
from r1desk.core.thinking import ThinkingSplitter
from r1desk.core.turn_log import TurnLog
from r1desk.errors import UserFacingError
from r1desk.storage.auditlog import AuditLog

log = logging.getLogger("r1desk.chat")

_SURROGATES = re.compile("[\ud800-\udfff]")
STATS_EVERY_S = 0.5
# Room kept for the reply when fitting history into the context: the smaller of max_tokens and
# n_ctx / 4 (the engine still stops at the context's end with finish_reason "length").
REPLY_RESERVE_DIVISOR = 4
# Partial output is committed to the audit log after a sentence end or a newline, and at least every
# COMMIT_EVERY_TOKENS tokens (a run-on "sentence" must not stay uncommitted for long).
_SEGMENT_ENDS = frozenset(".!?。！？\n")
COMMIT_EVERY_TOKENS = 32


def scrub_text(text: str) -> str:
    """``text`` with lone surrogates (how Python keeps undecodable bytes) replaced by U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)


@dataclass(frozen=True)
class Continuation:
    """Generate more of a reply that ran out of tokens (finish_reason "length").

    The turn resends the conversation with the earlier reply as the start of the assistant turn, so the
    model carries on where it stopped, with the admin's max_tokens again. In the audit log the new turn has
    ``regenerate_of`` = the cut turn (which becomes superseded: the chat shows, and later prompts send, the
    whole reply once), ``settings.continues`` = that turn too, a ``prompt_sent`` that ends with the earlier
    reply, and the whole reply (earlier + new) as its thinking, answer and raw output.
    """

    turn_id: str
    raw_output: str             # the cut reply exactly as the model wrote it (TurnResult.raw_output)


# Fewer free context positions than this after the prompt and the earlier reply: nothing to continue into.
MIN_CONTINUE_ROOM = 16




@dataclass(frozen=True)
class _Turn:
    """What a turn carries from its start (``_begin``) through the stream to its end."""

    req: TurnRequest
    params: GenParams
    guard: TurnGuard
    built: BuiltPrompt
    model: dict[str, Any]
    settings: dict[str, Any]
    turn_id: str
    conversation_id: str


@dataclass
class TurnRequest:
    user_text: str
    conversation_id: str | None = None
    history: list[Message] = field(default_factory=list)
    template: str | None = None            # None: the settings' default template
    language: str | None = "auto"          # "auto", a language code, or None for no lock
    params: GenParams | None = None        # None: the settings' generation defaults
    regenerate_of: str | None = None
    continue_from: Continuation | None = None    # carry on a reply that ran out of tokens (see Continuation)


class ChatSession:
    """Owns one inference backend (core.backend), the guard classifiers, the audit log and the configuration."""

    def __init__(self, engine: InferenceBackend, *, audit: AuditLog | None, config: ChatConfig,
                 guard: GuardSession | None = None, guarded: bool = True) -> None:
        self.engine = engine
        self.audit = audit
        self.config = config
        self.guarded = guarded
        self.guard = guard if guard is not None else GuardSession(config.guard, enabled=guarded)
        self.log = TurnLog(audit)              # a locked database delays the writes, never loses them
        self.settings_problems: list[str] = []      # why the settings file was not applied, if it was not
        self._lock = threading.Lock()

    # --- helpers the CLI and the GUI share ----------------------------------------------------

    @property
    def guard_status(self) -> GuardStatus:
        return self.guard.status

    def generation_params(self, **overrides: Any) -> GenParams:
        """The settings' generation defaults, with any non-None override applied."""
        g = self.config.generation
        params = GenParams(temperature=g.temperature, top_p=g.top_p, max_tokens=g.max_tokens,
                           seed=None if g.seed < 0 else g.seed)
        return replace(params, **{k: v for k, v in overrides.items() if v is not None})

    def history(self, conversation_id: str) -> list[Message]:
        """Earlier turns of a conversation, answers as shown (thinking is never re-sent)."""
        if self.audit is None:
            return []
        messages: list[Message] = []
        for turn in self.audit.get_conversation(conversation_id)["turns"]:
            if turn["superseded"] or turn["status"] == "blocked" or not turn["answer_shown"]:
                continue
            messages.append(Message("user", turn["prompt_typed"]))
            messages.append(Message("assistant", turn["answer_shown"]))
        return messages

    def update_config(self, config: ChatConfig) -> None:
        """A new configuration applies from the next turn on (the admin view calls this after saving)."""
        with self._lock:
            self.config = config
            self.guard.update_config(config.guard)

    def close(self) -> str | None:
        """Stop the guard's threads and store pending audit writes; returns a message if some had to be
        kept in a file beside the database instead (they are stored at the next start)."""
        self.guard.close()
        return self.log.close()

    # --- the turn -----------------------------------------------------------------------------

    def run_turn(self, req: TurnRequest, cancel: threading.Event | None = None) -> Iterator[ChatEvent]:
        """Run one turn, yielding events; regenerates once if the language lock asks for it."""
        cancel = cancel or threading.Event()
        result: TurnResult | None = None
        for event in self._one_turn(req, cancel, strong_language=False):
            if isinstance(event, TurnFinished):
                result = event.result
            yield event
        if (result is not None and result.finish_reason in ("stop", "length")
                and result.language.get("should_regenerate") and not cancel.is_set()):
            yield Notice("language_regenerate",
                         "The reply mixed languages; regenerating once with a stronger language instruction.")
            retry = replace(req, conversation_id=result.conversation_id, regenerate_of=result.turn_id)
            yield from self._one_turn(retry, cancel, strong_language=True)

    def _one_turn(self, req: TurnRequest, cancel: threading.Event, *,
                  strong_language: bool) -> Iterator[ChatEvent]:
        """One generation: begin (prompt built, turn logged), stream (guarded, held back), end (logged)."""
        turn = yield from self._begin(req, strong_language)
        guard = turn.guard
        check = _PromptCheck(guard)           # judged while the model reads the prompt
        stop = LinkedEvent(cancel)            # set on user cancel (at once, for a network stream) or a guard block
        splitter = ThinkingSplitter(turn.built.starts_in_thinking)
        hold = HoldBack(guard.held_channels(), lambda ch: guard.judged()[ch], guard.cut)
        cont = req.continue_from
        if cont is not None:                  # the earlier reply: judged again, shown already
            for channel, text in splitter.feed(cont.raw_output):
                guard.feed(channel, text)
                hold.already_shown(channel, text)
        generation = self.engine.stream(turn.built, turn.params, stop)
        prompt_blocked = yield from self._stream(turn, generation, check, splitter, hold, cancel, stop)
        if check.pending:                      # the model said nothing at all: the prompt's verdict still counts
            yield from check.events()
            prompt_blocked = guard.prompt_blocked
        if prompt_blocked:
            generation.close()
            yield PromptBlocked(tuple(check.decisions), guard.prompt_block_message())
            result = _result(_Outcome(turn.turn_id, turn.conversation_id, finish="blocked", blocked=True), guard,
                             turn.model, turn.settings, turn.built.notices + turn.built.warnings)
            self.log.finish(result, "", guard)
            yield from self.log.take_notices()
            yield TurnFinished(result)
            return
        yield from self._end(turn, generation, splitter, hold, cancel)

    def _begin(self, req: TurnRequest, strong_language: bool) -> Generator[ChatEvent, None, _Turn]:
        """Check the input, build the prompt the model's recipe calls for, log the turn's start."""
        config = self.config
        engine = self.engine
        if not engine.loaded:
            raise UserFacingError("no model is loaded", hint="load a GGUF model first")
        description = engine.describe()
        clean = scrub_text(req.user_text)
        if clean != req.user_text:    # lone surrogates (undecodable bytes) would crash the guard or the engine
            req = replace(req, user_text=clean)
            yield Notice("input_replaced", "The message held characters that are not valid Unicode; they were "
                                           "replaced with U+FFFD.")
        params = req.params or self.generation_params()
        template = req.template or config.template
        guard = self.guard.start_turn(req.user_text, req.language, config.guard)
        preamble = config.preamble
        prompt_req = PromptRequest(user_text=req.user_text, history=list(req.history), template=template,
                                   language=guard.target_language, preamble=preamble,
                                   strong_language=strong_language)
        self.log.begin_turn()
        settings_snapshot = {
            "generation": asdict(params), "template": template, "language": guard.target_language,
            "language_request": req.language, "preamble": preamble, "guarded": self.guarded,
            "n_ctx": engine.n_ctx, "thinking_visibility": config.thinking_visibility,
            "regenerate_of": req.regenerate_of, "strong_language": strong_language,
        }
        cont = req.continue_from
        if cont is not None:
            settings_snapshot["continues"] = cont.turn_id
        model = description.to_dict()
        try:
            built = engine.build_prompt(prompt_req,
                                        max_tokens=min(params.max_tokens, engine.n_ctx // REPLY_RESERVE_DIVISOR))
            if cont is not None:
                built = self._continued(built, cont)
        except UserFacingError as exc:        # e.g. the prompt alone exceeds the context: log, then raise
            self.log.failed(conversation_id=req.conversation_id, prompt_typed=req.user_text, model=model,
                            settings=settings_snapshot, policy=guard.policy_snapshot(),
                            regenerate_of=req.regenerate_of, message=str(exc))
            raise
        turn_id, conversation_id = self.log.start(
            conversation_id=req.conversation_id, prompt_typed=req.user_text, prompt_sent=built.text, model=model,
            settings=settings_snapshot, policy=guard.policy_snapshot(), regenerate_of=req.regenerate_of)
        yield TurnStarted(turn_id, conversation_id, model, built.text, settings_snapshot)
        yield from self.log.take_notices()
        for message in built.warnings:
            yield Notice("template_fallback" if message == built.template_fallback else "few_shot", message)
        for message in built.notices:
            yield Notice("context_trimmed", message)
        for notice in guard.status_notices():
            yield notice
        return _Turn(req, params, guard, built, model, settings_snapshot, turn_id, conversation_id)

    def _stream(self, turn: _Turn, generation: TextStream, check: _PromptCheck, splitter: ThinkingSplitter,
                hold: HoldBack, cancel: threading.Event, stop: LinkedEvent) -> Generator[ChatEvent, None, bool]:
        """The model's pieces through the splitter, the guard and the hold-back; the partial output committed
        after each sentence. Returns True when the prompt's verdict blocked the turn. An interruption or a
        backend failure logs what there is, then goes on up."""
        guard = turn.guard
        started = time.perf_counter()
        last_stats = started
        commit_due = False
        last_commit = 0
        ended: str | None = None              # set when the turn ends abnormally (interrupted, error)
        error_message: str | None = None
        try:
            for piece in generation:
                if not piece:                     # the model is reading the prompt: how far (not model output)
                    if generation.prompt_progress is not None:
                        yield PromptProgress(*generation.prompt_progress)
                    if cancel.is_set() or guard.blocked.is_set():
                        stop.set()
                    continue
                if check.pending:                 # nothing is handed out before the prompt's verdict
                    yield from check.events()
                    if guard.prompt_blocked:
                        stop.set()
                        return True
                tokens = generation.completion_tokens   # pieces are not tokens (an emoji can be 3)
                for channel, text in splitter.feed(piece):
                    guard.feed(channel, text)
                    yield from hold.add(channel, text)
                    commit_due = commit_due or any(ch in _SEGMENT_ENDS for ch in text)
                judged = guard.judged()           # before the events: a block decided since is among them
                for event in guard.poll():
                    yield event
                yield from hold.poll(judged)
                if commit_due or tokens - last_commit >= COMMIT_EVERY_TOKENS:
                    commit_due, last_commit = False, tokens
                    self.log.partial(turn.turn_id, splitter, guard)
                    yield from self.log.take_notices()
                if cancel.is_set() or guard.blocked.is_set():
                    stop.set()
                now = time.perf_counter()
                if now - last_stats >= STATS_EVERY_S:
                    last_stats = now
                    elapsed = now - started
                    yield Stats(tokens / elapsed if elapsed > 0 else 0.0, elapsed, tokens)
        except (GeneratorExit, KeyboardInterrupt):  # window closed / Ctrl-C: keep what we have
            ended = "interrupted"
            stop.set()
            raise
        except Exception as exc:               # the backend failed mid-answer: keep what we have, then report
            ended = "error"
            error_message = str(exc)
            raise
        finally:
            check.wait()                       # never leave the prompt check running
            if ended:
                generation.close()             # release the engine now, not at garbage collection
                for _ in splitter.finish():
                    pass
                guard.cancel()
                self.log.interrupted(turn.turn_id, splitter, guard, reason=ended, message=error_message)
        return False

    def _end(self, turn: _Turn, generation: TextStream, splitter: ThinkingSplitter, hold: HoldBack,
             cancel: threading.Event) -> Iterator[ChatEvent]:
        """The last words judged and shown, the finish reason, the language report; the turn logged."""
        guard = turn.guard
        for channel, text in splitter.finish():
            guard.feed(channel, text)
            yield from hold.add(channel, text)
        for event in guard.finish():
            yield event
        yield from (hold.poll(guard.judged()) if guard.timed_out else hold.flush())
        stats = generation.stats
        finish: FinishReason = stats.finish_reason if stats else "error"
        blocked = guard.blocked.is_set()
        if blocked:
            finish = "blocked"
        elif cancel.is_set():
            finish = "cancelled"
        for report in guard.language_reports():
            yield report
        if finish == "length" and not blocked:
            yield length_notice(splitter.unfinished_thinking, turn.params.max_tokens)
        outcome = _Outcome(turn.turn_id, turn.conversation_id, splitter.thinking, splitter.answer,
                           guard.shown("answer", splitter.answer), guard.shown("thinking", splitter.thinking),
                           finish, splitter.unfinished_thinking, blocked, stats, hold.percentiles())
        cont = turn.req.continue_from
        raw_output = (cont.raw_output if cont is not None else "") + generation.text
        result = replace(_result(outcome, guard, turn.model, turn.settings,
                                 turn.built.notices + turn.built.warnings), raw_output=raw_output)
        self.log.finish(result, raw_output, guard)
        yield from self.log.take_notices()
        yield TurnFinished(result)

    def _continued(self, built: BuiltPrompt, cont: Continuation) -> BuiltPrompt:
        """The prompt with the cut reply as the start of the assistant turn (a rendered-text backend only)."""
        if built.messages:
            raise UserFacingError("Continue works with a local model only",
                                  hint="regenerate with a higher maximum of new tokens instead")
        text = built.text + cont.raw_output
        room = self.engine.n_ctx - self.engine.count_tokens(text)
        if room < MIN_CONTINUE_ROOM:
            raise UserFacingError("the reply already fills the model's context: there is no room to continue",
                                  hint="start a new chat, or load the model with a larger context size")
        return replace(built, text=text, prompt_tokens=None)

    # --- results and audit --------------------------------------------------------------------



@dataclass(frozen=True)
class _Outcome:
    """How one turn ended: its text (raw and as shown), why it stopped, its stats."""

    turn_id: str
    conversation_id: str
    thinking: str = ""
    answer_raw: str = ""
    answer_shown: str = ""
    thinking_shown: str = ""
    finish: FinishReason = "stop"
    unfinished: bool = False
    blocked: bool = False
    stats: GenStats | None = None
    holdback: dict[str, float | None] = field(default_factory=dict)


def _result(o: _Outcome, guard: TurnGuard, model: dict[str, Any], settings: dict[str, Any],
            notices: list[str]) -> TurnResult:
    usage: dict[str, Any] = o.stats.to_dict() if o.stats is not None else {}
    timings = {k: usage.get(k) for k in ("time_to_first_token_s", "decode_tokens_per_s", "total_s")}
    return TurnResult(
        turn_id=o.turn_id, conversation_id=o.conversation_id, thinking=o.thinking, answer_raw=o.answer_raw,
        answer_shown=o.answer_shown, thinking_shown=o.thinking_shown, finish_reason=o.finish,
        unfinished_thinking=o.unfinished, blocked=o.blocked, decisions=tuple(guard.decisions()),
        language=guard.language_summary(), usage=usage, timings={**timings, **o.holdback},
        model=model, settings=settings, notices=tuple(Notice("info", n) for n in notices))


class _PromptCheck:
    """The guard judges the prompt on its own thread while the model reads it, so the first token waits for
    the slower of the two instead of their sum (bench/bench_harm.py: 5.8 s instead of 16.9 s with a guard
    model on 2 cores). Nothing the model writes is handed out before the verdict; a blocked prompt stops
    the generation and its output is discarded."""

    def __init__(self, guard: TurnGuard) -> None:
        self.guard = guard
        self.decisions: list[Decision] = []
        self.pending = True
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="r1desk-prompt-check", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.decisions = self.guard.check_prompt()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the chat thread by events()
            self._error = exc

    def wait(self) -> None:
        self._thread.join()

    def events(self) -> Iterator[ChatEvent]:
        """The prompt's decisions, once it is judged (re-raises what the check raised)."""
        self.wait()
        self.pending = False
        if self._error is not None:
            raise self._error
        for decision in self.decisions:
            if decision.action != "allow":
                yield GuardDecision(decision)
