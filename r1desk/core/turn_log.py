"""Writing one chat session's turns to the audit log, without ever losing one.

Writes go through the audit log's write-behind queue (``storage.pending.PendingQueue``): a locked or
failing database delays them, never drops them, and becomes one visible notice per turn. The prompt
is written before generation starts; partial output after every sentence (see core.chat); an
interrupted turn keeps everything generated so far.
"""
from __future__ import annotations

import uuid
from dataclasses import asdict, is_dataclass
from typing import Any

from r1desk.core.events import Notice, TurnResult
from r1desk.core.thinking import ThinkingSplitter
from r1desk.storage.auditlog import AuditLog
from r1desk.storage.pending import PendingQueue


class TurnLog:
    """One session's writer side of the audit log; a no-op (ids only) when there is no log."""

    def __init__(self, audit: AuditLog | None) -> None:
        self.writer = PendingQueue(audit) if audit is not None else None
        self._notices: list[Notice] = []
        self._noticed = False
        if self.writer is not None:
            self.writer.recover()              # writes an earlier run could not store (see close())

    def close(self) -> str | None:
        """Store what is still queued; if the database still refuses, say where it was kept."""
        if self.writer is None:
            return None
        spilled = self.writer.close()
        if spilled is None:
            return None
        return (f"the audit log could not be written ({self.writer.last_error}); the entries are kept in "
                f"{spilled} and stored at the next start")

    def begin_turn(self) -> None:
        self._noticed = False

    def take_notices(self) -> list[Notice]:
        """Notices raised by the writes since the last call (at most one "audit_pending" a turn)."""
        notices, self._notices = self._notices, []
        return notices

    def _check(self) -> None:
        if self.writer is not None and self.writer.pending and not self._noticed:
            self._noticed = True
            error = self.writer.last_error
            self._notices.append(Notice(
                "audit_pending", f"Audit log unavailable ({error.message if error else 'busy'}): "
                f"{self.writer.pending} entries are kept in memory and written when it is available again."))

    def start(self, *, conversation_id: str | None, prompt_typed: str, prompt_sent: str, model: dict[str, Any],
              settings: dict[str, Any], policy: dict[str, Any], regenerate_of: str | None) -> tuple[str, str]:
        """Commit the prompt before generation; returns (turn id, conversation id)."""
        conversation_id = conversation_id or AuditLog.new_turn_id()
        if self.writer is None:
            return uuid.uuid4().hex, conversation_id
        turn_id = self.writer.start_turn(conversation_id=conversation_id, prompt_typed=prompt_typed,
                                         prompt_sent=prompt_sent, model=model, settings=settings, policy=policy,
                                         regenerate_of=regenerate_of)
        self._check()
        return turn_id, conversation_id

    def partial(self, turn_id: str, splitter: ThinkingSplitter, guard: Any) -> None:
        """The text so far (raw and as shown) and any new guard decisions."""
        if self.writer is None:
            return
        self.writer.update_partial(turn_id, thinking=splitter.thinking, answer=splitter.answer,
                                   thinking_shown=guard.shown("thinking", splitter.thinking),
                                   answer_shown=guard.shown("answer", splitter.answer))
        self._decisions(turn_id, guard)
        self._check()

    def interrupted(self, turn_id: str, splitter: ThinkingSplitter, guard: Any, *, reason: str = "interrupted",
                    message: str | None = None) -> None:
        """The turn ended abnormally (window closed: "interrupted"; the backend failed: "error", with its
        message): keep everything."""
        if self.writer is None:
            return
        self.writer.finish_turn(turn_id, result={
            **({"notices": [{"kind": "error", "message": message}]} if message else {}),
            "finish_reason": reason, "status": reason, "thinking": splitter.thinking,
            "answer_raw": splitter.answer, "thinking_shown": guard.shown("thinking", splitter.thinking),
            "answer_shown": guard.shown("answer", splitter.answer),
            "unfinished_thinking": splitter.unfinished_thinking,
            "decisions": [as_dict(d) for d in guard.decisions()]})

    def finish(self, result: TurnResult, raw_output: str, guard: Any) -> None:
        if self.writer is None:
            return
        self._decisions(result.turn_id, guard)
        scores = guard.segment_scores()
        if scores:
            self.writer.add_segment_scores(result.turn_id, scores)
        payload = turn_result_dict(result)
        payload["raw_output"] = raw_output
        self.writer.finish_turn(result.turn_id, result=payload)
        self._check()

    def failed(self, *, conversation_id: str | None, prompt_typed: str, model: dict[str, Any],
               settings: dict[str, Any], policy: dict[str, Any], regenerate_of: str | None, message: str) -> None:
        """A turn that could not start (e.g. the prompt exceeds the context): the prompt is still kept."""
        if self.writer is None:
            return
        turn_id, _ = self.start(conversation_id=conversation_id, prompt_typed=prompt_typed, prompt_sent=prompt_typed,
                                model=model, settings=settings, policy=policy, regenerate_of=regenerate_of)
        self.writer.finish_turn(turn_id, result={
            "finish_reason": "error", "status": "error", "notices": [{"kind": "error", "message": message}]})

    def _decisions(self, turn_id: str, guard: Any) -> None:
        new = guard.take_new_decisions()
        if new and self.writer is not None:
            self.writer.add_decisions(turn_id, [as_dict(d) for d in new])


def turn_result_dict(result: TurnResult) -> dict[str, Any]:
    """A TurnResult as plain data (what the audit log and `r1desk chat --json` store)."""
    data = {k: getattr(result, k) for k in result.__dataclass_fields__}
    data["decisions"] = [as_dict(d) for d in result.decisions]
    data["notices"] = [{"kind": n.kind, "message": n.message} for n in result.notices]
    usage = dict(result.usage)
    data["usage"] = {"prompt_tokens": usage.get("prompt_tokens", 0),
                     "completion_tokens": usage.get("completion_tokens", 0),
                     "total_tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)}
    return data


def as_dict(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "to_dict"):
        converted: dict[str, Any] = obj.to_dict()
        return converted
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    return dict(obj)
