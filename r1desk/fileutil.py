"""Small file helpers shared by the settings and the role store."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def atomic_write_text(path: Path, text: str, *, mode: int | None = None, fsync: bool = True) -> None:
    """Write ``text`` so that readers see the old file or the new one, never half of it.

    ``mode`` (e.g. 0o600 for secrets) is set on the temporary file before any byte is written. ``fsync``
    False for a file rewritten after every commit that may trail the data after a power cut (the audit
    head file), where a sync per commit would cost more than it buys.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.chmod(tmp, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def file_kind(mode: int) -> str | None:
    """What a non-regular file is ("a FIFO (named pipe)", "a folder", ...); None for a regular file."""
    import stat

    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


class NotReadableFile(OSError):
    """``read_regular_file`` refused the path; ``why`` says what it is, in words."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; NotReadableFile (with what the path
    really is: a symbolic link loop, a FIFO, too large ...) otherwise. Never blocks on a FIFO."""
    import errno
    import stat

    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotReadableFile("it is a symbolic link loop (the links point at each other)") from None
        if exc.errno == errno.ENOENT and os.path.islink(path):
            raise NotReadableFile("it is a broken symbolic link") from None
        raise NotReadableFile(f"cannot read the file ({exc.strerror or exc})") from None
    kind = file_kind(st.st_mode)
    if kind:
        raise NotReadableFile(f"not a regular file ({kind})")
    if st.st_size > max_bytes:
        raise NotReadableFile(f"the file is {st.st_size:,} bytes (the limit is {max_bytes:,})")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):       # swapped after the check above
                raise NotReadableFile("not a regular file")
            data = fh.read(max_bytes + 1)
    except NotReadableFile:
        raise
    except OSError as exc:
        raise NotReadableFile(f"cannot read the file ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise NotReadableFile(f"the file is over {max_bytes:,} bytes")
    return data


@contextlib.contextmanager
def staged_folder(folder: Path, prefix: str = ".staging-") -> Iterator[Path]:
    """Fill a fresh folder beside ``folder``; when the block ends normally it replaces ``folder`` whole, and
    when it raises it is removed (``folder`` keeps its old content). Readers never see half an install."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=folder.parent))
    try:
        yield staging
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
