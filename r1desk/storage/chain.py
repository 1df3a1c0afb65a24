"""The hash chain that makes edits, deletions and reordering of audit rows evident.

Every row that records evidence gets one entry in ``chain``: the sha256 of the row's canonical
content, the hash of the previous entry, and its own hash over both. ``verify`` recomputes
everything and reports the first broken link. What is chained (``SOURCES``): finished turns,
decisions, segment scores, reviews, feedback, admin events, retention tombstones, policies, review
periods (their logged sample draw) and period sign-offs, and every version of a conversation (create,
rename, delete, restore).

A running turn's text changes with every committed segment, so ``start_turn`` chains only what the
turn started with (``turn_starts``: ids, prompt, model, policy). The turn itself is sealed (chained
and indexed for search) when it is finished, or when ``recover_interrupted`` marks it interrupted
after a crash — and recovery seals only turns whose "turn started" entry exists and still matches:
a row inserted with status 'running' by hand is reported as forged, never sealed.
Columns derived from other chained rows (``turns.reviewed``, ``turns.severity``) are left out of
the content hash so that they may be updated later; NULL columns are left out too, so adding a
column in a migration does not change the hash of older rows.

The chain head (seq + hash) is also written outside the database after each commit
(``storage.anchor``), so that removing the last entries, or the whole chain, is found too.

Limits: the chain is unkeyed, so someone able to rewrite the whole file can recompute it; only an
anchor they cannot write (a site folder, the system log) then shows that history was rewritten.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from r1desk.storage.migrations import GENESIS

@dataclass(frozen=True)
class Source:
    """Where the row behind a chain entry lives and which of its columns the content hash covers."""
    table: str                                   # the SQL table
    key: str = "id"                              # its key column (chain.row_key holds it as text)
    integer: bool = True                         # the key is an INTEGER column
    excluded: frozenset[str] = frozenset()       # columns left out of the hash (derived, or changing)
    fields: tuple[str, ...] | None = None        # only these columns are hashed (None: all but excluded)


# What a turn is started with and never changes afterwards: the "turn started" entry commits to it, so
# recovery can tell a turn r1desk started from a row someone inserted with status 'running'.
START_FIELDS = ("id", "conversation_id", "session_id", "created", "prompt_typed", "prompt_sent", "model_name",
                "model_sha256", "model_quantization", "policy_hash", "regenerate_of")

SOURCES: dict[str, Source] = {
    "turns": Source("turns", integer=False, excluded=frozenset({"reviewed", "severity"})),
    "turn_starts": Source("turns", integer=False, fields=START_FIELDS),
    "decisions": Source("decisions"),
    "segment_scores": Source("segment_scores"),
    "reviews": Source("reviews"),
    "feedback": Source("feedback"),
    "admin_events": Source("admin_events"),
    "tombstones": Source("tombstones"),
    "policies": Source("policies", key="hash", integer=False),
    "review_periods": Source("review_periods", integer=False),     # a period's logged draw (m012)
    "period_signoffs": Source("period_signoffs"),                  # an auditor's sign-off of its report
}
# Conversations change legitimately (rename, soft delete, restore): every version is chained, with
# row_key "<id>@<seq>", and the newest version must match the row. ``updated`` is activity, not evidence.
CONVERSATIONS = Source("conversations", integer=False, excluded=frozenset({"updated"}))
CHAINED_TABLES = (*SOURCES, "conversations")
HASH_EXCLUDED = {name: src.excluded for name, src in SOURCES.items() if src.excluded}


def _source(table: str) -> Source:
    return CONVERSATIONS if table == "conversations" else SOURCES[table]


def content_hash(table: str, row: dict[str, Any]) -> str:
    src = _source(table)
    if src.fields is not None:
        data = {k: row[k] for k in src.fields if row.get(k) is not None}
    else:
        data = {k: v for k, v in row.items() if v is not None and k not in src.excluded}
    blob = json.dumps([table, data], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def entry_hash(prev: str, seq: int, table: str, key: str, content: str) -> str:
    return hashlib.sha256(f"{prev}|{seq}|{table}|{key}|{content}".encode()).hexdigest()


def fetch_row(db: Database, table: str, key: str | int, column: str = "id") -> dict[str, Any] | None:
    cursor = db.execute(f"SELECT * FROM {table} WHERE {column} = ?", [key])
    values = cursor.fetchone()
    if values is None:
        return None
    return dict(zip([d[0] for d in cursor.description], values))


def head(db: Database) -> tuple[int, str] | None:
    """The last chain entry: (seq, hash), or None for an empty chain."""
    row = db.execute("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else None


def _append(db: Database, table: str, key: str, created: str, content: str, *, versioned: bool = False) -> str:
    last = head(db)
    prev, seq = (last[1], last[0] + 1) if last else (GENESIS, 1)
    row_key = f"{key}@{seq}" if versioned else key
    db.execute(
        "INSERT INTO chain (seq, tbl, row_key, created, content_hash, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [seq, table, row_key, created, content, prev, entry_hash(prev, seq, table, row_key, content)],
    )
    return content


def seal(db: Database, table: str, key: str | int, created: str) -> str:
    """Chain the stored row ``key`` of ``table`` (a name in ``SOURCES``); call inside the write
    transaction that wrote it. ``turn_starts`` chains what a running turn was started with.

    The row is read back so the hash covers exactly what SQLite stored. Returns the content hash.
    """
    src = SOURCES[table]
    row = fetch_row(db, src.table, key, src.key)
    if row is None:
        raise LookupError(f"{src.table} row {key} vanished before it could be chained")
    return _append(db, table, str(key), created, content_hash(table, row))


def seal_conversation(db: Database, conversation_id: str, created: str) -> str:
    """Chain the current version of a conversation (after it was created, renamed, deleted or restored)."""
    row = fetch_row(db, "conversations", conversation_id)
    if row is None:
        raise LookupError(f"conversation {conversation_id} vanished before it could be chained")
    return _append(db, "conversations", conversation_id, created, content_hash("conversations", row),
                   versioned=True)


def started_by_r1desk(db: Database, turn_id: str) -> bool:
    """True when the chain records that r1desk started this turn (with the start fields it has now)
    and has not sealed it yet: the only running turns recovery may seal."""
    if db.execute("SELECT 1 FROM chain WHERE tbl = 'turns' AND row_key = ?", [turn_id]).fetchone():
        return False   # already sealed: a sealed turn that is 'running' again was set back by hand
    entry = db.execute("SELECT content_hash FROM chain WHERE tbl = 'turn_starts' AND row_key = ?",
                       [turn_id]).fetchone()
    row = fetch_row(db, "turns", turn_id)
    return entry is not None and row is not None and content_hash("turn_starts", row) == entry[0]


@dataclass(frozen=True)
class BrokenLink:
    seq: int | None          # chain position; None for a row that was never chained
    table: str
    row_key: str
    problem: str             # edited | deleted | reordered | unchained | forged | bad-tombstone | truncated | replaced
    message: str


@dataclass(frozen=True)
class AnchorReport:
    """One place outside the database that records the chain head, and what verify found there."""
    name: str                # "head file", "site folder", "syslog"
    location: str
    state: str               # checked | absent | unreadable | not-read (written, but verify cannot read it back)
    seq: int | None = None   # the chain length it recorded
    detail: str = ""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    first_broken: BrokenLink | None = None
    problems: list[BrokenLink] = field(default_factory=list)   # at most a few, in chain order
    anchors: list[AnchorReport] = field(default_factory=list)

    def summary(self) -> str:
        if self.ok:
            text = f"OK: {self.entries} chained rows verified"
        else:
            message = self.first_broken.message if self.first_broken else ""
            text = f"BROKEN{' at ' if message.startswith('chain entry') else ': '}{message}" if message else "BROKEN"
        checked = [a.name for a in self.anchors if a.state == "checked"]
        if self.anchors:
            text += "; anchors checked: " + (", ".join(checked) if checked else "none")
            missing = [f"{a.name} {a.state}" for a in self.anchors if a.state != "checked"]
            if missing:
                text += " (" + ", ".join(missing) + ")"
        return text


MAX_PROBLEMS = 20


def verify(db: Database) -> VerifyResult:
    problems: list[BrokenLink] = []
    entries = _verify_links(db, problems)
    for table, src in SOURCES.items():
        _verify_rows(db, table, src, problems)
        if src.fields is None:
            _find_unchained(db, table, src, problems)
    _verify_conversations(db, problems)
    _find_forged_running(db, problems)
    _verify_tombstones(db, problems)
    problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    problems = problems[:MAX_PROBLEMS]
    return VerifyResult(ok=not problems, entries=entries,
                        first_broken=problems[0] if problems else None, problems=problems)


def _verify_links(db: Database, problems: list[BrokenLink]) -> int:
    """Walk the chain in order: each entry must follow its predecessor and hash correctly."""
    prev, expected, count = GENESIS, 1, 0
    reported = False
    cursor = db.execute("SELECT seq, tbl, row_key, content_hash, prev_hash, hash FROM chain ORDER BY seq")
    for seq, table, key, content, prev_hash, stored in cursor:
        count += 1
        if not reported:
            if seq != expected or prev_hash != prev:
                problems.append(BrokenLink(seq, table, key, "reordered",
                                           f"chain entry {seq} ({table} {key}): it does not follow entry "
                                           f"{expected - 1}: an entry was deleted, inserted or reordered"))
                reported = True
            elif entry_hash(prev_hash, seq, table, key, content) != stored:
                problems.append(BrokenLink(seq, table, key, "edited",
                                           f"chain entry {seq} ({table} {key}): the chain entry was edited"))
                reported = True
        prev, expected = stored, seq + 1
    return count


def _verify_rows(db: Database, table: str, src: Source, problems: list[BrokenLink]) -> None:
    """Every chain entry's row must exist with the same content, or have a tombstone."""
    join = f"t.{src.key} = CAST(c.row_key AS INTEGER)" if src.integer else f"t.{src.key} = c.row_key"
    columns = ", ".join(f"t.{name}" for name in src.fields) if src.fields else "t.*"
    cursor = db.execute(
        f"SELECT c.seq, c.row_key, c.content_hash, t.{src.key} IS NOT NULL, {columns} FROM chain c "
        f"LEFT JOIN {src.table} t ON {join} WHERE c.tbl = ? ORDER BY c.seq", [table])
    names = [d[0] for d in cursor.description][4:]
    tombstoned: dict[str, str] | None = None
    found = 0
    for values in cursor:
        seq, key, stored, present = values[0], values[1], values[2], values[3]
        row = dict(zip(names, values[4:]))
        if not present:
            if tombstoned is None:
                tombstoned = dict(db.execute("SELECT row_key, content_hash FROM tombstones WHERE tbl = ?",
                                             [table]).fetchall())
            if tombstoned.get(key) == stored:
                continue
            what = "turn" if table == "turn_starts" else f"{table} row"
            problems.append(BrokenLink(seq, table, key, "deleted", f"chain entry {seq}: {what} {key} was deleted"))
        elif content_hash(table, row) != stored:
            if table == "turns" and row.get("status") == "running":
                message = f"chain entry {seq}: turns row {key} was sealed, then set back to 'running'"
            elif table == "turn_starts":
                message = f"chain entry {seq}: the prompt or model of turn {key} was edited after it started"
            else:
                message = f"chain entry {seq}: {table} row {key} was edited"
            problems.append(BrokenLink(seq, table, key, "edited", message))
        else:
            continue
        found += 1
        if found >= MAX_PROBLEMS:
            return


def _find_unchained(db: Database, table: str, src: Source, problems: list[BrokenLink]) -> None:
    """Rows that should be chained but are not: inserted behind the log's back."""
    running = "t.status != 'running' AND " if table == "turns" else ""
    key = f"CAST(t.{src.key} AS TEXT)" if src.integer else f"t.{src.key}"
    row = db.execute(
        f"SELECT t.{src.key} FROM {src.table} t WHERE {running}NOT EXISTS "
        f"(SELECT 1 FROM chain c WHERE c.tbl = ? AND c.row_key = {key}) LIMIT 1", [table]).fetchone()
    if row:
        problems.append(BrokenLink(None, table, str(row[0]), "unchained",
                                   f"{table} row {row[0]} is not in the chain (added outside r1desk?)"))


def _find_forged_running(db: Database, problems: list[BrokenLink]) -> None:
    """A running turn r1desk started has a "turn started" entry; one without it was inserted by hand."""
    row = db.execute(
        "SELECT t.id FROM turns t WHERE t.status = 'running' AND NOT EXISTS "
        "(SELECT 1 FROM chain c WHERE c.tbl IN ('turn_starts', 'turns') AND c.row_key = t.id) LIMIT 1").fetchone()
    if row:
        problems.append(BrokenLink(None, "turns", str(row[0]), "forged",
                                   f"turns row {row[0]} is a running turn that r1desk never started (no 'turn "
                                   f"started' entry in the chain): inserted outside r1desk, never sealed"))


def _verify_conversations(db: Database, problems: list[BrokenLink]) -> None:
    """The newest chained version of each conversation must match its row; every row must be chained."""
    latest: dict[str, tuple[int, str]] = {}
    for seq, key, content in db.execute(
            "SELECT seq, row_key, content_hash FROM chain WHERE tbl = 'conversations' ORDER BY seq"):
        latest[str(key).rpartition("@")[0]] = (seq, content)
    cursor = db.execute("SELECT * FROM conversations")
    names = [d[0] for d in cursor.description]
    for values in cursor:
        row = dict(zip(names, values))
        cid = row["id"]
        entry = latest.pop(cid, None)
        if entry is None:
            problems.append(BrokenLink(None, "conversations", cid, "unchained",
                                       f"conversations row {cid} is not in the chain (added outside r1desk?)"))
        elif content_hash("conversations", row) != entry[1]:
            problems.append(BrokenLink(entry[0], "conversations", cid, "edited",
                                       f"chain entry {entry[0]}: conversations row {cid} was edited"))
    for cid, (seq, _content) in latest.items():
        problems.append(BrokenLink(seq, "conversations", cid, "deleted",
                                   f"chain entry {seq}: conversations row {cid} was deleted"))


def _verify_tombstones(db: Database, problems: list[BrokenLink]) -> None:
    """A tombstone must come from a retention prune and cover a row older than its cut-off."""
    cursor = db.execute(
        "SELECT t.id, t.tbl, t.row_key, t.row_created, e.action, e.details_json FROM tombstones t "
        "LEFT JOIN admin_events e ON e.id = t.event_id ORDER BY t.id")
    cutoffs: dict[str, str | None] = {}
    for tomb_id, table, key, row_created, action, details in cursor:
        if action != "audit.prune":
            problems.append(BrokenLink(None, table, key, "bad-tombstone",
                                       f"{table} row {key} was deleted without a retention prune event"))
            return
        if details not in cutoffs:
            cutoffs[details] = _cutoff(details)
        cutoff = cutoffs[details]
        if cutoff and row_created and row_created >= cutoff:
            problems.append(BrokenLink(None, table, key, "bad-tombstone",
                                       f"{table} row {key} was deleted although it is newer than the "
                                       f"retention cut-off {cutoff}"))
            return


def _cutoff(details: str | None) -> str | None:
    """The prune event's cut-off; None when its details are missing or not JSON (an edit verify reports)."""
    try:
        data = json.loads(details) if details else None
    except ValueError:
        return None
    cutoff = data.get("cutoff") if isinstance(data, dict) else None
    return cutoff if isinstance(cutoff, str) else None
