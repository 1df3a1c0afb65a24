"""Opening the audit database safely: file checks, pragmas, one connection per thread, error mapping.

SQLite connections must not be shared between the GUI thread and the generation worker, so
``Connections`` hands each thread its own sqlite-utils ``Database`` on the same file.

One owner per process: POSIX advisory locks belong to the process, so an ``open()``/``close()`` of
the database file (or its -wal/-shm) by any code in a process that holds an SQLite connection on it
silently drops that process's locks. Another r1desk process then believes it is the last user,
checkpoints and deletes the WAL under us, and later writes are lost (SQLite's "How To Corrupt An
SQLite Database File", section 2.2). ``open_shared`` therefore keeps one ``Connections`` per file
(keyed by device and inode) for the whole process: the raw file checks run only before the first
connection exists, and every further ``AuditLog`` on the same file shares it. WAL mode lets
an auditor read while the chat writes; a lock held past the busy timeout, a full disk or a
damaged file become ``AuditStoreError`` with a message that names the file.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlite_utils import Database

from r1desk.errors import AuditStoreError

log = logging.getLogger("r1desk.audit")

SQLITE_MAGIC = b"SQLite format 3\x00"
DEFAULT_BUSY_TIMEOUT_S = 5.0


class AuditStoreLockedError(AuditStoreError):
    """Another connection held the write lock for longer than the busy timeout."""


class AuditStoreCorruptError(AuditStoreError):
    """The file is not an SQLite database, or is damaged/truncated. It is never overwritten."""


def corrupt_error(path: Path, detail: str) -> AuditStoreCorruptError:
    return AuditStoreCorruptError(
        f"The audit database {path} is damaged ({detail})",
        hint="it was left untouched; restore it from a backup (r1desk audit backup) or move it aside "
        "to start a new log",
    )


def check_file(path: Path) -> None:
    """Refuse a file that is not an SQLite database or is shorter than its header says.

    Runs before SQLite opens the file, so nothing (not even WAL mode) is ever written to it.
    """
    if not path.exists():
        return
    if path.is_dir():
        raise AuditStoreError(f"The audit database path {path} is a folder, not a file")
    size = path.stat().st_size
    if size == 0:
        return  # SQLite treats an empty file as a new database
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
    except OSError as exc:
        raise AuditStoreError(f"Cannot read the audit database {path}: {exc.strerror}") from exc
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise corrupt_error(path, "not an SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    page_count = int.from_bytes(header[28:32], "big")
    change_counter, valid_for = header[24:28], header[92:96]
    if page_size < 512 or page_size & (page_size - 1):
        raise corrupt_error(path, "bad page size in the header")
    if _wal_has_frames(path):
        return  # the missing pages may live in the WAL (a checkpoint cut short by a full disk): SQLite decides
    if change_counter == valid_for and page_count and size < page_count * page_size:
        raise corrupt_error(path, f"truncated: {size} bytes, the header says {page_count * page_size}")


def _wal_has_frames(path: Path) -> bool:
    """True when a WAL file with at least one frame lies beside ``path`` (stat only, never opened)."""
    try:
        return os.stat(f"{path}-wal").st_size > 32   # the WAL header alone is 32 bytes
    except OSError:
        return False


def create_private(path: Path) -> None:
    """Create the database file with mode 0600 (SQLite gives its -wal/-shm files the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        try:
            os.chmod(path, 0o600)
        except OSError as exc:  # someone else's file on a shared drive: still usable
            log.warning("could not restrict %s to mode 0600: %s", path, exc)


def connect(path: Path, busy_timeout: float) -> Database:
    conn = sqlite3.connect(str(path), timeout=busy_timeout, check_same_thread=False)
    db = Database(conn, execute_plugins=False)
    with store_errors(path):
        db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
        db.execute("PRAGMA foreign_keys=OFF")
    return db


@contextlib.contextmanager
def store_errors(path: Path, busy_timeout: float | None = None) -> Iterator[None]:
    """Turn environment failures from SQLite into AuditStoreError; SQL bugs keep their traceback."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise _translate(path, exc, busy_timeout) from exc
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)):
            raise
        raise corrupt_error(path, str(exc)) from exc


def _translate(path: Path, exc: sqlite3.OperationalError, busy_timeout: float | None) -> Exception:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        waited = f" (gave up after {busy_timeout:g} s)" if busy_timeout is not None else ""
        return AuditStoreLockedError(
            f"The audit database {path} is locked by another program{waited}",
            hint="close other r1desk windows or tools using it; unsaved entries are kept and retried",
        )
    if "disk is full" in text or "disk i/o" in text:
        return AuditStoreError(f"Cannot write the audit database {path}: {exc}",
                               hint="free some disk space; unsaved entries are kept and retried")
    if "readonly" in text or "read-only" in text:
        return AuditStoreError(f"The audit database {path} is read-only",
                               hint="check the file's permissions, or open a copy with --db")
    if "unable to open" in text:
        return AuditStoreError(f"Cannot open the audit database {path}",
                               hint="check that its folder exists and is writable")
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return corrupt_error(path, str(exc))
    return exc  # a bug in our SQL: keep the original error


class Connections:
    """One sqlite-utils Database per thread on one file; ``close()`` closes them all."""

    def __init__(self, path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[Database] = []
        self._lock = threading.Lock()
        self.closed = False

    def get(self) -> Database:
        db = getattr(self._local, "db", None)
        if db is None:
            if self.closed:
                raise AuditStoreError(f"The audit log {self.path} was closed")
            db = connect(self.path, self.busy_timeout)
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for db in self._all:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            self._all.clear()
        self._local = threading.local()


class SharedConnections(Connections):
    """A ``Connections`` shared by every ``AuditLog`` on one file in this process (see the module doc)."""

    def __init__(self, path: Path, busy_timeout: float, key: tuple[int, int]) -> None:
        super().__init__(path, busy_timeout)
        self.key = key
        self.users = 0


_SHARED: dict[tuple[int, int], SharedConnections] = {}
_SHARED_LOCK = threading.Lock()


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def open_shared(path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S) -> tuple[SharedConnections, bool]:
    """This process's connections to ``path``; True when they are new (the caller migrates).

    The file checks and the 0600 creation (raw opens of the file) run only here, before this process
    holds any SQLite connection on the file.
    """
    with _SHARED_LOCK:
        key = _file_key(path)
        shared = _SHARED.get(key) if key is not None else None
        if shared is not None and not shared.closed:
            shared.users += 1
            return shared, False
        check_file(path)
        create_private(path)
        key = _file_key(path)
        if key is None:
            raise AuditStoreError(f"Cannot open the audit database {path}",
                                  hint="check that its folder exists and is writable")
        shared = SharedConnections(path, busy_timeout, key)
        shared.users = 1
        _SHARED[key] = shared
        return shared, True


def release_shared(shared: SharedConnections) -> None:
    """One user is done; the last one closes the connections (SQLite may then checkpoint the WAL)."""
    with _SHARED_LOCK:
        shared.users -= 1
        if shared.users > 0:
            return
        if _SHARED.get(shared.key) is shared:
            del _SHARED[shared.key]
    shared.close()

