"""`r1desk chat` on the real test models: streaming output, --json, stdin prompts, exit codes."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from r1desk import paths
from r1desk.cli import main
from tests.support.scorers import ScriptedScorer

pytestmark = pytest.mark.slow


def test_json_output_has_the_documented_fields(tiny_r1_path, capsys):
    code = main(["chat", "--model", str(tiny_r1_path), "--prompt", "What is 2+2?", "--max-tokens", "12",
                 "--seed", "1", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("model", "thinking", "answer", "finish_reason", "usage", "timings", "settings", "decisions",
                "language", "turn_id", "segment_scores"):
        assert key in data
    assert data["model"]["is_r1"] is True and len(data["model"]["sha256"]) == 64
    assert data["usage"]["completion_tokens"] == 12 and data["finish_reason"] == "length"
    assert data["settings"]["generation"]["temperature"] == 0.6         # the R1 recommended default


def test_streams_marked_thinking_and_prints_the_turn_id(tiny_r1_path, capsys):
    assert main(["chat", "-m", str(tiny_r1_path), "-p", "Hello", "--max-tokens", "6", "--language", "off"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("[thinking]\n")
    assert "[turn " in err
    # out of tokens: one notice, pointing to what the command line can do (the app offers Continue)
    assert err.count("ran out of tokens") == 1 and "higher --max-tokens" in err and "Continue" not in err


def test_prompt_from_stdin(smollm2_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Name a fruit."))
    assert main(["chat", "-m", str(smollm2_path), "--prompt", "-", "--max-tokens", "8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["thinking"] == "" and data["model"]["is_r1"] is False
    from r1desk.storage.auditlog import AuditLog

    log = AuditLog()
    assert log.get_turn(data["turn_id"])["prompt_typed"] == "Name a fruit."
    log.close()


def test_empty_prompt_is_a_clear_error(tiny_r1_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("   \n"))
    assert main(["chat", "-m", str(tiny_r1_path), "--prompt", "-"]) == 2
    assert "prompt is empty" in capsys.readouterr().err


def test_blocked_turn_exits_3(tiny_r1_path, capsys, monkeypatch):
    from r1desk.core.guard.classifier import REGISTRY
    from r1desk.core.guard.toxicity import ToxicityClassifier

    with REGISTRY.overridden(ToxicityClassifier(ScriptedScorer({"FORBIDDEN": {"threat": 0.99}}))):
        assert main(["chat", "-m", str(tiny_r1_path), "-p", "say FORBIDDEN things", "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["blocked"] is True and data["finish_reason"] == "blocked" and data["answer"] == ""


def test_invalid_settings_are_reported_and_the_last_valid_ones_used(tiny_r1_path, capsys):
    paths.settings_path().write_text('{"schema_version": 1, "generation": {"temperature": "hot"}}')
    assert main(["chat", "-m", str(tiny_r1_path), "-p", "Hi", "--max-tokens", "3", "--json"]) == 0
    captured = capsys.readouterr()
    assert "settings.json" in captured.err and "generation.temperature" in captured.err and "hot" in captured.err
    assert json.loads(captured.out)["settings"]["generation"]["temperature"] == 0.6


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "wrong_magic", "truncated"])
def test_bad_model_file_is_one_line_and_exit_2(bad_model_files, case, capsys):
    assert main(["chat", "-m", str(bad_model_files[case]), "-p", "hi"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("r1desk: error:") and "\n" not in err


def test_subprocess_run_has_no_traceback(smollm2_path, tmp_path):
    env = dict(os.environ, R1DESK_HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "r1desk", "chat", "-m", str(smollm2_path), "-p", "Hi",
                           "--max-tokens", "5", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["usage"]["completion_tokens"] <= 5
