"""Fast bulk loading of finished turns (benchmarks, imports) and the raw-SQLite baselines benches compare to.

``bulk_insert_turns`` writes exactly what ``start_turn`` + ``finish_turn`` would (sealed, chained,
indexed for search) but in large transactions with prepared statements, so a million-turn log
can be built in minutes. The result verifies like any other log.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from typing import Any

from r1desk.storage import chain
from r1desk.storage.auditlog import AuditLog
from r1desk.storage.migrations import FTS_FIELD_CHARS, GENESIS
from r1desk.storage.records import SEVERITY_BLOCKED, SEVERITY_FOR_ACTION, SEVERITY_MIXING, dumps, new_id


def fts_text(value: str | None) -> str:
    """What the full-text index holds for a field: the view ``turns_fts_source`` does the same (m011)."""
    return (value or "")[:FTS_FIELD_CHARS]


def bulk_insert_turns(log: AuditLog, turns: Iterable[dict[str, Any]], *, batch: int = 5000) -> int:
    """Insert finished turns. Each item: prompt, thinking, answer, created, model_name, and optional
    conversation_id, status, decisions (list of decision dicts). Returns the number inserted."""
    db = log._db()
    columns = [c.name for c in db["turns"].columns]
    dcols = [c.name for c in db["decisions"].columns]
    host, pid = socket.gethostname(), os.getpid()
    total = 0
    with log._write() as db:
        db.execute("PRAGMA cache_size = -200000")
        last = db.execute("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
        prev, cseq = (last[1], last[0]) if last else (GENESIS, 0)
        seq = db.execute("SELECT coalesce(max(seq), 0) FROM turns").fetchone()[0]
        did = db.execute("SELECT coalesce(max(id), 0) FROM decisions").fetchone()[0]
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal prev, cseq, did
        turn_rows, fts_rows, dec_rows, chain_rows = [], [], [], []
        for item in pending:
            row: dict[str, Any] = dict.fromkeys(columns)
            row.update(item["row"])
            turn_rows.append([row[c] for c in columns])
            fts_rows.append([row["seq"], *(fts_text(row[k]) for k in ("prompt_typed", "thinking", "answer"))])
            cseq += 1
            content = chain.content_hash("turns", row)
            entry = chain.entry_hash(prev, cseq, "turns", row["id"], content)
            chain_rows.append([cseq, "turns", row["id"], row["created"], content, prev, entry])
            prev = entry
            for d in item["decisions"]:
                did += 1
                drow = dict.fromkeys(dcols)
                drow.update(id=did, turn_id=row["id"], created=row["created"], channel=d["channel"],
                            span_start=d["start"], span_end=d["end"], text=d["text"], label=d["label"],
                            score=float(d["score"]), threshold=float(d["threshold"]), action=d["action"],
                            window=1 if d.get("window") else 0)
                dec_rows.append([drow[c] for c in dcols])
                cseq += 1
                content = chain.content_hash("decisions", drow)
                entry = chain.entry_hash(prev, cseq, "decisions", str(did), content)
                chain_rows.append([cseq, "decisions", str(did), row["created"], content, prev, entry])
                prev = entry
        with log._write() as db:
            conn = db.conn
            conn.executemany(f"INSERT INTO turns ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                             turn_rows)
            conn.executemany(f"INSERT INTO decisions ({', '.join(dcols)}) VALUES ({', '.join('?' * len(dcols))})",
                             dec_rows)
            conn.executemany("INSERT INTO turns_fts (rowid, prompt_typed, thinking, answer) VALUES (?, ?, ?, ?)",
                             fts_rows)
            conn.executemany("INSERT INTO chain (seq, tbl, row_key, created, content_hash, prev_hash, hash)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?)", chain_rows)
        pending.clear()

    for item in turns:
        seq += 1
        decisions = item.get("decisions") or []
        status = item.get("status", "done")
        severity = max([SEVERITY_BLOCKED if status == "blocked" else 0,
                        SEVERITY_MIXING if item.get("language_mixing") else 0,
                        *(SEVERITY_FOR_ACTION.get(d["action"], 0) for d in decisions)])
        row = {
            "seq": seq, "id": item.get("id") or new_id(), "conversation_id": item.get("conversation_id"),
            "created": item["created"], "updated": item["created"], "finished": item["created"],
            "status": status, "finish_reason": {"done": "stop"}.get(status, status),
            "prompt_typed": item["prompt"], "prompt_sent": item["prompt"], "thinking": item["thinking"],
            "answer": item["answer"], "thinking_shown": item["thinking"], "answer_shown": item["answer"],
            "unfinished_thinking": 0, "model_name": item.get("model_name"), "model_sha256": item.get("model_sha256"),
            "settings_json": dumps(item.get("settings") or {"temperature": 0.6, "top_p": 0.95}),
            "language_mixing": 1 if item.get("language_mixing") else 0, "writer_pid": pid, "writer_host": host,
            "reviewed": 0, "severity": severity,
        }
        pending.append({"row": row, "decisions": decisions})
        total += 1
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return total


def raw_insert_baseline(log: AuditLog, prompt: str, answer: str) -> None:
    """The cheapest possible durable append on the same file: one INSERT + COMMIT, no API, no chain."""
    db = log._db()
    with log._errors():
        db.execute("CREATE TABLE IF NOT EXISTS _bench_baseline (id INTEGER PRIMARY KEY, prompt TEXT, answer TEXT)")
        db.execute("INSERT INTO _bench_baseline (prompt, answer) VALUES (?, ?)", [prompt, answer])


def like_scan_baseline(log: AuditLog, word: str, limit: int = 50) -> int:
    """Search without the index: a LIKE scan over prompt/thinking/answer (what FTS replaces)."""
    pattern = f"%{word}%"
    db = log._db()
    with log._errors():
        rows = db.execute("SELECT seq FROM turns WHERE prompt_typed LIKE ? OR thinking LIKE ? OR answer LIKE ?"
                          " ORDER BY seq DESC LIMIT ?", [pattern, pattern, pattern, limit]).fetchall()
    return len(rows)


def drop_baseline(log: AuditLog) -> None:
    with log._errors():
        log._db().execute("DROP TABLE IF EXISTS _bench_baseline")


def checkpoint(log: AuditLog) -> None:
    """Fold the WAL into the main file (for an honest file size)."""
    with log._errors():
        log._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
