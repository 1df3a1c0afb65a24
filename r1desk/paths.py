"""Where r1desk keeps its files.

Everything goes through these functions so that one environment variable, ``R1DESK_HOME``,
moves the whole profile (the tests point it at a temporary folder and never touch the real one) —
except the site configuration, which stays at a fixed system path (``SITE_CONFIG_DIR``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "r1desk"
HOME_ENV = "R1DESK_HOME"


def _home_override() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """User data: the audit database, downloaded models and classifier weights."""
    home = _home_override()
    return _ensure(home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)))


def config_dir() -> Path:
    """User configuration: settings.json (policy, generation defaults), role passphrase hashes."""
    home = _home_override()
    return _ensure(home / "config" if home else Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)))


def cache_dir() -> Path:
    """Re-creatable data: sha256 cache, partial downloads."""
    home = _home_override()
    return _ensure(home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)))


def log_dir() -> Path:
    home = _home_override()
    return _ensure(home / "logs" if home else Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)))


def _system_site_dir() -> Path:
    if sys.platform.startswith("win"):
        return Path(os.environ.get("PROGRAMDATA") or r"C:\ProgramData") / APP_NAME
    if sys.platform == "darwin":
        return Path("/Library/Application Support") / APP_NAME
    return Path("/etc/xdg") / APP_NAME


# Fixed system location: never moved by R1DESK_HOME or XDG_CONFIG_DIRS (the user sets those, and the site
# policy exists to bind the user). Tests monkeypatch this constant, not an environment variable.
SITE_CONFIG_DIR: Path = _system_site_dir()


def site_config_dir() -> Path:
    """System-wide configuration an organisation uses to lock the policy and provide the role passphrases
    (``policy.json``, ``roles.json``; read-only for users). Not created here."""
    return SITE_CONFIG_DIR


def models_dir() -> Path:
    return _ensure(data_dir() / "models")


def guard_models_dir() -> Path:
    """Guard-model GGUFs (the harm filter), apart from the chat models so neither list shows the other's."""
    return _ensure(data_dir() / "guard-models")


def classifiers_dir() -> Path:
    """Detoxify checkpoints and their HF config/tokenizer folders, loaded offline from here."""
    return _ensure(data_dir() / "classifiers")


def audit_db_path() -> Path:
    return data_dir() / "audit.db"


def settings_path() -> Path:
    return config_dir() / "settings.json"
