"""Command line: `r1desk` alone opens the desktop app; subcommands run headless.

Each command group lives in its own module with a ``register(subparsers)`` function that adds
its parser and sets ``func`` (a callable taking the parsed args and returning an exit code).
User-facing errors are printed as one line (exit code from the error, 2 by default); anything
else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from r1desk import __version__
from r1desk.errors import UserFacingError

log = logging.getLogger("r1desk.cli")

# Modules under r1desk.cli that contribute subcommands, in --help order.
COMMAND_MODULES = ("chat", "classify", "guard", "models", "audit", "selfcheck", "info")


def help_command(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``func`` for a command group run without its action: print the group's help, exit 0."""
    def run(args: argparse.Namespace) -> int:
        parser.print_help()
        return 0
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="r1desk",
        description="Run distilled DeepSeek-R1 models locally, with guardrails, language locking "
        "and an audit log. With no command, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"r1desk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"r1desk.cli.{name}").register(subparsers)
    return parser


def _setup_logging(verbose: bool) -> None:
    """Everything goes to the log file; the terminal gets only what the commands print (or -v)."""
    from r1desk import paths

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_r1desk", False)]:   # main() may run again (tests)
        root.removeHandler(old)
        old.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        handler: logging.Handler = logging.FileHandler(paths.log_dir() / "r1desk.log", encoding="utf-8")
    except OSError:                       # a read-only profile must not stop the command
        handler = logging.NullHandler()
    handler.setFormatter(fmt)
    handlers = [handler]
    if verbose:
        stderr = logging.StreamHandler()
        stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handlers.append(stderr)
    for h in handlers:
        h._r1desk = True  # type: ignore[attr-defined]
        root.addHandler(h)


def _open_gui(args: argparse.Namespace) -> int:
    from r1desk.ui.app import run_app  # Qt is imported only when the window is wanted

    return run_app()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    func = getattr(args, "func", None) or _open_gui
    try:
        return int(func(args) or 0)
    except UserFacingError as exc:
        print(f"r1desk: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("r1desk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:              # `r1desk audit list | head`: the reader left, that is fine
        # Python would still complain when it flushes stdout at exit (see the signal module's docs).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
