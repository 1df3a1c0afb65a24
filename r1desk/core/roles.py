"""Roles and their passphrases: end user (no passphrase), auditor and admin.

Passphrases are never stored: only a scrypt hash with a random salt (``hashlib.scrypt``, n=2**15, r=8,
p=1: about 32 MiB and tens of milliseconds per try, so guessing offline is slow) in
``paths.config_dir()/roles.json`` with mode 0600, compared in constant time.

Wrong guesses are rate-limited: the first few are free, then each one doubles the wait, and
``MAX_FAILURES`` within ``WINDOW_S`` lock the role out for ``LOCKOUT_S``. The failure times are kept
in the same file (wall clock), so restarting the app does not reset the limit; the file is the user's
to edit, so where a ``history`` (the chained audit log's role events, ``history_from``) is given the
lockout is also computed from it and the stricter of the two holds. The same history shows when the
file lost a passphrase it once held (deleted or reset): that role stays locked instead of offering
first-use setup again.

Where a site administrator provides ``paths.site_config_dir()/roles.json`` (``{"hashes": {"auditor":
{...}, "admin": {...}}}``, read-only for users) the hashes come from there and cannot be set or changed
here; the per-user file is the single-user fallback. A site file that cannot be read fails closed (every
protected role refused). Stored cost parameters are validated against ``SCRYPT_FLOOR`` and sane maxima:
a weak or malformed record is refused with a clear error, never used. Every unlock, failed
unlock, lockout and passphrase change goes to the audit log through an injected callable with the
signature of ``AuditLog.log_admin_event(actor=, action=, details=)``. The clock is injectable, so the
limiter and ``IdleLock`` are tested without sleeping.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import time
from datetime import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from r1desk import paths
from r1desk.errors import AccessDeniedError, UserFacingError
from r1desk.fileutil import NotReadableFile, atomic_write_text, read_regular_file

log = logging.getLogger("r1desk.roles")

USER, AUDITOR, ADMIN = "user", "auditor", "admin"
ROLES = (USER, AUDITOR, ADMIN)
PROTECTED_ROLES = (AUDITOR, ADMIN)
ROLE_TITLES = {USER: "End user", AUDITOR: "Auditor", ADMIN: "Administrator"}

MIN_LENGTH = 8
FREE_FAILURES = 3          # wrong guesses allowed before any wait
BASE_DELAY_S = 2.0         # the 4th failure waits 2 s, then 4, 8, 16 ...
MAX_DELAY_S = 60.0
MAX_FAILURES = 8           # this many failures within WINDOW_S lock the role out
WINDOW_S = 15 * 60.0
LOCKOUT_S = 15 * 60.0
RELOCK_AFTER_S = 5 * 60.0  # the auditor and admin views relock after this long without input
FILE_NAME = "roles.json"

SITE_FILE_MAX_BYTES = 64 * 1024
AuditCallable = Callable[..., Any]   # AuditLog.log_admin_event(actor=..., action=..., details=...)
# role -> [(epoch seconds, action)] of that role's events in the audit log (newest first), see history_from
RoleHistory = Callable[[str], list[tuple[float, str]]]
SET_ACTIONS = ("role.passphrase_set", "role.passphrase_changed", "role.passphrase_reset")
HISTORY_ACTIONS = (*SET_ACTIONS, "role.unlock", "role.unlock_failed")


class PassphraseError(UserFacingError):
    """A new passphrase that cannot be used (too short, mismatched, same as the other role's)."""


@dataclass(frozen=True)
class ScryptParams:
    n: int = 2 ** 15
    r: int = 8
    p: int = 1
    dklen: int = 32

    @property
    def maxmem(self) -> int:
        return 128 * self.r * self.n * 2 + 1024 * 1024


DEFAULT_PARAMS = ScryptParams()
# The weakest cost accepted from a file (OWASP: N=2**14 or more with r=8, p=1), and sane maxima
# (a huge N or p from a hostile file would take minutes and gigabytes before failing).
SHIPPED_SCRYPT_FLOOR = ScryptParams(n=2 ** 14, r=8, p=1, dklen=16)
SCRYPT_FLOOR = SHIPPED_SCRYPT_FLOOR   # (the tests lower it for cheap hashes; the shipped value is checked)
SCRYPT_MAX = ScryptParams(n=2 ** 20, r=32, p=16, dklen=64)


class RoleFileError(UserFacingError):
    """A role record or file that cannot be used (damaged, weak cost parameters, unreadable site file)."""


def validate_params(params: ScryptParams) -> None:
    """Raise RoleFileError unless N is a power of two and every value lies within the floor and the maxima."""
    floor, top = SCRYPT_FLOOR, SCRYPT_MAX
    for name in ("n", "r", "p", "dklen"):
        value = getattr(params, name)
        if isinstance(value, bool) or not isinstance(value, int) or not getattr(floor, name) <= value <= getattr(top, name):
            raise RoleFileError(f"scrypt parameter {name}={value!r} is outside the accepted range "
                                f"{getattr(floor, name)}..{getattr(top, name)}",
                                hint="set the passphrase again (or restore the role file from a backup)")
    if params.n & (params.n - 1):
        raise RoleFileError(f"scrypt parameter n={params.n} is not a power of two")


def record_params(record: Any) -> tuple[ScryptParams, bytes, bytes]:
    """The validated cost parameters, salt and hash of a stored record (RoleFileError when unusable)."""
    try:
        if record.get("algorithm", "scrypt") != "scrypt":
            raise ValueError(f"unknown algorithm {record.get('algorithm')!r}")
        values = [record[k] for k in ("n", "r", "p", "dklen")]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ValueError("cost parameters must be integers")
        params = ScryptParams(*values)
        salt = base64.b64decode(record["salt"], validate=True)
        expected = base64.b64decode(record["hash"], validate=True)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise RoleFileError(f"a stored passphrase record is damaged ({exc})",
                            hint="set the passphrase again (or restore the role file from a backup)") from None
    validate_params(params)
    if len(salt) < 16 or len(expected) != params.dklen:
        raise RoleFileError("a stored passphrase record is damaged (short salt or wrong hash length)")
    return params, salt, expected


class PassphraseRecord(TypedDict):
    """A stored passphrase hash (JSON in the roles file): scrypt with its cost parameters, base64 salt and hash."""

    algorithm: str
    n: int
    r: int
    p: int
    dklen: int
    salt: str
    hash: str


def hash_passphrase(passphrase: str, params: ScryptParams = DEFAULT_PARAMS,
                    salt: bytes | None = None) -> PassphraseRecord:
    """A self-describing record: algorithm, cost parameters, salt and hash (base64)."""
    validate_params(params)
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = _scrypt(passphrase, salt, params)
    return {"algorithm": "scrypt", "n": params.n, "r": params.r, "p": params.p, "dklen": params.dklen,
            "salt": base64.b64encode(salt).decode(), "hash": base64.b64encode(digest).decode()}


def check_passphrase(passphrase: str, record: Mapping[str, Any]) -> bool:
    """Constant-time comparison against a stored record (its own cost parameters, validated, are used).

    A damaged or weak record never verifies."""
    try:
        params, salt, expected = record_params(record)
    except RoleFileError as exc:
        log.error("the stored passphrase record is unusable: %s", exc)
        return False
    return hmac.compare_digest(_scrypt(passphrase, salt, params), expected)


def _scrypt(passphrase: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, n=params.n, r=params.r, p=params.p,
                          dklen=params.dklen, maxmem=params.maxmem)


def validate_new_passphrase(new: str, confirm: str | None = None) -> None:
    """Raise PassphraseError when ``new`` is too weak or does not match its confirmation."""
    if confirm is not None and new != confirm:
        raise PassphraseError("The two passphrases do not match.")
    if len(new.strip()) < MIN_LENGTH:
        raise PassphraseError(f"A passphrase needs at least {MIN_LENGTH} characters.")


class RoleStore:
    """The passphrase hashes and the failed-attempt record, in one private JSON file."""

    def __init__(self, path: Path | None = None, *, audit: AuditCallable | None = None,
                 clock: Callable[[], float] = time.time, params: ScryptParams = DEFAULT_PARAMS,
                 site_path: Path | None = None, history: RoleHistory | None = None) -> None:
        self.path = Path(path) if path else paths.config_dir() / FILE_NAME
        self.site_path = Path(site_path) if site_path else paths.site_config_dir() / FILE_NAME
        self.audit = audit
        self.clock = clock
        self.params = params
        self.history = history

    # -- the file ---------------------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        """{"hashes": the effective hashes (the site's when there is a site file), "failures": ...}."""
        data = self._read_user()
        for role, record in data["hashes"].items():
            if role in PROTECTED_ROLES:
                try:
                    record_params(record)
                except RoleFileError as exc:
                    raise RoleFileError(f"{self.path}: the {role} passphrase record is unusable: {exc}",
                                        hint="restore the role file from a backup, or delete it and set new "
                                        "passphrases") from None
        data["user_hashes"] = data["hashes"]
        site = self._read_site()
        data["site"] = site is not None
        if site is not None:
            data["hashes"] = site
        return data

    def _read_site(self) -> dict[str, Any] | None:
        """The site's role hashes, None when there is no site file; RoleFileError (fail closed) when unusable.

        Checked with stat before opening: a FIFO or device would block or never end."""
        path = self.site_path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RoleFileError(f"{path}: the site role file cannot be read ({exc.strerror or exc}); the auditor "
                                f"and admin roles stay locked", hint="ask the site administrator") from None
        why = None
        if not stat.S_ISREG(st.st_mode):
            why = "not a regular file"
        elif st.st_size > SITE_FILE_MAX_BYTES:
            why = f"larger than {SITE_FILE_MAX_BYTES} bytes"
        data: Any = None
        if why is None:
            try:   # the shared reader: non-blocking open, re-checked after it (a FIFO swapped in cannot hang)
                data = json.loads(read_regular_file(path, SITE_FILE_MAX_BYTES).decode("utf-8"))
            except NotReadableFile as exc:
                why = f"cannot be read ({exc.why})"
            except (ValueError, RecursionError) as exc:
                why = f"cannot be read ({exc})"
        if why is None:
            hashes = data.get("hashes") if isinstance(data, dict) else None
            if not isinstance(hashes, dict) or not hashes or set(hashes) - set(PROTECTED_ROLES):
                why = 'it must hold {"hashes": {"auditor": {...}, "admin": {...}}}'
            else:
                try:
                    for record in hashes.values():
                        record_params(record)
                except RoleFileError as exc:
                    why = str(exc)
        if why is not None:
            raise RoleFileError(f"{path}: the site role file is unusable: {why}; the auditor and admin roles "
                                f"stay locked", hint="ask the site administrator")
        return hashes

    def _read_user(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"hashes": {}, "failures": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserFacingError(f"{self.path}: the role file cannot be read ({exc})",
                                  hint="restore it from a backup or delete it to set new passphrases") from None
        if isinstance(data, dict):
            data.setdefault("hashes", {})
            data.setdefault("failures", {})
        if not (isinstance(data, dict) and isinstance(data["hashes"], dict) and isinstance(data["failures"], dict)
                and all(isinstance(v, list) and all(isinstance(t, (int, float)) for t in v)
                        for v in data["failures"].values())):
            raise UserFacingError(f"{self.path}: the role file is damaged",
                                  hint="restore it from a backup or delete it to set new passphrases")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        stored = {"hashes": data.get("user_hashes", data["hashes"]), "failures": data["failures"]}
        try:
            atomic_write_text(self.path, json.dumps(stored, indent=2), mode=0o600)
        except OSError as exc:
            raise UserFacingError(f"{self.path}: the role file cannot be saved ({exc.strerror or exc})",
                                  hint="check that the configuration folder is writable") from None

    def _event(self, actor: str, action: str, details: dict[str, Any]) -> None:
        if self.audit is None:
            return
        try:
            self.audit(actor=actor, action=action, details=details)
        except Exception:  # the unlock itself must not fail because the log is busy; say so loudly
            log.exception("could not write %s to the audit log", action)

    # -- queries -----------------------------------------------------------------------------------
    @staticmethod
    def _check_role(role: str) -> None:
        if role not in PROTECTED_ROLES:
            raise ValueError(f"role {role!r} has no passphrase (expected one of {PROTECTED_ROLES})")

    def has_passphrase(self, role: str) -> bool:
        """True when the role is protected: a hash is stored, or the audit log says one was (file lost it)."""
        self._check_role(role)
        return role in self._read()["hashes"] or self._lost_since(role) is not None

    def missing(self) -> list[str]:
        """Roles that still need a passphrase (the first-use setup asks for these)."""
        return [r for r in PROTECTED_ROLES if not self.has_passphrase(r)]

    @property
    def site_managed(self) -> bool:
        """True when the passphrases come from the site file (they cannot be set or changed here)."""
        return bool(self._read()["site"])

    def _history(self, role: str) -> list[tuple[float, str]]:
        if self.history is None:
            return []
        try:
            return sorted(self.history(role), reverse=True)
        except Exception:   # the file's own record still applies; say so
            log.exception("could not read the %s role history from the audit log", role)
            return []

    def _lost_since(self, role: str) -> float | None:
        """When the audit log last recorded this role's passphrase being set, if the role file has no hash."""
        data = self._read()
        if role in data["hashes"]:
            return None
        return next((t for t, action in self._history(role) if action in SET_ACTIONS), None)

    def _recent_failures(self, data: dict[str, Any], role: str) -> list[float]:
        """Failures that can still matter: within the window, or holding a lockout open."""
        cutoff = self.clock() - WINDOW_S - LOCKOUT_S
        return [t for t in data["failures"].get(role, []) if t > cutoff]

    def _logged_failures(self, role: str) -> list[float]:
        """The audit log's failed unlocks since the role's last unlock or passphrase change."""
        cutoff = self.clock() - WINDOW_S - LOCKOUT_S
        out: list[float] = []
        for t, action in self._history(role):   # newest first
            if action == "role.unlock" or action in SET_ACTIONS:
                break
            if action == "role.unlock_failed" and t > cutoff:
                out.append(t)
        return out

    def _current_wait(self, data: dict[str, Any], role: str) -> tuple[float, list[float]]:
        """(seconds to wait, the failures that set it): the stricter of the role file and the audit log."""
        now = self.clock()
        own = self._recent_failures(data, role)
        logged = self._logged_failures(role)
        return max(((_wait(own, now), own), (_wait(logged, now), logged)), key=lambda w: (w[0], len(w[1])))

    def retry_after(self, role: str) -> float:
        """Seconds to wait before the next attempt is accepted (0 when it may be tried now)."""
        self._check_role(role)
        return self._current_wait(self._read(), role)[0]

    # -- changes -----------------------------------------------------------------------------------
    def set_initial(self, role: str, new: str, confirm: str | None = None) -> None:
        """First-use setup: only allowed while the role has no passphrase yet."""
        self._check_role(role)
        if self.has_passphrase(role):
            raise PassphraseError(f"The {ROLE_TITLES[role].lower()} passphrase is already set.",
                                  hint="change it from the admin settings")
        self._store(role, new, confirm, actor=role, action="role.passphrase_set")

    def change(self, role: str, current: str, new: str, confirm: str | None = None) -> None:
        """Change a passphrase, proving the current one (the attempt counts towards the limit)."""
        self.verify(role, current)
        self._store(role, new, confirm, actor=role, action="role.passphrase_changed")

    def reset(self, role: str, new: str, confirm: str | None = None, *, actor: str = ADMIN) -> None:
        """Replace a passphrase with admin authority (the caller holds an unlocked admin view)."""
        self._store(role, new, confirm, actor=actor, action="role.passphrase_reset")

    def _store(self, role: str, new: str, confirm: str | None, *, actor: str, action: str) -> None:
        self._check_role(role)
        validate_new_passphrase(new, confirm)
        data = self._read()
        if data["site"]:
            raise PassphraseError(f"The passphrases are managed by the site policy ({self.site_path}).",
                                  hint="ask the site administrator")
        other = ADMIN if role == AUDITOR else AUDITOR
        if other in data["hashes"] and check_passphrase(new, data["hashes"][other]):
            raise PassphraseError("Use different passphrases for the auditor and the admin.")
        data["user_hashes"][role] = hash_passphrase(new, self.params)
        data["failures"].pop(role, None)
        self._write(data)
        self._event(actor, action, {"role": role})
        log.info("%s passphrase stored (%s)", role, action)

    # -- unlocking ---------------------------------------------------------------------------------
    def matches(self, role: str, passphrase: str) -> bool:
        """Whether ``passphrase`` is the role's, without recording anything (callers then ``verify``)."""
        self._check_role(role)
        record = self._read()["hashes"].get(role)
        return record is not None and check_passphrase(passphrase, record)

    def verify(self, role: str, passphrase: str) -> None:
        """Return when ``passphrase`` is right; raise AccessDeniedError when wrong or rate-limited.

        A refused attempt while waiting is not checked at all (and costs nothing more)."""
        self._check_role(role)
        data = self._read()
        record = data["hashes"].get(role)
        if record is None:
            lost = self._lost_since(role)
            if lost is not None:
                self._event(role, "role.unlock_refused", {"role": role, "reason": "role file lost the passphrase"})
                raise AccessDeniedError(
                    f"The role file ({self.path}) no longer holds the {ROLE_TITLES[role].lower()} passphrase that "
                    f"the audit log records (set {datetime.fromtimestamp(lost).isoformat(timespec='seconds')}): "
                    "the role stays locked.", hint="restore the role file from a backup, or ask the site "
                    "administrator to provide the role passphrases")
            raise AccessDeniedError(f"No {ROLE_TITLES[role].lower()} passphrase has been set yet.")
        wait, recent = self._current_wait(data, role)
        recent = list(recent)
        if wait > 0:
            self._event(role, "role.unlock_refused", {"role": role, "retry_after_s": round(wait, 1)})
            raise AccessDeniedError(_wait_message(wait, len(_in_window(recent))))
        if check_passphrase(passphrase, record):
            if data["failures"].get(role):
                data["failures"].pop(role, None)
                self._write(data)
            self._event(role, "role.unlock", {"role": role})
            return
        recent.append(self.clock())
        data["failures"][role] = recent
        self._write(data)
        count = len(_in_window(recent))
        details = {"role": role, "failures_in_window": count}
        self._event(role, "role.unlock_failed", details)
        wait = _wait(recent, self.clock())
        if count >= MAX_FAILURES:
            self._event(role, "role.locked_out", {**details, "lockout_s": LOCKOUT_S})
        message = "Wrong passphrase."
        if wait > 0:
            message += " " + _wait_message(wait, count)
        raise AccessDeniedError(message)


def _in_window(failures: list[float]) -> list[float]:
    """The failures within WINDOW_S up to the latest one (the run that sets the wait)."""
    if not failures:
        return []
    last = max(failures)
    return [t for t in failures if t > last - WINDOW_S]


def _wait(failures: list[float], now: float) -> float:
    """Seconds until the next attempt: 0 for the first FREE_FAILURES, then doubling; lockout at MAX."""
    run = _in_window(failures)
    if len(run) < FREE_FAILURES:
        return 0.0
    if len(run) >= MAX_FAILURES:
        delay = LOCKOUT_S
    else:
        delay = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (len(run) - FREE_FAILURES))
    return max(0.0, max(run) + delay - now)


def _wait_message(wait: float, failures: int) -> str:
    if failures >= MAX_FAILURES:
        return f"Too many wrong passphrases: locked for {_human(wait)}."
    return f"Too many attempts: try again in {_human(wait)}."


def _human(seconds: float) -> str:
    seconds = max(1, int(seconds + 0.999))
    if seconds < 90:
        return f"{seconds} s"
    return f"{(seconds + 59) // 60} min"


class IdleLock:
    """When an unlocked view must lock again: ``timeout_s`` after the last ``touch()``."""

    def __init__(self, timeout_s: float = RELOCK_AFTER_S, clock: Callable[[], float] = time.monotonic) -> None:
        if timeout_s <= 0:
            raise ValueError("the idle timeout must be positive")
        self.timeout_s = timeout_s
        self.clock = clock
        self._unlocked_at: float | None = None
        self._last: float | None = None

    def unlock(self) -> None:
        self._unlocked_at = self._last = self.clock()

    def lock(self) -> None:
        self._unlocked_at = self._last = None

    def touch(self) -> None:
        """User activity: postpone the relock (ignored while locked)."""
        if self._last is not None:
            self._last = self.clock()

    @property
    def locked(self) -> bool:
        if self._last is None:
            return True
        if self.clock() - self._last >= self.timeout_s:
            self.lock()
            return True
        return False

    def remaining(self) -> float:
        """Seconds before the relock (0 when locked)."""
        if self.locked or self._last is None:
            return 0.0
        return max(0.0, self.timeout_s - (self.clock() - self._last))


def history_from(audit_log: Any, *, limit: int = 4 * MAX_FAILURES) -> RoleHistory:
    """A ``RoleHistory`` read from an audit log's chained admin events (``list_admin_events``)."""

    def history(role: str) -> list[tuple[float, str]]:
        out: list[tuple[float, str]] = []
        for action in HISTORY_ACTIONS:
            for event in audit_log.list_admin_events(action=action, limit=limit):
                if (event.get("details") or {}).get("role") != role:
                    continue
                try:
                    moment = datetime.fromisoformat(str(event["created"]).replace("Z", "+00:00"))
                except ValueError:
                    continue
                out.append((moment.timestamp(), action))
        return sorted(out, reverse=True)

    return history
