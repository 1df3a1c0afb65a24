"""`r1desk models guard list|download|import|use|off|remove`: each verb, --json, the admin gate on use/off
(one settings.change event), and bad input as one line on stderr with exit code 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from r1desk import paths
from r1desk.cli import main
from r1desk.core.roles import ADMIN, RoleStore
from r1desk.settings import load_settings
from r1desk.storage.auditlog import AuditLog
from tests.support.guard_hub import OFFER_ID, guard_hub, guard_payload  # noqa: F401

PASS = "correct horse battery staple"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["models", "guard", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("r1desk: error: "), err
    return lines[0]


@pytest.fixture
def admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    RoleStore().set_initial(ADMIN, PASS)
    secret = tmp_path / "secret"
    secret.write_text(PASS + "\n")
    secret.chmod(0o600)
    monkeypatch.setenv("R1DESK_PASSPHRASE_FILE", str(secret))
    return secret


def settings_events() -> list[dict]:
    with AuditLog() as log:
        return log.list_admin_events(action="settings.change")


def test_list_json_shows_the_catalog_with_fit_and_licence(capsys):
    code, out, _ = run(capsys, "list", "--json")
    data = json.loads(out)
    assert code == 0 and data["in_use"] is None and data["installed"] == []
    by_id = {row["id"]: row for row in data["catalog"]}
    assert by_id[OFFER_ID]["downloadable"] and by_id[OFFER_ID]["licence_url"].startswith("https://")
    assert not by_id["qwen3guard-gen-0.6b-q8_0"]["downloadable"]
    assert {row["fit"] for row in data["catalog"]} <= {"fits", "tight", "won't fit"}


def test_list_text_says_when_the_harm_filter_is_not_installed(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "harm filter: not installed — toxicity only" in out
    assert "import a GGUF file" in out and OFFER_ID in out


def test_import_use_list_off_remove(capsys, admin, tiny_qwen3guard_path):
    code, out, _ = run(capsys, "import", str(tiny_qwen3guard_path), "--json")
    imported = json.loads(out)
    assert code == 0 and imported["profile"] == "qwen3guard-gen"
    assert Path(imported["path"]).parent == paths.guard_models_dir()

    code, out, _ = run(capsys, "use", imported["path"], "--threads", "3", "--gpu-layers", "0", "--json")
    result = json.loads(out)
    assert code == 0 and result["harm_model"] == imported["path"] and result["previous"] is None
    assert load_settings().guard.harm_model == imported["path"] and load_settings().guard.harm_threads == 3
    [event] = settings_events()
    assert event["actor"].startswith("admin (")
    assert {c["key"] for c in event["details"]["changes"]} == {"guard.harm_model", "guard.harm_threads"}

    code, out, _ = run(capsys, "list", "--json")
    assert json.loads(out)["installed"][0]["in_use"] is True

    code, _out, err = run(capsys, "remove", imported["path"])
    assert code == 2 and "turn it off first" in one_error_line(err)

    code, out, _ = run(capsys, "off")
    assert code == 0 and "guard.harm_model:" in out and load_settings().guard.harm_model is None
    assert len(settings_events()) == 2
    code, out, _ = run(capsys, "off")
    assert code == 0 and out.strip() == "nothing changed" and len(settings_events()) == 2

    code, out, _ = run(capsys, "remove", imported["path"], "--json")
    assert code == 0 and not Path(imported["path"]).exists()


def test_download_then_use_by_id(capsys, admin, guard_hub, guard_payload):
    code, out, err = run(capsys, "download", OFFER_ID)
    assert code == 0 and "downloaded:" in out and "done" in err
    path = paths.guard_models_dir() / "Llama-Guard-3-1B.Q4_K_M.gguf"
    assert path.read_bytes() == guard_payload
    code, out, _ = run(capsys, "use", OFFER_ID)
    assert code == 0 and load_settings().guard.harm_model == str(path)


def test_a_checksum_mismatch_is_one_line(capsys, guard_hub):
    guard_hub.sha_override["Llama-Guard-3-1B.Q4_K_M.gguf"] = "0" * 64
    code, _out, err = run(capsys, "download", OFFER_ID, "--json")
    assert code == 2 and "corrupt" in one_error_line(err)


def test_use_needs_the_admin_passphrase(capsys, tiny_qwen3guard_path, monkeypatch, tmp_path):
    RoleStore().set_initial(ADMIN, PASS)
    code, _out, err = run(capsys, "use", str(tiny_qwen3guard_path))       # no passphrase source: refused
    assert code == 2 and "passphrase" in one_error_line(err).lower()
    wrong = tmp_path / "wrong"
    wrong.write_text("not the right one\n")
    wrong.chmod(0o600)
    monkeypatch.setenv("R1DESK_PASSPHRASE_FILE", str(wrong))
    code, _out, err = run(capsys, "off")
    assert code == 2 and "passphrase" in one_error_line(err).lower()
    assert load_settings().guard.harm_model is None and settings_events() == []


@pytest.mark.parametrize("argv, message", [
    (("download", "no-such-model"), "no guard model 'no-such-model'"),
    (("download", "qwen3guard-gen-0.6b-q8_0"), "no public GGUF"),
    (("import", "/nonexistent/guard.gguf"), "guard.gguf"),
    (("use", "/nonexistent/guard.gguf"), "guard.gguf"),
    (("use", OFFER_ID), "is not downloaded"),
    (("remove", "/tmp/elsewhere.gguf"), "not in r1desk's guard-models folder"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in one_error_line(err)


def test_a_chat_model_is_refused_by_import_and_use(capsys, admin, tiny_r1_path):
    for verb in ("import", "use"):
        code, _out, err = run(capsys, verb, str(tiny_r1_path))
        assert code == 2 and "not a supported guard model" in one_error_line(err)
    assert list(paths.guard_models_dir().glob("*.gguf")) == [] and settings_events() == []
