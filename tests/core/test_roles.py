"""Roles: scrypt hashes on disk (0600), verification, rate limit with a fake clock, idle relock."""
from __future__ import annotations

import json
import stat

import pytest

from r1desk import paths
from r1desk.core import roles
from r1desk.core.roles import ADMIN, AUDITOR, IdleLock, PassphraseError, RoleStore, ScryptParams
from r1desk.errors import AccessDeniedError

FAST = ScryptParams(n=2 ** 10, r=8, p=1)   # the real cost is pointless in tests


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def events() -> list[tuple[str, str, dict]]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(events, clock) -> RoleStore:
    def audit(*, actor, action, details):
        events.append((actor, action, details))
    s = RoleStore(audit=audit, clock=clock, params=FAST)
    s.set_initial(AUDITOR, "auditor pass 1")
    s.set_initial(ADMIN, "admin pass 123")
    events.clear()
    return s


def test_file_is_private_and_holds_no_passphrase(store):
    path = paths.config_dir() / roles.FILE_NAME
    assert path == store.path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "auditor pass 1" not in text and "admin pass 123" not in text
    record = json.loads(text)["hashes"][AUDITOR]
    assert record["algorithm"] == "scrypt" and len(record["salt"]) >= 20


def test_default_cost_is_slow_enough():
    assert roles.DEFAULT_PARAMS.n >= 2 ** 14 and roles.DEFAULT_PARAMS.r >= 8


def test_same_passphrase_different_salt():
    a, b = roles.hash_passphrase("same thing", FAST), roles.hash_passphrase("same thing", FAST)
    assert a["salt"] != b["salt"] and a["hash"] != b["hash"]
    assert roles.check_passphrase("same thing", a) and not roles.check_passphrase("same thinG", a)


def test_damaged_record_never_verifies():
    assert not roles.check_passphrase("x", {"algorithm": "scrypt", "salt": "!!"})


def test_missing_roles_on_first_use(events):
    s = RoleStore(audit=None, params=FAST)
    assert s.missing() == [AUDITOR, ADMIN]
    s.set_initial(AUDITOR, "longenough")
    assert s.missing() == [ADMIN]
    with pytest.raises(PassphraseError):
        s.set_initial(AUDITOR, "another one")


def test_right_passphrase_unlocks_and_is_logged(store, events):
    store.verify(AUDITOR, "auditor pass 1")
    assert events == [(AUDITOR, "role.unlock", {"role": AUDITOR})]


def test_wrong_passphrase_is_refused_and_logged(store, events):
    with pytest.raises(AccessDeniedError, match="Wrong passphrase"):
        store.verify(AUDITOR, "admin pass 123")  # another role's passphrase does not open this one
    assert events[-1][1] == "role.unlock_failed"
    assert events[-1][2]["failures_in_window"] == 1
    assert "admin pass 123" not in json.dumps(events)


def test_rate_limit_backs_off_then_locks_out(store, clock, events):
    for _ in range(roles.FREE_FAILURES - 1):
        with pytest.raises(AccessDeniedError):
            store.verify(ADMIN, "nope")
    assert store.retry_after(ADMIN) == 0
    with pytest.raises(AccessDeniedError, match="try again in 2 s"):
        store.verify(ADMIN, "nope")
    assert store.retry_after(ADMIN) == pytest.approx(roles.BASE_DELAY_S)
    # while waiting, even the right passphrase is refused (and is not checked)
    with pytest.raises(AccessDeniedError, match="try again"):
        store.verify(ADMIN, "admin pass 123")
    assert events[-1][1] == "role.unlock_refused"
    clock.advance(roles.BASE_DELAY_S)
    with pytest.raises(AccessDeniedError):
        store.verify(ADMIN, "nope")
    assert store.retry_after(ADMIN) == pytest.approx(2 * roles.BASE_DELAY_S)  # doubled
    # keep failing until the lockout
    while len([e for e in events if e[1] == "role.unlock_failed"]) < roles.MAX_FAILURES:
        clock.advance(store.retry_after(ADMIN))
        with pytest.raises(AccessDeniedError):
            store.verify(ADMIN, "nope")
    assert any(e[1] == "role.locked_out" for e in events)
    assert store.retry_after(ADMIN) == pytest.approx(roles.LOCKOUT_S)
    clock.advance(roles.LOCKOUT_S - 1)
    with pytest.raises(AccessDeniedError, match="locked"):
        store.verify(ADMIN, "admin pass 123")
    clock.advance(1)
    store.verify(ADMIN, "admin pass 123")
    assert store.retry_after(ADMIN) == 0   # success clears the record
    # the other role was never affected
    store.verify(AUDITOR, "auditor pass 1")


def test_failures_survive_a_restart(store, clock):
    for _ in range(roles.FREE_FAILURES):
        with pytest.raises(AccessDeniedError):
            store.verify(AUDITOR, "nope")
    fresh = RoleStore(clock=clock, params=FAST)
    assert fresh.retry_after(AUDITOR) > 0


def test_old_failures_leave_the_window(store, clock):
    for _ in range(roles.FREE_FAILURES):
        with pytest.raises(AccessDeniedError):
            store.verify(AUDITOR, "nope")
    clock.advance(roles.WINDOW_S + 1)
    assert store.retry_after(AUDITOR) == 0
    store.verify(AUDITOR, "auditor pass 1")


def test_change_needs_the_current_passphrase(store, events):
    with pytest.raises(AccessDeniedError):
        store.change(AUDITOR, "wrong", "brand new pass", "brand new pass")
    store.change(AUDITOR, "auditor pass 1", "brand new pass", "brand new pass")
    assert events[-1][1] == "role.passphrase_changed"
    with pytest.raises(AccessDeniedError):
        store.verify(AUDITOR, "auditor pass 1")
    store.verify(AUDITOR, "brand new pass")


@pytest.mark.parametrize("new, confirm, message", [
    ("short", "short", "at least"),
    ("        spaces   ", "        spaces   ", "at least"),
    ("long enough one", "long enough two", "do not match"),
    ("admin pass 123", "admin pass 123", "different passphrases"),
])
def test_bad_new_passphrases(store, new, confirm, message):
    with pytest.raises(PassphraseError, match=message):
        store.reset(AUDITOR, new, confirm)
    store.verify(AUDITOR, "auditor pass 1")   # unchanged


def test_reset_with_admin_authority(store, events):
    store.reset(AUDITOR, "reset by admin", actor=ADMIN)
    assert events[-1] == (ADMIN, "role.passphrase_reset", {"role": AUDITOR})
    store.verify(AUDITOR, "reset by admin")


def test_unknown_role_and_unset_role():
    s = RoleStore(params=FAST)
    with pytest.raises(ValueError):
        s.verify("user", "x")
    with pytest.raises(AccessDeniedError, match="has been set"):
        s.verify(AUDITOR, "anything")


def test_damaged_file_is_a_user_facing_error(store):
    store.path.write_text("{not json")
    from r1desk.errors import UserFacingError
    with pytest.raises(UserFacingError, match="cannot be read"):
        store.verify(AUDITOR, "auditor pass 1")


@pytest.mark.parametrize("content", ['[1, 2]', '{"hashes": []}', '{"hashes": {}, "failures": {"auditor": "x"}}',
                                     '{"hashes": {}, "failures": {"auditor": ["soon"]}}'])
def test_damaged_file_structure_is_a_user_facing_error(store, content):
    store.path.write_text(content)
    from r1desk.errors import UserFacingError
    with pytest.raises(UserFacingError, match="damaged"):
        store.verify(AUDITOR, "auditor pass 1")


def test_unwritable_role_file_is_a_user_facing_error(store, monkeypatch):
    from r1desk.errors import UserFacingError

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(roles, "atomic_write_text", disk_full)
    with pytest.raises(UserFacingError, match="cannot be saved.*No space left"):
        store.verify(AUDITOR, "wrong passphrase")


def test_audit_failure_does_not_break_unlock(clock, caplog):
    def broken(**_):
        raise RuntimeError("database is locked")
    s = RoleStore(audit=broken, clock=clock, params=FAST)
    s.set_initial(AUDITOR, "auditor pass 1")
    s.verify(AUDITOR, "auditor pass 1")
    assert "could not write" in caplog.text


def test_idle_lock(clock):
    idle = IdleLock(60, clock=clock)
    assert idle.locked
    idle.touch()                 # activity while locked does not unlock
    assert idle.locked
    idle.unlock()
    clock.advance(59)
    assert not idle.locked and idle.remaining() == pytest.approx(1)
    idle.touch()
    clock.advance(59)
    assert not idle.locked
    clock.advance(1)
    assert idle.locked and idle.remaining() == 0
    idle.touch()
    assert idle.locked
    with pytest.raises(ValueError):
        IdleLock(0)


# --- hardening: cost floor, site hashes, lockout and lost passphrases read back from the audit log ------
@pytest.mark.parametrize("change", [{"n": 2, "r": 1}, {"n": 2 ** 10}, {"r": 1}, {"p": 0}, {"n": 2 ** 30},
                                    {"p": 10 ** 6}, {"n": 3 * 2 ** 14}, {"n": "16384"}, {"salt": "!!"},
                                    {"hash": ""}, {"n": None}])
def test_weak_or_invalid_parameters_are_refused_clearly(change, monkeypatch):
    monkeypatch.setattr(roles, "SCRYPT_FLOOR", roles.SHIPPED_SCRYPT_FLOOR)
    assert roles.SHIPPED_SCRYPT_FLOOR.n >= 2 ** 14 and roles.SHIPPED_SCRYPT_FLOOR.r >= 8
    s = RoleStore(params=ScryptParams(n=2 ** 14))
    s.set_initial(AUDITOR, "auditor pass 1")
    data = json.loads(s.path.read_text())
    data["hashes"][AUDITOR].update(change)
    s.path.write_text(json.dumps(data))
    with pytest.raises(roles.RoleFileError):
        s.verify(AUDITOR, "auditor pass 1")
    assert not roles.check_passphrase("auditor pass 1", data["hashes"][AUDITOR])
    with pytest.raises(roles.RoleFileError):
        RoleStore(params=ScryptParams(n=2, r=1))._store(ADMIN, "long enough x", None, actor="a", action="b")


def _site(tmp_path, hashes):
    site = paths.site_config_dir()
    site.mkdir(parents=True, exist_ok=True)
    (site / roles.FILE_NAME).write_text(json.dumps({"hashes": hashes}))
    return site / roles.FILE_NAME


def test_site_hashes_win_and_deleting_the_user_file_reopens_nothing(store, tmp_path):
    site = _site(tmp_path, {AUDITOR: roles.hash_passphrase("site auditor pw", FAST),
                            ADMIN: roles.hash_passphrase("site admin pw!", FAST)})
    store.path.unlink()
    fresh = RoleStore(params=FAST)
    assert fresh.missing() == [] and fresh.site_managed
    fresh.verify(AUDITOR, "site auditor pw")
    with pytest.raises(AccessDeniedError):
        fresh.verify(AUDITOR, "auditor pass 1")          # the user file's old hash no longer counts
    with pytest.raises(PassphraseError):
        fresh.set_initial(AUDITOR, "my own passphrase")
    with pytest.raises(PassphraseError, match="site"):
        fresh.change(ADMIN, "site admin pw!", "new admin passphrase")
    assert json.loads(site.read_text())["hashes"][AUDITOR]["hash"]   # never rewritten


@pytest.mark.parametrize("content", ["{broken", "[]", '{"hashes": {}}', '{"hashes": {"root": {}}}',
                                     '{"hashes": {"auditor": {"n": 2, "r": 1, "p": 1}}}'])
def test_an_unusable_site_role_file_fails_closed(store, content):
    site = paths.site_config_dir() / roles.FILE_NAME
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text(content)
    with pytest.raises(roles.RoleFileError, match="stay locked"):
        store.verify(AUDITOR, "auditor pass 1")


def test_a_fifo_site_role_file_is_not_opened(store):
    import os

    site = paths.site_config_dir() / roles.FILE_NAME
    site.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(site)
    with pytest.raises(roles.RoleFileError, match="not a regular file"):
        store.missing()


class History:
    """What history_from reads from the audit log, recorded from the store's own events."""

    def __init__(self, clock):
        self.clock = clock
        self.rows: list[tuple[float, str, str]] = []

    def audit(self, *, actor, action, details):
        self.rows.append((self.clock(), action, details["role"]))

    def __call__(self, role):
        return sorted(((t, a) for t, a, r in self.rows if r == role), reverse=True)


def test_lockout_and_lost_passphrases_are_read_back_from_the_audit_log(clock):
    history = History(clock)
    s = RoleStore(audit=history.audit, clock=clock, params=FAST, history=history)
    s.set_initial(AUDITOR, "auditor pass 1")
    s.set_initial(ADMIN, "admin pass 123")
    for _ in range(roles.MAX_FAILURES):
        with pytest.raises(AccessDeniedError):
            s.verify(AUDITOR, "wrong")
        if any(r[1] == "role.locked_out" for r in history.rows):
            break
        clock.advance(s.retry_after(AUDITOR) or 1)
    assert any(r[1] == "role.locked_out" for r in history.rows)
    data = json.loads(s.path.read_text())
    data["failures"] = {}
    s.path.write_text(json.dumps(data))
    with pytest.raises(AccessDeniedError, match="locked"):
        s.verify(AUDITOR, "auditor pass 1")
    clock.advance(roles.LOCKOUT_S + 1)
    s.verify(AUDITOR, "auditor pass 1")
    s.path.unlink()                                   # deleting the role file
    assert s.missing() == [], "first-use setup is not offered again"
    with pytest.raises(PassphraseError):
        s.set_initial(AUDITOR, "attacker passphrase")
    with pytest.raises(AccessDeniedError, match="no longer holds"):
        s.verify(ADMIN, "anything at all")
