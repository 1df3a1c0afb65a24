"""Labelled examples for the feedback classifier: from reviewed turns, from users' thumbs-down, and from
files the admin imports (CSV or JSONL with text, label, channel).

From a reviewed turn (its latest review):

* reviewed **ok** — every scored segment of every channel is an "ok" example (an auditor read the whole
  turn and found nothing), including the spans the guard flagged: those are its false positives;
* reviewed **harmful / over-refusal / language-mixing / other** — the spans the guard flagged are examples
  of that label (the reviewer confirmed them), and so is the whole text of the channel the reviewer named,
  or, when none was named, of the channels the label concerns (``LABEL_CHANNELS``). Unflagged sentences of
  such a turn are left out: the review says *something* in it was wrong, not that every sentence was.

A **thumbs-down** from an end user on an unreviewed turn is a weak label: the answer as "other" (the user
found something wrong, we do not know what). fastText has no per-example weights, so weights are applied
by repetition in the training file: a strong example is written ``STRONG_REPEAT`` times, a weak one once
(weight 1/4). Weak examples are never used for evaluation.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from r1desk.errors import UserFacingError
from r1desk.vocabulary import CHANNELS

LABELS = ("ok", "harmful", "over-refusal", "language-mixing", "other")   # = the audit log's review labels
LABEL_CHANNELS = {"harmful": ("prompt", "answer"), "over-refusal": ("answer",),
                  "language-mixing": ("thinking", "answer"), "other": ("answer",)}
STRONG_WEIGHT = 1.0
WEAK_WEIGHT = 0.25
STRONG_REPEAT = 4             # weight by repetition: round(weight * STRONG_REPEAT) copies, at least one
MAX_TEXT_CHARS = 2000         # longer texts are cut (a whole channel of a long answer)
MAX_IMPORT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Example:
    text: str
    label: str                 # one of LABELS
    channel: str               # prompt | thinking | answer
    group: str                 # conversation id (or the import row): the unit of the train/test split
    weight: float = STRONG_WEIGHT
    source: str = "review"     # review | thumbs | import
    turn_id: str | None = None

    @property
    def weak(self) -> bool:
        return self.weight < STRONG_WEIGHT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DatasetError(UserFacingError):
    """A bootstrap file that cannot be read as labelled examples."""


def normalise_label(raw: object) -> str | None:
    """"harmful", "review.harmful", "Over_Refusal" -> the review label; None when unknown."""
    text = str(raw or "").strip().lower()
    if text.startswith("__label__"):
        text = text[len("__label__"):]
    if text.startswith("review."):
        text = text[len("review."):]
    text = text.replace("_", "-").replace(" ", "-")
    return text if text in LABELS else None


def clean(text: str) -> str:
    """One line of text as fastText reads it (no newlines), cut to MAX_TEXT_CHARS."""
    return " ".join(str(text).split())[:MAX_TEXT_CHARS]


def from_turns(turns: Iterable[dict[str, Any]]) -> list[Example]:
    """Examples from ``AuditLog.training_turns()`` rows (see the module docstring for the rules)."""
    out: list[Example] = []
    for t in turns:
        group = str(t.get("conversation_id") or t["turn_id"])
        texts = {"prompt": t.get("prompt") or "", "thinking": t.get("thinking") or "", "answer": t.get("answer") or ""}
        if t.get("weak"):
            if clean(texts["answer"]):
                out.append(Example(clean(texts["answer"]), "other", "answer", group, WEAK_WEIGHT, "thumbs",
                                   t["turn_id"]))
            continue
        label = normalise_label(t.get("label"))
        if label is None:
            continue
        seen: set[tuple[str, str]] = set()

        def add(channel: str, text: str, lab: str) -> None:
            body = clean(text)
            if body and (channel, body) not in seen:
                seen.add((channel, body))
                out.append(Example(body, lab, channel, group, STRONG_WEIGHT, "review", t["turn_id"]))

        flagged = [d for d in t.get("decisions") or [] if d.get("action") != "allow" and not d.get("window")]
        if label == "ok":
            segments = t.get("segments") or []
            for s in segments:
                add(s["channel"], s.get("text") or "", "ok")
            if not segments:
                for channel, text in texts.items():
                    add(channel, text, "ok")
            for d in flagged:
                add(d["channel"], d.get("text") or "", "ok")
            continue
        for d in flagged:
            add(d["channel"], d.get("text") or "", label)
        review_channel = t.get("review_channel")
        for ch in ((review_channel,) if review_channel in CHANNELS else LABEL_CHANNELS[label]):
            if not flagged or review_channel in CHANNELS:
                add(ch, texts[ch], label)
    return out


def _rows_from_csv(data: str) -> Iterable[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(data))
    if reader.fieldnames is None or not {"text", "label"} <= {f.strip().lower() for f in reader.fieldnames}:
        raise DatasetError("The CSV file needs a header row with at least 'text' and 'label' (and 'channel')")
    for row in reader:
        yield {str(k).strip().lower(): v for k, v in row.items() if k is not None}


def _rows_from_jsonl(data: str) -> Iterable[dict[str, Any]]:
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise DatasetError(f"line {n} is not JSON") from None
        if not isinstance(row, dict):
            raise DatasetError(f"line {n} is not a JSON object with text, label and channel")
        yield row


def read_import(path: Path, *, fmt: str = "auto") -> tuple[list[Example], list[str]]:
    """Labelled examples from a CSV or JSONL file: (examples, problems). A row without a channel counts
    for every channel; a row with an unknown label or channel, or no text, is skipped and reported. An
    optional ``conversation`` (or ``group``) column keeps rows of one conversation on one side of the split."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise DatasetError(f"{path} is larger than {MAX_IMPORT_BYTES // 2 ** 20} MiB")
        data = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DatasetError(f"Cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is not UTF-8 text") from None
    kind = fmt if fmt != "auto" else ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    rows = _rows_from_csv(data) if kind == "csv" else _rows_from_jsonl(data)
    digest = hashlib.sha256(data.encode()).hexdigest()[:12]
    out: list[Example] = []
    problems: list[str] = []
    for n, row in enumerate(rows, 1):
        text, label = clean(row.get("text") or ""), normalise_label(row.get("label"))
        channel = str(row.get("channel") or "").strip().lower()
        if not text or label is None or (channel and channel not in CHANNELS):
            if len(problems) < 20:
                problems.append(f"row {n}: " + ("no text" if not text else f"unknown label {row.get('label')!r}"
                                                if label is None else f"unknown channel {channel!r}"))
            continue
        group = f"import:{digest}:{row.get('conversation') or row.get('group') or n}"
        for ch in ((channel,) if channel else CHANNELS):
            out.append(Example(text, label, ch, group, STRONG_WEIGHT, "import"))
    if not out:
        raise DatasetError(f"{path}: no usable labelled example" + (f" ({problems[0]})" if problems else ""))
    return out, problems


def save_examples(examples: list[Example], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in examples), encoding="utf-8")
    tmp.replace(path)


def load_examples(path: Path) -> list[Example]:
    return [Example(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def counts(examples: Iterable[Example], *, strong_only: bool = True) -> dict[str, int]:
    c = Counter(e.label for e in examples if not (strong_only and e.weak))
    return {label: c.get(label, 0) for label in LABELS if c.get(label, 0)}


def training_set_hash(examples: Iterable[Example]) -> str:
    """sha256 over the sorted (label, channel, weight, text) lines: the same examples give the same hash."""
    lines = sorted(f"{e.label}\t{e.channel}\t{e.weight}\t{e.text}" for e in examples)
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()
