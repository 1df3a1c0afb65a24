"""Keeping the audit log: chain verification, ``VACUUM INTO`` backups, retention prunes and exports.

Every one of these that changes or copies data is itself an admin event in the chain.
A prune deletes old turns with their decisions, scores, reviews and feedback, and leaves a
tombstone (table, id, content hash, the prune event) for every chained row it removes, so the
chain still verifies and the deletion stays visible.
"""
from __future__ import annotations

import dataclasses
import math
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from r1desk.storage import anchor, chain, export
from r1desk.storage.base import AuditBase
from r1desk.storage.chain import VerifyResult
from r1desk.storage.records import AuditInputError, days_ago, format_ts, now

if TYPE_CHECKING:
    from r1desk.storage.queries import TurnFilters

CHILD_TABLES = ("decisions", "segment_scores", "reviews", "feedback")


def stale_cutoff(seconds: float) -> str:
    return format_ts(datetime.now(timezone.utc) - timedelta(seconds=seconds))


class MaintenanceMixin(AuditBase):
    """verify/backup/prune/export methods of AuditLog."""

    def verify(self) -> VerifyResult:
        """Recompute the hash chain and compare its head with every anchor outside the database: OK, or
        the first broken link (edited, deleted, reordered, forged row; removed or replaced entries)."""
        readings = anchor.read_all(self.path)   # before the snapshot: a later commit only adds entries
        with self._read() as db:
            result = chain.verify(db)
            reports, lost = anchor.compare(db, readings)
        problems = (lost + result.problems)[:chain.MAX_PROBLEMS]
        return dataclasses.replace(result, ok=not problems, first_broken=problems[0] if problems else None,
                                   problems=problems, anchors=reports)

    def backup(self, dest: Path | str, *, actor: str = "user") -> Path:
        """A consistent copy with ``VACUUM INTO`` (safe while the chat writes); mode 0600."""
        target = Path(dest).expanduser()
        if target.exists():
            raise AuditInputError(f"Backup target {target} already exists", hint="choose a new file name")
        if not target.parent.is_dir():
            raise AuditInputError(f"Backup folder {target.parent} does not exist")
        try:   # created empty and private first (VACUUM INTO accepts an empty file): never readable by others
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise AuditInputError(f"Cannot create the backup {target}: {exc.strerror or exc}") from None
        try:
            with self._errors():
                self._db().execute("VACUUM INTO ?", [str(target)])
        except BaseException:
            target.unlink(missing_ok=True)   # no half-written copy that looks like a backup
            raise
        self.log_admin_event(actor=actor, action="audit.backup", details={"path": str(target)})
        return target

    def prune(self, older_than_days: float, *, actor: str) -> dict[str, Any]:
        """Delete finished turns older than N days (retention), leaving chained tombstones."""
        try:
            days = float(older_than_days)
        except (TypeError, ValueError):
            raise AuditInputError(f"Not a number of days: {older_than_days!r}") from None
        if not math.isfinite(days) or days < 0:
            raise AuditInputError(f"Retention must be a positive number of days, not {older_than_days!r}")
        cutoff = days_ago(days)
        with self._write() as db:
            victims = db.execute("SELECT t.id, t.seq, t.created, s.prompt_typed, s.thinking, s.answer"
                                 " FROM turns t JOIN turns_fts_source s ON s.seq = t.seq"   # the indexed text (m011)
                                 " WHERE t.created < ? AND t.status != 'running' ORDER BY t.seq",
                                 [cutoff]).fetchall()
            ids = [v[0] for v in victims]
            event_id = self._admin_event(db, actor, "audit.prune", {
                "older_than_days": days, "cutoff": cutoff, "turns": len(ids),
                "first_turn": ids[0] if ids else None, "last_turn": ids[-1] if ids else None})
            stamp = now()
            for tid, seq, created, prompt, thinking, answer in victims:
                for table in CHILD_TABLES:
                    for (key,) in db.execute(f"SELECT id FROM {table} WHERE turn_id = ?", [tid]).fetchall():
                        _tombstone(db, table, str(key), created, stamp, event_id)
                    db.execute(f"DELETE FROM {table} WHERE turn_id = ?", [tid])
                db.execute("INSERT INTO turns_fts (turns_fts, rowid, prompt_typed, thinking, answer)"
                           " VALUES ('delete', ?, ?, ?, ?)", [seq, prompt, thinking, answer])
                _tombstone(db, "turns", tid, created, stamp, event_id)
                _tombstone(db, "turn_starts", tid, created, stamp, event_id)
                db.execute("DELETE FROM turns WHERE id = ?", [tid])
        return {"turns": len(ids), "cutoff": cutoff, "event_id": event_id}

    def export(self, fmt: str, out: IO[str], filters: TurnFilters | None = None, *, actor: str = "user",
               pairs_out: IO[str] | None = None, with_thinking: bool = False, destination: str | None = None) -> int:
        """Write turns as ``jsonl``, ``csv`` or ``sft`` to ``out``; returns the number of records.

        ``sft``: SFT examples from turns whose latest review is "ok", and preference pairs from turns
        with a corrected answer (into ``pairs_out`` when given, else interleaved, each with a "kind").
        """
        if fmt not in export.FORMATS:
            raise AuditInputError(f"Unknown export format {fmt!r}", hint="use one of " + ", ".join(export.FORMATS))
        where, args = (filters.sql() if filters else ([], []))
        with self._read() as db:
            count = export.write(db, fmt, out, where, args, pairs_out=pairs_out, with_thinking=with_thinking)
        self.log_admin_event(actor=actor, action="audit.export", details={
            "format": fmt, "records": count, "destination": destination,
            "filters": {k: v for k, v in vars(filters).items() if v is not None} if filters else {}})
        return count


def _tombstone(db: Any, table: str, key: str, created: str, stamp: str, event_id: int) -> None:
    row = db.execute("SELECT content_hash FROM chain WHERE tbl = ? AND row_key = ?", [table, key]).fetchone()
    if row is None:
        return  # never chained (should not happen): nothing to keep the chain consistent with
    cur = db.execute("INSERT INTO tombstones (tbl, row_key, content_hash, row_created, deleted, event_id)"
                     " VALUES (?, ?, ?, ?, ?, ?)", [table, key, row[0], created, stamp, event_id])
    chain.seal(db, "tombstones", cur.lastrowid, stamp)
