"""The numbers behind the dashboard, gathered through the AuditLog read API (no SQL here, no Qt).

``collect()`` runs off the GUI thread. It reads the summary rows of the last ``days`` days once
(severity, language mixing per turn), the decision counts by channel × label × action
(``stats_since_last_review`` with an explicit start), the unreviewed backlog and the self-check runs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from r1desk.storage.queries import TurnFilters

log = logging.getLogger("r1desk.ui")

MAX_ROWS = 200_000
LABEL_TITLES = {"toxicity": "Toxicity", "severe_toxicity": "Severe toxicity", "obscene": "Obscene",
                "threat": "Threat", "insult": "Insult", "identity_attack": "Identity attack",
                "sexual_explicit": "Sexual explicit"}
BACKLOG_ORDER = ("blocked", "flagged", "language-mixing", "none")


@dataclass
class DashboardData:
    days: list[date] = field(default_factory=list)
    turns_per_day: list[int] = field(default_factory=list)
    flagged_per_day: list[int] = field(default_factory=list)     # severity "flagged" (flag/redact)
    blocked_per_day: list[int] = field(default_factory=list)
    mixing_rate_per_day: list[float | None] = field(default_factory=list)   # percent, None: no turns
    by_label: dict[str, int] = field(default_factory=dict)       # decisions per classifier label
    by_channel: dict[str, dict[str, int]] = field(default_factory=dict)   # channel -> action -> count
    backlog: dict[str, int] = field(default_factory=dict)         # severity name -> unreviewed turns
    selfcheck: list[dict[str, Any]] = field(default_factory=list)  # [{"when", "suite", "unsafe", "over_refusal"}]
    feedback: list[dict[str, Any]] = field(default_factory=list)   # per feedback-classifier version (issue 16)

    @property
    def empty(self) -> bool:
        return not any(self.turns_per_day) and not self.selfcheck and not any(self.backlog.values())


def collect(audit: Any, days: int = 30, *, today: date | None = None) -> DashboardData:
    today = today or datetime.now(timezone.utc).date()
    start = today - timedelta(days=days - 1)
    data = DashboardData(days=[start + timedelta(days=i) for i in range(days)])
    index = {d: i for i, d in enumerate(data.days)}
    turns = [0] * days
    flagged = [0] * days
    blocked = [0] * days
    mixing = [0] * days
    rows = audit.list_turns(TurnFilters(date_from=start.isoformat(), date_to=today.isoformat()), limit=MAX_ROWS)
    for row in rows:
        i = index.get(_day(row["created"]))
        if i is None:
            continue
        turns[i] += 1
        sev = row.get("severity") or 0
        if sev >= 3:
            blocked[i] += 1
        elif sev == 2:
            flagged[i] += 1
        if row.get("language_mixing"):
            mixing[i] += 1
    data.turns_per_day, data.flagged_per_day, data.blocked_per_day = turns, flagged, blocked
    data.mixing_rate_per_day = [100.0 * m / t if t else None for m, t in zip(mixing, turns)]
    stats = audit.stats_since_last_review(since=start.isoformat())
    for _channel, labels in (stats.get("decisions") or {}).items():
        for label, actions in labels.items():
            data.by_label[label] = data.by_label.get(label, 0) + sum(actions.values())
    data.by_channel = {ch: dict(v) for ch, v in (stats.get("by_channel") or {}).items()}
    backlog = stats.get("unreviewed") or {}
    data.backlog = {name: int(backlog.get(name, 0)) for name in BACKLOG_ORDER}
    data.feedback = feedback_versions(audit)
    for run in reversed(audit.list_selfcheck_runs(limit=50)):
        point = _selfcheck_point(run)
        if point:
            data.selfcheck.append(point)
    return data


def _day(stamp: str) -> date:
    return date.fromisoformat(stamp[:10])


def _selfcheck_point(run: dict[str, Any]) -> dict[str, Any] | None:
    """Unsafe-response and over-refusal rates of one run (guards on when it ran both ways)."""
    metrics = run.get("metrics") or {}
    modes = metrics.get("modes") if isinstance(metrics, dict) else None
    if not modes or run.get("status") not in (None, "done"):
        return None
    block = modes.get("on") or next(iter(modes.values()))
    unsafe, over = block.get("unsafe_response_rate"), block.get("over_refusal_rate")
    if unsafe is None and over is None:
        return None
    return {"when": run.get("finished") or run.get("created"), "suite": run.get("suite"),
            "model": run.get("model_name"),
            "unsafe": None if unsafe is None else 100.0 * unsafe,
            "over_refusal": None if over is None else 100.0 * over}


def feedback_versions(audit: Any) -> list[dict[str, Any]]:
    """Each trained feedback-classifier version: its held-out metrics and how its live flags agree with
    the reviews made after them (``AuditLog.live_agreement``)."""
    from r1desk.core.feedback import versions

    found = versions.list_versions()
    if not found:
        return []
    live = audit.live_agreement(versions.CLASSIFIER)
    out = []
    for v in found:
        ev = v.evaluation or {}
        out.append({"version": v.name, "eligible": v.eligible, "macro_f1": ev.get("macro_f1"),
                    "test_examples": ev.get("test_examples", 0), "per_label": ev.get("per_label") or {},
                    "live": live.get(versions.model_name(v.name))})
    return out
