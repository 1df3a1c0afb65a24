"""Run every benchmark in bench/ and write bench/RESULTS.md with the machine's details.

    python bench/run_all.py                      # every bench/bench_*.py, results to bench/RESULTS.md
    python bench/run_all.py --list               # what would run
    python bench/run_all.py --only auditlog --args auditlog="--turns 100000"
    python bench/run_all.py --only harm --args harm="--quick"   # the harm filter's smoke check (bench_harm.py)
    python bench/run_all.py --machine-only       # just the machine table (CPU, RAM, bandwidth)

Each script prints its own markdown section on stdout (tables with ratios against a baseline
measured in the same run); this runner adds the machine's CPU, cores, RAM and a measured memory
bandwidth (numpy copy of a large array), and the physical decode limit: a decode step reads every
weight once, so tokens/s ≤ bandwidth ÷ model bytes. Scripts run one at a time, in their own process.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def discover() -> list[Path]:
    return sorted(p for p in BENCH.glob("bench_*.py") if p.is_file())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_bandwidth_gbs(size_mb: int = 256, repeats: int = 5) -> float | None:
    """Best-of-N copy bandwidth in GB/s, counting the bytes read and the bytes written."""
    try:
        import numpy as np
    except ImportError:
        return None
    src = np.ones(size_mb * 1024 * 1024 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    return 2 * src.nbytes / best / 1e9


def machine_info() -> dict[str, object]:
    info: dict[str, object] = {"cpu": cpu_model(), "logical cores": os.cpu_count(), "os": platform.platform(),
                               "python": platform.python_version()}
    try:
        import psutil

        info["physical cores"] = psutil.cpu_count(logical=False)
        info["RAM"] = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        pass
    try:
        info["load average (1/5/15 min)"] = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    return info


def decode_limit_lines(bandwidth: float | None, models: list[Path]) -> list[str]:
    if not bandwidth:
        return []
    lines = []
    for model in models:
        if model.is_file():
            size = model.stat().st_size
            lines.append(f"| decode upper bound, {model.name} ({size / 1e9:.2f} GB) | "
                         f"{bandwidth * 1e9 / size:.1f} tokens/s (bandwidth ÷ model bytes) |")
    return lines


def run_one(script: Path, extra: list[str], timeout: float) -> tuple[str, int | None, float]:
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(script), *extra], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode("utf-8", "replace")
        return out, None, time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
    return proc.stdout, proc.returncode, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="run only scripts whose name contains this")
    parser.add_argument("--skip", action="append", default=[], help="skip scripts whose name contains this")
    parser.add_argument("--args", action="append", default=[], metavar='NAME="ARGS"',
                        help="extra arguments for the script whose name contains NAME")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per script (default 3600)")
    parser.add_argument("--model", action="append", type=Path, default=[],
                        help="GGUF file(s) for the decode upper-bound line")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--list", action="store_true", help="list the scripts and exit")
    parser.add_argument("--machine-only", action="store_true", help="write only the machine section")
    args = parser.parse_args(argv)

    scripts = [s for s in discover()
               if (not args.only or any(o in s.stem for o in args.only)) and not any(k in s.stem for k in args.skip)]
    if args.list:
        print("\n".join(str(s.relative_to(ROOT)) for s in scripts))
        return 0
    extras: dict[str, list[str]] = {}
    for item in args.args:
        name, _, value = item.partition("=")
        extras[name] = shlex.split(value)

    info = machine_info()
    bandwidth = memory_bandwidth_gbs()
    lines = [f"# r1desk benchmark results ({datetime.now():%Y-%m-%d %H:%M})", "",
             "Written by `python bench/run_all.py`. Each section is printed by its script; ratios are against a "
             "baseline measured in the same run on this machine.", "", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines.append(f"| memory bandwidth (numpy copy, best of 5) | "
                 f"{f'{bandwidth:.1f} GB/s' if bandwidth else 'n/a (numpy missing)'} |")
    lines += decode_limit_lines(bandwidth, args.model)
    summary = ["", "## Scripts", "", "| script | status | wall time |", "|---|---|---|"]
    sections: list[str] = []
    for script in [] if args.machine_only else scripts:
        extra = next((v for k, v in extras.items() if k in script.stem), [])
        print(f"running {script.name} {' '.join(extra)}", file=sys.stderr, flush=True)
        out, code, wall = run_one(script, extra, args.timeout)
        status = "ok" if code == 0 else ("timed out" if code is None else f"failed (exit {code})")
        summary.append(f"| {script.name} | {status} | {wall:.0f} s |")
        sections.append(out.strip() or f"## {script.stem}\n\n(no output)")
    text = "\n".join(lines + (summary if scripts and not args.machine_only else [])) + "\n\n" + \
        "\n\n".join(sections) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
