"""Review periods (issue 16): each period's logged draw and the auditors' sign-offs, both chained.

A period's queue is every flagged turn of the period plus a random sample of its unflagged turns. The
draw itself (seed, population, the sampled ids) is computed in ``core.feedback.periods`` and recorded
here once, in ``review_periods``; recording it again returns the stored draw, so a period's sample never
changes after the fact. Mixed into ``AuditLog`` (needs ``_read`` and ``_write``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from r1desk.storage import chain
from r1desk.storage.base import AuditBase
from r1desk.storage.queries import _dicts
from r1desk.storage.records import AuditInputError, clean_text, dumps, inserted_rowid, loads, now

if TYPE_CHECKING:
    from sqlite_utils import Database

FLAGGED_SEVERITY = 2   # flagged, redacted or blocked (1 is language mixing only)


class PeriodsMixin(AuditBase):
    def period_population(self, start: str, end: str) -> tuple[list[str], list[str]]:
        """(flagged turn ids, unflagged turn ids) of the finished turns created in [start, end), oldest first."""
        with self._read() as db:
            rows = db.execute("SELECT id, severity FROM turns WHERE status != 'running' AND created >= ?"
                              " AND created < ? ORDER BY seq", [start, end]).fetchall()
        return ([r[0] for r in rows if r[1] >= FLAGGED_SEVERITY], [r[0] for r in rows if r[1] < FLAGGED_SEVERITY])

    def record_period(self, *, period_id: str, cadence: str, start: str, end: str, seed: str, sample_size: int,
                      population: int, flagged: list[str], sample: list[str], drawn_by: str) -> dict[str, Any]:
        """Record a period's draw (chained); an already recorded period is returned unchanged."""
        with self._write() as db:
            existing = self._period_row(db, period_id)
            if existing is not None:
                return existing
            stamp = now()
            db.execute(
                "INSERT INTO review_periods (id, created, cadence, period_start, period_end, seed, sample_size,"
                " population, flagged_json, sample_json, drawn_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [period_id, stamp, cadence, start, end, seed, int(sample_size), int(population), dumps(flagged),
                 dumps(sample), clean_text(drawn_by) or "unknown"])
            chain.seal(db, "review_periods", period_id, stamp)
            recorded = self._period_row(db, period_id)
            if recorded is None:   # pragma: no cover - inserted just above, in the same transaction
                raise AssertionError(f"review period {period_id!r} was not recorded")
            return recorded

    @staticmethod
    def _period_row(db: Database, period_id: str) -> dict[str, Any] | None:
        rows = _dicts(db.execute("SELECT * FROM review_periods WHERE id = ?", [period_id]))
        if not rows:
            return None
        row = rows[0]
        row["flagged"] = loads(row.pop("flagged_json")) or []
        row["sample"] = loads(row.pop("sample_json")) or []
        return row

    def get_period(self, period_id: str) -> dict[str, Any] | None:
        with self._read() as db:
            row = self._period_row(db, period_id)
            if row is not None:
                row["signoffs"] = _dicts(db.execute("SELECT * FROM period_signoffs WHERE period_id = ? ORDER BY id",
                                                    [period_id]))
            return row

    def list_periods(self, *, limit: int = 50) -> list[dict[str, Any]]:
        with self._read() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM review_periods ORDER BY period_start DESC LIMIT ?",
                                            [int(limit)])]
        return [p for p in (self.get_period(i) for i in ids) if p is not None]

    def latest_reviews(self, turn_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The latest review of each reviewed turn among ``turn_ids``, plus the channels its decisions were on."""
        out: dict[str, dict[str, Any]] = {}
        with self._read() as db:
            for tid in turn_ids:
                rows = _dicts(db.execute("SELECT label, channel, reviewer, created FROM reviews WHERE turn_id = ?"
                                         " ORDER BY id DESC LIMIT 1", [tid]))
                channels = [r[0] for r in db.execute(
                    "SELECT DISTINCT channel FROM decisions WHERE turn_id = ? AND action != 'allow'", [tid])]
                out[tid] = {"review": rows[0] if rows else None, "flagged_channels": sorted(channels)}
        return out

    def admin_events_between(self, start: str, end: str) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = _dicts(db.execute("SELECT * FROM admin_events WHERE created >= ? AND created < ? ORDER BY id",
                                     [start, end]))
        for row in rows:
            row["details"] = loads(row.pop("details_json"))
        return rows

    def decision_models_between(self, start: str, end: str) -> list[dict[str, Any]]:
        """Which classifier and model versions made decisions in [start, end), with counts."""
        with self._read() as db:
            return _dicts(db.execute(
                "SELECT coalesce(classifier, '') AS classifier, coalesce(model, '') AS model, count(*) AS decisions"
                " FROM decisions WHERE created >= ? AND created < ? GROUP BY 1, 2 ORDER BY 1, 2", [start, end]))

    def sign_off_period(self, period_id: str, *, auditor: str, report_sha256: str, report_path: str | None = None,
                        note: str = "") -> int:
        """An auditor signs a period's report off (chained: who, when, and the hash of the report signed)."""
        if not str(auditor).strip():
            raise AuditInputError("A sign-off needs the auditor's name")
        with self._write() as db:
            if self._period_row(db, period_id) is None:
                raise AuditInputError(f"No review period {period_id!r} has been drawn",
                                      hint="draw it first: r1desk audit period draw")
            stamp = now()
            cur = db.execute("INSERT INTO period_signoffs (period_id, created, auditor, note, report_sha256,"
                             " report_path) VALUES (?, ?, ?, ?, ?, ?)",
                             [period_id, stamp, clean_text(auditor), clean_text(note), report_sha256, report_path])
            chain.seal(db, "period_signoffs", inserted_rowid(cur), stamp)
            return inserted_rowid(cur)
