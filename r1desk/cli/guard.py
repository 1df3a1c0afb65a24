"""`r1desk guard ...`: the feedback classifier learnt from reviews.

  train      train the next version from reviewed turns, thumbs-down (weak) and imported examples
  import     keep labelled examples from a CSV/JSONL file (text, label, channel) for every later training
  versions   list the versions with their held-out metrics and live agreement with later reviews
  show       one version's metadata and evaluation
  enable     use a version in the guard (refused when trained on too few examples per label)
  disable    stop using the feedback classifier
  rollback   go back to the version in force before the current one

Every action needs the admin passphrase once role passphrases are set (``cli/auth.py``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from r1desk.cli import help_command
from r1desk.cli.auth import gated_log
from r1desk.core.roles import ADMIN
from r1desk.storage.auditlog import AuditLog
from r1desk.textsafe import printable, safe_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=Path, default=None, metavar="PATH", help="audit database file")
    common.add_argument("--json", action="store_true", help="print JSON")
    p = subparsers.add_parser("guard", help="train, enable and roll back the feedback classifier (admin)")
    p.set_defaults(func=help_command(p))
    sub = p.add_subparsers(dest="guard_command", metavar="ACTION")
    train = sub.add_parser("train", parents=[common], help="train the next feedback classifier version")
    train.add_argument("--import", dest="import_file", type=Path, default=None, metavar="FILE",
                       help="import labelled examples from this CSV/JSONL file first")
    train.add_argument("--labels", default=None, help="only these labels, comma-separated (e.g. ok,harmful)")
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--test-fraction", type=float, default=0.2)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-thumbs", action="store_true", help="leave thumbs-down (weak labels) out")
    train.add_argument("--enable", action="store_true", help="enable the new version if it is eligible")
    train.set_defaults(func=cmd_train)
    imp = sub.add_parser("import", parents=[common], help="import labelled examples (CSV or JSONL)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--format", choices=("auto", "csv", "jsonl"), default="auto")
    imp.set_defaults(func=cmd_import)
    sub.add_parser("versions", parents=[common], help="list versions and their metrics").set_defaults(
        func=cmd_versions)
    show = sub.add_parser("show", parents=[common], help="one version's metadata and evaluation")
    show.add_argument("version")
    show.set_defaults(func=cmd_show)
    enable = sub.add_parser("enable", parents=[common], help="use this version in the guard")
    enable.add_argument("version")
    enable.set_defaults(func=cmd_enable)
    sub.add_parser("disable", parents=[common], help="stop using the feedback classifier").set_defaults(
        func=cmd_disable)
    sub.add_parser("rollback", parents=[common], help="go back to the previous version").set_defaults(
        func=cmd_rollback)


@contextlib.contextmanager
def _open(args: argparse.Namespace) -> Iterator[tuple[AuditLog, str]]:
    with gated_log(args.db, ADMIN) as (log, auth):
        yield log, auth.name


def _store() -> Any:
    from r1desk.settings import SettingsStore

    return SettingsStore()


def _print(data: Any) -> None:
    print(safe_json(data))


def _summary(v: Any, enabled: str | None, agreement: dict[str, Any]) -> str:
    ev = v.evaluation or {}
    live = agreement.get(v.meta.get("model") or "", {})
    f1 = ev.get("macro_f1")
    state = "ENABLED" if v.name == enabled else ("eligible" if v.eligible else "not eligible")
    text = (f"{v.name:<5} {state:<12} {v.meta.get('created', '?'):<25} macro F1 "
            f"{'-' if f1 is None else f'{f1:.3f}'}  train {sum((v.meta.get('counts') or {}).get('train', {}).values())}"
            f"  test {ev.get('test_examples', 0)}")
    if live:
        text += f"  live: {live['confirmed']}/{live['reviewed_later']} flags confirmed"
    return text


def _describe(v: Any) -> list[str]:
    lines = [f"version {v.name} ({v.meta.get('model')}), trained {v.meta.get('created')}",
             f"training set sha256 {v.meta.get('training_set_sha256')}",
             f"hyper-parameters {json.dumps(v.meta.get('hyper_parameters'))}",
             f"examples {json.dumps(v.meta.get('counts'))}"]
    ev = v.evaluation or {}
    for label, m in (ev.get("per_label") or {}).items():
        lines.append(f"  {label:<16} P {m['precision']}  R {m['recall']}  F1 {m['f1']}  n {m['support']}")
    if ev.get("confusion"):
        lines.append("confusion (rows: truth; columns: " + ", ".join(ev.get("labels", [])) + ")")
        lines += ["  " + " ".join(f"{n:>5}" for n in row) for row in ev["confusion"]]
    comp = ev.get("comparison") or {}
    if comp.get("feedback"):
        lines.append(f"held-out turns from the log: {comp['turns']}; problem turns found: feedback F1 "
                     f"{comp['feedback']['f1']}, running guard F1 {comp['guard']['f1']}, both F1 "
                     f"{comp['combined']['f1']}; only the feedback classifier caught "
                     f"{comp['caught_only_by_feedback']}, only the guard {comp['caught_only_by_guard']}")
    lines.append("eligible to enable" if v.eligible else "NOT eligible: " + "; ".join(v.problems))
    return lines


def cmd_train(args: argparse.Namespace) -> int:
    from r1desk.core.feedback import versions
    from r1desk.core.feedback.model import HyperParameters

    params = HyperParameters(seed=args.seed, **({"epoch": args.epochs} if args.epochs else {}))
    with _open(args) as (log, actor):
        if args.import_file is not None:          # the same logged import as `r1desk guard import`
            from r1desk import feedback_admin

            feedback_admin.import_examples(log, args.import_file, actor=actor)
        v = versions.train_version(log, params=params, test_fraction=args.test_fraction,
                                   labels=args.labels.split(",") if args.labels else None,
                                   weak_thumbs=not args.no_thumbs, actor=actor)
        enabled = None
        if args.enable and v.eligible:
            from r1desk import feedback_admin

            feedback_admin.enable(_store(), log, v.name, actor=actor)
            enabled = v.name
    if args.json:
        _print({**v.to_dict(), "enabled": enabled == v.name})
    else:
        print("\n".join(printable(line) for line in _describe(v)))
        if enabled:
            print(f"{v.name} enabled")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from r1desk import feedback_admin
    from r1desk.core.feedback import dataset

    with _open(args) as (log, actor):
        dest, examples, problems = feedback_admin.import_examples(log, args.file, fmt=args.format, actor=actor)
    counts = dataset.counts(examples)
    if args.json:
        _print({"stored": str(dest), "examples": len(examples), "labels": counts, "problems": problems})
    else:
        print(f"{len(examples)} examples imported ({', '.join(f'{k} {n}' for k, n in counts.items())}) -> {dest}")
        for p in problems:
            print(f"  skipped {printable(p)}")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    from r1desk.core.feedback import versions

    with _open(args) as (log, _actor):
        agreement = log.live_agreement()
    enabled = _store().current.guard.feedback_model
    found = versions.list_versions()
    if args.json:
        _print([{**v.to_dict(), "enabled": v.name == enabled,
                 "live": agreement.get(v.meta.get("model") or "")} for v in found])
    elif not found:
        print("no feedback classifier trained yet (r1desk guard train)")
    else:
        for v in found:
            print(_summary(v, enabled, agreement))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from r1desk.core.feedback import versions

    with _open(args):
        v = versions.get(args.version)
    if args.json:
        _print(v.to_dict())
    else:
        print("\n".join(printable(line) for line in _describe(v)))
    return 0


def _change(args: argparse.Namespace, what: str) -> int:
    from r1desk import feedback_admin

    with _open(args) as (log, actor):
        old, new = feedback_admin.change(_store(), log, what, version=getattr(args, "version", None), actor=actor)
    if args.json:
        _print({"previous": old, "enabled": new})
    else:
        print(f"feedback classifier: {old or 'off'} -> {new or 'off'}")
    return 0


def cmd_enable(args: argparse.Namespace) -> int:
    return _change(args, "enable")


def cmd_disable(args: argparse.Namespace) -> int:
    return _change(args, "disable")


def cmd_rollback(args: argparse.Namespace) -> int:
    return _change(args, "rollback")
