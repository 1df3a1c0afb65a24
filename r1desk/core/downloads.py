"""Get model files into ``paths.models_dir()``: downloads from Hugging Face and local imports.

Downloads go through huggingface_hub's own client: ``get_hf_file_metadata`` for the exact size,
the LFS sha256 and the (possibly redirected) location, then ``file_download.http_get`` for the
bytes, which retries dropped connections with HTTP Range requests by itself. r1desk keeps the
partial file (``models/.partial/<name>.<sha>.part``) instead of letting ``hf_hub_download`` write
it: since huggingface_hub 1.x, ``hf_hub_download`` deletes its temporary file on any failure, so
a cancelled or crashed multi-GB download would restart from zero. Keeping it here makes Cancel
and a later Download resume where they stopped.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1desk import paths
from r1desk.errors import DownloadError, ModelFileError

log = logging.getLogger("r1desk.downloads")

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
DISK_MARGIN_BYTES = 200 * 1024 * 1024
PARTIAL_DIR = ".partial"


class DownloadCancelled(DownloadError):
    """The user pressed Cancel; the partial file is kept so the next download resumes."""


@dataclass(frozen=True)
class Progress:
    """One progress report: what the model manager's progress bar shows."""

    filename: str
    done: int
    total: int | None
    speed: float | None         # bytes/s over the last few seconds
    eta_s: float | None
    phase: str = "downloading"  # "downloading" | "verifying" | "done"

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class RemoteFile:
    repo_id: str
    filename: str
    revision: str | None
    url: str
    size: int | None
    sha256: str | None
    commit_hash: str | None


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


def _progress_bar_class(filename: str, callback: ProgressCallback | None,
                        cancel: threading.Event | None) -> type:
    """A tqdm stand-in for huggingface_hub: reports progress and raises on cancel between chunks."""

    class _Bar:
        def __init__(self, *_: Any, total: int | None = None, initial: int = 0, **__: Any) -> None:
            self.total = total
            self.n = initial
            self._samples: list[tuple[float, int]] = [(time.monotonic(), initial)]
            self._check_cancel()

        def __enter__(self) -> _Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

        def close(self) -> None:
            pass

        def _check_cancel(self) -> None:
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled(f"download of {filename} cancelled",
                                        hint="the partial file is kept; downloading again resumes it")

        def update(self, n: int | float = 1) -> None:
            self.n += int(n)
            now = time.monotonic()
            self._samples.append((now, self.n))
            while len(self._samples) > 2 and now - self._samples[0][0] > 5.0:
                self._samples.pop(0)
            t0, n0 = self._samples[0]
            speed = (self.n - n0) / (now - t0) if now > t0 and self.n > n0 else None
            eta = (self.total - self.n) / speed if speed and self.total else None
            if callback is not None:
                callback(Progress(filename, self.n, self.total, speed, eta))
            self._check_cancel()

    return _Bar


def remote_file(repo_id: str, filename: str, *, revision: str | None = None,
                endpoint: str | None = None, token: str | bool | None = None) -> RemoteFile:
    """Ask the Hub (HEAD) for the file's exact size, LFS sha256 and download location."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    try:
        meta = get_hf_file_metadata(url, token=token, endpoint=endpoint)
    except Exception as exc:  # network, 404, auth, offline mode: all mean "cannot download now"
        raise DownloadError(f"cannot reach {filename} in {repo_id} on Hugging Face ({_reason(exc)})",
                            hint="check the internet connection and the model name") from exc
    etag = (meta.etag or "").lower()
    return RemoteFile(repo_id=repo_id, filename=filename, revision=revision, url=meta.location or url,
                      size=meta.size, sha256=etag if _SHA256_RE.match(etag) else None,
                      commit_hash=meta.commit_hash)


NO_CONNECTION = "No internet connection (or the Hub is unreachable)"
# What "the network is not there" looks like in the exception chain (socket, urllib3, requests, httpx, the Hub).
_OFFLINE_MARKERS = ("name or service not known", "temporary failure in name resolution", "nodename nor servname",
                    "getaddrinfo failed", "network is unreachable", "no route to host", "connection refused",
                    "failed to establish a new connection", "max retries exceeded", "offline mode is enabled",
                    "hf_hub_offline", "timed out", "connecterror", "connection aborted")


def _is_offline(exc: BaseException) -> bool:
    import socket

    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (socket.gaierror, socket.timeout, ConnectionError)):
            return True
        text = f"{type(e).__name__} {e}".lower()
        if any(marker in text for marker in _OFFLINE_MARKERS):
            return True
        stack += [e.__cause__, e.__context__, *(a for a in e.args if isinstance(a, BaseException))]
        reason = getattr(e, "reason", None)          # urllib.error.URLError, urllib3's MaxRetryError
        if isinstance(reason, BaseException):
            stack.append(reason)
    return False


def network_reason(exc: BaseException) -> str:
    """The reason a download failed, in words for people: no raw "[Errno -2] Name or service not known" when
    the network is simply not there (the detail goes to the log)."""
    if _is_offline(exc):
        log.info("download failed, no connection: %s: %s", type(exc).__name__, exc)
        return NO_CONNECTION
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


_reason = network_reason


def check_disk_space(folder: Path, needed: int, what: str) -> None:
    """Raise DownloadError before starting when the disk cannot hold ``needed`` bytes + a margin."""
    free = shutil.disk_usage(folder).free
    if free < needed + DISK_MARGIN_BYTES:
        raise DownloadError(
            f"not enough disk space for {what}: it needs {_fmt_bytes(needed + DISK_MARGIN_BYTES)} "
            f"but only {_fmt_bytes(free)} is free in {folder}",
            hint="free some space or pick a smaller quantisation")


def sha256_of(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * 1024 * 1024):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done)
    return digest.hexdigest()


def download(repo_id: str, filename: str, *, expected_sha256: str | None = None,
             revision: str | None = None, progress: ProgressCallback | None = None,
             cancel: threading.Event | None = None, endpoint: str | None = None,
             token: str | bool | None = None, dest_dir: Path | None = None) -> Path:
    """Download one GGUF into the models folder; returns its path.

    Resumes a partial file from an earlier attempt, verifies the sha256 (the catalog's, else the
    Hub's LFS hash), validates the GGUF header, and only then moves it into place. Raises
    DownloadCancelled when ``cancel`` is set, DownloadError for everything else.
    """
    from huggingface_hub import file_download
    # huggingface_hub.utils re-exports it lazily, so mypy does not see it as exported
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

    dest_dir = dest_dir or paths.models_dir()
    name = Path(filename).name
    dest = dest_dir / name
    remote = remote_file(repo_id, filename, revision=revision, endpoint=endpoint, token=token)
    want_sha = (expected_sha256 or remote.sha256 or "").lower() or None
    if expected_sha256 and remote.sha256 and expected_sha256.lower() != remote.sha256:
        log.warning("catalog sha256 of %s differs from the Hub's (%s); using the catalog's",
                    filename, remote.sha256)
    if dest.exists() and remote.size is not None and dest.stat().st_size == remote.size:
        if want_sha is None or sha256_of(dest) == want_sha:
            log.info("%s is already downloaded", dest)
            return dest

    partial_dir = dest_dir / PARTIAL_DIR
    partial_dir.mkdir(parents=True, exist_ok=True)
    part = partial_dir / f"{name}.{(want_sha or remote.commit_hash or 'unknown')[:16]}.part"
    resume = part.stat().st_size if part.exists() else 0
    if remote.size is not None and resume > remote.size:
        part.unlink()
        resume = 0
    if remote.size is not None:
        check_disk_space(dest_dir, remote.size - resume, name)

    bar = _progress_bar_class(name, progress, cancel)
    headers = build_hf_headers(token=token)
    log.info("downloading %s from %s (resume at %d bytes)", name, repo_id, resume)
    try:
        with open(part, "ab") as fh:
            if remote.size is None or resume < remote.size:
                file_download.http_get(remote.url, fh, resume_size=resume, headers=headers,
                                       expected_size=remote.size, displayed_filename=name,
                                       tqdm_class=bar)
    except DownloadError:
        raise
    except OSError as exc:
        if getattr(exc, "errno", None) == 28:   # ENOSPC
            raise DownloadError(f"the disk filled up while downloading {name}",
                                hint="free some space; downloading again resumes") from exc
        raise DownloadError(f"download of {name} failed ({_reason(exc)})",
                            hint="downloading again resumes where it stopped") from exc
    except Exception as exc:
        raise DownloadError(f"download of {name} failed ({_reason(exc)})",
                            hint="downloading again resumes where it stopped") from exc

    size = part.stat().st_size
    if want_sha:
        if progress is not None:
            progress(Progress(name, 0, size, None, None, phase="verifying"))
        got = sha256_of(part, (lambda done: progress(Progress(name, done, size, None, None, "verifying")))
                        if progress else None)
        if got != want_sha:
            part.unlink(missing_ok=True)
            raise DownloadError(f"the downloaded {name} is corrupt: its sha256 is {got[:12]}…, "
                                f"expected {want_sha[:12]}…",
                                hint="the bad file was deleted; try the download again")
    else:
        log.warning("no sha256 known for %s; only the GGUF header is checked", name)
    _validate(part, name)
    os.replace(part, dest)
    if progress is not None:
        progress(Progress(name, size, size, None, 0.0, phase="done"))
    log.info("downloaded %s (%d bytes)", dest, size)
    return dest


def download_entry(entry: Any, **kwargs: Any) -> Path:
    """Download a ``catalog.CatalogEntry`` (its repo, file and known sha256)."""
    return download(entry.repo_id, entry.filename, expected_sha256=entry.sha256, **kwargs)


def _validate(path: Path, name: str) -> None:
    from r1desk.core.gguf_info import read_model_info

    try:
        read_model_info(path)
    except ModelFileError as exc:
        path.unlink(missing_ok=True)
        raise DownloadError(f"the downloaded {name} is not a usable model ({exc.message})",
                            hint="the file was deleted") from exc


def partial_downloads(dest_dir: Path | None = None) -> list[Path]:
    """Partial files a later download would resume (the model manager can offer to delete them)."""
    folder = (dest_dir or paths.models_dir()) / PARTIAL_DIR
    return sorted(folder.glob("*.part")) if folder.is_dir() else []


def import_local(path: str | os.PathLike[str], *, dest_dir: Path | None = None,
                 link: bool = True) -> Path:
    """Validate a local GGUF, then hard-link (or copy) it into the models folder; returns the new path.

    A bad file raises ModelFileError and nothing is copied. A file already in the folder is
    returned as is; a different file with the same name gets a numbered name.
    """
    from r1desk.core.gguf_info import read_model_info

    src = Path(path).expanduser()
    info = read_model_info(src)              # raises ModelFileError: nothing copied
    dest_dir = dest_dir or paths.models_dir()
    src_resolved = src.resolve()
    if src_resolved.parent == dest_dir.resolve():
        return src_resolved
    dest = dest_dir / src.name
    if not dest.name.lower().endswith(".gguf"):
        dest = dest.with_name(dest.name + ".gguf")
    n = 1
    while dest.exists():
        if os.path.samefile(dest, src_resolved):
            return dest
        if dest.stat().st_size == info.size_bytes and sha256_of(dest) == sha256_of(src_resolved):
            return dest
        n += 1
        dest = dest_dir / f"{src.stem}-{n}{dest.suffix}"
    tmp = dest_dir / PARTIAL_DIR / (dest.name + ".import")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.unlink(missing_ok=True)
    check = True
    if link:
        try:
            os.link(src_resolved, tmp)
            check = False
        except OSError:
            pass
    if check:
        check_disk_space(dest_dir, info.size_bytes, src.name)
        try:
            shutil.copyfile(src_resolved, tmp)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ModelFileError(f"cannot copy {src} into {dest_dir} ({exc.strerror or exc})") from exc
    os.replace(tmp, dest)
    log.info("imported %s as %s", src, dest)
    return dest
