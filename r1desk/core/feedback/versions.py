"""Versioned feedback classifiers in the data folder, and training one from the audit log.

``<data>/classifiers/feedback/``
  ``imports/<sha12>.jsonl``   bootstrap examples the admin imported (normalised), one file per import
  ``v<N>/model.bin``          the fastText model
  ``v<N>/meta.json``          training-set hash, hyper-parameters, label counts, eligibility (and why not)
  ``v<N>/evaluation.json``    held-out P/R/F1 per label, confusion matrix, comparison with the running guard

A version is never changed after it is written; enabling one is a setting (``guard.feedback_model``), so
rolling back is enabling the previous one.

Minimum examples per label, and why: a version may be enabled only when every label it predicts has at
least ``MIN_TRAIN_PER_LABEL`` (50) distinct training texts and ``MIN_TEST_PER_LABEL`` (10) held-out ones.
With fewer training texts fastText learns the wording of a handful of examples rather than the problem;
with fewer than 10 held-out texts its measured recall means little (a recall of 8/10 has a 95% interval
of 0.49–0.94), so nobody could tell a useful model from a useless one before it starts flagging turns.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from r1desk import paths
from r1desk.core.feedback import dataset
from r1desk.core.feedback.dataset import LABELS, Example
from r1desk.core.feedback.metrics import binary, classification_report
from r1desk.core.feedback.model import FeedbackModel, HyperParameters, train
from r1desk.core.feedback.split import split_by_group
from r1desk.errors import UserFacingError

log = logging.getLogger("r1desk.feedback")

MIN_TRAIN_PER_LABEL = 50
MIN_TEST_PER_LABEL = 10
CLASSIFIER = "review"           # the registered guard classifier's name
_VERSION = re.compile(r"^v(\d{1,6})$")


class TrainingCancelled(UserFacingError):
    """Training was cancelled (between its steps): no version was written."""


class AuditReads(Protocol):
    """What training reads from the audit log (``storage.auditlog.AuditLog``)."""

    def training_turns(self, *, weak_thumbs: bool = True) -> list[dict[str, Any]]: ...
    def guard_outcomes(self, turn_ids: list[str]) -> dict[str, list[dict[str, Any]]]: ...
    def log_admin_event(self, *, actor: str, action: str, details: dict[str, Any] | None = None) -> int: ...


def root() -> Path:
    return paths.data_dir() / "classifiers" / "feedback"


def model_name(version: str) -> str:
    """What decisions record as the model: "feedback-v3"."""
    return f"feedback-{version}"


@dataclass(frozen=True)
class Version:
    name: str
    path: Path
    meta: dict[str, Any]
    evaluation: dict[str, Any] = field(default_factory=dict)

    @property
    def eligible(self) -> bool:
        return bool(self.meta.get("eligible"))

    @property
    def problems(self) -> list[str]:
        return list(self.meta.get("problems") or [])

    @property
    def model_path(self) -> Path:
        return self.path / "model.bin"

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.name, "path": str(self.path), **self.meta, "evaluation": self.evaluation}


def version_dir(version: str, base: Path | None = None) -> Path:
    if not _VERSION.match(version or ""):
        raise UserFacingError(f"{version!r} is not a feedback classifier version (v1, v2, …)")
    return (base or root()) / version


def get(version: str, base: Path | None = None) -> Version:
    d = version_dir(version, base)
    try:
        meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        evaluation = json.loads((d / "evaluation.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserFacingError(f"No feedback classifier {version} in {d.parent}",
                              hint="list them with: r1desk guard versions") from None
    except (OSError, ValueError) as exc:
        raise UserFacingError(f"The feedback classifier {version} is unreadable: {exc}") from None
    return Version(version, d, meta, evaluation)


def list_versions(base: Path | None = None) -> list[Version]:
    folder = base or root()
    if not folder.is_dir():
        return []
    found = sorted((int(m.group(1)), p.name) for p in folder.iterdir() if (m := _VERSION.match(p.name)))
    out = []
    for _, name in found:
        try:
            out.append(get(name, folder))
        except UserFacingError as exc:       # a half-written or damaged version is listed as such
            out.append(Version(name, folder / name, {"eligible": False, "problems": [str(exc)]}))
    return out


def _next_version(base: Path) -> str:
    numbers = [int(m.group(1)) for p in base.iterdir() if (m := _VERSION.match(p.name))] if base.is_dir() else []
    return f"v{max(numbers, default=0) + 1}"


# -- imports ---------------------------------------------------------------------------------------
def import_file(path: Path, *, fmt: str = "auto", base: Path | None = None) -> tuple[Path, list[Example], list[str]]:
    """Keep a bootstrap file's examples for every later training: (stored file, examples, problems)."""
    examples, problems = dataset.read_import(Path(path), fmt=fmt)
    digest = dataset.training_set_hash(examples)[:12]
    dest = (base or root()) / "imports" / f"{digest}.jsonl"
    dataset.save_examples(examples, dest)
    return dest, examples, problems


def imported_examples(base: Path | None = None) -> list[Example]:
    folder = (base or root()) / "imports"
    out: list[Example] = []
    for f in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        out.extend(dataset.load_examples(f))
    return out


# -- training ----------------------------------------------------------------------------------------
def distinct_counts(examples: Sequence[Example]) -> dict[str, int]:
    texts: dict[str, set[str]] = defaultdict(set)
    for e in examples:
        if not e.weak:
            texts[e.label].add(e.text)
    return {lb: len(texts[lb]) for lb in LABELS if texts.get(lb)}


def eligibility(train_counts: dict[str, int], test_counts: dict[str, int]) -> list[str]:
    """Why a model may not be enabled, in plain words (empty: it may)."""
    problems = []
    if "ok" not in train_counts or len(train_counts) < 2:
        problems.append("it needs examples of 'ok' and of at least one problem label")
    for label, n in train_counts.items():
        if n < MIN_TRAIN_PER_LABEL:
            problems.append(f"'{label}' has {n} training examples; at least {MIN_TRAIN_PER_LABEL} are needed "
                            "(with fewer it learns the wording of a few examples, not the problem)")
        m = test_counts.get(label, 0)
        if m < MIN_TEST_PER_LABEL:
            problems.append(f"'{label}' has {m} held-out examples; at least {MIN_TEST_PER_LABEL} are needed to "
                            "measure it (8 of 10 found means anything from 49% to 94%)")
    return problems


def evaluate(model: FeedbackModel, test: Sequence[Example], labels: Sequence[str],
             outcomes: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Held-out evaluation, and on the held-out turns from the log, the comparison with the guard's own
    decisions: does the feedback classifier catch problems the running classifiers missed?"""
    predicted: list[str] = []
    for e in test:
        scores = model.predict(e.channel, [e.text])[0]
        predicted.append(max(scores, key=scores.__getitem__) if scores else "ok")
    report = classification_report([e.label for e in test], predicted, labels)
    report["test_examples"] = len(test)
    by_turn: dict[str, dict[str, bool]] = {}
    for e, p in zip(test, predicted):
        if e.turn_id is None:
            continue
        entry = by_turn.setdefault(e.turn_id, {"truth": False, "feedback": False})
        entry["truth"] = entry["truth"] or e.label != "ok"
        entry["feedback"] = entry["feedback"] or p != "ok"
    comparison: dict[str, Any] = {"turns": len(by_turn)}
    if by_turn and outcomes is not None:
        ids = sorted(by_turn)
        truth = [by_turn[t]["truth"] for t in ids]
        mine = [by_turn[t]["feedback"] for t in ids]
        acted = {t: [d for d in outcomes.get(t, []) if d.get("action") != "allow" and d.get("classifier") != CLASSIFIER]
                 for t in ids}
        guard = [bool(acted[t]) for t in ids]
        comparison["feedback"] = binary(truth, mine)
        comparison["guard"] = binary(truth, guard)
        for name in sorted({d["classifier"] for ds in acted.values() for d in ds}):
            comparison[f"guard:{name}"] = binary(truth, [any(d["classifier"] == name for d in acted[t]) for t in ids])
        comparison["caught_only_by_feedback"] = sum(1 for t, f, g in zip(truth, mine, guard) if t and f and not g)
        comparison["caught_only_by_guard"] = sum(1 for t, f, g in zip(truth, mine, guard) if t and g and not f)
        comparison["combined"] = binary(truth, [f or g for f, g in zip(mine, guard)])
    report["comparison"] = comparison
    return report


def train_version(audit: AuditReads | None, *, params: HyperParameters | None = None,
                  labels: Sequence[str] | None = None, test_fraction: float = 0.2, weak_thumbs: bool = True,
                  extra: Sequence[Example] = (), actor: str = "admin", base: Path | None = None,
                  progress: Callable[[str], None] | None = None,
                  cancel: threading.Event | None = None) -> Version:
    """Collect examples (reviews, thumbs-down, imports, ``extra``), split by conversation, train, evaluate,
    and write the next version. Logs a ``classifier.train`` admin event when ``audit`` is given.

    ``progress(step)`` names each step as it starts; ``cancel`` is checked between steps (fastText's own
    training pass runs to its end), and a cancelled run writes nothing (:class:`TrainingCancelled`)."""
    def step(name: str) -> None:
        if cancel is not None and cancel.is_set():
            raise TrainingCancelled("Training cancelled: no version was written")
        if progress is not None:
            progress(name)

    params = params or HyperParameters()
    step("collecting examples")
    folder = base or root()
    turns = audit.training_turns(weak_thumbs=weak_thumbs) if audit is not None else []
    examples = dataset.from_turns(turns) + imported_examples(folder) + list(extra)
    if labels:
        wanted = {dataset.normalise_label(lb) for lb in labels}
        if None in wanted:
            raise UserFacingError(f"Unknown label in {', '.join(labels)}", hint="use " + ", ".join(LABELS))
        examples = [e for e in examples if e.label in wanted]
    if not examples:
        raise UserFacingError("There is nothing to train on: no reviewed turns, no thumbs-down and no imported "
                              "examples", hint="review turns, or import examples: r1desk guard import FILE")
    train_set, test_set = split_by_group(examples, test_fraction=test_fraction, seed=params.seed)
    if not train_set:
        raise UserFacingError("Every example fell on the held-out side: add more examples")
    train_groups = {e.group for e in train_set}
    if train_groups & {e.group for e in test_set}:
        raise RuntimeError("a conversation leaked across the train/test split")   # a bug in split_by_group
    version = _next_version(folder)
    vdir = folder / version
    tmp = folder / f".{version}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        step(f"training fastText on {len(train_set)} examples")
        started = datetime.now(timezone.utc)
        model = train(train_set, params, tmp / "model.bin")
        step(f"evaluating on {len(test_set)} held-out examples")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    model_labels = [lb for lb in LABELS if lb in set(model.labels)]
    outcomes = audit.guard_outcomes(sorted({e.turn_id for e in test_set if e.turn_id})) if audit is not None else None
    evaluation = evaluate(model, test_set, model_labels, outcomes)
    train_counts, test_counts = distinct_counts(train_set), distinct_counts(test_set)
    problems = eligibility(train_counts, test_counts)
    meta = {
        "version": version, "model": model_name(version), "created": started.isoformat(timespec="seconds"),
        "training_seconds": round((datetime.now(timezone.utc) - started).total_seconds(), 2),
        "training_set_sha256": dataset.training_set_hash(train_set + test_set),
        "hyper_parameters": params.to_dict(), "test_fraction": test_fraction, "labels": model_labels,
        "counts": {"train": train_counts, "test": test_counts, "weak": sum(1 for e in train_set if e.weak),
                   "conversations": {"train": len(train_groups), "test": len({e.group for e in test_set})}},
        "sources": {s: sum(1 for e in examples if e.source == s) for s in ("review", "thumbs", "import")},
        "weighting": {"strong": dataset.STRONG_WEIGHT, "weak": dataset.WEAK_WEIGHT,
                      "by": f"repetition: a strong example is written {dataset.STRONG_REPEAT} times, a weak one once"},
        "minimum": {"train_per_label": MIN_TRAIN_PER_LABEL, "test_per_label": MIN_TEST_PER_LABEL},
        "eligible": not problems, "problems": problems,
    }
    (tmp / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n", encoding="utf-8")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    try:
        step("writing the version")
    except TrainingCancelled:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tmp.rename(vdir)
    if audit is not None:
        audit.log_admin_event(actor=actor, action="classifier.train", details={
            "classifier": CLASSIFIER, "version": version, "training_set_sha256": meta["training_set_sha256"],
            "eligible": meta["eligible"], "macro_f1": evaluation.get("macro_f1")})
    log.info("feedback classifier %s trained (%s examples, macro F1 %s)", version, len(examples),
             evaluation.get("macro_f1"))
    return get(version, folder)
