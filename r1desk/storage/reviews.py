"""Everything people add to the log besides turns: user feedback, auditor reviews, admin events
and self-check runs. Feedback, reviews and admin events are chained as they are written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlite_utils import Database

from r1desk.storage import chain
from r1desk.storage.base import AuditBase
from r1desk.storage.records import (
    CHANNELS, REVIEW_LABELS, AuditInputError, clean_text, dumps, inserted_rowid, new_id, now, opt_text,
)


class ReviewsMixin(AuditBase):
    """Feedback/review/admin/self-check writes of AuditLog (needs ``_write``, ``_require_turn``,
    ``_resolve_turn``)."""

    def set_feedback(self, turn_id: str, thumbs: int | str | None, comment: str = "") -> None:
        """The user's thumbs up (+1) / down (-1) / cleared (None) and comment; the latest one counts."""
        value = {"up": 1, "down": -1, "+1": 1, "-1": -1, 1: 1, -1: -1, None: None, 0: None}.get(thumbs, "bad")
        if value == "bad":
            raise AuditInputError(f"Bad thumbs value {thumbs!r}", hint="use up, down or None")
        with self._write() as db:
            self._require_turn(db, turn_id)
            stamp = now()
            cur = db.execute("INSERT INTO feedback (turn_id, created, thumbs, comment) VALUES (?, ?, ?, ?)",
                             [turn_id, stamp, value, clean_text(comment)])
            chain.seal(db, "feedback", inserted_rowid(cur), stamp)

    def review(self, turn_id: str, label: str, note: str = "", reviewer: str = "auditor",
               corrected_answer: str | None = None, channel: str | None = None) -> int:
        """An auditor's verdict on a turn; marks it reviewed. Returns the review id. ``channel``: where the
        problem was (prompt, thinking or answer), when the reviewer says so (per-channel miss rates)."""
        if label not in REVIEW_LABELS:
            raise AuditInputError(f"Unknown review label {label!r}", hint="use one of " + ", ".join(REVIEW_LABELS))
        if channel is not None and channel not in CHANNELS:
            raise AuditInputError(f"Unknown channel {channel!r}", hint="use one of " + ", ".join(CHANNELS))
        if not str(reviewer).strip():
            raise AuditInputError("A review needs a reviewer name")
        with self._write() as db:
            tid = self._resolve_turn(db, turn_id)
            stamp = now()
            cur = db.execute(
                "INSERT INTO reviews (turn_id, created, label, note, reviewer, corrected_answer, channel)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [tid, stamp, label, clean_text(note), clean_text(reviewer), opt_text(corrected_answer) or None,
                 channel])
            chain.seal(db, "reviews", inserted_rowid(cur), stamp)
            db.execute("UPDATE turns SET reviewed = 1 WHERE id = ?", [tid])
            return inserted_rowid(cur)

    def log_admin_event(self, *, actor: str, action: str, details: dict[str, Any] | None = None) -> int:
        """Settings/threshold changes (old → new), role unlocks, failed unlocks, exports, deletions."""
        with self._write() as db:
            return self._admin_event(db, actor, action, details)

    @staticmethod
    def _admin_event(db: Database, actor: str, action: str, details: Any) -> int:
        if not str(action).strip():
            raise AuditInputError("An admin event needs an action name")
        stamp = now()
        cur = db.execute("INSERT INTO admin_events (created, actor, action, details_json) VALUES (?, ?, ?, ?)",
                         [stamp, clean_text(actor) or "unknown", clean_text(action), dumps(details or {})])
        chain.seal(db, "admin_events", inserted_rowid(cur), stamp)
        return inserted_rowid(cur)

    def log_selfcheck_run(self, *, suite: str, model_name: str | None = None, model_sha256: str | None = None,
                          guards_mode: str | None = None, metrics: dict[str, Any] | None = None,
                          report_path: str | Path | None = None, run_id: str | None = None,
                          status: str = "done") -> str:
        """Create or update one self-check run (call with status="running" first, then "done")."""
        rid = run_id or new_id()
        stamp = now()
        with self._write() as db:
            db.execute(
                "INSERT INTO selfcheck_runs (id, created, finished, model_name, model_sha256, suite, guards_mode,"
                " metrics_json, report_path, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE"
                " SET finished = excluded.finished, metrics_json = coalesce(excluded.metrics_json, metrics_json),"
                " report_path = coalesce(excluded.report_path, report_path), status = excluded.status",
                [rid, stamp, None if status == "running" else stamp, model_name, model_sha256, suite, guards_mode,
                 dumps(metrics), None if report_path is None else str(report_path), status])
        return rid
