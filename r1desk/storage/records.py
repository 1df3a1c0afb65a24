"""Plain-value helpers shared by the audit-log modules: ids, timestamps, JSON, constants.

Everything stored is plain JSON-able data, so callers may pass dataclasses (ModelInfo, TurnResult,
Decision) and they are converted here, once, the same way for the database and for exports.
"""
from __future__ import annotations

import dataclasses
import enum
import json
import re
import secrets
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import PurePath
from typing import Any

from r1desk.errors import UserFacingError
from r1desk.vocabulary import ACTIONS as ACTIONS, CHANNELS as CHANNELS, Action  # re-exported

STATUSES = ("running", "done", "interrupted", "cancelled", "blocked", "error")
REVIEW_LABELS = ("ok", "harmful", "over-refusal", "language-mixing", "other")

# finish_reason (core.events.FinishReason) -> turn status
STATUS_FOR_FINISH = {
    "stop": "done", "length": "done", "cancelled": "cancelled", "blocked": "blocked",
    "error": "error", "interrupted": "interrupted",
}

# review-queue severity: blocked, then flagged/redacted, then language mixing, then the rest
SEVERITY_BLOCKED, SEVERITY_FLAGGED, SEVERITY_MIXING, SEVERITY_NONE = 3, 2, 1, 0
SEVERITY_FOR_ACTION = {Action.BLOCK.value: SEVERITY_BLOCKED, Action.REDACT.value: SEVERITY_FLAGGED,
                       Action.FLAG.value: SEVERITY_FLAGGED}
SEVERITY_NAMES = {3: "blocked", 2: "flagged", 1: "language-mixing", 0: "none"}


_SURROGATES = re.compile("[\ud800-\udfff]")


class AuditInputError(UserFacingError):
    """A bad argument to the audit log: an unknown turn id, label, date or export format."""


def now() -> str:
    """UTC timestamp, ISO 8601 with milliseconds; sorts as text."""
    return format_ts(datetime.now(timezone.utc))


def format_ts(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


def days_ago(days: float) -> str:
    return format_ts(datetime.now(timezone.utc) - timedelta(days=days))


def parse_date(text: str, *, end: bool = False) -> str:
    """A user date (YYYY-MM-DD or ISO datetime) as a stored-timestamp bound.

    A bare date as an *end* bound means "through the end of that day" (exclusive next midnight).
    """
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            return format_ts(day + timedelta(days=1) if end else day)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise AuditInputError(f"Not a date: {text!r}", hint="use YYYY-MM-DD or an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_ts(moment)


def new_id() -> str:
    """24 hex characters: milliseconds since the epoch, then randomness, so ids sort by creation."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


def plain(value: Any) -> Any:
    """JSON-able copy of ``value``: dataclasses, paths, enums, tuples and sets become plain data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def dumps(value: Any) -> str | None:
    """Canonical JSON text (sorted keys) or None for None."""
    if value is None:
        return None
    return canonical_json(value)


def canonical_json(value: Any) -> str:
    """Canonical JSON text (sorted keys) of a value; None becomes ``null``."""
    return json.dumps(plain(value), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def inserted_rowid(cursor: sqlite3.Cursor) -> int:
    """The rowid of the row an INSERT on ``cursor`` just added (sqlite3 types ``lastrowid`` as optional)."""
    rowid = cursor.lastrowid
    if rowid is None:   # pragma: no cover - set by every INSERT
        raise AssertionError("the INSERT did not report a rowid")
    return rowid


def loads(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # hand-edited or legacy text: show it as it is


def clean_text(value: Any) -> str:
    """A string SQLite can bind: lone surrogates (from broken clipboard data) become U+FFFD."""
    text = "" if value is None else str(value)
    return _SURROGATES.sub("\ufffd", text) if _has_surrogates(text) else text


def opt_text(value: Any) -> str | None:
    """``clean_text`` that keeps None (a column left as it is)."""
    return None if value is None else clean_text(value)


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def has_language_mixing(language: Any) -> bool:
    """Whether a turn's language statistics report mixing.

    Accepts ``{"mixing": bool}`` or the LanguageReport shape ``{channel: {"events": [...]}}``.
    """
    if isinstance(language, dict):
        if "mixing" in language and isinstance(language["mixing"], bool):
            return language["mixing"]
        if language.get("events"):
            return True
        return any(has_language_mixing(v) for v in language.values() if isinstance(v, (dict, list)))
    if isinstance(language, list):
        return any(has_language_mixing(v) for v in language)
    return False
