"""Upgrading a database made by every earlier schema version keeps its data and its chain valid."""
from __future__ import annotations

import pytest
from sqlite_utils import Database

from r1desk.storage import chain, migrations
from r1desk.storage.auditlog import AuditLog

# Every migration ever shipped, in order. Append here when you add one; never edit or reorder.
SHIPPED = [
    "m001_conversations_turns",
    "m002_decisions_scores",
    "m003_turns_fts",
    "m004_reviews_feedback",
    "m005_admin_events",
    "m006_hash_chain",
    "m007_selfcheck_runs",
    "m008_review_queue",
    "m009_severity_order",
    "m010_chain_evidence",
    "m011_fts_bounded",
    "m012_feedback_periods",
    "m013_decision_verdicts",
]
STAMP = "2023-05-06T07:08:09.000Z"


def test_migrations_are_append_only():
    assert migrations.names()[: len(SHIPPED)] == SHIPPED
    assert migrations.names() == SHIPPED, "a new migration: add it to SHIPPED (and to seed() if it adds tables)"


def seed(db: Database) -> dict[str, bool]:
    """Write what an r1desk of this schema version would have written (raw SQL, like old code did)."""
    tables = set(db.table_names())
    has = {name: name in tables for name in ("decisions", "turns_fts", "reviews", "admin_events", "chain",
                                              "selfcheck_runs")}
    has["severity"] = "severity" in db["turns"].columns_dict
    has["evidence_chain"] = "m010_chain_evidence" in {m.name for m in migrations.migrations.applied(db)}
    with db.atomic():
        db.execute("INSERT INTO conversations (id, title, created, updated) VALUES ('c1', 'Legacy chat', ?, ?)",
                   [STAMP, STAMP])
        db.execute("INSERT INTO policies (hash, policy_json, created) VALUES ('p1', '{\"x\": 1}', ?)", [STAMP])
        db.execute(
            "INSERT INTO turns (id, conversation_id, created, updated, finished, status, finish_reason, prompt_typed,"
            " prompt_sent, thinking, answer, thinking_shown, answer_shown, model_name, model_sha256, settings_json,"
            " policy_hash) VALUES ('t-old', 'c1', ?, ?, ?, 'done', 'stop', 'legacy zebra question', 'sent',"
            " 'zebras think', 'stripes', 'zebras think', 'stripes', 'old-model', 'cd', '{\"temperature\": 0.6}',"
            " 'p1')", [STAMP, STAMP, STAMP])
        db.execute("INSERT INTO turns (id, conversation_id, created, updated, status, prompt_typed, thinking, answer)"
                   " VALUES ('t-run', 'c1', ?, ?, 'running', 'crashed mid-answer', 'half a thought', '')",
                   [STAMP, STAMP])
        chained = [("turns", "t-old")]
        if has["decisions"]:
            cur = db.execute("INSERT INTO decisions (turn_id, created, channel, span_start, span_end, text, label,"
                             " score, threshold, action, window) VALUES ('t-old', ?, 'answer', 0, 7, 'stripes',"
                             " 'insult', 0.8, 0.5, 'flag', 0)", [STAMP])
            chained.append(("decisions", cur.lastrowid))
            cur = db.execute("INSERT INTO segment_scores (turn_id, created, channel, span_start, span_end, text,"
                             " scores_json) VALUES ('t-old', ?, 'answer', 0, 7, 'stripes', '{\"insult\": 0.8}')",
                             [STAMP])
            if has["evidence_chain"]:
                chained.append(("segment_scores", cur.lastrowid))
        if has["turns_fts"]:
            db.execute("INSERT INTO turns_fts (rowid, prompt_typed, thinking, answer) SELECT seq, prompt_typed,"
                       " thinking, answer FROM turns WHERE id = 't-old'")
        if has["reviews"]:
            cur = db.execute("INSERT INTO reviews (turn_id, created, label, note, reviewer) VALUES"
                             " ('t-old', ?, 'ok', 'fine', 'ann')", [STAMP])
            chained.append(("reviews", cur.lastrowid))
            cur = db.execute("INSERT INTO feedback (turn_id, created, thumbs, comment) VALUES ('t-old', ?, 1, '')",
                             [STAMP])
            chained.append(("feedback", cur.lastrowid))
            db.execute("UPDATE turns SET reviewed = 1 WHERE id = 't-old'")
        if has["admin_events"]:
            cur = db.execute("INSERT INTO admin_events (created, actor, action, details_json) VALUES"
                             " (?, 'admin', 'settings.change', '{\"old\": 1, \"new\": 2}')", [STAMP])
            chained.append(("admin_events", cur.lastrowid))
        if has["severity"]:
            db.execute("UPDATE turns SET severity = 2 WHERE id = 't-old'")
        if has["evidence_chain"]:   # from m010 on, r1desk chains what it starts a turn with, policies and chats
            chained += [("turn_starts", "t-run"), ("policies", "p1")]
            chain.seal_conversation(db, "c1", STAMP)
        if has["chain"]:
            for table, key in chained:
                chain.seal(db, table, key, STAMP)
        if has["selfcheck_runs"]:
            db.execute("INSERT INTO selfcheck_runs (id, created, suite, status) VALUES ('r1', ?, 'basic', 'done')",
                       [STAMP])
    return has


@pytest.mark.parametrize("version", range(1, len(SHIPPED)), ids=lambda v: f"from_{SHIPPED[v - 1]}")
def test_upgrade_from_every_earlier_schema(tmp_path, version):
    path = tmp_path / "old.db"
    db = Database(path)
    migrations.migrations.apply(db, stop_before=SHIPPED[version])
    assert [m.name for m in migrations.migrations.applied(db)] == SHIPPED[:version]
    has = seed(db)
    db.close()

    with AuditLog(path) as log:  # migrates, then recovers the crashed turn
        applied = [m.name for m in migrations.migrations.applied(log._db())]
        assert applied == SHIPPED
        turn = log.get_turn("t-old")
        assert (turn["prompt_typed"], turn["thinking"], turn["answer_shown"]) == (
            "legacy zebra question", "zebras think", "stripes")
        assert turn["settings"] == {"temperature": 0.6} and turn["policy"] == {"x": 1}
        assert [t["id"] for t in log.search("zebra")] == ["t-old"], "old turns are searchable"
        if has["decisions"]:
            assert [d["label"] for d in turn["decisions"]] == ["insult"]
            assert turn["segment_scores"][0]["scores"] == {"insult": 0.8}
            assert turn["severity_name"] == "flagged", "severity backfilled from old decisions"
        if has["reviews"]:
            assert turn["reviewed"] == 1 and turn["reviews"][0]["reviewer"] == "ann"
            assert turn["feedback"]["thumbs"] == 1
        if has["admin_events"]:
            assert log.list_admin_events()[0]["details"] == {"old": 1, "new": 2}
        if has["selfcheck_runs"]:
            assert log.list_selfcheck_runs()[0]["suite"] == "basic"
        crashed = log.get_turn("t-run")
        assert crashed["status"] == "interrupted" and crashed["thinking"] == "half a thought"
        result = log.verify()
        assert result.ok, result.problems
        assert result.entries >= 2
        # and the upgraded database keeps working
        fresh = log.start_turn(prompt_typed="after the upgrade")
        log.finish_turn(fresh, result={"finish_reason": "stop", "answer_raw": "fine"})
        log.review(fresh, "ok", reviewer="bob")
        assert log.verify().ok


def test_opening_a_current_database_writes_nothing(tmp_path):
    path = tmp_path / "audit.db"
    AuditLog(path).close()
    watcher = Database(path)  # PRAGMA data_version changes when another connection commits
    before = watcher.execute("PRAGMA data_version").fetchone()[0]
    AuditLog(path).close()
    assert watcher.execute("PRAGMA data_version").fetchone()[0] == before
    assert watcher.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == len(SHIPPED)
    watcher.close()
