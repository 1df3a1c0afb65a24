"""`r1desk classify` through the real CLI entry point and the real (tiny) Detoxify checkpoint."""
from __future__ import annotations

import io
import json

from r1desk.cli import main


def test_no_weights_is_a_clear_message_and_exit_2(capsys):
    assert main(["classify", "--text", "hello"]) == 2
    err = capsys.readouterr().err
    assert "toxicity filter unavailable" in err and "--import-weights original" in err
    assert "Traceback" not in err


def test_import_then_status(capsys, tiny_detoxify_files):
    ckpt, hf = tiny_detoxify_files
    assert main(["classify", "--import-weights", "original", str(ckpt), str(hf)]) == 0
    assert "installed" in capsys.readouterr().out
    assert main(["classify", "--status", "--json"]) == 0
    rows = {r["model_type"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["original"]["installed"] and not rows["unbiased"]["installed"]


def test_import_bad_type_exits_2(capsys, tiny_detoxify_files):
    ckpt, hf = tiny_detoxify_files
    assert main(["classify", "--import-weights", "giant", str(ckpt), str(hf)]) == 2
    assert "unknown Detoxify model type" in capsys.readouterr().err


def test_scores_and_decision_as_json(capsys, installed_tiny_detoxify):
    assert main(["classify", "--json", "--channel", "thinking", "--text", "One sentence. Another one."]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "detoxify-original-onnx-int8" and data["channel"] == "thinking"   # the default runtime
    assert set(data["scores"]) >= {"toxicity", "threat"}
    assert [s["text"] for s in data["segments"]] == ["One sentence.", "Another one."]
    assert data["action"] in ("allow", "flag", "redact", "block")


def test_policy_from_settings_decides(capsys, installed_tiny_detoxify):
    from r1desk import settings as S

    s = S.Settings()
    for label in s.guard.rules["answer"]:
        s.guard.rules["answer"][label] = S.RuleSetting(0.0, "flag")
    s.guard.rules["answer"]["threat"] = S.RuleSetting(0.0, "block")
    S.save_settings(s)
    assert main(["classify", "--text", "Anything at all."]) == 0
    out = capsys.readouterr().out
    assert "decision: block" in out and "reached" in out


def test_reads_stdin_and_rejects_empty_input(capsys, monkeypatch, installed_tiny_detoxify):
    monkeypatch.setattr("sys.stdin", io.StringIO("from standard input."))
    assert main(["classify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["segments"][0]["text"] == "from standard input."
    monkeypatch.setattr("sys.stdin", io.StringIO("   "))
    assert main(["classify"]) == 2
    assert "nothing to classify" in capsys.readouterr().err


def test_invalid_settings_exit_2(capsys, installed_tiny_detoxify):
    from r1desk import paths

    paths.settings_path().write_text('{"guard": {"rules": {"answer": {"threat": {"threshold": 9}}}}}')
    assert main(["classify", "--text", "x"]) == 2
    err = capsys.readouterr().err
    assert "guard.rules.answer.threat.threshold" in err and "9" in err
