"""Export formats: JSONL (OpenAI-style messages + r1desk metadata), CSV, and a fine-tuning set.

The fine-tuning set closes the loop from audit back to training: turns an auditor labelled "ok"
become SFT examples (``{"messages": [...]}``), and turns with a corrected answer become preference
pairs (``{"prompt", "chosen", "rejected"}`` in the conversational format TRL's DPO trainer reads).
Turns are streamed in batches, oldest first, so a million-turn log exports in constant memory.
CSV cells that a spreadsheet would run as a formula are prefixed with a single quote (``csv_cell``).
"""
from __future__ import annotations

import csv
import json
from typing import IO, Any

from r1desk.storage.records import loads
from r1desk.vocabulary import strongest

FORMATS = ("jsonl", "csv", "sft")
BATCH = 500
CSV_COLUMNS = (
    "id", "conversation_id", "created", "finished", "status", "finish_reason", "model_name", "model_sha256",
    "model_quantization", "prompt_typed", "prompt_sent", "thinking", "answer", "answer_shown",
    "decisions", "max_action", "language_mixing", "reviewed", "review_label", "review_note", "feedback",
)
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a leading single quote.

    Numbers and booleans are left alone (a negative score stays a number); the JSONL export keeps the
    exact text for programs."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def write(db: Any, fmt: str, out: IO[str], where: list[str], args: list[Any], *,
          pairs_out: IO[str] | None = None, with_thinking: bool = False) -> int:
    count = 0
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore") if fmt == "csv" else None
    if writer:
        writer.writeheader()
    for turn in _turns(db, where, args, finished_only=fmt == "sft"):
        if fmt == "jsonl":
            out.write(json.dumps(_jsonl(turn), ensure_ascii=False) + "\n")
            count += 1
        elif writer:
            writer.writerow(_csv(turn))
            count += 1
        else:
            for record in _sft(turn, with_thinking):
                target = pairs_out if (pairs_out is not None and record["kind"] == "preference") else out
                if target is pairs_out:
                    record = {k: v for k, v in record.items() if k != "kind"}
                target.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
    return count


def _turns(db: Any, where: list[str], args: list[Any], *, finished_only: bool) -> Any:
    """Turns with their decisions, latest review and latest feedback, in batches by seq."""
    conditions = list(where) + (["t.status != 'running'"] if finished_only else [])
    last = 0
    while True:
        cursor = db.execute(
            "SELECT t.* FROM turns t WHERE t.seq > ?" + "".join(" AND " + c for c in conditions)
            + " ORDER BY t.seq LIMIT ?", [last, *args, BATCH])
        names = [d[0] for d in cursor.description]
        batch = [dict(zip(names, row)) for row in cursor.fetchall()]
        if not batch:
            return
        ids = [t["id"] for t in batch]
        marks = ",".join("?" * len(ids))
        decisions: dict[str, list[dict[str, Any]]] = {}
        cur = db.execute(f"SELECT turn_id, channel, span_start, span_end, text, label, score, threshold, action,"
                         f" window FROM decisions WHERE turn_id IN ({marks}) ORDER BY id", ids)
        for row in cur.fetchall():
            decision = dict(zip(("channel", "start", "end", "text", "label", "score", "threshold", "action"), row[1:9]))
            decision["window"] = bool(row[9])
            decisions.setdefault(row[0], []).append(decision)
        reviews = {row[0]: {"label": row[1], "note": row[2], "reviewer": row[3], "corrected_answer": row[4],
                            "created": row[5]}
                   for row in db.execute(f"SELECT turn_id, label, note, reviewer, corrected_answer, created"
                                         f" FROM reviews WHERE turn_id IN ({marks}) ORDER BY id", ids).fetchall()}
        feedback = {row[0]: {"thumbs": row[1], "comment": row[2]}
                    for row in db.execute(f"SELECT turn_id, thumbs, comment FROM feedback WHERE turn_id IN ({marks})"
                                          f" ORDER BY id", ids).fetchall()}
        for turn in batch:
            turn["decisions"] = decisions.get(turn["id"], [])
            turn["review"] = reviews.get(turn["id"])
            turn["feedback"] = feedback.get(turn["id"])
            yield turn
        last = batch[-1]["seq"]


def _jsonl(turn: dict[str, Any]) -> dict[str, Any]:
    assistant: dict[str, Any] = {"role": "assistant", "content": turn.get("answer_shown") or ""}
    if turn.get("thinking"):
        assistant["reasoning_content"] = turn.get("thinking_shown") or turn["thinking"]
    return {
        "id": turn["id"],
        "messages": [{"role": "user", "content": turn["prompt_typed"]}, assistant],
        "r1desk": {
            "conversation_id": turn["conversation_id"], "created": turn["created"], "finished": turn["finished"],
            "status": turn["status"], "finish_reason": turn["finish_reason"], "prompt_sent": turn["prompt_sent"],
            "thinking_raw": turn["thinking"], "answer_raw": turn["answer"], "raw_output": turn["raw_output"],
            "model": loads(turn["model_json"]) or {"name": turn["model_name"], "sha256": turn["model_sha256"],
                                                   "quantization": turn["model_quantization"]},
            "settings": loads(turn["settings_json"]), "policy_hash": turn["policy_hash"],
            "language": loads(turn["language_json"]), "language_mixing": bool(turn["language_mixing"]),
            "usage": loads(turn["usage_json"]), "timings": loads(turn["timings_json"]),
            "decisions": turn["decisions"], "review": turn["review"], "feedback": turn["feedback"],
            "regenerate_of": turn["regenerate_of"],
        },
    }


_THUMBS_NAMES: dict[int | None, str] = {1: "up", -1: "down"}


def _csv(turn: dict[str, Any]) -> dict[str, Any]:
    row = {k: turn.get(k) for k in CSV_COLUMNS}
    actions = [d["action"] for d in turn["decisions"]]
    row["decisions"] = len(actions)
    row["max_action"] = strongest(actions).value if actions else ""
    review, feedback = turn["review"] or {}, turn["feedback"] or {}
    row["review_label"], row["review_note"] = review.get("label", ""), review.get("note", "")
    row["feedback"] = _THUMBS_NAMES.get(feedback.get("thumbs"), "")
    return {k: csv_cell(v) for k, v in row.items()}


def _sft(turn: dict[str, Any], with_thinking: bool) -> list[dict[str, Any]]:
    review = turn["review"]
    if not review:
        return []
    user = {"role": "user", "content": turn["prompt_typed"]}
    shown = turn.get("answer_shown") or ""
    records: list[dict[str, Any]] = []
    if review["label"] == "ok" and shown:
        content = shown
        if with_thinking and turn.get("thinking"):
            content = f"<think>\n{turn['thinking']}\n</think>\n\n{shown}"
        records.append({"kind": "sft", "id": turn["id"], "messages": [user, {"role": "assistant", "content": content}]})
    corrected = review.get("corrected_answer")
    if corrected:
        records.append({"kind": "preference", "id": turn["id"], "prompt": [user],
                        "chosen": [{"role": "assistant", "content": corrected}],
                        "rejected": [{"role": "assistant", "content": turn.get("answer") or shown}],
                        "label": review["label"]})
    return records
