"""Several r1desk processes on one audit log lose nothing (the data-loss blocker of issue 10).

The app process keeps writing turns and reviews (``tests/support/app_writer.py`` opens the log as
the app does: two ``AuditLog`` objects in one process) while other processes run every ``audit``
verb and ``chat --db`` on the same file. Before the fix, the second ``AuditLog``'s raw open/close
of the file dropped the app's POSIX locks; the next CLI process to close checkpointed and deleted
the WAL under the app, and the app's later writes vanished while ``verify`` still said OK.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, R1DESK_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``r1desk ARGS`` in its own process group; the group is killed if it overruns."""
    proc = subprocess.Popen([sys.executable, "-m", "r1desk", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


class AppWriter:
    """The app's write path in a child process, driven line by line."""

    def __init__(self, db: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "support" / "app_writer.py"), str(db)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, start_new_session=True)
        self.turns: list[str] = []
        self.reviews: list[str] = []

    def send(self, command: str, until: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            kind, _, value = line.strip().partition(" ")
            if kind == "turn":
                self.turns.append(value)
            elif kind == "review":
                self.reviews.append(value)
            if kind == until:
                return
        raise AssertionError(f"the writer stopped: {self.proc.stderr.read() if self.proc.stderr else ''}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextmanager
def app_writer(db: Path, env: dict[str, str]) -> Iterator[AppWriter]:
    writer = AppWriter(db, env)
    try:
        yield writer
    finally:
        writer.kill()


def _verbs(db: Path, tmp: Path, turn_id: str, n: int) -> list[list[str]]:
    """Every `audit` verb (read, review, export, backup, prune that removes nothing) on ``db``."""
    d = ["--db", str(db)]
    return [["audit", "list", *d], ["audit", "show", turn_id, *d], ["audit", "search", "four", *d],
            ["audit", "queue", *d], ["audit", "stats", *d], ["audit", "verify", *d],
            ["audit", "export", "--format", "jsonl", "--out", str(tmp / f"x{n}.jsonl"), *d],
            ["audit", "export", "--format", "csv", "--out", str(tmp / f"x{n}.csv"), *d],
            ["audit", "backup", str(tmp / f"b{n}.db"), *d],
            ["audit", "review", turn_id, "--label", "ok", *d],
            ["audit", "prune", "--older-than", "3650", *d]]


def _check_everything_stored(db: Path, writer: AppWriter, env: dict[str, str]) -> None:
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = dict(con.execute("SELECT id, status FROM turns"))
        missing = [t for t in writer.turns if t not in rows]
        assert not missing, f"{len(missing)} of {len(writer.turns)} turns written by the app were lost"
        assert {rows[t] for t in writer.turns} == {"done"}
        reviewed = {r[0] for r in con.execute("SELECT turn_id FROM reviews WHERE reviewer = 'auditor'")}
        assert set(writer.reviews) <= reviewed, "reviews saved by the app were lost"
    finally:
        con.close()
    verify = run_cli(["audit", "verify", "--db", str(db)], env)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_cli_verbs_between_app_writes_lose_nothing(tmp_path):
    env = _env(tmp_path / "home")
    db = tmp_path / "audit.db"
    with app_writer(db, env) as writer:
        writer.send("turn", "turn")
        for n, verb in enumerate(_verbs(db, tmp_path, writer.turns[0], 0)):
            result = run_cli(verb, env)
            assert result.returncode == 0, f"{verb}: {result.stderr}"
            writer.send("turn", "turn")          # the app writes right after another process closed
            writer.send("review", "review")
        writer.send("quit", "bye")
    assert len(writer.turns) == 12
    _check_everything_stored(db, writer, env)


def test_app_writes_while_cli_and_chat_run_concurrently(tmp_path, tiny_r1_path):
    env = _env(tmp_path / "home")
    db = tmp_path / "audit.db"
    failures: list[str] = []
    with app_writer(db, env) as writer:
        writer.send("turn", "turn")
        verbs = _verbs(db, tmp_path, writer.turns[0], 1)
        verbs.append(["chat", "-m", str(tiny_r1_path), "-p", "Hi", "--max-tokens", "16", "--language", "off",
                      "--db", str(db)])
        done = threading.Event()

        def others() -> None:                    # bounded: each verb once, then chat again, while the app writes
            for verb in verbs + verbs[-1:]:
                result = run_cli(verb, env)
                if result.returncode not in (0, 3):
                    failures.append(f"{verb}: exit {result.returncode}: {result.stderr[-500:]}")
            done.set()

        thread = threading.Thread(target=others)
        thread.start()
        try:
            rounds = 0
            while not done.is_set() and rounds < 200:
                writer.send("burst 3", "burst-done")
                rounds += 1
        finally:
            thread.join()
        writer.send("burst 3", "burst-done")     # and after the last other process closed
        writer.send("quit", "bye")
    assert not failures, failures
    _check_everything_stored(db, writer, env)
    con = sqlite3.connect(db)
    try:
        chats = con.execute("SELECT count(*) FROM turns WHERE prompt_typed = 'Hi'").fetchone()[0]
    finally:
        con.close()
    assert chats == 2
