"""`r1desk audit ...` driven through r1desk.cli.main, plus one real subprocess run."""
from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from r1desk import paths
from r1desk.cli import main
from r1desk.storage.auditlog import AuditLog
from tests.storage.conftest import decision, log_turn

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def turns() -> dict[str, str]:
    with AuditLog() as log:  # the profile database (R1DESK_HOME points at a temp folder)
        calm = log_turn(log, "How do tides work?", thinking="The moon pulls water.", answer="Gravity of the moon.")
        flagged = log_turn(log, "Insult my coworker", thinking="That would be rude, idiot", answer="No.",
                           decisions=[decision("thinking", "flag", label="insult")])
        blocked = log_turn(log, "Something nasty", answer="[blocked]", finish_reason="blocked",
                           decisions=[decision("answer", "block")])
    return {"calm": calm, "flagged": flagged, "blocked": blocked}


def run_json(capsys, *argv: str):
    assert main(["audit", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_list_and_search(capsys, turns):
    assert [r["id"] for r in run_json(capsys, "list")] == [turns["blocked"], turns["flagged"], turns["calm"]]
    assert [r["id"] for r in run_json(capsys, "search", "moon")] == [turns["calm"]]
    assert [r["id"] for r in run_json(capsys, "search", "moon OR rude", "--channel", "thinking")] == [turns["flagged"]]
    assert run_json(capsys, "search", 'moon" AND (') == []
    assert main(["audit", "list"]) == 0
    out = capsys.readouterr().out
    assert turns["calm"] in out and "BLOCK" in out and "How do tides work?" in out
    assert main(["audit", "search", "moon"]) == 0
    assert "[moon]" in capsys.readouterr().out.lower()


def test_show(capsys, turns):
    data = run_json(capsys, "show", turns["flagged"][:18])
    assert data["id"] == turns["flagged"] and data["decisions"][0]["label"] == "insult"
    assert main(["audit", "show", turns["flagged"]]) == 0
    out = capsys.readouterr().out
    assert "--- THINKING ---" in out and "insult" in out and "→ flag" in out


def test_review_queue_and_stats(capsys, turns):
    assert [r["id"] for r in run_json(capsys, "queue")] == [turns["blocked"], turns["flagged"], turns["calm"]]
    result = run_json(capsys, "review", turns["blocked"], "--label", "harmful", "--note", "nasty")
    assert result == {"turn_id": turns["blocked"], "review_id": 1, "label": "harmful"}
    assert [r["id"] for r in run_json(capsys, "queue")] == [turns["flagged"], turns["calm"]]
    with AuditLog() as log:
        log_turn(log, "after the review", decisions=[decision("answer", "redact")])
    stats = run_json(capsys, "stats")
    assert stats["turns"] == 1 and stats["thinking_vs_answer"] == {"thinking": 0, "answer": 1}
    assert main(["audit", "stats"]) == 0
    assert "unreviewed:" in capsys.readouterr().out


def test_review_with_a_bad_label_or_id(capsys, turns):
    with pytest.raises(SystemExit) as info:
        main(["audit", "review", turns["calm"], "--label", "great"])
    assert info.value.code == 2
    assert main(["audit", "review", "feedface00", "--label", "ok"]) == 2
    assert "No turn with id" in capsys.readouterr().err


def test_export_formats(capsys, turns, tmp_path):
    assert main(["audit", "review", turns["calm"], "--label", "ok", "--corrected-answer", "The moon's gravity."]) == 0
    capsys.readouterr()
    assert main(["audit", "export", "--format", "jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["messages"][0]["content"] == "How do tides work?"
    out = tmp_path / "turns.csv"
    assert main(["audit", "export", "--format", "csv", "--out", str(out), "--action", "block"]) == 0
    assert [r["id"] for r in csv.DictReader(io.StringIO(out.read_text()))] == [turns["blocked"]]
    sft, pairs = tmp_path / "sft.jsonl", tmp_path / "pairs.jsonl"
    assert main(["audit", "export", "--format", "sft", "--out", str(sft), "--pairs-out", str(pairs)]) == 0
    assert json.loads(sft.read_text())["messages"][1]["content"] == "Gravity of the moon."
    assert json.loads(pairs.read_text())["chosen"][0]["content"] == "The moon's gravity."
    capsys.readouterr()
    assert main(["audit", "export", "--format", "csv", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    with AuditLog() as log:
        assert len(log.list_admin_events(action="audit.export")) == 3


def test_a_failed_export_leaves_no_file_behind(capsys, turns, tmp_path):
    out, pairs = tmp_path / "bad-date.jsonl", tmp_path / "pairs.jsonl"
    assert main(["audit", "export", "--format", "jsonl", "--out", str(out), "--from", "yesterday"]) == 2
    assert "Not a date" in capsys.readouterr().err
    assert not out.exists(), "a retry with a fixed date must not find an empty file in the way"
    pairs.write_text("keep me")
    assert main(["audit", "export", "--format", "sft", "--out", str(out), "--pairs-out", str(pairs)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not out.exists() and pairs.read_text() == "keep me"
    assert main(["audit", "export", "--format", "jsonl", "--out", str(out), "--from", "2000-01-01"]) == 0
    assert len(out.read_text().splitlines()) == 3


def test_verify_ok_then_broken_exits_1(capsys, turns):
    assert main(["audit", "verify"]) == 0
    assert capsys.readouterr().out.startswith("OK")
    conn = sqlite3.connect(paths.audit_db_path())
    with conn:
        conn.execute("UPDATE turns SET answer_shown = 'rewritten' WHERE id = ?", [turns["flagged"]])
    conn.close()
    assert main(["audit", "verify"]) == 1
    assert f"turns row {turns['flagged']} was edited" in capsys.readouterr().out
    assert main(["audit", "verify", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["first_broken"]["problem"] == "edited"


def test_backup_prune_and_db_override(capsys, turns, tmp_path):
    copy = tmp_path / "copy.db"
    assert main(["audit", "backup", str(copy)]) == 0
    assert copy.exists()
    assert main(["audit", "--db", str(copy), "verify"]) == 0
    assert main(["audit", "prune", "--older-than", "0", "--json"]) == 0
    capsys.readouterr()
    assert run_json(capsys, "list") == []
    assert len(run_json(capsys, "list", "--db", str(copy))) == 3, "--db works after the action too"
    assert main(["audit", "verify"]) == 0
    assert main(["audit", "prune", "--older-than", "-3"]) == 2
    assert main(["audit", "--db", str(tmp_path / "missing.db"), "list"]) == 2
    assert "No audit database" in capsys.readouterr().err


def test_corrupt_db_is_a_one_line_error(capsys, tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 100)
    assert main(["audit", "--db", str(bad), "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("r1desk: error: The audit database") and "Traceback" not in err


def test_subprocess_verify(turns, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "r1desk", "audit", "verify", "--json"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True
    conn = sqlite3.connect(paths.audit_db_path())
    with conn:
        conn.execute("DELETE FROM decisions")
    conn.close()
    done = subprocess.run([sys.executable, "-m", "r1desk", "audit", "verify"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 1 and "was deleted" in done.stdout
