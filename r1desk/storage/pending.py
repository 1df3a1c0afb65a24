"""A write-behind queue so the chat never loses an audit entry to a locked or full database.

``PendingQueue`` wraps an ``AuditLog`` for the writer (the chat worker). Each write is attempted
at once; if the store raises ``AuditStoreError`` (locked past the busy timeout, disk full,
read-only) the call is kept in memory, in order, and the whole queue is retried before the next
write (or on ``flush()``). Turn ids are chosen up front, so ``start_turn`` returns an id even
when the row could not be written yet. Nothing is dropped: ``pending`` tells the UI to show an
"audit entries waiting" notice, and ``flush()`` raises if they still cannot be written.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from r1desk import paths
from r1desk.errors import AuditStoreError
from r1desk.storage.auditlog import AuditLog

log = logging.getLogger("r1desk.audit")


class SpillError(AuditStoreError):
    """Writes the database refused could not be kept in any file either (every disk full): they
    are still in memory, and ``close()`` may be called again once space is free."""


class PendingQueue:
    def __init__(self, audit: AuditLog, *, on_error: Callable[[AuditStoreError], None] | None = None) -> None:
        self.audit = audit
        self.on_error = on_error
        self._queue: deque[tuple[str, tuple[Any, ...], dict[str, Any]]] = deque()
        self._lock = threading.RLock()
        self.last_error: AuditStoreError | None = None

    @property
    def pending(self) -> int:
        return len(self._queue)

    # -- nothing lost at exit: what could not be written is spilled next to the database -------------
    def spill_path(self) -> Path:
        return self.audit.path.with_name(f"{self.audit.path.name}.pending-{os.getpid()}-{time.time_ns()}.json")

    def spill_dirs(self) -> list[tuple[Path, str]]:
        """Where spilled writes may be kept, in order: beside the database, then (when that disk is
        full) the user cache folder and the system temporary folder, each as (folder, file prefix)."""
        db = self.audit.path
        digest = hashlib.sha256(str(db.resolve()).encode()).hexdigest()[:12]
        other = f"{db.name}-{digest}"
        return [(db.parent, db.name), (paths.cache_dir() / "pending-audit", other),
                (Path(tempfile.gettempdir()) / f"r1desk-{os.getuid() if hasattr(os, 'getuid') else 'user'}", other)]

    def spill_files(self) -> list[Path]:
        found: list[Path] = []
        for folder, prefix in self.spill_dirs():
            if folder.is_dir():
                found.extend(sorted(folder.glob(f"{glob.escape(prefix)}.pending-*.json")))
        return found

    def close(self) -> Path | None:
        """Flush; if the store still refuses, write the queue to a private file (``recover()`` replays
        it at the next start) and return that file's path.

        The file goes beside the database, or, when that disk is full too, to the next place in
        ``spill_dirs()``. If no place takes it, ``SpillError`` says so and the writes stay in memory,
        so the caller can ask the user to free space and call ``close()`` again.
        """
        with self._lock:
            try:
                self.flush()
                return None
            except AuditStoreError as exc:
                self.last_error = exc
            failures: list[str] = []
            stamp = f"{os.getpid()}-{time.time_ns()}"
            for folder, prefix in self.spill_dirs():
                path = folder / f"{prefix}.pending-{stamp}.json"
                try:
                    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                    count = self._spill(path)
                except OSError as exc:
                    failures.append(f"{folder}: {exc.strerror or exc}")
                    continue
                log.warning("%d audit writes could not be stored; kept in %s until the next start", count, path)
                return path
            raise SpillError(
                f"{len(self._queue)} audit log {'entry' if len(self._queue) == 1 else 'entries'} could not be "
                f"saved: the database refuses them "
                f"({self.last_error.message if self.last_error else 'unavailable'}) and no file could hold them "
                f"({'; '.join(failures)})",
                hint="free some disk space and try again; until then they are kept in memory")

    def _spill(self, path: Path) -> int:
        """Move the queue into ``path`` (private, written whole or not at all: a failed write leaves
        no file behind and the queue untouched)."""
        entries = [{"call": name, "args": list(args), "kwargs": kwargs} for name, args, kwargs in self._queue]
        tmp = path.with_name(path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entries, fh, ensure_ascii=False, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._queue.clear()
        return len(entries)

    def recover(self) -> int:
        """Replay writes spilled by an earlier ``close()``; returns how many were stored. A file is
        removed once all its writes are stored; if the store refuses again, what is left is kept."""
        stored = 0
        for path in self.spill_files():
            try:
                entries = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.error("cannot read spilled audit writes %s: %s (left in place)", path, exc)
                continue
            with self._lock:
                before = len(self._queue)
                for e in entries:
                    self._queue.append((e["call"], tuple(e["args"]), dict(e["kwargs"])))
                while True:
                    try:
                        self.flush()
                        break
                    except AuditStoreError as exc:
                        self.last_error = exc
                        stored += before + len(entries) - len(self._queue)
                        try:
                            self._spill(path)            # only what is still unwritten stays in the file
                        except OSError:                  # the disk is full: the old file still has it all
                            log.warning("could not rewrite %s; it is replayed again next time", path)
                            self._queue.clear()
                        return stored
                    except Exception:                    # flush dropped an entry that can never be stored
                        log.exception("replaying %s: one entry dropped, going on", path)
            path.unlink()
            stored += len(entries)
            log.info("replayed %d spilled audit writes from %s", len(entries), path)
        return stored

    def flush(self) -> None:
        """Write everything queued, in order; raises AuditStoreError if the store still refuses."""
        with self._lock:
            while self._queue:
                name, args, kwargs = self._queue[0]
                try:
                    getattr(self.audit, name)(*args, **kwargs)
                except AuditStoreError:
                    raise  # the store is unavailable: keep it, retry later
                except Exception:
                    self._queue.popleft()  # a bad entry must not wedge the ones behind it
                    log.exception("audit write %s dropped: it can never succeed", name)
                    raise
                self._queue.popleft()
            self.last_error = None

    def _call(self, name: str, *args: Any, **kwargs: Any) -> bool:
        """Queue behind earlier pending writes; True when everything up to this one is stored."""
        with self._lock:
            self._queue.append((name, args, kwargs))
            try:
                self.flush()
            except AuditStoreError as exc:
                self.last_error = exc
                log.warning("audit write kept in memory (%d pending): %s", len(self._queue), exc)
                if self.on_error:
                    self.on_error(exc)
                return False
            return True

    # the writer's side of AuditLog --------------------------------------------------------------------
    def start_turn(self, *, turn_id: str | None = None, conversation_id: str | None = None, **kwargs: Any) -> str:
        tid = turn_id or AuditLog.new_turn_id()
        cid = conversation_id or AuditLog.new_turn_id()
        self._call("start_turn", turn_id=tid, conversation_id=cid, **kwargs)
        return tid

    def update_partial(self, turn_id: str, **kwargs: Any) -> bool:
        with self._lock:
            # only the latest partial text of a turn matters: replace a queued one instead of piling up
            for i, (name, args, _) in enumerate(self._queue):
                if name == "update_partial" and args == (turn_id,):
                    del self._queue[i]
                    break
        return self._call("update_partial", turn_id, **kwargs)

    def add_decisions(self, turn_id: str, decisions: list[Any]) -> bool:
        return self._call("add_decisions", turn_id, list(decisions))

    def add_segment_scores(self, turn_id: str, segments: list[Any]) -> bool:
        return self._call("add_segment_scores", turn_id, list(segments))

    def finish_turn(self, turn_id: str, *, result: Any) -> bool:
        return self._call("finish_turn", turn_id, result=result)

    def set_feedback(self, turn_id: str, thumbs: Any, comment: str = "") -> bool:
        return self._call("set_feedback", turn_id, thumbs, comment)

    def log_admin_event(self, *, actor: str, action: str, details: dict[str, Any] | None = None) -> bool:
        return self._call("log_admin_event", actor=actor, action=action, details=details)
