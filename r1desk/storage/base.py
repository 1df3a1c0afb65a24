"""The typed seam between ``AuditLog`` and the mixins it is assembled from.

``AuditLog`` (``storage.auditlog``) is one class made of mixins (conversations, reviews, reads,
feedback, periods, maintenance). Each mixin uses plumbing that another part defines: the
connection, read and write transactions, turn-id checks, admin events. ``AuditBase`` declares that
plumbing once, with its types, so that every mixin is checked against it and every definition is
checked as a compatible override. The declarations exist for the type checker only: at run time
``AuditBase`` is an empty class and the definitions are the ones in ``AuditLog`` and its mixins.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlite_utils import Database


class AuditBase:
    """What the AuditLog mixins rely on; defined by ``AuditLog`` and the mixin named on each line."""

    path: Path
    busy_timeout: float

    if TYPE_CHECKING:
        # AuditLog: the connection, its error mapping and the snapshot/write transactions
        def _db(self) -> Database: ...
        def _errors(self) -> AbstractContextManager[None]: ...
        def _write(self) -> AbstractContextManager[Database]: ...
        def _read(self) -> AbstractContextManager[Database]: ...

        @staticmethod
        def _require_turn(db: Database, turn_id: str) -> None: ...

        # queries.ReadMixin
        def _resolve_turn(self, db: Database, turn_id: str) -> str: ...

        # reviews.ReviewsMixin
        @staticmethod
        def _admin_event(db: Database, actor: str, action: str, details: Any) -> int: ...
        def log_admin_event(self, *, actor: str, action: str, details: dict[str, Any] | None = None) -> int: ...

        # feedback.FeedbackMixin
        def useful_review_queue(self, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]: ...
