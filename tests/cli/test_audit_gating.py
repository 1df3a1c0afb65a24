"""The audit CLI is gated like the desktop views: real processes, a real database, the passphrase through
R1DESK_PASSPHRASE_FD / R1DESK_PASSPHRASE_FILE (stdin is never a terminal here)."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from r1desk.cli import main
from r1desk.core import roles
from r1desk.core.roles import ADMIN, AUDITOR, RoleStore, ScryptParams
from r1desk.storage.auditlog import AuditLog
from tests.storage.conftest import log_turn

REPO = Path(__file__).resolve().parents[2]
AUDITOR_PASS, ADMIN_PASS = "auditor pass 1", "admin pass 123"
FLOOR = ScryptParams(n=2 ** 14, r=8, p=1)   # the child process applies the shipped floor


@pytest.fixture
def logged() -> str:
    with AuditLog() as log:
        return log_turn(log, "hello \x1b]0;pwned\x07 there \x1b[2J", thinking="think \x9b31m", answer="fine")


@pytest.fixture
def protected(logged) -> str:
    store = RoleStore(params=FLOOR)
    store.set_initial(AUDITOR, AUDITOR_PASS)
    store.set_initial(ADMIN, ADMIN_PASS)
    return logged


def r1desk(*argv: str, passphrase: str | None = None, via: str = "fd", tmp: Path | None = None):
    """Run `python -m r1desk ...` in its own process group, stdin not a terminal."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("R1DESK_PASSPHRASE_FD", None)
    env.pop("R1DESK_PASSPHRASE_FILE", None)
    pass_fds: tuple[int, ...] = ()
    r = None
    if passphrase is not None and via == "fd":
        r, w = os.pipe()
        os.write(w, passphrase.encode() + b"\n")
        os.close(w)
        env["R1DESK_PASSPHRASE_FD"] = str(r)
        pass_fds = (r,)
    elif passphrase is not None:
        secret = (tmp or Path.cwd()) / "secret"
        secret.write_text(passphrase + "\n")
        secret.chmod(0o600)
        env["R1DESK_PASSPHRASE_FILE"] = str(secret)
    proc = subprocess.Popen([sys.executable, "-m", "r1desk", *argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            pass_fds=pass_fds, start_new_session=True)
    if r is not None:
        os.close(r)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode, out, err


def test_no_passphrase_configured_means_single_user_open(logged, capsys):
    assert main(["audit", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == logged


def test_every_auditor_action_needs_a_passphrase(protected, tmp_path):
    for argv in (["list"], ["show", protected], ["search", "hello"], ["queue"], ["stats"],
                 ["export", "--format", "jsonl"], ["verify"], ["backup", str(tmp_path / "b.db")],
                 ["review", protected, "--label", "ok"], ["prune", "--older-than", "0"]):
        code, out, err = r1desk("audit", *argv)
        assert code == 2, (argv, out, err)
        assert out == "" and "Traceback" not in err and err.count("\n") == 1, (argv, err)
        assert "passphrase" in err, err
    assert not (tmp_path / "b.db").exists()
    with AuditLog() as log:
        assert log.get_turn(protected)["reviews"] == [] and log.list_turns()


def test_auditor_passphrase_by_fd_or_file_and_the_reviewer_is_the_role(protected, tmp_path):
    code, out, err = r1desk("audit", "list", "--json", passphrase=AUDITOR_PASS)
    assert code == 0, err
    assert json.loads(out)[0]["id"] == protected
    code, out, err = r1desk("audit", "review", protected, "--label", "ok", passphrase=AUDITOR_PASS, via="file",
                            tmp=tmp_path)
    assert code == 0, err
    code, out, err = r1desk("audit", "show", protected, "--json", passphrase=ADMIN_PASS)   # admin may audit too
    assert code == 0, err
    reviewer = json.loads(out)["reviews"][0]["reviewer"]
    assert reviewer.startswith("auditor (") and reviewer.endswith(")")
    with AuditLog() as log:
        unlocks = log.list_admin_events(action="role.unlock")
    assert {e["details"]["role"] for e in unlocks} == {AUDITOR, ADMIN}


def test_reviewer_cannot_be_given_as_free_text(protected, capsys):
    with pytest.raises(SystemExit) as info:
        main(["audit", "review", protected, "--label", "ok", "--reviewer", "any name"])
    assert info.value.code == 2


def test_wrong_passphrase_is_one_line_exit_2_and_logged(protected):
    code, out, err = r1desk("audit", "list", passphrase="not the one")
    assert code == 2 and out == "" and err.startswith("r1desk: error: Wrong passphrase") and "Traceback" not in err
    with AuditLog() as log:
        failed = log.list_admin_events(action="role.unlock_failed")
    assert {e["details"]["role"] for e in failed} == {AUDITOR, ADMIN}   # a guess counts against both


def test_prune_is_admin_only_chained_and_reported_by_verify(protected):
    code, _, err = r1desk("audit", "prune", "--older-than", "0", passphrase=AUDITOR_PASS)
    assert code == 2 and "admin" in err.lower()
    code, out, err = r1desk("audit", "prune", "--older-than", "0", "--json", passphrase=ADMIN_PASS)
    assert code == 0, err
    assert json.loads(out)["turns"] == 1
    code, out, err = r1desk("audit", "verify", passphrase=AUDITOR_PASS)
    assert code == 0, out + err
    assert "pruned: 1 turns" in out and "by admin (" in out
    code, out, err = r1desk("audit", "verify", "--json", passphrase=AUDITOR_PASS)
    prunes = json.loads(out)["prunes"]
    assert len(prunes) == 1 and prunes[0]["actor"].startswith("admin (") and prunes[0]["turns"] == 1
    with AuditLog() as log:   # the prune event itself is a chained admin event
        event = log.list_admin_events(action="audit.prune")[0]
        assert log.verify().ok
    assert event["actor"].startswith("admin (")


def test_clearing_the_failure_list_does_not_lift_the_lockout(protected, monkeypatch, tmp_path, capsys):
    secret = tmp_path / "wrong"
    secret.write_text("wrong guess\n")
    secret.chmod(0o600)
    monkeypatch.setenv("R1DESK_PASSPHRASE_FILE", str(secret))
    monkeypatch.setattr(roles, "BASE_DELAY_S", 0.0)     # no back-off waits before the lockout (no sleeping)
    for _ in range(roles.MAX_FAILURES):
        assert main(["audit", "list"]) == 2
    assert "locked" in capsys.readouterr().err.splitlines()[-1]
    path = roles.RoleStore().path
    data = json.loads(path.read_text())
    assert data["failures"]
    data["failures"] = {}                       # the user "resets" the limiter in the file they own
    path.write_text(json.dumps(data))
    secret.write_text(AUDITOR_PASS + "\n")
    assert main(["audit", "list"]) == 2, "the chained audit log still records the lockout"
    assert "locked" in capsys.readouterr().err
    monkeypatch.setattr(roles, "LOCKOUT_S", 0.0)        # the lockout has run out
    assert main(["audit", "list"]) == 0


def test_passphrase_file_readable_by_others_is_refused(protected, tmp_path, monkeypatch, capsys):
    secret = tmp_path / "secret"
    secret.write_text(AUDITOR_PASS)
    secret.chmod(0o644)
    monkeypatch.setenv("R1DESK_PASSPHRASE_FILE", str(secret))
    assert main(["audit", "list"]) == 2
    assert "other users" in capsys.readouterr().err


def test_terminal_output_shows_escape_sequences(logged, capsys):
    for argv in (["list"], ["search", "hello"], ["show", logged]):
        assert main(["audit", *argv]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out, argv
        assert "\\x1b" in out, argv
    assert main(["audit", "show", logged, "--json"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x9b" not in out
    assert json.loads(out)["prompt_typed"].startswith("hello \x1b]0;pwned")


def test_exports_are_private(logged, tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["audit", "export", "--format", "csv", "--out", str(tmp_path / "x.csv")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.csv").stat().st_mode) == 0o600
