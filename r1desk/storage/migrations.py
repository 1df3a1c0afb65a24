"""Append-only, named schema migrations for the audit database (sqlite-utils ``Migrations``).

Never edit or reorder a migration that has shipped: add the next one. ``tests/storage/test_migrations.py``
builds a database at every earlier schema state and upgrades it. Applied migrations are recorded in
``_sqlite_migrations`` (one row per name), each applied inside its own transaction.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from r1desk.storage.connection import corrupt_error

migrations = Migrations("r1desk.audit")

GENESIS = "0" * 64
FTS_FIELD_CHARS = 8192   # what m011's view indexes of each field (a shipped value: change it with a migration)


@migrations(name="m001_conversations_turns")
def m001_conversations_turns(db: Database) -> None:
    db.executescript("""
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '', created TEXT NOT NULL, updated TEXT NOT NULL,
        deleted TEXT                                   -- tombstone: set when the user deletes the chat
    );
    CREATE TABLE policies (hash TEXT PRIMARY KEY, policy_json TEXT NOT NULL, created TEXT NOT NULL);
    CREATE TABLE turns (
        seq INTEGER PRIMARY KEY,                       -- stable rowid (FTS content_rowid, VACUUM-safe)
        id TEXT NOT NULL UNIQUE,
        conversation_id TEXT REFERENCES conversations(id),
        session_id TEXT,
        created TEXT NOT NULL, updated TEXT NOT NULL, finished TEXT,
        status TEXT NOT NULL DEFAULT 'running',        -- running|done|interrupted|cancelled|blocked|error
        finish_reason TEXT,
        prompt_typed TEXT NOT NULL DEFAULT '', prompt_sent TEXT NOT NULL DEFAULT '',
        raw_output TEXT, thinking TEXT, answer TEXT, thinking_shown TEXT, answer_shown TEXT,
        unfinished_thinking INTEGER,
        model_name TEXT, model_sha256 TEXT, model_quantization TEXT, model_json TEXT,
        settings_json TEXT, policy_hash TEXT REFERENCES policies(hash),
        language_json TEXT, language_mixing INTEGER NOT NULL DEFAULT 0,
        usage_json TEXT, timings_json TEXT, notices_json TEXT,
        regenerate_of TEXT,
        writer_pid INTEGER, writer_host TEXT
    );
    CREATE INDEX turns_conversation ON turns(conversation_id, seq);
    CREATE INDEX turns_created ON turns(created);
    CREATE INDEX turns_status ON turns(status);
    CREATE INDEX turns_model ON turns(model_name);
    """)


@migrations(name="m002_decisions_scores")
def m002_decisions_scores(db: Database) -> None:
    db.executescript("""
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY, turn_id TEXT NOT NULL REFERENCES turns(id), created TEXT NOT NULL,
        channel TEXT NOT NULL, span_start INTEGER NOT NULL, span_end INTEGER NOT NULL, text TEXT,
        label TEXT NOT NULL, score REAL, threshold REAL, action TEXT NOT NULL, window INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX decisions_turn ON decisions(turn_id);
    CREATE INDEX decisions_filter ON decisions(channel, action, label);
    CREATE TABLE segment_scores (
        id INTEGER PRIMARY KEY, turn_id TEXT NOT NULL REFERENCES turns(id), created TEXT NOT NULL,
        channel TEXT NOT NULL, span_start INTEGER NOT NULL, span_end INTEGER NOT NULL, text TEXT,
        scores_json TEXT NOT NULL, language TEXT
    );
    CREATE INDEX segment_scores_turn ON segment_scores(turn_id);
    """)


@migrations(name="m003_turns_fts")
def m003_turns_fts(db: Database) -> None:
    # External content: the text lives once, in turns; rows are indexed when a turn is sealed.
    db.executescript("""
    CREATE VIRTUAL TABLE turns_fts USING fts5(
        prompt_typed, thinking, answer, content='turns', content_rowid='seq',
        tokenize='unicode61 remove_diacritics 2'
    );
    INSERT INTO turns_fts(rowid, prompt_typed, thinking, answer)
        SELECT seq, prompt_typed, coalesce(thinking, ''), coalesce(answer, '') FROM turns
        WHERE status != 'running';
    """)


@migrations(name="m004_reviews_feedback")
def m004_reviews_feedback(db: Database) -> None:
    db.executescript("""
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY, turn_id TEXT NOT NULL REFERENCES turns(id), created TEXT NOT NULL,
        label TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', reviewer TEXT NOT NULL, corrected_answer TEXT
    );
    CREATE INDEX reviews_turn ON reviews(turn_id, id);
    CREATE INDEX reviews_created ON reviews(created);
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY, turn_id TEXT NOT NULL REFERENCES turns(id), created TEXT NOT NULL,
        thumbs INTEGER, comment TEXT NOT NULL DEFAULT ''       -- +1, -1 or NULL (cleared)
    );
    CREATE INDEX feedback_turn ON feedback(turn_id, id);
    ALTER TABLE turns ADD COLUMN reviewed INTEGER NOT NULL DEFAULT 0;
    UPDATE turns SET reviewed = 1 WHERE id IN (SELECT turn_id FROM reviews);
    """)


@migrations(name="m005_admin_events")
def m005_admin_events(db: Database) -> None:
    db.executescript("""
    CREATE TABLE admin_events (
        id INTEGER PRIMARY KEY, created TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        details_json TEXT
    );
    CREATE INDEX admin_events_created ON admin_events(created);
    """)


@migrations(name="m006_hash_chain")
def m006_hash_chain(db: Database) -> None:
    """The tamper-evident chain; rows that existed before it are chained in their stored order."""
    db.executescript("""
    CREATE TABLE chain (
        seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL, row_key TEXT NOT NULL, created TEXT NOT NULL,
        content_hash TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
    );
    CREATE UNIQUE INDEX chain_row ON chain(tbl, row_key);
    CREATE TABLE tombstones (
        id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, row_key TEXT NOT NULL, content_hash TEXT NOT NULL,
        row_created TEXT, deleted TEXT NOT NULL, event_id INTEGER REFERENCES admin_events(id)
    );
    CREATE UNIQUE INDEX tombstones_row ON tombstones(tbl, row_key);
    """)
    # Backfill with the same hashing the running code uses (storage.chain), frozen here so
    # that later changes to chain.py cannot change what this migration did.
    prev, seq = GENESIS, 0
    sources = [
        ("turns", "SELECT * FROM turns WHERE status != 'running' ORDER BY seq"),
        ("decisions", "SELECT * FROM decisions ORDER BY id"),
        ("reviews", "SELECT * FROM reviews ORDER BY id"),
        ("feedback", "SELECT * FROM feedback ORDER BY id"),
        ("admin_events", "SELECT * FROM admin_events ORDER BY id"),
    ]
    stamp = "migration:m006_hash_chain"
    for table, sql in sources:
        cursor = db.execute(sql)
        names = [d[0] for d in cursor.description]
        for values in cursor.fetchall():
            row = dict(zip(names, values))
            content = _m006_content_hash(table, row)
            seq += 1
            entry = hashlib.sha256(f"{prev}|{seq}|{table}|{row['id']}|{content}".encode()).hexdigest()
            db.execute("INSERT INTO chain (seq, tbl, row_key, created, content_hash, prev_hash, hash) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", [seq, table, str(row["id"]), stamp, content, prev, entry])
            prev = entry


def _m006_content_hash(table: str, row: dict[str, Any]) -> str:
    excluded = {"reviewed", "severity"} if table == "turns" else set()
    data = {k: v for k, v in row.items() if v is not None and k not in excluded}
    blob = json.dumps([table, data], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


@migrations(name="m007_selfcheck_runs")
def m007_selfcheck_runs(db: Database) -> None:
    db.executescript("""
    CREATE TABLE selfcheck_runs (
        id TEXT PRIMARY KEY, created TEXT NOT NULL, finished TEXT,
        model_name TEXT, model_sha256 TEXT, suite TEXT NOT NULL, guards_mode TEXT,
        metrics_json TEXT, report_path TEXT, status TEXT NOT NULL DEFAULT 'running'
    );
    CREATE INDEX selfcheck_runs_created ON selfcheck_runs(created);
    """)


@migrations(name="m008_review_queue")
def m008_review_queue(db: Database) -> None:
    """Severity for the review queue: 3 blocked, 2 flagged/redacted, 1 language mixing, 0 the rest."""
    db.executescript("""
    ALTER TABLE turns ADD COLUMN severity INTEGER NOT NULL DEFAULT 0;
    UPDATE turns SET severity = max(
        CASE WHEN status = 'blocked' THEN 3 ELSE 0 END,
        coalesce((SELECT max(CASE action WHEN 'block' THEN 3 WHEN 'redact' THEN 2 WHEN 'flag' THEN 2 ELSE 0 END)
                  FROM decisions d WHERE d.turn_id = turns.id), 0),
        CASE WHEN language_mixing THEN 1 ELSE 0 END
    );
    CREATE INDEX turns_queue ON turns(reviewed, severity, seq);
    """)


@migrations(name="m009_severity_order")
def m009_severity_order(db: Database) -> None:
    """The auditor browser lists every turn by severity (not only the unreviewed ones)."""
    db.execute("CREATE INDEX turns_severity ON turns(severity, seq)")


@migrations(name="m010_chain_evidence")
def m010_chain_evidence(db: Database) -> None:
    """Chain the evidence m006 left out: segment scores, policies, conversations (one entry per version,
    row_key "<id>@<seq>") and a "turn started" entry (``turn_starts``) for each turn still running.

    Rows that exist at upgrade time are vouched for as they are (as m006 did); from here on they are
    chained as they are written, and recovery seals only running turns with a "turn started" entry.
    Hashing frozen here, as in m006.
    """
    last = db.execute("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
    prev, seq = (last[1], last[0]) if last else (GENESIS, 0)
    start_fields = ("id", "conversation_id", "session_id", "created", "prompt_typed", "prompt_sent", "model_name",
                    "model_sha256", "model_quantization", "policy_hash", "regenerate_of")
    sources = [
        ("segment_scores", "id", "SELECT * FROM segment_scores ORDER BY id"),
        ("policies", "hash", "SELECT * FROM policies ORDER BY created, hash"),
        ("conversations", "id", "SELECT * FROM conversations ORDER BY created, id"),
        ("turn_starts", "id", "SELECT * FROM turns t WHERE status = 'running' AND NOT EXISTS (SELECT 1 FROM chain c"
                              " WHERE c.tbl = 'turns' AND c.row_key = t.id) ORDER BY seq"),
    ]
    stamp = "migration:m010_chain_evidence"
    for table, key, sql in sources:
        cursor = db.execute(sql)
        names = [d[0] for d in cursor.description]
        for values in cursor.fetchall():
            row = dict(zip(names, values))
            if table == "turn_starts":
                data = {k: row[k] for k in start_fields if row.get(k) is not None}
            else:
                data = {k: v for k, v in row.items() if v is not None and not (table == "conversations" and
                                                                                k == "updated")}
            blob = json.dumps([table, data], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            content = hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()
            seq += 1
            row_key = f"{row[key]}@{seq}" if table == "conversations" else str(row[key])
            entry = hashlib.sha256(f"{prev}|{seq}|{table}|{row_key}|{content}".encode()).hexdigest()
            db.execute("INSERT INTO chain (seq, tbl, row_key, created, content_hash, prev_hash, hash) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", [seq, table, row_key, stamp, content, prev, entry])
            prev = entry


@migrations(name="m011_fts_bounded")
def m011_fts_bounded(db: Database) -> None:
    """Search time independent of one huge turn: the full-text index (and the snippets, which FTS5 builds
    by re-reading and re-tokenizing the indexed text) covers at most the first 8192 characters of each
    field (snippet() is quadratic in the hits of one row: 8K chars keep the worst row ~25 ms), through the
    ``turns_fts_source`` view; the log itself keeps the whole text. Writers index and un-index rows from that view (the
    values given to an external-content 'delete' must be exactly those indexed)."""
    db.executescript("""
    DROP TABLE turns_fts;
    CREATE VIEW turns_fts_source AS SELECT seq,
        substr(prompt_typed, 1, 8192) AS prompt_typed,
        substr(coalesce(thinking, ''), 1, 8192) AS thinking,
        substr(coalesce(answer, ''), 1, 8192) AS answer
        FROM turns;
    CREATE VIRTUAL TABLE turns_fts USING fts5(
        prompt_typed, thinking, answer, content='turns_fts_source', content_rowid='seq',
        tokenize='unicode61 remove_diacritics 2'
    );
    INSERT INTO turns_fts(rowid, prompt_typed, thinking, answer)
        SELECT s.seq, s.prompt_typed, s.thinking, s.answer FROM turns_fts_source s JOIN turns t ON t.seq = s.seq
        WHERE t.status != 'running';
    """)


@migrations(name="m012_feedback_periods")
def m012_feedback_periods(db: Database) -> None:
    """The feedback loop and periodic review (issue 16): which classifier and model version made each
    decision (NULL for older rows, so their chain hashes do not change), the channel a reviewer says a
    problem was in, each review period's logged draw (flagged turns + a reproducible random sample of
    unflagged ones) and the auditors' sign-offs of period reports. Periods and sign-offs are chained."""
    db.executescript("""
    ALTER TABLE decisions ADD COLUMN classifier TEXT;
    ALTER TABLE decisions ADD COLUMN model TEXT;
    ALTER TABLE reviews ADD COLUMN channel TEXT;
    CREATE TABLE review_periods (
        id TEXT PRIMARY KEY, created TEXT NOT NULL, cadence TEXT NOT NULL,
        period_start TEXT NOT NULL, period_end TEXT NOT NULL,
        seed TEXT NOT NULL, sample_size INTEGER NOT NULL, population INTEGER NOT NULL,
        flagged_json TEXT NOT NULL, sample_json TEXT NOT NULL, drawn_by TEXT NOT NULL
    );
    CREATE TABLE period_signoffs (
        id INTEGER PRIMARY KEY, period_id TEXT NOT NULL REFERENCES review_periods(id), created TEXT NOT NULL,
        auditor TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', report_sha256 TEXT NOT NULL, report_path TEXT
    );
    CREATE INDEX period_signoffs_period ON period_signoffs(period_id, id);
    CREATE INDEX decisions_classifier ON decisions(classifier, model);
    """)


@migrations(name="m013_decision_verdicts")
def m013_decision_verdicts(db: Database) -> None:
    """A generative guard model's verdict word and raw output on each decision it made (issue 13), kept as
    evidence beside the span it judged. NULL for older rows, so their chain hashes do not change."""
    db.executescript("""
    ALTER TABLE decisions ADD COLUMN verdict TEXT;
    ALTER TABLE decisions ADD COLUMN raw_output TEXT;
    """)


def apply(db: Database) -> list[str]:
    """Apply pending migrations; returns their names (empty when the schema is current).

    A damaged schema (a table dropped or renamed, a column missing, the record of applied migrations
    edited) raises ``AuditStoreCorruptError`` with one clear message: never a traceback, and never a
    chain silently re-created over rows that were chained before.
    """
    done = _applied(db)
    pending = migrations.pending(db)
    order = names()
    if done:
        first_pending = min((order.index(m.name) for m in pending), default=len(order))
        if any(order.index(n) > first_pending for n in done if n in order):
            raise _damaged(db, "its record of applied migrations was edited")
        _check_schema(db, [n for n in order if n in done])
    elif _user_tables(db):
        raise _damaged(db, "it has tables but no record of its migrations")
    if pending:
        try:
            migrations.apply(db)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc) or "disk" in str(exc):
                raise
            raise _damaged(db, f"a schema upgrade failed: {exc}") from exc
    return [m.name for m in pending]


def _applied(db: Database) -> set[str]:
    try:
        return {m.name for m in migrations.applied(db)}
    except (sqlite3.OperationalError, KeyError) as exc:
        raise _damaged(db, f"its record of applied migrations is unreadable ({exc})") from exc


def _user_tables(db: Database) -> list[str]:
    return [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                         "name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\'")]


_EXPECTED: dict[tuple[str, ...], dict[str, set[str]]] = {}


def _expected(applied: list[str]) -> dict[str, set[str]]:
    """Tables and columns the named migrations create, from a scratch in-memory database (cached)."""
    key = tuple(applied)
    if key not in _EXPECTED:
        scratch = Database(memory=True)
        for migration in migrations._migrations:
            if migration.name in applied:
                migration.fn(scratch)
        _EXPECTED[key] = _columns(scratch)
        scratch.close()
    return _EXPECTED[key]


def _columns(db: Database) -> dict[str, set[str]]:
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                           "AND name NOT LIKE 'sqlite_%'")]
    return {t: {row[1] for row in db.execute(f"PRAGMA table_info([{t}])")} for t in tables}


def _check_schema(db: Database, applied: list[str]) -> None:
    expected = _expected(applied)
    tables = set(row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    missing = sorted(t for t in expected if t not in tables)
    if missing:
        raise _damaged(db, f"table {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing: "
                           "dropped or renamed outside r1desk")
    for table, columns in expected.items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info([{table}])")}
        lost = sorted(columns - have)
        if lost:
            raise _damaged(db, f"column {', '.join(lost)} of table {table} is missing: changed outside r1desk")


def _damaged(db: Database, detail: str) -> Exception:
    path = db.execute("PRAGMA database_list").fetchone()[2]
    return corrupt_error(Path(path), f"schema changed: {detail}")


def names() -> list[str]:
    return [m.name for m in migrations._migrations]
