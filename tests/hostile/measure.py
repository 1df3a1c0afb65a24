"""Measure every hostile case against a checkout: time, peak RSS, exit code, last stderr line.

    python -m tests.hostile.measure [CODE_ROOT] [--timeout S] [--memory-gb G] [--only NAME ...]

CODE_ROOT defaults to this checkout; point it at a `git worktree` of an older commit for "before".
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.hostile.cases import CASES
from tests.hostile.harness import REPO, run_cli


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("code_root", nargs="?", type=Path, default=REPO)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--memory-gb", type=float, default=8.0)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    print(f"| case | rc | seconds | peak RSS MB | stderr (last line) |\n|---|---|---|---|---|", flush=True)
    for case in CASES:
        if args.only and case.name not in args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            home = tmp_path / "home"
            argv, stdin = case.build(tmp_path, home)
            run = run_cli(argv, home=home, stdin=stdin, timeout=args.timeout,
                          memory_limit=int(args.memory_gb * 2**30), code_root=args.code_root)
        rc = "killed (timeout)" if run.timed_out else str(run.rc)
        last = (run.stderr_lines[-1] if run.stderr_lines else "")[:110].replace("|", "/")
        lines = len(run.stderr_lines)
        print(f"| {case.name} | {rc} | {run.seconds:.2f} | {run.peak_rss_mb:.0f} | "
              f"{lines} line(s): {last} |", flush=True)


if __name__ == "__main__":
    main()
