"""`r1desk audit ...`: read, search, review, export, verify, back up and prune the audit log.

Every command that prints data takes ``--json``; ``--db PATH`` (before or after the command)
opens another database file, e.g. a backup. ``verify`` exits 1 when the chain is broken.
Once role passphrases are set, every action needs the auditor (or admin) passphrase and ``prune`` the
admin one (``cli/auth.py``: a terminal prompt, or R1DESK_PASSPHRASE_FD / R1DESK_PASSPHRASE_FILE).
Text from the log is printed with control and escape sequences made visible (``textsafe.printable``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from r1desk.cli import audit_period, help_command
from r1desk.cli.auth import FD_ENV, FILE_ENV, Authenticated, gated_log
from r1desk.core.roles import ADMIN, AUDITOR
from r1desk.errors import UserFacingError
from r1desk.storage.auditlog import AuditLog
from r1desk.storage.queries import TurnFilters
from r1desk.storage.records import REVIEW_LABELS, STATUSES
from r1desk.textsafe import printable, safe_json
from r1desk.vocabulary import ACTIONS, CHANNELS

EXPORT_FORMATS = ("jsonl", "csv", "sft")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=Path, default=argparse.SUPPRESS, metavar="PATH",
                        help="audit database file (default: the one in the user data folder)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON")

    p = subparsers.add_parser(
        "audit", parents=[common], help="read, search, review and export the audit log",
        epilog=f"Once role passphrases are set, these actions need the auditor or admin passphrase (prune: admin). "
        f"It is asked for on the terminal; scripts pass it with {FD_ENV}=N (read from that open file descriptor) "
        f"or {FILE_ENV}=PATH (a file only its owner can read), never as an argument.")
    p.set_defaults(func=help_command(p))
    sub = p.add_subparsers(dest="audit_command", metavar="ACTION")

    def add(name: str, func: Any, help_: str, *, data: bool = True, role: str = AUDITOR,
            sub: argparse._SubParsersAction[argparse.ArgumentParser] = sub) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, parents=[common] + ([as_json] if data else []), help=help_)
        parser.set_defaults(func=func, required_role=role)
        return parser

    ls = add("list", cmd_list, "list turns, newest first")
    _filters(ls)
    _paging(ls)
    show = add("show", cmd_show, "show one turn with its decisions, scores and reviews")
    show.add_argument("id", help="turn id (or a unique prefix of 6+ characters)")
    search = add("search", cmd_search, "full-text search over prompts, thinking and answers")
    search.add_argument("query", help='any text; FTS5 syntax ("phrase", OR, prefix*) is used when valid')
    search.add_argument("--relevance", action="store_true", help="best matches first instead of newest")
    _filters(search)
    _paging(search)
    queue = add("queue", cmd_queue, "unreviewed turns by severity: blocked, flagged, language mixing, rest")
    queue.add_argument("--order", choices=("severity", "useful"), default="severity",
                       help="useful: where classifiers disagree, scores sit near a threshold, or the language lock "
                            "and the guard conflict first")
    _paging(queue)
    review = add("review", cmd_review, "label a turn as reviewed")
    review.add_argument("id", help="turn id (or a unique prefix)")
    review.add_argument("--label", required=True, choices=REVIEW_LABELS)
    review.add_argument("--note", default="", help="free-text note")
    review.add_argument("--corrected-answer", default=None, help="a better answer (used for preference pairs)")
    review.add_argument("--channel", choices=CHANNELS, default=None, help="where the problem was (miss rates)")
    stats = add("stats", cmd_stats, "what happened since the last review")
    stats.add_argument("--reviewer", default=None, help="since this reviewer's last review")
    stats.add_argument("--since", default=None, help="since this date instead (YYYY-MM-DD)")
    export = add("export", cmd_export, "export turns as JSONL, CSV or a fine-tuning set", data=False)
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    export.add_argument("--out", type=Path, default=None, help="output file (default: standard output)")
    export.add_argument("--pairs-out", type=Path, default=None,
                        help="sft: write preference pairs to this file instead of mixing them in")
    export.add_argument("--with-thinking", action="store_true", help="sft: keep the <think> trace in examples")
    _filters(export)
    add("verify", cmd_verify, "check the hash chain: OK, or the first broken link (exit 1)")
    backup = add("backup", cmd_backup, "copy the database with VACUUM INTO", data=False)
    backup.add_argument("file", type=Path, help="new backup file")
    prune = add("prune", cmd_prune, "delete turns older than N days (admin; leaves tombstones; audited)", role=ADMIN)
    prune.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    audit_period.register(sub, add, common)


def _filters(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("filters")
    g.add_argument("--from", dest="date_from", metavar="DATE", help="from this date (YYYY-MM-DD or ISO time)")
    g.add_argument("--to", dest="date_to", metavar="DATE", help="through this date")
    g.add_argument("--model", help="model name or file sha256")
    g.add_argument("--channel", choices=CHANNELS, help="with a guard decision on this channel")
    g.add_argument("--action", choices=ACTIONS, help="with a guard decision with this action")
    g.add_argument("--label", help="with a guard decision for this classifier label (e.g. toxicity)")
    g.add_argument("--review-label", choices=REVIEW_LABELS, help="whose latest review has this label")
    g.add_argument("--status", choices=STATUSES)
    g.add_argument("--conversation", dest="conversation_id", metavar="ID")
    rv = g.add_mutually_exclusive_group()
    rv.add_argument("--reviewed", dest="reviewed", action="store_true", default=None)
    rv.add_argument("--unreviewed", dest="reviewed", action="store_false")
    lm = g.add_mutually_exclusive_group()
    lm.add_argument("--mixing", dest="language_mixing", action="store_true", default=None,
                    help="only turns with language mixing")
    lm.add_argument("--no-mixing", dest="language_mixing", action="store_false")


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--offset", type=int, default=0)


def _filters_from(args: argparse.Namespace) -> TurnFilters:
    names = ("date_from", "date_to", "model", "channel", "action", "label", "review_label", "reviewed",
             "language_mixing", "status", "conversation_id")
    return TurnFilters(**{n: getattr(args, n, None) for n in names})


@contextlib.contextmanager
def _open(args: argparse.Namespace) -> Iterator[AuditLog]:
    # the role gate, before anything is read: the same passphrases, rate limit and events as the app
    with gated_log(getattr(args, "db", None), getattr(args, "required_role", AUDITOR)) as (log, auth):
        args.auth = auth
        yield log


def _actor(args: argparse.Namespace) -> str:
    """Who acts, as recorded in the log: the authenticated role and login name ("auditor (alice)")."""
    auth: Authenticated = args.auth
    return auth.name


def _print_json(data: Any) -> None:
    print(safe_json(data))


def _one_line(text: str | None, width: int) -> str:
    """One terminal line: whitespace runs folded, control/escape sequences made visible, then cut."""
    flat = printable(" ".join(str(text or "").split()))
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _text(value: Any) -> str:
    """A multi-line body from the log, printed with control/escape sequences made visible."""
    return printable("" if value is None else value, multiline=True)


def _print_turns(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    if args.json:
        _print_json(rows)
        return
    if not rows:
        print("no turns")
        return
    for r in rows:
        marks = ("R" if r["reviewed"] else "-") + ("L" if r["language_mixing"] else "-")
        sev = {3: "BLOCK", 2: "FLAG", 1: "MIX"}.get(r["severity"], "")
        print(f"{printable(r['id'])}  {printable(r['created'][:19])}  {printable(r['status']):<11} {sev:<5} {marks}  "
              f"{_one_line(r.get('model_name'), 24):<24}  {_one_line(r['prompt'], 60)}")
        if r.get("snippet"):
            print(f"    {_one_line(r['snippet'], 110)}")


def cmd_list(args: argparse.Namespace) -> int:
    with _open(args) as log:
        _print_turns(log.list_turns(_filters_from(args), limit=args.limit, offset=args.offset), args)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    with _open(args) as log:
        rows = log.search(args.query, _filters_from(args), limit=args.limit, offset=args.offset,
                          order="relevance" if args.relevance else "newest")
        _print_turns(rows, args)
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    with _open(args) as log:
        _print_turns(log.review_queue(limit=args.limit, offset=args.offset, order=args.order), args)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _open(args) as log:
        turn = log.get_turn(args.id)
    if args.json:
        _print_json(turn)
        return 0
    model = turn.get("model") or {}
    print(_one_line(f"turn {turn['id']}  ({turn['status']}, finish: {turn['finish_reason']})", 400))
    print(_one_line(f"conversation {turn['conversation_id']}  created {turn['created']}  finished {turn['finished']}",
                    400))
    print(_one_line(f"model {turn['model_name']}  {turn['model_quantization'] or ''}  sha256 "
                    f"{turn['model_sha256'] or '?'}" + (f"  ({model.get('path')})" if model.get("path") else ""), 2000))
    print(f"settings {json.dumps(turn.get('settings'))}  policy {printable(turn['policy_hash'] or '-')}")
    print(f"severity {turn['severity_name']}  reviewed {'yes' if turn['reviewed'] else 'no'}"
          f"  language mixing {'yes' if turn['language_mixing'] else 'no'}"
          f"  chain {'#' + str(turn['chain']['seq']) if turn['chain'] else 'not sealed'}")
    for title, key in (("PROMPT (typed)", "prompt_typed"), ("PROMPT (sent)", "prompt_sent"),
                       ("THINKING", "thinking"), ("ANSWER (raw)", "answer"), ("ANSWER (shown)", "answer_shown")):
        if key == "prompt_sent" and turn[key] == turn["prompt_typed"]:
            continue
        if key == "answer_shown" and turn[key] == turn["answer"]:
            continue
        print(f"\n--- {title} ---\n{_text(turn[key])}")
    if turn["decisions"]:
        print("\n--- DECISIONS ---")
        for d in turn["decisions"]:
            print(f"{printable(d['channel']):<8} [{d['start']}:{d['end']}] {printable(d['label']):<16} "
                  f"{d['score'] or 0:.3f} ≥ "
                  f"{d['threshold'] or 0:.3f} → {printable(d['action'])}{' (window)' if d['window'] else ''}"
                  f"  {_one_line(d['text'], 60)}")
    for rv in turn["reviews"]:
        print(f"\nreview {printable(rv['created'])} by {printable(rv['reviewer'])}: {printable(rv['label'])}  "
              f"{_text(rv['note'])}")
        if rv["corrected_answer"]:
            print(f"  corrected answer: {_text(rv['corrected_answer'])}")
    if turn["feedback"]:
        fb = turn["feedback"]
        print(f"\nuser feedback: {({1: 'up', -1: 'down'}).get(fb['thumbs'], 'none')}  {_text(fb['comment'])}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    with _open(args) as log:
        turn_id = log.get_turn(args.id)["id"]
        review_id = log.review(turn_id, args.label, note=args.note, reviewer=_actor(args),
                               corrected_answer=args.corrected_answer, channel=args.channel)
    if args.json:
        _print_json({"turn_id": turn_id, "review_id": review_id, "label": args.label})
    else:
        print(f"turn {turn_id} reviewed: {args.label}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _open(args) as log:
        stats = log.stats_since_last_review(reviewer=args.reviewer, since=args.since)
    if args.json:
        _print_json(stats)
        return 0
    print(f"since {stats['since'] or 'the beginning'}: {stats['turns']} turns "
          + ", ".join(f"{k} {v}" for k, v in sorted(stats["by_status"].items())))
    tva = stats["thinking_vs_answer"]
    print(f"guard decisions: thinking {tva['thinking']}, answer {tva['answer']}, "
          f"prompt {sum(stats['by_channel'].get('prompt', {}).values())}")
    for channel, labels in sorted(stats["decisions"].items()):
        for label, actions in sorted(labels.items()):
            print(f"  {channel:<8} {label:<16} " + ", ".join(f"{a} {n}" for a, n in sorted(actions.items())))
    print(f"language mixing: {stats['language_mixing']} turns")
    print("unreviewed: " + (", ".join(f"{k} {v}" for k, v in stats["unreviewed"].items()) or "none"))
    print("review labels (all time): " + (", ".join(f"{k} {v}" for k, v in sorted(stats["review_labels"].items()))
                                          or "none"))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    created: list[Path] = []
    try:
        with _open(args) as log, contextlib.ExitStack() as stack:
            out: IO[str] = stack.enter_context(_create(args.out, created)) if args.out else sys.stdout
            pairs = stack.enter_context(_create(args.pairs_out, created)) if args.pairs_out else None
            count = log.export(args.format, out, _filters_from(args), actor=_actor(args), pairs_out=pairs,
                               with_thinking=args.with_thinking,
                               destination=str(args.out) if args.out else "stdout")
    except BaseException as exc:
        for path in created:   # a failed export leaves no partial file (nor one that blocks the retry)
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise UserFacingError(f"Cannot write the export: {exc.strerror or exc}") from exc
        raise
    if args.out:
        print(f"exported {count} records to {args.out}", file=sys.stderr)
    return 0


def _create(path: Path, created: list[Path]) -> IO[str]:
    try:   # private from the first byte: an export holds every prompt and answer
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)   # whatever the umask
        handle = open(fd, "w", encoding="utf-8", newline="")
    except FileExistsError:
        raise UserFacingError(f"{path} already exists", hint="choose a new file name") from None
    except OSError as exc:
        raise UserFacingError(f"Cannot create {path}: {exc.strerror}") from None
    created.append(path)
    return handle


def cmd_verify(args: argparse.Namespace) -> int:
    with _open(args) as log:
        result = log.verify()
        prunes = prune_events(log)
    if args.json:
        _print_json({"ok": result.ok, "entries": result.entries, "prunes": prunes,
                     "first_broken": vars(result.first_broken) if result.first_broken else None,
                     "problems": [vars(p) for p in result.problems],
                     "anchors": [vars(a) for a in result.anchors]})
    else:
        print(result.summary())
        for problem in result.problems[1:]:
            print(f"  also: {problem.message}")
        for a in result.anchors:   # which anchors outside the database were compared, which were not
            seen = f" (entry {a.seq})" if a.seq is not None else ""
            print(f"  anchor: {a.name} {a.location}: {a.state}{seen}{': ' + a.detail if a.detail else ''}")
        for line in describe_prunes(prunes):
            print(line)
    return 0 if result.ok else 1


def prune_events(log: AuditLog, *, limit: int = 1000) -> list[dict[str, Any]]:
    """The chained prune events, oldest first: when, by whom, how many turns, up to which date."""
    events = log.list_admin_events(action="audit.prune", limit=limit)
    return [{"created": e["created"], "actor": e["actor"], "turns": (e["details"] or {}).get("turns"),
             "cutoff": (e["details"] or {}).get("cutoff"), "older_than_days": (e["details"] or {}).get("older_than_days"),
             "first_turn": (e["details"] or {}).get("first_turn"), "last_turn": (e["details"] or {}).get("last_turn")}
            for e in reversed(events)]


def describe_prunes(prunes: list[dict[str, Any]]) -> list[str]:
    if not prunes:
        return ["pruned: never"]
    return [_one_line(f"pruned: {p['turns']} turns created before {p['cutoff']}, on {p['created']} by {p['actor']}"
                      f" (kept as tombstones)", 400) for p in prunes]


def cmd_backup(args: argparse.Namespace) -> int:
    with _open(args) as log:
        target = log.backup(args.file, actor=_actor(args))
    print(f"backup written to {target}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    with _open(args) as log:
        result = log.prune(args.older_than, actor=_actor(args))
    if args.json:
        _print_json(result)
    else:
        print(f"pruned {result['turns']} turns created before {result['cutoff']} (tombstones kept)")
    return 0
