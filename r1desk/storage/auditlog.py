"""The audit log: every turn, guard decision, review and admin action, in one SQLite file.

One ``AuditLog`` may be shared by the GUI thread and the generation worker: each thread gets its
own connection (``storage.connection.Connections``). Writes run in ``BEGIN IMMEDIATE`` + sqlite-utils
``atomic()`` blocks so the chain tail read inside them is always current.

Turn lifecycle (crash safety): ``start_turn`` commits the prompt before generation;
``update_partial`` commits the text so far (call it after every completed segment); ``finish_turn``
stores the result and seals the turn into the hash chain (see ``storage.chain``). A turn left
"running" by a crashed process is marked "interrupted" on the next open (``recover_interrupted``),
keeping the text up to its last committed segment.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from r1desk import paths
from r1desk.errors import AuditStoreError
from r1desk.storage import anchor, chain, maintenance, migrations, queries
from r1desk.storage.conversations import ConversationsMixin
from r1desk.storage.feedback import FeedbackMixin
from r1desk.storage.periods import PeriodsMixin
from r1desk.storage.reviews import ReviewsMixin
from r1desk.storage.connection import DEFAULT_BUSY_TIMEOUT_S, open_shared, release_shared, store_errors
from r1desk.storage.records import (
    ACTIONS, CHANNELS, SEVERITY_BLOCKED, SEVERITY_FOR_ACTION, SEVERITY_MIXING, STATUS_FOR_FINISH,
    STATUSES, AuditInputError, canonical_json, clean_text, dumps, has_language_mixing, inserted_rowid, new_id, now,
    opt_text, plain,
)

log = logging.getLogger("r1desk.audit")

STALE_AFTER_S = 15 * 60   # a running turn with no committed segment for this long is presumed dead
_HOST = socket.gethostname()
_LIVE_TURNS: set[str] = set()   # turns this process is still generating (never "recovered")
_LIVE_LOCK = threading.Lock()


class AuditLog(ConversationsMixin, ReviewsMixin, queries.ReadMixin, FeedbackMixin, PeriodsMixin,
               maintenance.MaintenanceMixin):
    """The audit database at ``path`` (default ``paths.audit_db_path()``), migrated on open."""

    def __init__(self, path: Path | str | None = None, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
                 recover: bool = True) -> None:
        self.path = Path(path).expanduser() if path is not None else paths.audit_db_path()
        self.busy_timeout = busy_timeout
        self._closed = False
        # one owner of the file per process: a second AuditLog on it shares the first one's connections
        self._connections, first = open_shared(self.path, busy_timeout)
        try:
            if first:
                db = self._db()
                with self._errors():
                    db.execute("SELECT count(*) FROM sqlite_master").fetchone()
                    db.enable_wal()
                    applied = migrations.apply(db)
                if applied:
                    log.info("audit database %s migrated: %s", self.path, ", ".join(applied))
                if recover:
                    self.recover_interrupted()
        except BaseException:
            self.close()
            raise

    # -- plumbing ------------------------------------------------------------------------------
    def _db(self) -> Database:
        if self._closed:
            raise AuditStoreError(f"The audit log {self.path} was closed")
        return self._connections.get()

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return store_errors(self.path, self.busy_timeout)

    @contextlib.contextmanager
    def _write(self) -> Iterator[Database]:
        """One write transaction: take the write lock first (so the chain tail we read is current)."""
        db = self._db()
        with self._errors():
            db.execute("BEGIN IMMEDIATE")
            try:
                with db.atomic():
                    yield db
                db.commit()
            except BaseException:
                db.rollback()   # also after a failed COMMIT, which leaves the transaction open
                raise
            self._publish_head(db)

    _anchored_seq = 0   # the last chain head this handle wrote to the anchors

    def _publish_head(self, db: Database) -> None:
        """After a commit that extended the chain: record its head outside the database (storage.anchor)."""
        current = chain.head(db)
        if current is None or current[0] <= self._anchored_seq:
            return
        self._anchored_seq = current[0]
        first = db.execute("SELECT hash FROM chain WHERE seq = 1").fetchone()
        anchor.publish(self.path, current[0], current[1], first[0] if first else current[1])

    @contextlib.contextmanager
    def _read(self) -> Iterator[Database]:
        """A consistent snapshot for multi-query reads; never blocks the writer (WAL)."""
        db = self._db()
        with self._errors():
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.rollback()

    def close(self) -> None:
        """Done with this handle; the file's connections close with the last handle in the process."""
        if not self._closed:
            self._closed = True
            release_shared(self._connections)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- turns -----------------------------------------------------------------------------------
    @staticmethod
    def new_turn_id() -> str:
        return new_id()

    def start_turn(self, *, conversation_id: str | None = None, prompt_typed: str, prompt_sent: str | None = None,
                   model: Any = None, settings: Any = None, policy: Any = None, turn_id: str | None = None,
                   session_id: str | None = None, regenerate_of: str | None = None) -> str:
        """Commit the prompt before generation starts; returns the turn id.

        ``conversation_id`` None starts a new conversation titled after the prompt; an unknown id is
        created (so a caller may choose ids up front). Passing ``turn_id`` makes a retry idempotent.
        """
        tid = turn_id or new_id()
        cid = conversation_id or new_id()
        model_d = plain(model) or {}
        if not isinstance(model_d, dict):
            model_d = {"name": str(model_d)}
        stamp = now()
        typed = clean_text(prompt_typed)
        with self._write() as db:
            cur = db.execute("INSERT OR IGNORE INTO conversations (id, title, created, updated) VALUES (?, ?, ?, ?)",
                             [cid, _title_from(typed), stamp, stamp])
            if cur.rowcount:
                chain.seal_conversation(db, cid, stamp)
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", [stamp, cid])
            policy_hash = self._store_policy(db, policy, stamp)
            cur = db.execute(
                "INSERT OR IGNORE INTO turns (id, conversation_id, session_id, created, updated, status, prompt_typed,"
                " prompt_sent, model_name, model_sha256, model_quantization, model_json, settings_json, policy_hash,"
                " regenerate_of, writer_pid, writer_host) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?, ?)",
                [tid, cid, session_id, stamp, stamp, typed, clean_text(prompt_sent if prompt_sent is not None else typed),
                 model_d.get("name"), model_d.get("sha256") or model_d.get("file_sha256"),
                 model_d.get("quantization") or model_d.get("quantisation"), dumps(model_d) if model_d else None,
                 dumps(settings), policy_hash, regenerate_of, os.getpid(), _HOST])
            if cur.rowcount:   # the chain's record that r1desk started it: recovery seals nothing else
                chain.seal(db, "turn_starts", tid, stamp)
        with _LIVE_LOCK:
            _LIVE_TURNS.add(tid)
        return tid

    @staticmethod
    def _store_policy(db: Database, policy: Any, stamp: str) -> str | None:
        if policy is None:
            return None
        text = canonical_json(policy)
        digest = hashlib.sha256(text.encode()).hexdigest()
        cur = db.execute("INSERT OR IGNORE INTO policies (hash, policy_json, created) VALUES (?, ?, ?)",
                         [digest, text, stamp])
        if cur.rowcount:
            chain.seal(db, "policies", digest, stamp)
        return digest

    def update_partial(self, turn_id: str, *, thinking: str, answer: str, raw_output: str | None = None,
                       thinking_shown: str | None = None, answer_shown: str | None = None) -> None:
        """Commit the text generated so far (one small UPDATE). Ignored once the turn is sealed."""
        db = self._db()
        with self._errors():
            cur = db.execute(
                "UPDATE turns SET thinking = ?, answer = ?, raw_output = coalesce(?, raw_output),"
                " thinking_shown = coalesce(?, thinking_shown), answer_shown = coalesce(?, answer_shown),"
                " updated = ? WHERE id = ? AND status = 'running'",
                [clean_text(thinking), clean_text(answer), opt_text(raw_output), opt_text(thinking_shown),
                 opt_text(answer_shown), now(), turn_id])
            if cur.rowcount == 0:
                self._require_turn(db, turn_id)
                log.warning("update_partial for turn %s ignored: the turn is already finished", turn_id)

    def add_decisions(self, turn_id: str, decisions: list[Any]) -> None:
        """Store guard decisions (chained at once: they never change) and raise the turn's severity."""
        if not decisions:
            return
        with self._write() as db:
            self._require_turn(db, turn_id)
            self._insert_decisions(db, turn_id, [plain(d) for d in decisions])

    def _insert_decisions(self, db: Database, turn_id: str, decisions: list[dict[str, Any]]) -> None:
        stamp = now()
        severity = 0
        for d in decisions:
            channel, action = d.get("channel"), d.get("action")
            if channel not in CHANNELS or action not in ACTIONS:
                raise AuditInputError(f"Bad decision for turn {turn_id}: channel {channel!r}, action {action!r}")
            cur = db.execute(
                "INSERT INTO decisions (turn_id, created, channel, span_start, span_end, text, label, score,"
                " threshold, action, window, classifier, model, verdict, raw_output)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [turn_id, stamp, channel, int(d.get("start", 0)), int(d.get("end", 0)), clean_text(d.get("text")),
                 str(d.get("label", "")), _float(d.get("score")), _float(d.get("threshold")), action,
                 1 if d.get("window") else 0, opt_text(d.get("classifier")), opt_text(d.get("model")),
                 opt_text(d.get("verdict")), opt_text(d.get("raw_output"))])
            chain.seal(db, "decisions", inserted_rowid(cur), stamp)
            severity = max(severity, SEVERITY_FOR_ACTION.get(action, 0))
        if severity:
            db.execute("UPDATE turns SET severity = max(severity, ?) WHERE id = ?", [severity, turn_id])

    def add_segment_scores(self, turn_id: str, segments: list[Any]) -> None:
        """Every scored segment with all its label scores (not only decisions), for the detail pane.

        Each item: ``{"channel", "start", "end", "text", "scores": {label: score}, "language"?}``.
        """
        if not segments:
            return
        stamp = now()
        rows = [plain(x) for x in segments]
        if any(s.get("channel") not in CHANNELS for s in rows):
            raise AuditInputError(f"Bad segment channel for turn {turn_id}", hint="use " + ", ".join(CHANNELS))
        with self._write() as db:
            self._require_turn(db, turn_id)
            for s in rows:   # chained one by one, like decisions: the scores that justify a decision
                cur = db.execute(
                    "INSERT INTO segment_scores (turn_id, created, channel, span_start, span_end, text, scores_json,"
                    " language) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [turn_id, stamp, s.get("channel"), int(s.get("start", 0)), int(s.get("end", 0)),
                     clean_text(s.get("text")), dumps(s.get("scores") or {}), s.get("language")])
                chain.seal(db, "segment_scores", inserted_rowid(cur), stamp)

    def finish_turn(self, turn_id: str, *, result: Any) -> None:
        """Store the outcome (a TurnResult or its dict) and seal the turn into the chain.

        Decisions in ``result["decisions"]`` that were not already added are added. The status comes
        from ``result["status"]`` or the finish reason (stop/length → done).
        """
        r = plain(result) or {}
        finish_reason = r.get("finish_reason") or "stop"
        status = r.get("status") or ("blocked" if r.get("blocked") else STATUS_FOR_FINISH.get(finish_reason, "done"))
        if status not in STATUSES or status == "running":
            raise AuditInputError(f"Bad final status {status!r} for turn {turn_id}")
        language = r.get("language")
        mixing = has_language_mixing(language)
        with self._write() as db:
            stamp = now()
            cur = db.execute(
                "UPDATE turns SET finished = ?, updated = ?, status = ?, finish_reason = ?,"
                " raw_output = coalesce(?, raw_output), thinking = coalesce(?, thinking), answer = coalesce(?, answer),"
                " thinking_shown = coalesce(?, thinking_shown, ?, thinking),"
                " answer_shown = coalesce(?, answer_shown, ?, answer), unfinished_thinking = ?,"
                " language_json = ?, language_mixing = ?, usage_json = ?, timings_json = ?, notices_json = ?,"
                " model_json = coalesce(model_json, ?), settings_json = coalesce(settings_json, ?)"
                " WHERE id = ? AND status = 'running'",
                [stamp, stamp, status, finish_reason, opt_text(r.get("raw_output")), opt_text(r.get("thinking")),
                 opt_text(r.get("answer_raw", r.get("answer"))), opt_text(r.get("thinking_shown")),
                 opt_text(r.get("thinking")),
                 opt_text(r.get("answer_shown")), opt_text(r.get("answer_raw", r.get("answer"))),
                 1 if r.get("unfinished_thinking") else 0, dumps(language),
                 1 if mixing else 0, dumps(r.get("usage")), dumps(r.get("timings")), dumps(r.get("notices")),
                 dumps(r.get("model")), dumps(r.get("settings")), turn_id])
            if cur.rowcount == 0:
                self._require_turn(db, turn_id)
                raise AuditInputError(f"Turn {turn_id} is already finished")
            known = {(row[0], row[1], row[2], row[3], row[4]) for row in db.execute(
                "SELECT channel, span_start, span_end, label, action FROM decisions WHERE turn_id = ?", [turn_id])}
            fresh = [d for d in (plain(x) for x in r.get("decisions") or [])
                     if (d.get("channel"), int(d.get("start", 0)), int(d.get("end", 0)), str(d.get("label", "")),
                         d.get("action")) not in known]
            self._insert_decisions(db, turn_id, fresh)
            self._seal_turn(db, turn_id, stamp, blocked=status == "blocked", mixing=mixing)
        with _LIVE_LOCK:
            _LIVE_TURNS.discard(turn_id)

    @staticmethod
    def _seal_turn(db: Database, turn_id: str, stamp: str, *, blocked: bool, mixing: bool) -> None:
        floor = SEVERITY_BLOCKED if blocked else SEVERITY_MIXING if mixing else 0
        if floor:
            db.execute("UPDATE turns SET severity = max(severity, ?) WHERE id = ?", [floor, turn_id])
        db.execute("INSERT INTO turns_fts (rowid, prompt_typed, thinking, answer) SELECT seq, prompt_typed,"
                   " thinking, answer FROM turns_fts_source WHERE seq = (SELECT seq FROM turns WHERE id = ?)",
                   [turn_id])   # bounded text (m011): search time does not grow with one huge turn
        chain.seal(db, "turns", turn_id, stamp)

    def recover_interrupted(self, *, all_running: bool = False) -> list[str]:
        """Mark running turns whose writer is gone as "interrupted" and seal them; returns their ids.

        A writer is gone when its process no longer exists (same host) or nothing was committed for
        ``STALE_AFTER_S``. ``all_running`` recovers every running turn not being written by this process.
        Only turns the chain records as started by r1desk (and not sealed yet) are sealed: a row
        inserted as 'running' by hand, or a sealed turn set back to 'running', is left for verify to report.
        """
        db = self._db()
        with self._errors():
            rows = db.execute("SELECT id, writer_pid, writer_host, updated FROM turns WHERE status = 'running'").fetchall()
        with _LIVE_LOCK:
            live = set(_LIVE_TURNS)
        stale_before = maintenance.stale_cutoff(STALE_AFTER_S)
        stale = [tid for tid, pid, host, updated in rows
                 if tid not in live and (all_running or updated < stale_before or
                                         (host == _HOST and not _pid_alive(pid, tid)))]
        recovered = []
        for tid in stale:
            with self._write() as db:
                if not chain.started_by_r1desk(db, tid):
                    log.warning("turn %s is 'running' but the chain does not record it as a turn r1desk started"
                                " and has not sealed yet: not recovered (audit verify reports it)", tid)
                    continue
                stamp = now()
                cur = db.execute(
                    "UPDATE turns SET status = 'interrupted', finish_reason = 'interrupted', finished = ?, updated = ?,"
                    " thinking_shown = coalesce(thinking_shown, thinking), answer_shown = coalesce(answer_shown, answer),"
                    " unfinished_thinking = CASE WHEN coalesce(answer, '') = '' AND coalesce(thinking, '') != ''"
                    " THEN 1 ELSE 0 END WHERE id = ? AND status = 'running'", [stamp, stamp, tid])
                if cur.rowcount:
                    self._seal_turn(db, tid, stamp, blocked=False, mixing=False)
                    recovered.append(tid)
                    log.warning("turn %s was left running by a process that stopped: marked interrupted", tid)
        return recovered

    # -- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def _require_turn(db: Database, turn_id: str) -> None:
        if db.execute("SELECT 1 FROM turns WHERE id = ?", [turn_id]).fetchone() is None:
            raise AuditInputError(f"No turn with id {turn_id!r}")


def _title_from(prompt: str) -> str:
    line = " ".join(prompt.split())
    return line[:60] + ("…" if len(line) > 60 else "")


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _pid_alive(pid: int | None, turn_id: str) -> bool:
    if pid is None:
        return False
    if pid == os.getpid():
        return False  # this process is not writing it (not in _LIVE_TURNS): a previous instance died
    try:
        import psutil
        return bool(psutil.pid_exists(pid))
    except ImportError:  # pragma: no cover - psutil is a dependency
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
