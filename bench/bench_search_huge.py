"""`audit search` with a few 1 MB turns among many normal ones: p50/p95 per query, before/after m011.

A 1 MB refused prompt used to make `audit search hello` take 48 s (0.2 s without it): FTS5 builds a
snippet by re-reading and re-tokenizing the whole indexed text of each hit. m011 indexes (and snippets)
at most the first ``FTS_FIELD_CHARS`` characters of each field, so search time stays independent of one
turn's size. The issue asks for 1M normal turns; ``--turns`` makes a quick check possible:

    python bench/bench_search_huge.py --turns 20000 --huge 3 --repeat 20

The load average is printed with the results (the machine is often shared).
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r1desk.storage.auditlog import AuditLog  # noqa: E402
from r1desk.storage.bulk import bulk_insert_turns  # noqa: E402

WORDS = ("moon tide water gravity bread flour sugar light energy plant river stone cloud hello world answer "
         "question model token search index review policy guard").split()
QUERIES = ("hello", "moon", "hello world", "gravit*", '"plant river"', "nomatchatall")


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _turns(count: int, huge: int, huge_bytes: int, seed: int = 7):
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    huge_at = {int(count * (i + 1) / (huge + 1)) for i in range(huge)} | {count - 1} if huge else set()
    big = ("hello " * (huge_bytes // 6 + 1))[:huge_bytes]
    for i in range(count):
        stamp = (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        if i in huge_at:   # a refused 1 MB prompt (and one echoed back), the newest one among them
            yield {"prompt": big, "thinking": big, "answer": "I cannot help with that.", "created": stamp,
                   "model_name": "bench", "status": "blocked"}
        else:
            yield {"prompt": _text(rng, 12), "thinking": _text(rng, 40), "answer": _text(rng, 25), "created": stamp,
                   "model_name": "bench"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=1_000_000)
    ap.add_argument("--huge", type=int, default=3, help="how many 1 MB turns among them")
    ap.add_argument("--huge-bytes", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=20, help="runs per query")
    ap.add_argument("--db", type=Path, default=None, help="reuse/keep this database (default: a temp file)")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory() if args.db is None else None
    path = args.db or Path(tmp.name) / "bench.db"  # type: ignore[union-attr]
    log = AuditLog(path)
    if not log.list_turns(limit=1):
        t0 = time.perf_counter()
        bulk_insert_turns(log, _turns(args.turns, args.huge, args.huge_bytes))
        print(f"loaded {args.turns} turns ({args.huge + 1 if args.huge else 0} of {args.huge_bytes} bytes)"
              f" in {time.perf_counter() - t0:.1f} s")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  cpus: {os.cpu_count()}")
    worst = 0.0
    for query in QUERIES:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            rows = log.search(query, limit=50)
            times.append(time.perf_counter() - t0)
        times.sort()
        p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
        worst = max(worst, p95)
        print(f"search {query!r:<16} hits {len(rows):>3}  p50 {statistics.median(times) * 1000:8.1f} ms"
              f"  p95 {p95 * 1000:8.1f} ms")
    print(f"worst p95 {worst * 1000:.1f} ms; load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    log.close()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
