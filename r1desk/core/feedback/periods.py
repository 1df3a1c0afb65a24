"""Periodic review: weekly or monthly periods (UTC), each with a review queue of every flagged turn plus a
reproducible random sample of the unflagged ones, the guard's estimated miss and false-flag rates with 95%
Wilson intervals per channel, and a report the auditor signs off (chained in the audit log).

The draw: ``seed = sha256("<period id>|<start>|<end>|<sample size>")``; the unflagged turn ids of the period
(in log order) are sampled with ``random.Random(seed)``. The same period, population and size always give
the same sample, and the draw (seed, population, ids) is recorded once, chained, when the period has closed.

Estimates:
* miss rate (per channel) = sampled unflagged turns the reviewer labelled a problem (not "ok") in that
  channel / sampled unflagged turns reviewed. A review without a channel counts for "any channel". Scaled
  by the period's unflagged population this is the estimated number of missed turns.
* false-flag rate (per channel) = turns flagged on that channel and reviewed "ok" / flagged on that
  channel and reviewed.
"""
from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from r1desk import paths
from r1desk.core.feedback.metrics import rate
from r1desk.errors import UserFacingError
from r1desk.vocabulary import CHANNELS

CADENCES = ("weekly", "monthly")
_FMT = "%Y-%m-%dT%H:%M:%S.000Z"


class PeriodLog(Protocol):   # storage.auditlog.AuditLog
    def period_population(self, start: str, end: str) -> tuple[list[str], list[str]]: ...
    def record_period(self, **kw: Any) -> dict[str, Any]: ...
    def get_period(self, period_id: str) -> dict[str, Any] | None: ...
    def latest_reviews(self, turn_ids: list[str]) -> dict[str, dict[str, Any]]: ...
    def admin_events_between(self, start: str, end: str) -> list[dict[str, Any]]: ...
    def decision_models_between(self, start: str, end: str) -> list[dict[str, Any]]: ...
    def verify(self) -> Any: ...
    def sign_off_period(self, period_id: str, **kw: Any) -> int: ...


def _ts(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(_FMT)


def bounds(period_id: str) -> tuple[str, str, str]:
    """(cadence, start, end) of "2026-W48" (ISO week) or "2026-11" (month), UTC, end exclusive."""
    try:
        if "-W" in period_id:
            year_text, week_text = period_id.split("-W")
            start = datetime.fromisocalendar(int(year_text), int(week_text), 1).replace(tzinfo=timezone.utc)
            return "weekly", _ts(start), _ts(start + timedelta(days=7))
        year, month = (int(x) for x in period_id.split("-"))
        start = datetime(year, month, 1, tzinfo=timezone.utc)
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
        return "monthly", _ts(start), _ts(end)
    except (ValueError, TypeError):
        raise UserFacingError(f"{period_id!r} is not a period (a week like 2026-W48 or a month like 2026-11)") \
            from None


def period_at(cadence: str, moment: datetime) -> str:
    if cadence == "weekly":
        year, week, _ = moment.astimezone(timezone.utc).isocalendar()
        return f"{year}-W{week:02d}"
    if cadence == "monthly":
        m = moment.astimezone(timezone.utc)
        return f"{m.year}-{m.month:02d}"
    raise UserFacingError(f"Unknown review period cadence {cadence!r}", hint="weekly or monthly")


def last_closed(cadence: str, now: datetime | None = None) -> str:
    """The most recent period of ``cadence`` that has ended."""
    now = now or datetime.now(timezone.utc)
    current = period_at(cadence, now)
    _, start, _ = bounds(current)
    return period_at(cadence, datetime.strptime(start, _FMT).replace(tzinfo=timezone.utc) - timedelta(seconds=1))


def seed_for(period_id: str, start: str, end: str, sample_size: int) -> str:
    return hashlib.sha256(f"{period_id}|{start}|{end}|{sample_size}".encode()).hexdigest()


def draw_sample(unflagged: list[str], sample_size: int, seed: str) -> list[str]:
    """A reproducible simple random sample (order of the log kept in the result)."""
    k = min(max(0, sample_size), len(unflagged))
    picked = set(random.Random(seed).sample(range(len(unflagged)), k))
    return [tid for i, tid in enumerate(unflagged) if i in picked]


def draw(audit: PeriodLog, period_id: str, *, sample_size: int, actor: str,
         now: datetime | None = None) -> dict[str, Any]:
    """Record a closed period's queue (idempotent: a period already drawn keeps its draw)."""
    existing = audit.get_period(period_id)
    if existing is not None:
        return existing
    cadence, start, end = bounds(period_id)
    if end > _ts(now or datetime.now(timezone.utc)):
        raise UserFacingError(f"Period {period_id} has not ended yet (it ends {end}); its queue is drawn when it has",
                              hint="its flagged turns are in the review queue already")
    flagged, unflagged = audit.period_population(start, end)
    seed = seed_for(period_id, start, end, sample_size)
    sample = draw_sample(unflagged, sample_size, seed)
    return audit.record_period(period_id=period_id, cadence=cadence, start=start, end=end, seed=seed,
                               sample_size=sample_size, population=len(unflagged), flagged=flagged, sample=sample,
                               drawn_by=actor)


def _problem(review: dict[str, Any] | None) -> bool:
    return review is not None and review["label"] != "ok"


def summary(audit: PeriodLog, period: dict[str, Any]) -> dict[str, Any]:
    """What the report says: reviewed counts, labels, miss/false-flag rates with intervals per channel."""
    flagged, sample = list(period["flagged"]), list(period["sample"])
    info = audit.latest_reviews(flagged + sample)
    labels: dict[str, int] = {}
    for tid in flagged + sample:
        review = info[tid]["review"]
        if review is not None:
            labels[review["label"]] = labels.get(review["label"], 0) + 1
    sampled_reviewed = [info[t]["review"] for t in sample if info[t]["review"] is not None]
    miss: dict[str, Any] = {}
    for channel in (*CHANNELS, "any"):
        k = sum(1 for r in sampled_reviewed if _problem(r) and (channel == "any" or r.get("channel") == channel))
        miss[channel] = rate(k, len(sampled_reviewed))
        if miss[channel]["rate"] is not None:
            miss[channel]["estimated_missed_turns"] = round(miss[channel]["rate"] * period["population"], 1)
    false_flags: dict[str, Any] = {}
    for channel in (*CHANNELS, "any"):
        reviewed = [info[t]["review"] for t in flagged if info[t]["review"] is not None
                    and (channel == "any" or channel in info[t]["flagged_channels"])]
        false_flags[channel] = rate(sum(1 for r in reviewed if r["label"] == "ok"), len(reviewed))
    outstanding = [t for t in flagged + sample if info[t]["review"] is None]
    return {"flagged": len(flagged), "sampled": len(sample), "population_unflagged": period["population"],
            "reviewed": {"flagged": sum(1 for t in flagged if info[t]["review"]),
                         "sampled": len(sampled_reviewed)},
            "outstanding": len(outstanding), "outstanding_ids": outstanding, "labels": labels,
            "miss_rate": miss, "false_flag_rate": false_flags}


POLICY_ACTIONS = ("settings.change", "classifier.enable", "classifier.train", "classifier.import")


def build_report(audit: PeriodLog, period_id: str) -> dict[str, Any]:
    period = audit.get_period(period_id)
    if period is None:
        raise UserFacingError(f"Period {period_id} has not been drawn yet", hint=f"r1desk audit period draw {period_id}")
    start, end = period["period_start"], period["period_end"]
    events = audit.admin_events_between(start, end)
    verified = audit.verify()
    return {
        "period": {k: period[k] for k in ("id", "cadence", "period_start", "period_end", "created", "drawn_by")},
        "draw": {"seed": period["seed"], "sample_size": period["sample_size"], "population": period["population"],
                 "flagged_ids": period["flagged"], "sample_ids": period["sample"],
                 "method": "random.Random(seed).sample over the period's unflagged turn ids in log order; "
                           "seed = sha256(period id|start|end|sample size)"},
        "summary": summary(audit, period),
        "classifiers_in_force": audit.decision_models_between(start, end),
        "classifier_changes": [e for e in events if e["action"].startswith("classifier.")],
        "policy_changes": [e for e in events if e["action"] == "settings.change"],
        "integrity": {"ok": bool(verified.ok), "entries": verified.entries, "summary": verified.summary()},
        "signoffs": period.get("signoffs") or [],
    }


def report_dir() -> Path:
    return paths.data_dir() / "reports" / "periods"


def write_report(report: dict[str, Any], folder: Path | None = None) -> tuple[Path, Path, str]:
    """Write <id>.json and <id>.html; returns (json path, html path, sha256 of the JSON)."""
    from r1desk.core.feedback.report import render_html

    folder = folder or report_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stem = report["period"]["id"] + "-" + hashlib.sha256(json.dumps(report, sort_keys=True, default=str)
                                                         .encode()).hexdigest()[:8]
    body = json.dumps(report, indent=2, ensure_ascii=False, sort_keys=True, default=str) + "\n"
    json_path, html_path = folder / f"{stem}.json", folder / f"{stem}.html"
    json_path.write_text(body, encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path, hashlib.sha256(body.encode()).hexdigest()


def sign_off(audit: PeriodLog, period_id: str, *, auditor: str, note: str = "",
             folder: Path | None = None) -> dict[str, Any]:
    """Build and keep the report, then chain the auditor's sign-off of exactly that report (its sha256)."""
    report = build_report(audit, period_id)
    json_path, html_path, digest = write_report(report, folder)
    signoff_id = audit.sign_off_period(period_id, auditor=auditor, report_sha256=digest, report_path=str(json_path),
                                       note=note)
    return {"signoff_id": signoff_id, "report_sha256": digest, "json": str(json_path), "html": str(html_path),
            "outstanding": report["summary"]["outstanding"]}


def reminders(audit: PeriodLog, cadence: str, *, sample_size: int, actor: str,
              now: datetime | None = None) -> list[str]:
    """Plain-words reminders: the last closed period has reviews outstanding or is not signed off.
    Draws that period's queue if nobody has yet (that is when a period's queue comes into being)."""
    if cadence not in CADENCES:
        return []
    period_id = last_closed(cadence, now)
    period = draw(audit, period_id, sample_size=sample_size, actor=actor, now=now)
    s = summary(audit, period)
    out = []
    if s["outstanding"]:
        out.append(f"Review period {period_id} has closed with {s['outstanding']} of "
                   f"{s['flagged'] + s['sampled']} turns still to review.")
    if not (audit.get_period(period_id) or {}).get("signoffs"):
        out.append(f"Review period {period_id} has not been signed off.")
    return out
