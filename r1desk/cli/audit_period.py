"""`r1desk audit period ...`: periodic review, headless (auditor passphrase once roles are set).

  status             reminders: the last closed period's reviews outstanding, or no sign-off (exit 1 if any)
  draw [PERIOD]      record a closed period's queue: every flagged turn + the reproducible random sample
  queue PERIOD       the period's queue and what is still unreviewed
  report PERIOD      write the period report (JSON + self-contained HTML) without signing it
  signoff PERIOD     write the report and sign it off (chained in the audit log)
  list               the periods drawn so far

PERIOD is an ISO week (2026-W48) or a month (2026-11); the cadence and the sample size are the admin's
settings (review_period). Times are UTC.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from r1desk.cli import help_command
from r1desk.textsafe import printable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], add: Callable[..., argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("period", parents=[common], help="periodic review: draw, queue, report, sign off, status")
    p.set_defaults(func=help_command(p))
    psub = p.add_subparsers(dest="period_command", metavar="STEP")
    add_to = _adder(psub, add)
    add_to("status", cmd_status, "reminders for the last closed period (exit 1 when something is outstanding)")
    draw = add_to("draw", cmd_draw, "record a closed period's review queue")
    draw.add_argument("period", nargs="?", default=None, help="e.g. 2026-W48 or 2026-11 (default: the last closed)")
    queue = add_to("queue", cmd_queue, "the period's queue and what is unreviewed")
    queue.add_argument("period")
    report = add_to("report", cmd_report, "write the period report (JSON + HTML)")
    report.add_argument("period")
    report.add_argument("--out", type=Path, default=None, help="folder (default: the data folder's reports/periods)")
    signoff = add_to("signoff", cmd_signoff, "write the report and sign it off (chained)")
    signoff.add_argument("period")
    signoff.add_argument("--note", default="")
    signoff.add_argument("--out", type=Path, default=None)
    add_to("list", cmd_list, "periods drawn so far")


def _adder(psub: argparse._SubParsersAction[argparse.ArgumentParser], add: Callable[..., argparse.ArgumentParser]) -> Callable[..., Any]:
    def add_to(name: str, func: Any, help_: str) -> argparse.ArgumentParser:
        return add(name, func, help_, sub=psub)
    return add_to


def _audit() -> Any:
    from r1desk.cli import audit

    return audit


def _settings() -> Any:
    from r1desk.settings import load_settings

    return load_settings().review_period


def cmd_status(args: argparse.Namespace) -> int:
    from r1desk.core.feedback import periods

    cfg = _settings()
    if cfg.cadence == "off":
        print("periodic review is off (set review_period.cadence to weekly or monthly)")
        return 0
    with _audit()._open(args) as log:
        notes = periods.reminders(log, cfg.cadence, sample_size=cfg.sample_size, actor=_audit()._actor(args))
    if args.json:
        _audit()._print_json({"reminders": notes})
    else:
        print("\n".join(notes) if notes else "nothing outstanding")
    return 1 if notes else 0


def cmd_draw(args: argparse.Namespace) -> int:
    from r1desk.core.feedback import periods

    cfg = _settings()
    period_id = args.period or periods.last_closed(cfg.cadence if cfg.cadence != "off" else "weekly")
    with _audit()._open(args) as log:
        period = periods.draw(log, period_id, sample_size=cfg.sample_size, actor=_audit()._actor(args))
    if args.json:
        _audit()._print_json(period)
    else:
        print(f"period {period['id']}: {len(period['flagged'])} flagged + {len(period['sample'])} sampled of "
              f"{period['population']} unflagged turns (seed {period['seed'][:16]}…)")
    return 0


def cmd_queue(args: argparse.Namespace) -> int:
    with _audit()._open(args) as log:
        period = log.get_period(args.period)
        if period is None:
            from r1desk.errors import UserFacingError

            raise UserFacingError(f"Period {args.period} has not been drawn", hint="r1desk audit period draw")
        info = log.latest_reviews(period["flagged"] + period["sample"])
    rows = [{"turn_id": t, "why": why, "review": info[t]["review"]}
            for why, ids in (("flagged", period["flagged"]), ("sampled", period["sample"])) for t in ids]
    if args.json:
        _audit()._print_json(rows)
        return 0
    for r in rows:
        label = r["review"]["label"] if r["review"] else "UNREVIEWED"
        print(f"{printable(r['turn_id'])}  {r['why']:<8} {printable(label)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from r1desk.core.feedback import periods

    with _audit()._open(args) as log:
        report = periods.build_report(log, args.period)
    json_path, html_path, digest = periods.write_report(report, args.out)
    if args.json:
        _audit()._print_json({"json": str(json_path), "html": str(html_path), "sha256": digest,
                              "summary": report["summary"]})
    else:
        print(f"report written: {html_path} (JSON {json_path}, sha256 {digest})")
    return 0


def cmd_signoff(args: argparse.Namespace) -> int:
    from r1desk.core.feedback import periods

    with _audit()._open(args) as log:
        done = periods.sign_off(log, args.period, auditor=_audit()._actor(args), note=args.note, folder=args.out)
    if args.json:
        _audit()._print_json(done)
    else:
        print(f"period {args.period} signed off (sign-off #{done['signoff_id']}, report sha256 "
              f"{done['report_sha256']}); report: {done['html']}"
              + (f"; {done['outstanding']} turns were still unreviewed" if done["outstanding"] else ""))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _audit()._open(args) as log:
        rows = log.list_periods()
    if args.json:
        _audit()._print_json(rows)
        return 0
    if not rows:
        print("no review period drawn yet")
    for p in rows:
        signed = f"signed off by {printable(p['signoffs'][-1]['auditor'])}" if p["signoffs"] else "not signed off"
        print(f"{p['id']:<9} {p['period_start'][:10]} – {p['period_end'][:10]}  {len(p['flagged'])} flagged + "
              f"{len(p['sample'])} sampled  {signed}")
    return 0
