"""`r1desk selfcheck`: measure how safe a model is, with and without the guards, and write a report."""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from r1desk.errors import UserFacingError
from r1desk.textsafe import safe_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "selfcheck", help="run a safety test suite against a model, with the guards on and/or off",
        description="Send every prompt of a safety suite (the built-in one, or a SimpleSafetyTests or "
        "XSTest CSV file) through the guarded chat pipeline, classify each answer as complied, refused "
        "or partially refused, and report unsafe-response and over-refusal rates with the guards on vs "
        "off (monitor mode), thinking vs answer flag rates, per harm area and language consistency. "
        "The run is logged to the audit database. Ctrl-C stops after the current prompt and still "
        "writes the report for the prompts that finished.")
    p.add_argument("--model", "-m", help="GGUF file (default: the last model used in the app)")
    p.add_argument("--suite", "-s", default="builtin", help="'builtin' or a CSV file (default: builtin)")
    p.add_argument("--format", dest="fmt", default="auto", choices=("auto", "sst", "xstest"),
                   help="CSV format of --suite (default: detect from the header)")
    p.add_argument("--guards", default="both", choices=("on", "off", "both"),
                   help="run with the guards on, off (monitor mode: flag only), or both (default)")
    p.add_argument("--limit", type=int, default=None, help="run at most N prompts (sampled evenly by --seed)")
    p.add_argument("--seed", type=int, default=0, help="sampling and generation seed (default 0)")
    p.add_argument("--max-tokens", type=int, default=None, help="maximum new tokens per answer")
    p.add_argument("--language", "-l", default="auto", help="output language lock: auto, a code, or off")
    p.add_argument("--n-ctx", type=int, default=None, help="context size in tokens")
    p.add_argument("--gpu-layers", default=None, help="none, all, auto or a number of layers")
    p.add_argument("--db", type=Path, default=None, help="audit database (default: the user data dir)")
    p.add_argument("--report", "-o", type=Path, default=None, help="write the HTML report here")
    p.add_argument("--json", action="store_true", help="print the whole run (metrics and answers) as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)


def _pct(value: float | None) -> str:
    return "  n/a" if value is None else f"{value * 100:5.1f}%"


def _summary(run: Any) -> str:
    lines = [f"self-check {run.run_id[:8]} · {run.suite} · {run.model.get('name')} "
             f"(sha256 {str(run.model.get('sha256'))[:12]}…) · {len(run.outcomes)} turns"
             + (" · CANCELLED" if run.cancelled else "")]
    lines.append(f"{'mode':22} {'unsafe-resp':>11} {'over-refusal':>12} {'blocked':>8} {'think-flag':>10} "
                 f"{'answer-flag':>11} {'lang-ok':>8}")
    for mode, m in run.metrics.get("modes", {}).items():
        name = "guards on" if mode == "on" else "guards off (monitor)"
        lines.append(f"{name:22} {_pct(m['unsafe_response_rate']):>11} {_pct(m['over_refusal_rate']):>12} "
                     f"{_pct(m['blocked_rate']):>8} {_pct(m['flag_rates']['thinking']):>10} "
                     f"{_pct(m['flag_rates']['answer']):>11} {_pct(m['language']['consistent_rate']):>8}")
    no_answer = sum(o.no_answer for o in run.outcomes)
    if no_answer:
        lines.append(f"{no_answer} turn(s) ran out of tokens while thinking (no answer, not rated); "
                     "raise --max-tokens")
    for notice in run.metrics.get("notices", {}):
        if notice.startswith(("classifier_unavailable", "coverage_limited")):
            lines.append(f"warning: {notice}")
    if run.metrics.get("n_errors"):
        lines.append(f"{run.metrics['n_errors']} prompt(s) failed; see the report")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from r1desk.core.selfcheck.check import SelfCheckOptions, run_model_selfcheck
    from r1desk.settings import load_settings
    from r1desk.storage.auditlog import AuditLog

    if args.report is not None and args.report.is_dir():
        raise UserFacingError(f"--report is a folder: {args.report}", hint="give a file name such as report.html")
    settings = load_settings()
    model = args.model or settings.last_model_path
    if not model:
        raise UserFacingError("no model given", hint="pass --model PATH to a GGUF file")
    opts = SelfCheckOptions(model=model, suite=args.suite, fmt=args.fmt, guards=args.guards, limit=args.limit,
                            seed=args.seed, max_tokens=args.max_tokens,
                            language=None if args.language == "off" else args.language, n_ctx=args.n_ctx,
                            gpu_layers=args.gpu_layers, report=args.report)
    cancel = threading.Event()
    box: dict[str, Any] = {}

    def progress(p: Any) -> None:
        if args.quiet or p.outcome is None:
            return
        o = p.outcome
        verdict = "blocked" if o.blocked else o.refusal
        print(f"[{p.done}/{p.total}] guards {p.guards:3} {o.prompt_id:14} {o.expected:6} → {verdict}",
              file=sys.stderr, flush=True)

    def work() -> None:
        try:
            with AuditLog(args.db) as audit:
                box["run"] = run_model_selfcheck(opts, config=settings.chat_config(), audit=audit, progress=progress,
                                                 cancel=cancel)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            box["error"] = exc

    worker = threading.Thread(target=work, name="selfcheck", daemon=True)
    worker.start()
    interrupted = False
    while worker.is_alive():
        try:
            worker.join(0.2)
        except KeyboardInterrupt:
            if interrupted:
                raise
            interrupted = True
            cancel.set()
            print("r1desk: stopping after the current prompt (Ctrl-C again to abort)", file=sys.stderr)
    if "error" in box:
        raise box["error"]
    run_ = box["run"]
    if args.json:
        print(safe_json(run_.to_dict()))
    else:
        print(_summary(run_))
        if args.report is not None:
            print(f"report: {args.report}")
    return 130 if run_.cancelled else 0
