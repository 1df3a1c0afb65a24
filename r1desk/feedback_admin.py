"""Enabling, disabling and rolling back the feedback classifier: a settings change (``guard.feedback_model``)
recorded in the audit log. Shared by ``r1desk guard`` and Admin → Classifiers (settings layer: core never
imports this).

Each change logs a chained ``classifier.enable`` admin event with the version before and after, so
"rollback" is one step back along those events and the period report can say which version was in force.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Protocol

from r1desk.core.feedback import versions
from r1desk.errors import UserFacingError
from r1desk.settings import SettingsStore

ENABLE_EVENT = "classifier.enable"
IMPORT_EVENT = "classifier.import"


class AdminLog(Protocol):
    def log_admin_event(self, *, actor: str, action: str, details: dict[str, Any] | None = None) -> int: ...
    def list_admin_events(self, *, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]: ...


def current(store: SettingsStore) -> str | None:
    return store.current.guard.feedback_model


def _set(store: SettingsStore, audit: AdminLog, version: str | None, actor: str, why: str) -> str | None:
    old = current(store)
    settings = store.current
    new = dataclasses.replace(settings, guard=dataclasses.replace(settings.guard, feedback_model=version))
    store.save(new)
    audit.log_admin_event(actor=actor, action=ENABLE_EVENT, details={
        "classifier": versions.CLASSIFIER, "version": version, "previous": old, "reason": why})
    return old


def enable(store: SettingsStore, audit: AdminLog, version: str, *, actor: str) -> str | None:
    """Enable ``version``; refuses (UserFacingError, in plain words) one trained on too few examples."""
    v = versions.get(version)
    if not v.eligible:
        raise UserFacingError(f"{version} cannot be enabled: " + "; ".join(v.problems),
                              hint="review more turns or import labelled examples, then train again")
    return _set(store, audit, version, actor, "enable")


def disable(store: SettingsStore, audit: AdminLog, *, actor: str) -> str | None:
    return _set(store, audit, None, actor, "disable")


def rollback(store: SettingsStore, audit: AdminLog, *, actor: str) -> str | None:
    """Go back to the version in force before the current one (None: the classifier off). Returns it."""
    now = current(store)
    for event in audit.list_admin_events(limit=1000, action=ENABLE_EVENT):
        details = event.get("details") or {}
        if details.get("reason") == "rollback":      # step further back, never undo a rollback
            continue
        if details.get("version") == now and details.get("classifier") == versions.CLASSIFIER:
            previous = details.get("previous")
            if previous:
                versions.get(previous)      # still there
            _set(store, audit, previous, actor, "rollback")
            return previous
    raise UserFacingError("There is nothing to roll back to: the current feedback classifier setting was not "
                          "made through r1desk guard enable")


def change(store: SettingsStore, audit: AdminLog, what: str, *, version: str | None = None,
           actor: str) -> tuple[str | None, str | None]:
    """``what``: "enable" (``version``), "disable" or "rollback"; returns (version before, version after)."""
    if what == "enable":
        if version is None:
            raise ValueError("enable needs a version")
        return enable(store, audit, version, actor=actor), version
    if what == "disable":
        return disable(store, audit, actor=actor), None
    old = current(store)
    return old, rollback(store, audit, actor=actor)


def import_examples(audit: AdminLog, path: Path, *, actor: str,
                    fmt: str = "auto") -> tuple[Path, list[Any], list[str]]:
    """Keep a labelled CSV/JSONL file's examples for every later training, logged as ``classifier.import``.
    Returns (stored file, examples, problems: the lines skipped and why)."""
    dest, examples, problems = versions.import_file(Path(path), fmt=fmt)
    audit.log_admin_event(actor=actor, action=IMPORT_EVENT, details={
        "file": str(path), "stored": dest.name, "examples": len(examples)})
    return dest, list(examples), problems
