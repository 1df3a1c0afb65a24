"""Reading the audit log: turn lists and details, full-text search with filters, the review queue
and the "since last review" summary. Mixed into ``AuditLog``; all reads are snapshot reads (WAL),
so an auditor never blocks the chat that is writing.

Search accepts *any* string: it is first tried as an FTS5 query (so ``"exact phrase"``, ``OR``,
``prefix*`` and ``thinking: word`` work); if SQLite rejects its syntax, the whole string is searched
as one quoted phrase instead. The text is always a bound parameter, never part of the SQL.
"""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from r1desk.storage.base import AuditBase
from r1desk.storage.conversations import SELFCHECK_TITLE_PREFIX
from r1desk.storage.records import (
    ACTIONS, CHANNELS, REVIEW_LABELS, SEVERITY_NAMES, STATUSES, AuditInputError, clean_text, loads, parse_date,
)

if TYPE_CHECKING:
    from sqlite_utils import Database

log = logging.getLogger("r1desk.audit")

SUMMARY_COLUMNS = (
    "t.seq, t.id, t.conversation_id, t.created, t.finished, t.status, t.finish_reason, t.model_name,"
    " t.model_sha256, t.severity, t.reviewed, t.language_mixing, substr(t.prompt_typed, 1, 200) AS prompt,"
    " substr(coalesce(t.answer_shown, t.answer, ''), 1, 200) AS answer_preview"
)
ORDERS = ("newest", "severity", "relevance")
JSON_FIELDS = ("model_json", "settings_json", "language_json", "usage_json", "timings_json", "notices_json")


@dataclass
class TurnFilters:
    """Filters shared by list/search/export. Decision filters (channel/action/label) match turns
    having at least one decision with all the given values."""

    date_from: str | None = None      # YYYY-MM-DD or ISO time, inclusive
    date_to: str | None = None        # YYYY-MM-DD (through that day) or ISO time, exclusive
    model: str | None = None          # model name or file sha256
    channel: str | None = None
    action: str | None = None
    label: str | None = None          # classifier label, e.g. "toxicity"
    review_label: str | None = None   # the latest review's label
    reviewed: bool | None = None
    language_mixing: bool | None = None
    status: str | None = None
    conversation_id: str | None = None

    def selective(self) -> bool:
        """Filters that usually match few turns (decision and review filters)."""
        return bool(self.channel or self.action or self.label or self.review_label or self.reviewed)

    def sql(self) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        if self.date_from:
            where.append("t.created >= ?")
            args.append(parse_date(self.date_from))
        if self.date_to:
            where.append("t.created < ?")
            args.append(parse_date(self.date_to, end=True))
        if self.model:
            where.append("(t.model_name = ? OR t.model_sha256 = ?)")
            args += [self.model, self.model.lower()]
        _check("channel", self.channel, CHANNELS)
        _check("action", self.action, ACTIONS)
        _check("review label", self.review_label, REVIEW_LABELS)
        _check("status", self.status, STATUSES)
        dec = [(col, val) for col, val in (("channel", self.channel), ("action", self.action),
                                            ("label", self.label)) if val]
        if dec:
            # IN, not EXISTS: lets SQLite start from the (few) matching decisions on a large log
            where.append("t.id IN (SELECT d.turn_id FROM decisions d WHERE "
                         + " AND ".join(f"d.{col} = ?" for col, _ in dec) + ")")
            args += [val for _, val in dec]
        if self.review_label:
            where.append("(SELECT r.label FROM reviews r WHERE r.turn_id = t.id ORDER BY r.id DESC LIMIT 1) = ?")
            args.append(self.review_label)
        if self.reviewed is not None:
            where.append("t.reviewed = ?")
            args.append(1 if self.reviewed else 0)
        if self.language_mixing is not None:
            where.append("t.language_mixing = ?")
            args.append(1 if self.language_mixing else 0)
        if self.status:
            where.append("t.status = ?")
            args.append(self.status)
        if self.conversation_id:
            where.append("t.conversation_id = ?")
            args.append(self.conversation_id)
        return where, args


def _check(what: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise AuditInputError(f"Unknown {what} {value!r}", hint="use one of " + ", ".join(allowed))


def phrase(query: str) -> str:
    """The whole string as one FTS5 phrase (double quotes doubled), the fallback for bad syntax."""
    return '"' + query.replace('"', '""') + '"'


class ReadMixin(AuditBase):
    """Read-side methods of AuditLog (needs ``_db``, ``_read`` and ``_errors``)."""

    def _resolve_turn(self, db: Database, turn_id: str) -> str:
        """A full turn id from an id or a unique prefix of at least 6 characters."""
        key = str(turn_id).strip()
        if db.execute("SELECT 1 FROM turns WHERE id = ?", [key]).fetchone():
            return key
        if len(key) >= 6 and all(c in "0123456789abcdef" for c in key.lower()):
            rows = db.execute("SELECT id FROM turns WHERE id >= ? AND id < ? LIMIT 2",
                              [key.lower(), key.lower() + "g"]).fetchall()
            if len(rows) == 1:
                found: str = rows[0][0]
                return found
            if len(rows) > 1:
                raise AuditInputError(f"Turn id prefix {turn_id!r} is ambiguous", hint="give more characters")
        raise AuditInputError(f"No turn with id {turn_id!r}")

    # -- lists and search --------------------------------------------------------------------------
    def list_turns(self, filters: TurnFilters | None = None, *, limit: int = 50, offset: int = 0,
                   **kwargs: Any) -> list[dict[str, Any]]:
        """Newest first. Filters as a TurnFilters or keyword arguments (``status="blocked"``)."""
        return self.search(None, filters, limit=limit, offset=offset, **kwargs)

    def search(self, query: str | None, filters: TurnFilters | None = None, *, limit: int = 50, offset: int = 0,
               order: str = "newest", **kwargs: Any) -> list[dict[str, Any]]:
        """Turns matching ``query`` (any text; see module doc) and the filters.

        ``order``: "newest" (default), "severity" (blocked, flagged, language mixing, the rest; newest
        first within each) or "relevance" (full-text rank; newest first without a query).
        """
        if order not in ORDERS:
            raise AuditInputError(f"Unknown order {order!r}", hint="use " + ", ".join(ORDERS))
        by_seq = "t.severity DESC, t.seq DESC" if order == "severity" else "t.seq DESC"
        flt = filters or TurnFilters(**kwargs)
        where, args = flt.sql()
        limit, offset = max(0, int(limit)), max(0, int(offset))
        # NUL ends a string for the FTS5 parser: it can never match, treat it as a separator
        text = clean_text(query).replace("\x00", " ").strip() if query is not None else ""
        with self._read() as db:
            if not text:
                sql = (f"SELECT {SUMMARY_COLUMNS} FROM turns t"
                       + (" WHERE " + " AND ".join(where) if where else "")
                       + f" ORDER BY {by_seq} LIMIT ? OFFSET ?")
                return _dicts(db.execute(sql, [*args, limit, offset]))
            if flt.selective():
                # rare rows (guard decisions, reviews): start from them, then keep those the text matches
                sql = (f"SELECT {SUMMARY_COLUMNS}, snippet(turns_fts, -1, '[', ']', '…', 16) AS snippet"
                       " FROM turns t JOIN turns_fts f ON f.rowid = t.seq AND turns_fts MATCH ?"
                       " WHERE t.seq IN (SELECT t.seq FROM turns t WHERE " + " AND ".join(where) + ")"
                       f" ORDER BY {by_seq} LIMIT ? OFFSET ?")
            else:
                ordering = {"relevance": "f.rank", "severity": by_seq}.get(order, "f.rowid DESC")
                sql = (f"SELECT {SUMMARY_COLUMNS}, snippet(turns_fts, -1, '[', ']', '…', 16) AS snippet"
                       " FROM turns_fts f JOIN turns t ON t.seq = f.rowid WHERE turns_fts MATCH ?"
                       + "".join(" AND " + w for w in where) + f" ORDER BY {ordering} LIMIT ? OFFSET ?")
            try:
                return _dicts(db.execute(sql, [text, *args, limit, offset]))
            except sqlite3.OperationalError as exc:
                log.debug("search %r is not valid FTS5 (%s): searching it as a phrase", text, exc)
            try:
                return _dicts(db.execute(sql, [phrase(text), *args, limit, offset]))
            except sqlite3.OperationalError as exc:
                if "fts5" not in str(exc) and "string" not in str(exc) and "syntax" not in str(exc):
                    raise
                log.warning("search %r could not be run even as a phrase (%s)", text, exc)
                return []

    def get_turn(self, turn_id: str) -> dict[str, Any]:
        """Everything about one turn: text, model, settings, policy, decisions, scores, reviews, feedback."""
        with self._read() as db:
            tid = self._resolve_turn(db, turn_id)
            turn = _dicts(db.execute("SELECT * FROM turns WHERE id = ?", [tid]))[0]
            for name in JSON_FIELDS:
                turn[name.removesuffix("_json")] = loads(turn.pop(name))
            turn["severity_name"] = SEVERITY_NAMES.get(turn["severity"], "none")
            policy = db.execute("SELECT policy_json FROM policies WHERE hash = ?", [turn["policy_hash"]]).fetchone()
            turn["policy"] = loads(policy[0]) if policy else None
            turn["decisions"] = _decisions(db, "SELECT * FROM decisions WHERE turn_id = ? ORDER BY id", [tid])
            scores = _dicts(db.execute("SELECT * FROM segment_scores WHERE turn_id = ? ORDER BY id", [tid]))
            for row in scores:
                row["scores"] = loads(row.pop("scores_json"))
                row["start"], row["end"] = row.pop("span_start"), row.pop("span_end")
            turn["segment_scores"] = scores
            turn["reviews"] = _dicts(db.execute("SELECT * FROM reviews WHERE turn_id = ? ORDER BY id", [tid]))
            history = _dicts(db.execute("SELECT * FROM feedback WHERE turn_id = ? ORDER BY id", [tid]))
            turn["feedback"] = history[-1] if history else None
            turn["feedback_history"] = history
            link = db.execute("SELECT seq, hash FROM chain WHERE tbl = 'turns' AND row_key = ?", [tid]).fetchone()
            turn["chain"] = {"seq": link[0], "hash": link[1]} if link else None
            return turn

    def list_conversations(self, *, query: str | None = None, include_deleted: bool = False,
                           include_selfcheck: bool = True, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Most recently updated first; ``query`` matches the title (case-insensitive, literal).
        ``include_selfcheck=False``: without the self-check's conversations (the end user's chat list)."""
        where, args = [], []
        if not include_deleted:
            where.append("c.deleted IS NULL")
        if not include_selfcheck:
            where.append("substr(c.title, 1, ?) != ?")
            args += [len(SELFCHECK_TITLE_PREFIX), SELFCHECK_TITLE_PREFIX]
        if query:
            escaped = clean_text(query).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("c.title LIKE ? ESCAPE '\\'")
            args.append(f"%{escaped}%")
        sql = ("SELECT c.*, (SELECT count(*) FROM turns t WHERE t.conversation_id = c.id) AS turns"
               " FROM conversations c" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY c.updated DESC, c.id DESC LIMIT ? OFFSET ?")
        with self._read() as db:
            return _dicts(db.execute(sql, [*args, int(limit), int(offset)]))

    def get_conversation(self, conversation_id: str) -> dict[str, Any]:
        with self._read() as db:
            rows = _dicts(db.execute("SELECT * FROM conversations WHERE id = ?", [conversation_id]))
            if not rows:
                raise AuditInputError(f"No conversation with id {conversation_id!r}")
            conv = rows[0]
            # ``superseded``: the turn is on a replaced branch. A turn r with ``regenerate_of`` = x (a regenerate,
            # a language retry, or an edit-and-resend of x's prompt) replaces x and every turn after x up to r:
            # the chat shows and re-sends only the new branch; the audit log keeps every branch.
            conv["turns"] = _dicts(db.execute(
                "SELECT t.id, t.created, t.status, t.finish_reason, t.prompt_typed, t.answer_shown, t.thinking_shown,"
                " t.raw_output, t.unfinished_thinking, t.usage_json, t.timings_json, t.language_json, t.notices_json,"
                " t.regenerate_of, EXISTS(SELECT 1 FROM turns r JOIN turns x ON x.id = r.regenerate_of"
                " WHERE r.conversation_id = t.conversation_id AND x.conversation_id = t.conversation_id"
                " AND x.seq <= t.seq AND r.seq > t.seq) AS superseded,"
                " (SELECT f.thumbs FROM feedback f WHERE f.turn_id = t.id ORDER BY f.id DESC LIMIT 1)"
                " AS feedback_rating FROM turns t WHERE t.conversation_id = ? ORDER BY t.seq", [conversation_id]))
            for turn in conv["turns"]:        # what a reopened chat shows: stats, language badge, notices
                for name in ("usage_json", "timings_json", "language_json", "notices_json"):
                    turn[name.removesuffix("_json")] = loads(turn.pop(name))
            return conv

    def list_admin_events(self, *, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = _dicts(db.execute(
                "SELECT * FROM admin_events" + (" WHERE action = ?" if action else "") + " ORDER BY id DESC LIMIT ?",
                [action, int(limit)] if action else [int(limit)]))
        for row in rows:
            row["details"] = loads(row.pop("details_json"))
        return rows

    def list_selfcheck_runs(self, *, limit: int = 50) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = _dicts(db.execute("SELECT * FROM selfcheck_runs ORDER BY created DESC, id DESC LIMIT ?",
                                     [int(limit)]))
        for row in rows:
            row["metrics"] = loads(row.pop("metrics_json"))
        return rows

    # -- review workflow ---------------------------------------------------------------------------
    def review_queue(self, *, limit: int = 50, offset: int = 0, order: str = "severity") -> list[dict[str, Any]]:
        """Unreviewed finished turns: blocked, then flagged, then language mixing, then the rest; newest first.
        ``order="useful"``: most useful to review first (``storage.feedback``)."""
        if order == "useful":
            return self.useful_review_queue(limit=limit, offset=offset)
        if order != "severity":
            raise AuditInputError(f"Unknown queue order {order!r}", hint="use severity or useful")
        with self._read() as db:
            rows = _dicts(db.execute(
                f"SELECT {SUMMARY_COLUMNS} FROM turns t WHERE t.reviewed = 0 AND t.status != 'running'"
                " ORDER BY t.severity DESC, t.seq DESC LIMIT ? OFFSET ?", [int(limit), int(offset)]))
        for row in rows:
            row["severity_name"] = SEVERITY_NAMES.get(row["severity"], "none")
        return rows

    def stats_since_last_review(self, *, reviewer: str | None = None, since: str | None = None) -> dict[str, Any]:
        """What happened since the last review (by ``reviewer`` if given): turns, decisions by
        channel × label × action, thinking vs answer, language mixing, what is still unreviewed."""
        with self._read() as db:
            # "since" is a position in the hash chain, so rows in the same millisecond are ordered exactly
            if since is None:
                row = db.execute(
                    "SELECT max(c.seq), max(r.created) FROM reviews r JOIN chain c ON c.tbl = 'reviews'"
                    " AND c.row_key = CAST(r.id AS TEXT)" + (" WHERE r.reviewer = ?" if reviewer else ""),
                    [reviewer] if reviewer else []).fetchone()
                after, since = row[0] or 0, row[1]
            else:
                since = parse_date(since)
                row = db.execute("SELECT min(seq) FROM chain WHERE created >= ?", [since]).fetchone()
                after = (row[0] - 1) if row[0] is not None else \
                    (db.execute("SELECT coalesce(max(seq), 0) FROM chain").fetchone()[0])
            by_status = dict(db.execute(
                "SELECT t.status, count(*) FROM chain c JOIN turns t ON t.id = c.row_key WHERE c.tbl = 'turns'"
                " AND c.seq > ? GROUP BY t.status", [after]).fetchall())
            decisions: dict[str, dict[str, dict[str, int]]] = {}
            by_channel: dict[str, dict[str, int]] = {c: {} for c in CHANNELS}
            for channel, label, action, count in db.execute(
                    "SELECT d.channel, d.label, d.action, count(*) FROM chain c JOIN decisions d"
                    " ON d.id = CAST(c.row_key AS INTEGER) WHERE c.tbl = 'decisions' AND c.seq > ?"
                    " AND d.action != 'allow' GROUP BY d.channel, d.label, d.action", [after]):
                decisions.setdefault(channel, {}).setdefault(label, {})[action] = count
                by_channel.setdefault(channel, {})[action] = by_channel.get(channel, {}).get(action, 0) + count
            reviews = dict(db.execute("SELECT label, count(*) FROM reviews GROUP BY label").fetchall())
            mixing = db.execute(
                "SELECT count(*) FROM chain c JOIN turns t ON t.id = c.row_key WHERE c.tbl = 'turns'"
                " AND c.seq > ? AND t.language_mixing = 1", [after]).fetchone()[0]
            unreviewed = dict(db.execute("SELECT severity, count(*) FROM turns WHERE reviewed = 0 AND"
                                         " status != 'running' GROUP BY severity").fetchall())
        return {
            "since": since, "turns": sum(by_status.values()), "by_status": by_status,
            "decisions": decisions, "by_channel": by_channel,
            "thinking_vs_answer": {c: sum(by_channel.get(c, {}).values()) for c in ("thinking", "answer")},
            "language_mixing": mixing, "review_labels": reviews,
            "unreviewed": {SEVERITY_NAMES[s]: n for s, n in sorted(unreviewed.items(), reverse=True)},
        }


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _decisions(db: Database, sql: str, args: list[Any]) -> list[dict[str, Any]]:
    rows = _dicts(db.execute(sql, args))
    for row in rows:
        row["start"], row["end"] = row.pop("span_start"), row.pop("span_end")
        row["window"] = bool(row["window"])
    return rows
