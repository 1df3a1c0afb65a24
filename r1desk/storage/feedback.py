"""Reads for the feedback loop (issue 16): the reviewed turns a feedback classifier learns from, what the
guard already said about them, how a classifier version's live flags agree with later reviews, and the
"most useful to review" queue order. Mixed into ``AuditLog``; read-only, snapshot reads.

Storage does not know the classifier registry: a label's classifier is the decision's ``classifier``
column (m012) or, for older rows, the label's prefix before a dot ("review.harmful" -> "review"), bare
labels being Detoxify's ("toxicity").
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from r1desk.storage.base import AuditBase
from r1desk.storage.queries import SUMMARY_COLUMNS, _dicts
from r1desk.storage.records import SEVERITY_NAMES, loads

if TYPE_CHECKING:
    from sqlite_utils import Database

USEFUL_CANDIDATES = 2000      # the newest unreviewed turns the "most useful" order looks at
NEAR_THRESHOLD = 0.10         # a score this close to its rule's threshold (either side) is "near"
MAX_SEGMENTS_PER_CHANNEL = 200


def classifier_of(label: str, recorded: str | None = None) -> str:
    """The classifier a label belongs to: the recorded one, else the label's prefix ("toxicity" if none)."""
    if recorded:
        return recorded
    head, dot, _ = label.partition(".")
    return head if dot else "toxicity"


def policy_rules(policy: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """channel -> label -> {threshold, action} from a stored policy snapshot (either shape)."""
    if not isinstance(policy, dict):
        return {}
    rules = policy.get("rules", policy)
    return rules if isinstance(rules, dict) else {}


class FeedbackMixin(AuditBase):
    """Feedback-loop reads of AuditLog (needs ``_read``)."""

    def training_turns(self, *, weak_thumbs: bool = True) -> list[dict[str, Any]]:
        """Every reviewed turn (its latest review) and, with ``weak_thumbs``, every unreviewed turn whose
        latest user feedback is thumbs-down. Each: turn_id, conversation_id, label (None for a thumbs-down
        turn), review_channel, weak, prompt, thinking, answer, segments [{channel, text}], decisions."""
        with self._read() as db:
            rows = _dicts(db.execute(
                "SELECT t.id AS turn_id, t.conversation_id, t.prompt_typed AS prompt, coalesce(t.thinking, '')"
                " AS thinking, coalesce(t.answer, '') AS answer, r.label, r.channel AS review_channel, 0 AS weak"
                " FROM turns t JOIN reviews r ON r.id = (SELECT max(r2.id) FROM reviews r2 WHERE r2.turn_id = t.id)"
                " WHERE t.status != 'running' ORDER BY t.seq"))
            if weak_thumbs:
                rows += _dicts(db.execute(
                    "SELECT t.id AS turn_id, t.conversation_id, t.prompt_typed AS prompt, coalesce(t.thinking, '')"
                    " AS thinking, coalesce(t.answer, '') AS answer, NULL AS label, NULL AS review_channel,"
                    " 1 AS weak FROM turns t WHERE t.reviewed = 0 AND t.status != 'running' AND"
                    " (SELECT f.thumbs FROM feedback f WHERE f.turn_id = t.id ORDER BY f.id DESC LIMIT 1) = -1"
                    " ORDER BY t.seq"))
            for row in rows:
                row["weak"] = bool(row["weak"])
                row["segments"] = _dicts(db.execute(
                    "SELECT channel, text FROM segment_scores WHERE turn_id = ? ORDER BY id LIMIT ?",
                    [row["turn_id"], 3 * MAX_SEGMENTS_PER_CHANNEL]))
                row["decisions"] = self._turn_decisions(db, row["turn_id"])
        return rows

    @staticmethod
    def _turn_decisions(db: Database, turn_id: str) -> list[dict[str, Any]]:
        out = _dicts(db.execute("SELECT channel, text, label, score, threshold, action, classifier, model, window"
                                " FROM decisions WHERE turn_id = ? ORDER BY id", [turn_id]))
        for d in out:
            d["classifier"] = classifier_of(d["label"], d["classifier"])
        return out

    def guard_outcomes(self, turn_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The decisions the guard made on each turn (for comparing a new classifier with the running ones)."""
        with self._read() as db:
            return {tid: self._turn_decisions(db, tid) for tid in turn_ids}

    def live_agreement(self, classifier: str = "review") -> dict[str, dict[str, Any]]:
        """Per model version of ``classifier``: the turns it flagged, how many were reviewed afterwards, and
        how many of those the reviewer confirmed (label other than "ok") or rejected ("ok")."""
        with self._read() as db:
            rows = db.execute(
                "SELECT f.model, f.turn_id, f.first, (SELECT r.label FROM reviews r WHERE r.turn_id = f.turn_id"
                " AND r.created >= f.first ORDER BY r.id DESC LIMIT 1) FROM (SELECT d.model, d.turn_id,"
                " min(d.created) AS first FROM decisions d WHERE d.classifier = ? AND d.action != 'allow'"
                " GROUP BY d.model, d.turn_id) f", [classifier]).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for model, _tid, _first, label in rows:
            entry = out.setdefault(model or "?", {"flagged_turns": 0, "reviewed_later": 0, "confirmed": 0,
                                                  "rejected": 0})
            entry["flagged_turns"] += 1
            if label is not None:
                entry["reviewed_later"] += 1
                entry["confirmed" if label != "ok" else "rejected"] += 1
        for entry in out.values():
            n = entry["reviewed_later"]
            entry["agreement"] = round(entry["confirmed"] / n, 4) if n else None
        return out

    def useful_review_queue(self, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Unreviewed turns ordered by how much a review would teach: classifiers that disagree on a
        segment, scores near their rule's threshold, and language-lock/guard conflicts (language mixing in a
        turn the guard acted on or could not judge well). Ties: severity, then newest. Each row also has
        ``usefulness`` and ``useful_reasons``."""
        with self._read() as db:
            rows = _dicts(db.execute(
                f"SELECT {SUMMARY_COLUMNS}, t.policy_hash, t.language_json, t.notices_json FROM turns t"
                " WHERE t.reviewed = 0 AND t.status != 'running' ORDER BY t.seq DESC LIMIT ?", [USEFUL_CANDIDATES]))
            policies: dict[str | None, dict[str, Any]] = {}
            for row in rows:
                ph = row.pop("policy_hash")
                if ph not in policies:
                    found = db.execute("SELECT policy_json FROM policies WHERE hash = ?", [ph]).fetchone()
                    policies[ph] = policy_rules(loads(found[0]) if found else None)
                scores = [(ch, loads(js) or {}) for ch, js in db.execute(
                    "SELECT channel, scores_json FROM segment_scores WHERE turn_id = ? LIMIT ?",
                    [row["id"], 3 * MAX_SEGMENTS_PER_CHANNEL])]
                decisions = self._turn_decisions(db, row["id"])
                usefulness, reasons = _usefulness(policies[ph], scores, decisions, row)
                row["usefulness"], row["useful_reasons"] = usefulness, reasons
                row["severity_name"] = SEVERITY_NAMES.get(row["severity"], "none")
                for key in ("language_json", "notices_json"):
                    row.pop(key, None)
        rows.sort(key=lambda r: (-r["usefulness"], -r["severity"], -r["seq"]))
        return rows[int(offset): int(offset) + int(limit)]


def _usefulness(rules: dict[str, dict[str, dict[str, Any]]], scores: list[tuple[str, dict[str, float]]],
                decisions: list[dict[str, Any]], row: dict[str, Any]) -> tuple[float, list[str]]:
    reasons: list[str] = []
    best_gap = None
    disagree = False
    for channel, labels in scores:
        fired: dict[str, bool] = {}
        for label, score in labels.items():
            rule = (rules.get(channel) or {}).get(label)
            if not isinstance(rule, dict) or rule.get("action") in (None, "allow"):
                continue
            try:
                threshold, value = float(rule["threshold"]), float(score)
            except (KeyError, TypeError, ValueError):
                continue
            gap = abs(value - threshold)
            best_gap = gap if best_gap is None else min(best_gap, gap)
            owner = classifier_of(label)
            fired[owner] = fired.get(owner, False) or value >= threshold
        if len(fired) >= 2 and len(set(fired.values())) == 2:
            disagree = True
    score = 0.0
    if disagree:
        score += 2.0
        reasons.append("classifiers disagree")
    if best_gap is not None and best_gap < NEAR_THRESHOLD:
        score += 1.5 * (1.0 - best_gap / NEAR_THRESHOLD)
        reasons.append(f"score {best_gap:.2f} from its threshold")
    if row.get("language_mixing"):
        notices = loads(row.get("notices_json")) or []
        limited = any(isinstance(n, dict) and n.get("kind") == "coverage_limited" for n in notices) or \
            any("coverage_limited" in str(n) for n in notices if not isinstance(n, dict))
        if decisions or limited:
            score += 1.0
            reasons.append("language lock and guard conflict")
    return round(score, 4), reasons
