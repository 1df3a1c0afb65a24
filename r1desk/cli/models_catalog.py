"""`r1desk models catalog` and `r1desk models download ID`: what the model manager's catalog tab does.

    r1desk models catalog [--json] [--context N]    the R1 models, fit for this machine, expected speed, ★ pick
    r1desk models download ID [--json]              download one (progress, resume, sha256 check)

Fit labels, memory estimates, expected speeds and the ★ recommendation come from core.hardware.assess, the
downloads from core.downloads: the app and the command line show the same numbers (all sizes in GiB). A
download that is interrupted (Ctrl+C, a dropped connection) keeps its partial file; running the command
again resumes it. With --json, progress goes to stderr as one JSON object per line and the result to stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

from r1desk import paths
from r1desk.core import catalog, downloads, hardware
from r1desk.errors import UserFacingError
from r1desk.textsafe import printable, safe_json

FIT_MARK = {"fits": "✓ fits", "tight": "~ tight", "won't fit": "✗ won't fit"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cat = sub.add_parser("catalog", help="the DeepSeek-R1 models to download: fit for this computer, "
                         "expected speed, the recommended one (★)")
    cat.add_argument("--json", action="store_true", help="print a JSON object")
    cat.add_argument("--context", type=int, default=None, metavar="N",
                     help=f"context size the memory estimate assumes (default {catalog.DEFAULT_CONTEXT})")
    cat.set_defaults(func=run_catalog)
    dl = sub.add_parser("download", help="download a catalog model into r1desk's models folder "
                        "(resumes a partial download, checks the sha256)")
    dl.add_argument("id", metavar="ID", help="a catalog id (r1desk models catalog)")
    dl.add_argument("--json", action="store_true",
                    help="progress as JSON lines on stderr, the result as a JSON object on stdout")
    dl.set_defaults(func=run_download)


def _gib(n: int) -> str:
    return f"{n / hardware.GIB:.1f} GiB"


def run_catalog(args: argparse.Namespace) -> int:
    if args.context is not None and args.context <= 0:
        raise UserFacingError("--context must be a positive number of tokens")
    hw = hardware.detect(bandwidth=True)
    rows = hardware.assess(catalog.entries(), hw, args.context)
    partial = {p.name.split(".gguf")[0] for p in downloads.partial_downloads()}
    models = paths.models_dir()
    if args.json:
        print(json.dumps({
            "machine": {"total_ram": hw.total_ram, "available_ram": hw.available_ram,
                        "bandwidth": hw.bandwidth, "description": hw.describe(),
                        "gpus": [{"name": g.name, "total": g.total_bytes, "free": g.free_bytes} for g in hw.gpus]},
            "context": args.context or catalog.DEFAULT_CONTEXT,
            "models": [{**a.to_dict(), "reason": a.reason(hw),
                        "downloaded": (models / a.entry.filename).is_file(),
                        "partial": a.entry.filename.removesuffix(".gguf") in partial} for a in rows],
        }, indent=2, ensure_ascii=False))
        return 0
    print(f"This computer: {hw.describe()}")
    header = ("", "ID", "FILE", "MEMORY", "THIS COMPUTER", "SPEED", "")
    table = [header]
    for a in rows:
        state = ("downloaded" if (models / a.entry.filename).is_file()
                 else "partial (download resumes)" if a.entry.filename.removesuffix(".gguf") in partial else "")
        table.append(("★" if a.recommended else "", a.entry.id, _gib(a.entry.size_bytes), _gib(a.memory_needed),
                      FIT_MARK[a.fit], a.speed.short() if a.speed else "—", state))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    pick = next((a for a in rows if a.recommended), None)
    if pick is not None:
        print(f"\n★ recommended: {pick.entry.title} — the largest model that fits and runs at a usable speed."
              f"\n  {pick.reason(hw)}\n  download it with: r1desk models download {pick.entry.id}")
    else:
        print("\nNo catalog model fits this computer's memory.")
    print("Speeds are estimates: memory bandwidth ÷ model size (tokens/s while writing the answer).")
    return 0


def run_download(args: argparse.Namespace) -> int:
    entry = catalog.get_entry(args.id)
    cancel = threading.Event()
    last = [0.0]

    def progress(p: downloads.Progress) -> None:
        now = time.monotonic()
        if p.phase == "downloading" and now - last[0] < 0.5 and p.done != p.total:
            return
        last[0] = now
        if args.json:
            print(json.dumps({"event": "progress", "phase": p.phase, "done": p.done, "total": p.total,
                              "speed": p.speed, "eta_s": p.eta_s}), file=sys.stderr, flush=True)
            return
        pct = f"{100 * p.done / p.total:.0f}%" if p.total else _gib(p.done)
        speed = f" · {p.speed / 2**20:.1f} MiB/s" if p.speed else ""
        eta = f" · {p.eta_s:.0f} s left" if p.eta_s and p.phase == "downloading" else ""
        print(f"\r{p.phase} {entry.filename}: {pct}{speed}{eta}   ", end="", file=sys.stderr, flush=True)

    phases: set[str] = set()

    def report(p: downloads.Progress) -> None:
        phases.add(p.phase)
        progress(p)

    try:
        path = downloads.download_entry(entry, progress=report, cancel=cancel)
    except KeyboardInterrupt:
        cancel.set()
        raise UserFacingError("download interrupted",
                              hint="the partial file is kept; running the command again resumes it") from None
    finally:
        if not args.json:
            print(file=sys.stderr)
    size = path.stat().st_size
    if args.json:
        result: dict[str, Any] = {"event": "done", "id": entry.id, "path": str(path), "size_bytes": size,
                                  "sha256_checked": "verifying" in phases}
        print(safe_json(result, indent=None))
    else:
        print(f"downloaded: {printable(str(path))} ({_gib(size)})")
        print(f"load it with: r1desk chat --model {printable(str(path))}")
    return 0
