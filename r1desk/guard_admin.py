"""Choosing the guard model (the harm filter): an admin settings change (``guard.harm_model``,
``guard.harm_threads``, ``guard.harm_gpu_layers``) recorded in the audit log as the admin view records
its saves — one ``settings.change`` admin event listing every changed key (old → new).

Shared by ``r1desk models guard use|off`` and the model manager's Safety models tab (settings layer:
core never imports this). The caller has already passed the admin gate (``cli/auth.py`` /
``ui/safety_models.py``); this module validates, saves and audits.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Protocol

from r1desk.core.guard.harm import install
from r1desk.settings import Settings, save_settings, settings_diff

SETTINGS_EVENT = "settings.change"
_KEEP: Any = object()


class AdminLog(Protocol):
    def log_admin_event(self, *, actor: str, action: str, details: dict[str, Any] | None = None) -> int: ...


Change = tuple[str, Any, Any]


def change(settings: Settings, audit: AdminLog | None, *, actor: str, model: str | os.PathLike[str] | None = _KEEP,
           threads: int | None = None, gpu_layers: int | None = None,
           path: Path | None = None) -> tuple[Settings, list[Change]]:
    """Validate, save (``path``: the settings file, default the user's) and audit; returns the new settings
    and the changes. ``model``: a guard GGUF (checked: a supported guard model), None to turn the harm
    filter off, left out to keep it. Raises ModelFileError / SettingsError before anything is saved."""
    guard = settings.guard
    updates: dict[str, Any] = {}
    chosen: install.InstalledGuard | None = None
    if model is not _KEEP:
        if model is None:
            updates["harm_model"] = None
        else:
            chosen = install.check_guard_model(model)
            updates["harm_model"] = str(chosen.path)
    if threads is not None:
        updates["harm_threads"] = int(threads)
    if gpu_layers is not None:
        updates["harm_gpu_layers"] = int(gpu_layers)
    new = dataclasses.replace(settings, guard=dataclasses.replace(guard, **updates))
    diff = settings_diff(settings, new)
    if not diff:
        return settings, []
    save_settings(new, path)           # validates (ranges, site-locked keys) before writing
    if audit is not None:
        details: dict[str, Any] = {"changes": [{"key": k, "old": old, "new": value} for k, old, value in diff]}
        if chosen is not None:
            details["guard_model"] = {"profile": chosen.profile.id, "name": chosen.info.name,
                                      "size_bytes": chosen.info.size_bytes}
        audit.log_admin_event(actor=actor, action=SETTINGS_EVENT, details=details)
    return new, diff


def use(settings: Settings, audit: AdminLog | None, model: str | os.PathLike[str], *, actor: str,
        threads: int | None = None, gpu_layers: int | None = None,
        path: Path | None = None) -> tuple[Settings, list[Change]]:
    """Make ``model`` the harm filter's guard model."""
    return change(settings, audit, actor=actor, model=model, threads=threads, gpu_layers=gpu_layers, path=path)


def off(settings: Settings, audit: AdminLog | None, *, actor: str,
        path: Path | None = None) -> tuple[Settings, list[Change]]:
    """No guard model: the harm filter is not installed (toxicity only)."""
    return change(settings, audit, actor=actor, model=None, path=path)


def in_use(settings: Settings, model: str | os.PathLike[str]) -> bool:
    current = settings.guard.harm_model
    if not current:
        return False
    try:
        return Path(current).resolve() == Path(model).resolve()
    except OSError:
        return False
