"""Entry point of the packaged app (PyInstaller): the same as the `r1desk` command."""
from __future__ import annotations

import multiprocessing
import sys

from r1desk.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen app re-executes itself for child processes on Windows/macOS
    sys.exit(main())
