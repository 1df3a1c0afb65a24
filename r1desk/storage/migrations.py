"""Append-only, named schema migrations for the audit database (sqlite-utils ``Migrations``).

Never edit or reorder a migration that has shipped: add the next one. ``tests/storage/test_migrations.py``
builds a database at every earlier schema state and upgrades it. Applied migrations are recorded in
``_sqlite_migrations`` (one row per name), each applied inside its own transaction.
"""
from __future__ import annotations

import hashlib
import json

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("r1desk.audit")

GENESIS = "0" * 64
FTS_FIELD_CHARS = 32768   # what m011's view indexes of each field (a shipped value: change it with a migration)


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


def _m006_content_hash(table: str, row: dict) -> str:
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


@migrations(name="m011_fts_bounded")
def m011_fts_bounded(db: Database) -> None:
    """Search time independent of one huge turn: the full-text index (and the snippets, which FTS5 builds
    by re-reading and re-tokenizing the indexed text) covers at most the first 32768 characters of each
    field, through the ``turns_fts_source`` view. Writers index and un-index rows from that view (the
    values given to an external-content 'delete' must be exactly those indexed)."""
    db.executescript("""
    DROP TABLE turns_fts;
    CREATE VIEW turns_fts_source AS SELECT seq,
        substr(prompt_typed, 1, 32768) AS prompt_typed,
        substr(coalesce(thinking, ''), 1, 32768) AS thinking,
        substr(coalesce(answer, ''), 1, 32768) AS answer
        FROM turns;
    CREATE VIRTUAL TABLE turns_fts USING fts5(
        prompt_typed, thinking, answer, content='turns_fts_source', content_rowid='seq',
        tokenize='unicode61 remove_diacritics 2'
    );
    INSERT INTO turns_fts(rowid, prompt_typed, thinking, answer)
        SELECT s.seq, s.prompt_typed, s.thinking, s.answer FROM turns_fts_source s JOIN turns t ON t.seq = s.seq
        WHERE t.status != 'running';
    """)


def apply(db: Database) -> list[str]:
    """Apply pending migrations; returns their names (empty when the schema is current)."""
    pending = migrations.pending(db)
    if pending:
        migrations.apply(db)
    return [m.name for m in pending]


def names() -> list[str]:
    return [m.name for m in migrations._migrations]
