"""Tamper evidence against the machine's own user: each case edits a real audit file with sqlite3 and
checks what ``verify`` (and every command that opens the file) says.

Verdicts before and after the fix (issue 10):

| tampering                                        | before                       | after                              |
|--------------------------------------------------|------------------------------|------------------------------------|
| delete the last turns with their chain entries   | OK                           | BROKEN: the last N entries removed |
| wipe all turns and the chain                     | OK                           | BROKEN: the log was wiped          |
| edit segment_scores                              | OK                           | BROKEN: segment_scores edited      |
| edit policies                                    | OK                           | BROKEN: policies edited            |
| edit conversations (title, deleted)              | OK                           | BROKEN: conversations edited       |
| insert a forged 'running' turn                   | OK (recovery sealed it)      | BROKEN: forged, never sealed       |
| set a chained turn back to 'running', reopen     | traceback (IntegrityError)   | BROKEN: set back to 'running'      |
| drop / rename the chain table                    | traceback in every command   | one AuditStoreError, exit 2        |
| edit a turn / delete a row / reorder the chain   | BROKEN                       | BROKEN                             |
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from r1desk.errors import AuditStoreError
from r1desk.storage import anchor
from r1desk.storage.auditlog import AuditLog
from tests.storage.conftest import decision, log_turn

SCORES = [{"channel": "answer", "start": 0, "end": 5, "text": "hello", "scores": {"toxicity": 0.91},
           "language": "en"}]


@pytest.fixture(autouse=True)
def site_dir(tmp_path, monkeypatch) -> Path:
    """A site anchor folder of our own (the real one is a system path); created by the tests that use it."""
    folder = tmp_path / "site-anchors"
    monkeypatch.setattr(anchor, "SITE_ANCHOR_DIR", folder)
    return folder


@pytest.fixture
def populated(audit):
    turns = []
    for i in range(4):
        tid = log_turn(audit, f"question {i}", decisions=[decision("answer", "flag")])
        audit.add_segment_scores(tid, SCORES)
        turns.append(tid)
    audit.review(turns[0], "ok", reviewer="ann")
    assert audit.verify().ok
    return turns


def sql(path: Path, *statements: str, args: tuple = ()) -> None:
    conn = sqlite3.connect(path)
    with conn:
        for statement in statements:
            conn.execute(statement, args)
    conn.close()


def chain_length(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT max(seq) FROM chain").fetchone()[0] or 0
    finally:
        conn.close()


def verdict(path: Path):
    """What a fresh process would say: close nothing shared, open, recover, verify."""
    with AuditLog(path) as log:
        return log.verify()


# -- tail truncation and wipes: found through the anchors -----------------------------------------------
def test_deleting_the_last_turns_with_their_chain_entries_is_found(audit, populated, db_path):
    last_seq = chain_length(db_path)
    cut = sqlite3.connect(db_path).execute(
        "SELECT min(seq) FROM chain WHERE tbl = 'turn_starts' AND row_key = ?", [populated[-1]]).fetchone()[0]
    sql(db_path, f"DELETE FROM chain WHERE seq >= {cut}")
    for table in ("decisions", "segment_scores", "reviews"):
        sql(db_path, f"DELETE FROM {table} WHERE turn_id = ?", args=(populated[-1],))
    sql(db_path, "DELETE FROM turns WHERE id = ?", args=(populated[-1],))
    result = audit.verify()
    assert not result.ok
    assert result.first_broken.problem == "truncated"
    assert f"the last {last_seq - cut + 1} entries were removed" in result.first_broken.message
    assert "head file" in result.summary()


def test_wiping_every_turn_and_the_chain_is_found(audit, populated, db_path):
    sql(db_path, "DELETE FROM chain", "DELETE FROM decisions", "DELETE FROM segment_scores", "DELETE FROM reviews",
        "DELETE FROM turns", "DELETE FROM conversations", "DELETE FROM policies")
    result = audit.verify()
    assert not result.ok and result.first_broken.problem == "truncated"
    assert "the log was wiped" in result.first_broken.message


def test_a_new_database_in_place_of_the_old_one_is_found(db_path, populated, audit):
    audit.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    with AuditLog(db_path) as fresh:
        log_turn(fresh, "a clean slate")
        result = fresh.verify()
    assert not result.ok and result.first_broken.problem == "replaced"
    assert "the chain was replaced" in result.first_broken.message


def test_the_site_anchor_catches_a_truncation_whose_head_file_was_deleted(site_dir, db_path):
    site_dir.mkdir()
    with AuditLog(db_path) as log:
        for i in range(3):
            log_turn(log, f"question {i}")
        assert log.verify().ok
    cut = chain_length(db_path) - 2
    sql(db_path, f"DELETE FROM chain WHERE seq > {cut}")
    anchor.head_path(db_path).unlink()
    result = verdict(db_path)
    states = {a.name: a.state for a in result.anchors}
    assert states["head file"] == "absent" and states["site folder"] == "checked"
    assert states["syslog"] == "not-read"
    assert not result.ok and "the last 2 entries were removed" in result.first_broken.message
    assert "site folder" in result.first_broken.message


def test_verify_says_which_anchors_it_checked(audit, populated, db_path, capsys):
    result = audit.verify()
    assert [(a.name, a.state) for a in result.anchors] == [("head file", "checked"), ("site folder", "absent")]
    assert result.anchors[0].seq == chain_length(db_path)
    assert "anchors checked: head file (site folder absent)" in result.summary()


def test_head_file_is_private_written_beside_the_db_and_never_lowered(audit, populated, db_path):
    head = anchor.head_path(db_path)
    assert head.parent == db_path.parent and oct(head.stat().st_mode & 0o777) == "0o600"
    recorded = anchor.read_all(db_path)[0]
    anchor.publish(db_path, 1, "0" * 64, recorded.first)   # a late writer with an older head
    assert anchor.read_all(db_path)[0].seq == recorded.seq
    anchor.publish(db_path, 99, "0" * 64, "f" * 64)          # another chain never overwrites the evidence
    assert anchor.read_all(db_path)[0].seq == recorded.seq


def test_a_copy_without_anchors_still_verifies(audit, populated, tmp_path):
    copy = audit.backup(tmp_path / "copy.db", actor="admin")
    with AuditLog(copy, recover=False) as log:
        result = log.verify()
    assert result.ok and result.anchors[0].state == "absent"


# -- evidence tables that were outside the chain ------------------------------------------------------------
@pytest.mark.parametrize("statement, table", [
    ("UPDATE segment_scores SET scores_json = '{\"toxicity\": 0.01}'", "segment_scores"),
    ("DELETE FROM segment_scores WHERE id = 2", "segment_scores"),
    ("UPDATE policies SET policy_json = '{}'", "policies"),
    ("UPDATE conversations SET title = 'nothing happened here'", "conversations"),
    ("UPDATE conversations SET deleted = '2020-01-01T00:00:00.000Z'", "conversations"),
])
def test_evidence_tables_are_chained(audit, populated, db_path, statement, table):
    sql(db_path, statement)
    result = audit.verify()
    assert not result.ok
    assert result.first_broken.table == table and result.first_broken.problem in ("edited", "deleted")


def test_conversation_renames_deletes_and_restores_stay_verifiable(audit, populated):
    cid = audit.get_turn(populated[0])["conversation_id"]
    audit.rename_conversation(cid, "Renamed")
    audit.delete_conversation(cid, actor="ann")
    audit.restore_conversation(cid, actor="ann")
    audit.create_conversation("empty")
    assert audit.verify().ok


def test_forged_evidence_rows_are_unchained(audit, populated, db_path):
    sql(db_path, "INSERT INTO policies (hash, policy_json, created) VALUES ('x', '{}', '2020')")
    assert audit.verify().first_broken.problem == "unchained"


# -- recovery seals only what r1desk wrote ----------------------------------------------------------------
def test_a_forged_running_turn_is_reported_and_never_sealed(audit, populated, db_path):
    sql(db_path, "INSERT INTO turns (id, conversation_id, created, updated, status, prompt_typed, answer,"
                 " writer_pid, writer_host) VALUES ('forged', NULL, '2020-01-01T00:00:00.000Z',"
                 " '2020-01-01T00:00:00.000Z', 'running', 'I never said this', 'nor this', 1, 'elsewhere')")
    assert audit.recover_interrupted(all_running=True) == []
    result = audit.verify()          # a fresh process recovers on open: the same refusal
    assert not result.ok and result.first_broken.problem == "forged"
    assert audit.get_turn("forged")["status"] == "running" and audit.get_turn("forged")["chain"] is None


def test_a_running_turn_with_an_edited_prompt_is_not_sealed(audit, db_path):
    tid = audit.start_turn(prompt_typed="the real prompt")
    from r1desk.storage import auditlog as module
    module._LIVE_TURNS.discard(tid)
    sql(db_path, "UPDATE turns SET prompt_typed = 'a forged prompt' WHERE id = ?", args=(tid,))
    assert audit.recover_interrupted(all_running=True) == []
    result = audit.verify()
    assert result.first_broken.problem == "edited" and "after it started" in result.first_broken.message


def test_a_crashed_turn_started_by_r1desk_is_still_recovered(audit, db_path):
    tid = audit.start_turn(prompt_typed="half way")
    audit.update_partial(tid, thinking="so far", answer="")
    from r1desk.storage import auditlog as module
    module._LIVE_TURNS.discard(tid)
    assert audit.recover_interrupted(all_running=True) == [tid]
    assert audit.get_turn(tid)["status"] == "interrupted" and audit.verify().ok


def test_a_chained_turn_set_back_to_running_is_found_not_a_traceback(audit, populated, db_path):
    audit.close()
    sql(db_path, "UPDATE turns SET status = 'running', writer_host = 'elsewhere', updated = '2020' WHERE id = ?",
        args=(populated[1],))
    result = verdict(db_path)        # opening recovers: it must leave the turn alone
    assert not result.ok and result.first_broken.table == "turns"
    assert "set back to 'running'" in result.first_broken.message


# -- damaged schema: one clear message everywhere -----------------------------------------------------------
@pytest.mark.parametrize("damage", [
    "DROP TABLE chain",
    "ALTER TABLE chain RENAME TO chain_old",
    "ALTER TABLE segment_scores RENAME COLUMN scores_json TO s",
    "DELETE FROM _sqlite_migrations WHERE name = 'm006_hash_chain'",
])
def test_a_damaged_schema_is_one_clear_error(db_path, populated, audit, damage):
    audit.close()
    sql(db_path, damage)
    with pytest.raises(AuditStoreError, match="damaged .*schema changed"):
        AuditLog(db_path)


@pytest.mark.parametrize("command", [["verify"], ["list"], ["show", "x" * 8], ["queue"], ["stats"]])
def test_a_dropped_chain_table_exits_2_in_every_cli_command(db_path, populated, audit, command, capsys):
    from r1desk.cli import main

    audit.close()
    sql(db_path, "DROP TABLE chain")
    assert main(["audit", "--db", str(db_path), *command]) == 2
    err = capsys.readouterr().err
    assert "table chain is missing" in err and "Traceback" not in err


# -- the cases that passed before (kept) --------------------------------------------------------------------
@pytest.mark.parametrize("statement", [
    "UPDATE turns SET answer = 'edited' WHERE prompt_typed = 'question 1'",
    "DELETE FROM decisions WHERE id = 1",
    "UPDATE chain SET seq = seq + 1000 WHERE seq = 3",
])
def test_edits_deletions_and_reordering_still_found(audit, populated, db_path, statement):
    sql(db_path, statement)
    assert not audit.verify().ok
