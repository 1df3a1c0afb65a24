"""A full disk loses no audit entry and is never mistaken for a damaged database.

The disk is real: a small tmpfs mounted for the test (root only; CI runs as root), filled with a
ballast file until writes fail with ENOSPC, then emptied again.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from r1desk.errors import AuditStoreError
from r1desk.storage.auditlog import AuditLog
from r1desk.storage.connection import check_file
from r1desk.storage.pending import PendingQueue, SpillError

needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or sys.platform != "linux",
                                reason="mounting a small tmpfs needs root on Linux")


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write ballast until the disk is full; returns the ballast file (delete it to free the space)."""
    ballast = disk / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 64, 1):      # down to the last free byte
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                continue
    finally:
        os.close(fd)
    return ballast


def _turn(writer: PendingQueue, text: str) -> str:
    tid = writer.start_turn(prompt_typed=text, model={"name": "m"})
    writer.update_partial(tid, thinking="thinking " * 50, answer=text * 20)
    writer.finish_turn(tid, result={"thinking": "thinking " * 50, "answer": text * 20, "finish_reason": "stop"})
    return tid


@needs_root
def test_a_turn_shown_while_the_disk_is_full_is_kept_and_stored_once_space_is_free(small_disk, tmp_path):
    db = small_disk / "audit.db"
    audit = AuditLog(db, busy_timeout=0.2)
    writer = PendingQueue(audit)
    first = _turn(writer, "before ")
    ballast = fill(small_disk)
    second = _turn(writer, "while full " * 200)       # every write of it is refused: kept in memory, in order
    assert writer.pending >= 2
    assert "full" in str(writer.last_error).lower()
    spilled = writer.close()                           # beside the database is full too: the next place takes it
    assert spilled is not None and spilled.parent != small_disk
    assert not list(small_disk.glob("*.tmp")), "a failed spill left a half-written file"
    audit.close()

    ballast.unlink()                                   # space is free again
    check_file(db)                                     # not "damaged"
    reopened = AuditLog(db)
    try:
        recovered = PendingQueue(reopened)
        assert recovered.recover() >= 2
        assert not recovered.spill_files()
        turn = reopened.get_turn(second)
        assert turn["status"] == "done" and turn["answer"].startswith("while full")
        assert reopened.get_turn(first)["status"] == "done"
        assert reopened.verify().ok
    finally:
        reopened.close()


@needs_root
def test_when_no_disk_takes_the_spill_the_writes_stay_in_memory_with_one_clear_message(small_disk, monkeypatch):
    db = small_disk / "audit.db"
    audit = AuditLog(db, busy_timeout=0.2)
    writer = PendingQueue(audit)
    ballast = fill(small_disk)
    tid = _turn(writer, "kept ")
    pending = writer.pending
    monkeypatch.setattr(writer, "spill_dirs", lambda: [(small_disk, db.name)])   # every place is full
    with pytest.raises(SpillError) as raised:
        writer.close()
    message = str(raised.value)
    assert f"{pending} audit log entries could not be saved" in message and "free some disk space" in message
    assert writer.pending == pending                   # nothing dropped
    assert not list(small_disk.glob("*.pending-*"))    # written whole or not at all
    ballast.unlink()
    assert writer.close() is None                      # retried: stored in the database itself
    assert audit.get_turn(tid)["status"] == "done"
    audit.close()


def test_a_short_main_file_whose_pages_are_in_the_wal_is_not_called_damaged(tmp_path):
    db = tmp_path / "audit.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x)")
    con.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 50)
    con.commit()
    con.close()
    size = db.stat().st_size
    os.truncate(db, size // 2)                         # shorter than its header says
    with pytest.raises(AuditStoreError, match="truncated"):
        check_file(db)
    Path(f"{db}-wal").write_bytes(b"\0" * 4096)        # a checkpoint cut short: the WAL still has frames
    check_file(db)                                     # SQLite decides, not the size check
