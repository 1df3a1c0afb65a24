"""API keys for servers, kept in the operating system's credential store through ``keyring``.

A key is never written to the settings file, the audit log or the log. It is stored per server (the base
URL without credentials). Where no credential store exists (a headless Linux box without a Secret Service,
keyring's "fail" backend), ``store_available()`` is False: the app and the CLI say so and ask for the key
each time rather than keep it in plain text.
"""
from __future__ import annotations

import logging
from typing import Any

from r1desk.errors import UserFacingError

log = logging.getLogger("r1desk.remote")

SERVICE = "r1desk-remote-server"


class CredentialStoreError(UserFacingError):
    """No credential store on this computer, or it refused the operation."""


class Secret(str):
    """An API key: a str that never shows itself in repr() (config dumps, tracebacks)."""

    def __repr__(self) -> str:
        return "Secret('***')"


def _backend() -> Any:
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        kr = keyring.get_keyring()
    except Exception as exc:  # a broken keyring configuration means "no store", not a crash
        log.info("no credential store: %s", exc)
        return None
    if isinstance(kr, fail.Keyring) or getattr(kr, "priority", 1) <= 0:
        return None
    return kr


def store_available() -> bool:
    return _backend() is not None


def unavailable_message() -> str:
    return ("this computer has no credential store (no keyring backend, e.g. a headless Linux box without a "
            "Secret Service), so r1desk does not store the API key: it asks for it each time")


def get_api_key(server_url: str) -> Secret | None:
    kr = _backend()
    if kr is None:
        return None
    try:
        key = kr.get_password(SERVICE, server_url)
    except Exception as exc:
        log.warning("the credential store could not be read: %s", type(exc).__name__)
        return None
    return Secret(key) if key else None


def set_api_key(server_url: str, key: str) -> None:
    kr = _backend()
    if kr is None:
        raise CredentialStoreError(unavailable_message())
    try:
        kr.set_password(SERVICE, server_url, key)
    except Exception as exc:
        raise CredentialStoreError(f"the credential store refused to keep the key: {type(exc).__name__}") from None


def delete_api_key(server_url: str) -> bool:
    kr = _backend()
    if kr is None:
        return False
    try:
        kr.delete_password(SERVICE, server_url)
    except Exception:
        return False
    return True
