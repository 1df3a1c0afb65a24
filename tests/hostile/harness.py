"""Run the r1desk CLI on a hostile input in a child process with hard limits, and measure it.

The child runs in its own session (process group), under RLIMIT_AS, with a wall-clock timeout after
which the whole group is killed. Its peak RSS is the child's own VmHWM, written by a small wrapper
at exit: wait4()'s ru_maxrss also counts the pages the child inherited from this (large) test process
when it was forked, so it is only the fallback (for a child killed before it could write).
"""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 1536 << 20       # address space for one CLI run (Python + numpy + jinja ~ 700 MB of AS)
TIMEOUT_S = 20.0
# runs r1desk's CLI and, at exit, writes this process's peak resident set (VmHWM, kB) to $R1DESK_HWM_FILE
_WRAPPER = ("import atexit, os, sys\n"
            "def _hwm():\n"
            "    with open('/proc/self/status') as f, open(os.environ['R1DESK_HWM_FILE'], 'w') as out:\n"
            "        out.write(next(l.split()[1] for l in f if l.startswith('VmHWM')))\n"
            "atexit.register(_hwm)\n"
            "sys.argv[0] = 'r1desk'\n"
            "from r1desk.cli import main\n"
            "sys.exit(main())\n")


@dataclass
class Run:
    rc: int | None              # None: killed at the timeout
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float
    timed_out: bool

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def describe(self) -> str:
        tail = (self.stderr_lines[-1] if self.stderr_lines else "")[:160]
        return f"rc={self.rc} {self.seconds:.2f}s {self.peak_rss_mb:.0f}MB stderr={tail!r}"


def run_cli(args: list[str | bytes], *, home: Path, stdin: bytes = b"", timeout: float = TIMEOUT_S,
            memory_limit: int | None = MEMORY_LIMIT, code_root: Path = REPO) -> Run:
    """``python -m r1desk ARGS`` from ``code_root`` (another checkout measures the old code)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_", "PYTEST"))}
    hwm_file = Path(home) / f"hwm-{time.monotonic_ns()}.txt"
    Path(home).mkdir(parents=True, exist_ok=True)
    env.update({"R1DESK_HOME": str(home), "PYTHONPATH": str(code_root), "HF_HUB_OFFLINE": "1",
                "R1DESK_HWM_FILE": str(hwm_file),
                "QT_QPA_PLATFORM": "offscreen", "PYTHONUTF8": "0", "LC_ALL": "C.UTF-8"})

    def limits() -> None:
        if memory_limit:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    started = time.monotonic()
    command = [sys.executable, "-c", _WRAPPER] if sys.platform == "linux" else [sys.executable, "-m", "r1desk"]
    proc = subprocess.Popen([*command, *args], cwd=code_root, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=limits)
    killed = threading.Event()

    def kill_group() -> None:
        killed.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill_group)
    timer.start()
    out: dict[str, bytes] = {}
    try:
        # read both pipes without waiting on the child (wait4 below reaps it, with its rusage)
        reader_out = threading.Thread(target=lambda: out.__setitem__("stdout", proc.stdout.read()))
        reader_err = threading.Thread(target=lambda: out.__setitem__("stderr", proc.stderr.read()))
        reader_out.start()
        reader_err.start()
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        reader_out.join()
        reader_err.join()
    finally:
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        timer.cancel()
        if proc.returncode is None:
            kill_group()
    seconds = time.monotonic() - started
    rc = None if killed.is_set() else proc.returncode
    return Run(rc, out.get("stdout", b"").decode("utf-8", "replace"), out.get("stderr", b"").decode("utf-8", "replace"),
               seconds, _peak_kb(hwm_file, usage.ru_maxrss) / 1024, killed.is_set())


def _peak_kb(hwm_file: Path, fallback_kb: int) -> int:
    try:
        return int(hwm_file.read_text())
    except (OSError, ValueError):
        return fallback_kb
    finally:
        hwm_file.unlink(missing_ok=True)
