"""The CLI's role gate: auditor and admin actions need the same passphrases as the desktop views.

Once an auditor or admin passphrase is set (or the site provides them), every ``audit`` action asks for
one: reading, searching, reviewing, exporting, verifying and backing up accept the auditor or the admin
passphrase; pruning needs the admin one. With no passphrase configured at all r1desk is a single-user app
and the CLI stays open (as the desktop app is before its first-use setup).

Where the passphrase comes from, first match wins (never a command-line argument, which other users see
in ``ps`` and which lands in shell history):

- ``R1DESK_PASSPHRASE_FD=N``: read from the already-open file descriptor N (up to the first newline),
  e.g. ``R1DESK_PASSPHRASE_FD=3 r1desk audit list 3< <(pass show r1desk/auditor)``;
- ``R1DESK_PASSPHRASE_FILE=PATH``: the first line of a regular file only its owner can read (mode 0600);
- otherwise a prompt on the terminal (``getpass``) when standard input is one.

The rate limit, lockout and audit events are ``core.roles.RoleStore``'s, exactly as in the app, with the
lockout also read back from the chained audit log. A wrong or missing passphrase is one line on stderr
and exit code 2.
"""
from __future__ import annotations

import getpass
import logging
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from r1desk.core.roles import ADMIN, AUDITOR, PROTECTED_ROLES, ROLE_TITLES, RoleStore, history_from
from r1desk.errors import AccessDeniedError, UserFacingError

if TYPE_CHECKING:
    from r1desk.storage.auditlog import AuditLog

log = logging.getLogger("r1desk.cli")

FD_ENV = "R1DESK_PASSPHRASE_FD"
FILE_ENV = "R1DESK_PASSPHRASE_FILE"
MAX_BYTES = 4096
# Which passphrases open which kind of action (the admin can do what the auditor can).
ACCEPTED = {AUDITOR: (AUDITOR, ADMIN), ADMIN: (ADMIN,)}


@dataclass(frozen=True)
class Authenticated:
    """Who runs the command: ``role`` None when no passphrase is configured (single-user, open)."""
    role: str | None
    login: str

    @property
    def name(self) -> str:
        """The reviewer / actor recorded in the log: "auditor (alice)", or "cli:alice" when open."""
        return f"{self.role} ({self.login})" if self.role else f"cli:{self.login}"


def login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers)
        return "unknown"


def authenticate(required: str, audit_log: Any, *, store: RoleStore | None = None) -> Authenticated:
    """Return who is acting, or raise AccessDeniedError (one clear message, exit code 2)."""
    if required not in ACCEPTED:
        raise ValueError(f"unknown role {required!r}")
    store = store or RoleStore(audit=getattr(audit_log, "log_admin_event", None), history=history_from(audit_log))
    configured = [r for r in PROTECTED_ROLES if store.has_passphrase(r)]
    who = login_name()
    if not configured:
        return Authenticated(None, who)
    candidates = [r for r in ACCEPTED[required] if r in configured]
    if not candidates:     # e.g. only an auditor passphrase and an admin action: fail closed
        raise AccessDeniedError(f"This action needs the {ROLE_TITLES[required].lower()} passphrase, and none is set.",
                                hint="set it in the desktop app (Admin settings)")
    titles = " or ".join(ROLE_TITLES[r].lower() for r in candidates)
    passphrase = read_passphrase(f"{titles.capitalize()} passphrase: ", needed=titles)
    try:
        role = verify_any(store, candidates, passphrase)
    except AccessDeniedError as exc:
        raise AccessDeniedError(f"{exc.args[0] if exc.args else exc} (this action needs the {titles} passphrase)",
                                hint=getattr(exc, "hint", None)) from None
    log.info("cli authenticated as %s (%s)", role, who)
    return Authenticated(role, who)


def verify_any(store: RoleStore, candidates: list[str], passphrase: str) -> str:
    """The first candidate role the passphrase opens. A passphrase that opens none counts as one failed
    attempt against each candidate (so guessing through the auditor role also locks the admin one)."""
    waits = [(store.retry_after(r), r) for r in candidates]
    if all(w > 0 for w, _ in waits):   # every candidate rate-limited: let the store refuse and log it
        store.verify(min(waits)[1], passphrase)
    denied: AccessDeniedError | None = None
    for wait, role in waits:
        if wait > 0:
            continue
        if store.matches(role, passphrase):
            store.verify(role, passphrase)     # records the unlock (and clears the failures) as in the app
            return role
    for wait, role in waits:
        if wait > 0:
            continue
        try:
            store.verify(role, passphrase)     # records the failure, rate limit and lockout
        except AccessDeniedError as exc:
            denied = denied or exc
    raise denied or AccessDeniedError("Wrong passphrase.")


def read_passphrase(prompt: str, *, needed: str) -> str:
    """From R1DESK_PASSPHRASE_FD, R1DESK_PASSPHRASE_FILE or the terminal; AccessDeniedError when none."""
    fd_value = os.environ.get(FD_ENV)
    if fd_value:
        return _from_fd(fd_value)
    file_value = os.environ.get(FILE_ENV)
    if file_value:
        return _from_file(file_value)
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            return getpass.getpass(prompt)
        except EOFError:
            raise AccessDeniedError("No passphrase given.") from None
    raise AccessDeniedError(f"This action needs the {needed} passphrase.",
                            hint=f"run it in a terminal, or pass it with {FD_ENV} or {FILE_ENV} (see r1desk audit -h)")


def _first_line(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AccessDeniedError(f"The passphrase from {where} is not UTF-8 text.") from None
    line = text.split("\n", 1)[0].rstrip("\r")
    if not line:
        raise AccessDeniedError(f"The passphrase from {where} is empty.")
    return line


def _from_fd(value: str) -> str:
    try:
        fd = int(value)
        if fd < 0:
            raise ValueError
    except ValueError:
        raise UserFacingError(f"{FD_ENV}={value!r} is not a file descriptor number") from None
    try:
        with os.fdopen(fd, "rb", closefd=True) as fh:
            data = fh.read(MAX_BYTES)
    except OSError as exc:
        raise AccessDeniedError(f"Cannot read the passphrase from file descriptor {fd}: {exc.strerror or exc}") from None
    return _first_line(data, f"file descriptor {fd}")


def _from_file(value: str) -> str:
    path = os.path.expanduser(value)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise AccessDeniedError(f"Cannot read the passphrase file {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise AccessDeniedError(f"The passphrase file {path} is not a regular file.")
    if st.st_mode & 0o077:
        raise AccessDeniedError(f"The passphrase file {path} can be read by other users.", hint=f"chmod 600 {path}")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES)
    except OSError as exc:
        raise AccessDeniedError(f"Cannot read the passphrase file {path}: {exc.strerror or exc}") from None
    return _first_line(data, path)


@contextmanager
def gated_log(db: Path | None, role: str) -> Iterator[tuple[AuditLog, Authenticated]]:
    """The audit log at ``db`` (the default one when None), opened only after ``role``'s passphrase was given:
    the same gate, rate limit and events as the app. A missing ``--db`` file is refused, never created."""
    from r1desk.storage.auditlog import AuditLog

    if db is not None and not Path(db).expanduser().exists():
        raise UserFacingError(f"No audit database at {db}")
    log = AuditLog(db)
    try:
        yield log, authenticate(role, log)
    finally:
        log.close()
