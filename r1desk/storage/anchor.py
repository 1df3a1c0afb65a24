"""Anchors: the chain head kept outside the database, so that removing its last entries (or all of
them) is evident — the chain alone cannot show what is no longer there.

After each commit that extends the chain, ``publish`` writes the head (seq, hash, and the hash of
entry 1, which names the chain) to:

- the **head file** ``<db>.head`` beside the database: JSON, written to a temporary file and moved
  into place (``os.replace``), mode 0600. It only ever opens its own files, never the database or
  its -wal/-shm files (STYLE §17). It is never lowered, nor overwritten by another chain, so a
  wiped or replaced log stays visible until an admin moves the old head file aside on purpose.
- the **site folder** ``SITE_ANCHOR_DIR`` when it exists: a system path (not moved by
  ``R1DESK_HOME``) that an administrator creates so that users may append but not rewrite (e.g.
  ``chattr +a``, or a WORM share). One JSON-lines file per user, database path and chain.
- **syslog** (ident ``r1desk-audit``) when the site folder exists; verify cannot read it back and
  says so (compare with ``journalctl -t r1desk-audit``).

Written without fsync, like the WAL under ``synchronous=NORMAL``: after a power cut an anchor can be
behind the database (harmless) but is never ahead of what the database had committed.
``verify`` reads every anchor *before* its snapshot of the chain, so a concurrent commit cannot make
an anchor look ahead of the chain.
"""
from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypedDict

from sqlite_utils import Database

from r1desk.fileutil import atomic_write_text
from r1desk.storage.chain import AnchorReport, BrokenLink

log = logging.getLogger("r1desk.audit")

SYSLOG_IDENT = "r1desk-audit"
_TAIL_BYTES = 8192


def _default_site_dir() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "r1desk" / "anchors"
    if sys.platform == "darwin":
        return Path("/Library/Application Support/r1desk/anchors")
    return Path("/var/lib/r1desk/anchors")


SITE_ANCHOR_DIR: Path | None = _default_site_dir()   # used only when it exists; tests point it elsewhere


@dataclass(frozen=True)
class Reading:
    """What one anchor recorded (``seq`` None when it could not be read)."""
    name: str
    location: str
    state: str                       # checked | absent | unreadable | not-read
    seq: int | None = None
    hash: str | None = None
    first: str | None = None
    time: str | None = None
    detail: str = ""


def head_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".head")


def _site_dir() -> Path | None:
    site = SITE_ANCHOR_DIR
    return site if site is not None and site.is_dir() else None


def _site_prefix(db_path: Path) -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    digest = hashlib.sha256(os.path.realpath(db_path).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{''.join(c if c.isalnum() else '_' for c in user)}-{digest}-"


class HeadRecord(TypedDict):
    """One anchor record of the chain head, as written to the head file and the site folder (JSON)."""
    seq: int
    hash: str
    first: str
    time: str


def _record(seq: int, hash_: str, first: str) -> HeadRecord:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"seq": seq, "hash": hash_, "first": first, "time": stamp}


# -- writing ----------------------------------------------------------------------------------------
def publish(db_path: Path, seq: int, hash_: str, first: str) -> None:
    """Record the chain head everywhere it can; an anchor that cannot be written is logged, not fatal
    (the commit it follows has already happened)."""
    record = _record(seq, hash_, first)
    try:
        _write_head_file(head_path(db_path), record)
    except OSError as exc:
        log.warning("could not write the audit head file %s: %s", head_path(db_path), exc)
    site = _site_dir()
    if site is None:
        return
    target = site / f"{_site_prefix(db_path)}{first[:16]}.jsonl"
    try:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(record) + "\n").encode())
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("could not append to the site audit anchor %s: %s", target, exc)
    with contextlib.suppress(ImportError, OSError):
        import syslog
        syslog.openlog(SYSLOG_IDENT, 0, syslog.LOG_USER)
        syslog.syslog(syslog.LOG_INFO, f"audit head db={os.path.realpath(db_path)} seq={seq} hash={hash_} "
                                       f"first={first}")


def _write_head_file(path: Path, record: HeadRecord) -> None:
    current = _read_head_file(path)
    if current.state == "checked":
        if current.first != record["first"]:
            log.warning("audit head file %s belongs to another chain (the log was replaced): kept as evidence", path)
            return
        if (current.seq or 0) >= record["seq"]:
            return   # another process already anchored a later head
    atomic_write_text(path, json.dumps(record), mode=0o600, fsync=False)


# -- reading ----------------------------------------------------------------------------------------
def _parse(text: str) -> tuple[int, str, str, str | None] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    seq, hash_, first = data.get("seq"), data.get("hash"), data.get("first")
    if not isinstance(seq, int) or seq < 1 or not isinstance(hash_, str) or not isinstance(first, str):
        return None
    time = data.get("time")
    return seq, hash_, first, time if isinstance(time, str) else None


def _read_head_file(path: Path) -> Reading:
    name, location = "head file", str(path)
    try:
        with open(path, "rb") as handle:   # the head file only: never the database or its -wal/-shm
            text = handle.read(4096).decode("utf-8", "replace")
    except FileNotFoundError:
        return Reading(name, location, "absent")
    except OSError as exc:
        return Reading(name, location, "unreadable", detail=exc.strerror or str(exc))
    parsed = _parse(text)
    if parsed is None:
        return Reading(name, location, "unreadable", detail="not a head record")
    return Reading(name, location, "checked", *parsed)


def _read_site_file(path: Path) -> Reading:
    name, location = "site folder", str(path)
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _TAIL_BYTES))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError as exc:
        return Reading(name, location, "unreadable", detail=exc.strerror or str(exc))
    records = [r for r in (_parse(line) for line in lines) if r is not None]
    if not records:
        return Reading(name, location, "unreadable", detail="no head record")
    return Reading(name, location, "checked", *max(records, key=lambda r: r[0]))


def read_all(db_path: Path) -> list[Reading]:
    """Every anchor of the database at ``db_path``: read before verify takes its snapshot."""
    readings = [_read_head_file(head_path(db_path))]
    site = _site_dir()
    if site is None:
        where = str(SITE_ANCHOR_DIR) if SITE_ANCHOR_DIR is not None else "not configured"
        readings.append(Reading("site folder", where, "absent", detail="not set up on this machine"))
        return readings
    try:
        files = sorted(site.glob(_site_prefix(db_path) + "*.jsonl"))
    except OSError as exc:
        readings.append(Reading("site folder", str(site), "unreadable", detail=exc.strerror or str(exc)))
        files = []
    if not files and readings[-1].name != "site folder":
        readings.append(Reading("site folder", str(site), "absent", detail="no record for this database yet"))
    readings.extend(_read_site_file(f) for f in files)
    readings.append(Reading("syslog", SYSLOG_IDENT, "not-read",
                            detail=f"written, not read back: compare with journalctl -t {SYSLOG_IDENT}"))
    return readings


# -- comparing --------------------------------------------------------------------------------------
def compare(db: Database, readings: list[Reading]) -> tuple[list[AnchorReport], list[BrokenLink]]:
    """Each readable anchor against the chain (in the caller's read snapshot)."""
    reports: list[AnchorReport] = []
    problems: list[BrokenLink] = []
    last = db.execute("SELECT max(seq) FROM chain").fetchone()[0] or 0
    first_row = db.execute("SELECT hash FROM chain WHERE seq = 1").fetchone()
    first = first_row[0] if first_row else None
    for r in readings:
        reports.append(AnchorReport(r.name, r.location, r.state, r.seq, r.detail))
        if r.state != "checked" or r.seq is None:
            continue
        where = f"the {r.name} {r.location}" + (f" (written {r.time})" if r.time else "")
        at = db.execute("SELECT hash FROM chain WHERE seq = ?", [r.seq]).fetchone()
        if first is not None and first != r.first:
            problems.append(BrokenLink(1, "chain", "1", "replaced",
                                       f"the chain was replaced: its first entry is not the one {where} recorded "
                                       f"(a chain of {r.seq} entries)"))
        elif at is None and last == 0:
            problems.append(BrokenLink(1, "chain", "1", "truncated",
                                       f"the chain is empty, but {where} recorded {r.seq} entries: "
                                       f"the log was wiped (all {r.seq} entries were removed)"))
        elif at is None:
            gone = r.seq - last
            problems.append(BrokenLink(last + 1, "chain", str(last + 1), "truncated",
                                       f"the chain ends at entry {last}, but {where} recorded entry {r.seq}: "
                                       f"the last {gone} {'entry was' if gone == 1 else 'entries were'} removed"))
        elif at[0] != r.hash:
            problems.append(BrokenLink(r.seq, "chain", str(r.seq), "replaced",
                                       f"the chain was replaced: entry {r.seq} is not the one {where} recorded"))
    return reports, problems
