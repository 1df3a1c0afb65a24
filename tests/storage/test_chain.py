"""Tamper evidence: edits, deletions, reordering and forged rows made with plain SQLite are reported."""
from __future__ import annotations

import sqlite3

import pytest

from tests.storage.conftest import decision, log_turn


@pytest.fixture
def populated(audit):
    turns = [log_turn(audit, f"question {i}", decisions=[decision("thinking", "flag")]) for i in range(3)]
    audit.review(turns[0], "ok", note="fine", reviewer="ann")
    audit.set_feedback(turns[1], "up")
    audit.log_admin_event(actor="admin", action="settings.change", details={"old": 1, "new": 2})
    return turns


def tamper(path, sql, args=()):
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, args)
    conn.close()


def test_intact_log_verifies(audit, populated):
    result = audit.verify()
    assert result.ok and result.first_broken is None
    # 3 turns, each with its 'turn started' entry and its conversation; 1 policy; 3 decisions; review, feedback, admin
    assert result.entries == 3 * 3 + 1 + 3 + 1 + 1 + 1
    assert result.summary().startswith("OK")


def test_running_turn_is_outside_the_chain_until_finished(audit, populated):
    tid = audit.start_turn(prompt_typed="in progress")
    audit.update_partial(tid, thinking="a", answer="")
    assert audit.verify().ok
    audit.update_partial(tid, thinking="ab", answer="c")
    audit.finish_turn(tid, result={"finish_reason": "stop"})
    assert audit.verify().ok


@pytest.mark.parametrize("sql, table, problem", [
    ("UPDATE turns SET answer_shown = 'nothing to see' WHERE prompt_typed = 'question 1'", "turns", "edited"),
    ("UPDATE decisions SET score = 0.01 WHERE id = 2", "decisions", "edited"),
    ("UPDATE reviews SET label = 'harmful'", "reviews", "edited"),
    ("UPDATE feedback SET thumbs = -1", "feedback", "edited"),
    ("UPDATE admin_events SET details_json = '{}'", "admin_events", "edited"),
    ("DELETE FROM decisions WHERE id = 3", "decisions", "deleted"),
    ("DELETE FROM turns WHERE prompt_typed = 'question 2'", "turn_starts", "deleted"),   # its first entry
    ("UPDATE turns SET status = 'running' WHERE prompt_typed = 'question 0'", "turns", "edited"),
])
def test_edits_and_deletions_are_found(audit, populated, db_path, sql, table, problem):
    tamper(db_path, sql)
    result = audit.verify()
    assert not result.ok
    assert (result.first_broken.table, result.first_broken.problem) == (table, problem)
    assert "chain entry" in result.first_broken.message


def test_the_first_broken_link_is_reported(audit, populated, db_path):
    tamper(db_path, "UPDATE turns SET thinking = 'x' WHERE prompt_typed = 'question 2'")
    tamper(db_path, "UPDATE turns SET thinking = 'x' WHERE prompt_typed = 'question 0'")
    result = audit.verify()
    first = audit.get_turn(populated[0])["chain"]["seq"]
    assert result.first_broken.seq == first and len(result.problems) == 2


def test_reordered_chain_entries_are_found(audit, populated, db_path):
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE chain SET seq = -1 WHERE seq = 2")
        conn.execute("UPDATE chain SET seq = 2 WHERE seq = 3")
        conn.execute("UPDATE chain SET seq = 3 WHERE seq = -1")
    conn.close()
    result = audit.verify()
    assert (result.first_broken.seq, result.first_broken.problem) == (2, "reordered")


def test_deleted_chain_entry_is_found(audit, populated, db_path):
    tamper(db_path, "DELETE FROM chain WHERE seq = 4")
    result = audit.verify()
    assert result.first_broken.seq == 5 and result.first_broken.problem == "reordered"


def test_edited_chain_entry_is_found(audit, populated, db_path):
    tamper(db_path, "UPDATE chain SET created = created, content_hash = ? WHERE seq = 2", ["0" * 64])
    assert audit.verify().first_broken.seq == 2


def test_row_inserted_behind_the_logs_back_is_found(audit, populated, db_path):
    tamper(db_path, "INSERT INTO reviews (turn_id, created, label, note, reviewer) VALUES (?, '2020', 'ok', '', 'eve')",
           [populated[2]])
    result = audit.verify()
    assert result.first_broken.problem == "unchained" and result.first_broken.table == "reviews"


def test_prune_leaves_tombstones_and_still_verifies(audit, monkeypatch):
    from r1desk.storage import auditlog as module

    with monkeypatch.context() as m:
        m.setattr(module, "now", lambda: "2001-02-03T04:05:06.000Z")
        old = [log_turn(audit, f"ancient {i}", decisions=[decision()]) for i in range(2)]
        audit.review(old[0], "ok", reviewer="ann", corrected_answer="better")
        audit.set_feedback(old[1], "down")
        stale_running = audit.start_turn(prompt_typed="ancient but running")
    recent = log_turn(audit, "recent", decisions=[decision()])
    result = audit.prune(30, actor="admin")
    assert result["turns"] == 2
    assert {t["id"] for t in audit.list_turns()} == {recent, stale_running}
    assert audit.search("ancient") == []
    verdict = audit.verify()
    assert verdict.ok, verdict.problems
    [event] = audit.list_admin_events(action="audit.prune")
    assert event["actor"] == "admin" and event["details"]["turns"] == 2
    assert event["details"]["older_than_days"] == 30
    tombstones = sqlite3.connect(audit.path).execute("SELECT tbl, count(*) FROM tombstones GROUP BY tbl").fetchall()
    assert dict(tombstones) == {"turns": 2, "turn_starts": 2, "decisions": 2, "reviews": 1, "feedback": 1}


def test_prune_rejects_bad_ages(audit):
    from r1desk.storage.records import AuditInputError

    for bad in (-1, float("nan"), "soon"):
        with pytest.raises(AuditInputError):
            audit.prune(bad, actor="admin")


def test_tombstone_for_a_row_newer_than_the_cutoff_is_found(audit, monkeypatch, db_path):
    from r1desk.storage import auditlog as module

    with monkeypatch.context() as m:
        m.setattr(module, "now", lambda: "2001-02-03T04:05:06.000Z")
        log_turn(audit, "ancient")
    recent = log_turn(audit, "recent")
    audit.prune(30, actor="admin")
    # forge: delete a recent turn and make its deletion look like part of that prune
    conn = sqlite3.connect(db_path)
    with conn:
        content, = conn.execute("SELECT content_hash FROM chain WHERE tbl = 'turns' AND row_key = ?",
                                [recent]).fetchone()
        created, = conn.execute("SELECT created FROM turns WHERE id = ?", [recent]).fetchone()
        conn.execute("UPDATE tombstones SET row_key = ?, content_hash = ?, row_created = ?",
                     [recent, content, created])
        conn.execute("DELETE FROM turns WHERE id = ?", [recent])
    conn.close()
    assert any(p.problem in ("bad-tombstone", "edited") for p in audit.verify().problems)


def test_forged_deletion_with_a_fake_tombstone_is_found(audit, populated, db_path):
    victim = populated[2]
    content = sqlite3.connect(db_path).execute(
        "SELECT content_hash FROM chain WHERE tbl = 'turns' AND row_key = ?", [victim]).fetchone()[0]
    tamper(db_path, "DELETE FROM turns WHERE id = ?", [victim])
    tamper(db_path, "INSERT INTO tombstones (tbl, row_key, content_hash, row_created, deleted) "
                    "VALUES ('turns', ?, ?, '2000', '2000')", [victim, content])
    result = audit.verify()
    assert not result.ok
    assert {p.problem for p in result.problems} >= {"bad-tombstone"}


@pytest.mark.parametrize("details", ["not json {", "[1, 2]", '{"cutoff": 5}'])
def test_edited_prune_event_is_reported_not_a_crash(audit, monkeypatch, db_path, details):
    from r1desk.storage import auditlog as module

    with monkeypatch.context() as m:
        m.setattr(module, "now", lambda: "2001-02-03T04:05:06.000Z")
        log_turn(audit, "ancient")
    audit.prune(30, actor="admin")
    tamper(db_path, "UPDATE admin_events SET details_json = ? WHERE action = 'audit.prune'", [details])
    result = audit.verify()
    assert not result.ok
    assert any(p.problem == "edited" and p.table == "admin_events" for p in result.problems)
