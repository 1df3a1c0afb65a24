"""Each hostile file and input of issue 11, through the real CLI in a child process: bounded time and
memory (RLIMIT_AS, own process group, timeout), and one clear line with exit 2, never a traceback."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.cases import CASES, Case
from tests.hostile.harness import MEMORY_LIMIT, run_cli

# Bounds asserted for every case (measured: 0.4-0.8 s and 40-60 MB each; 2 shared cores leave slack).
MAX_SECONDS = 10.0
MAX_PEAK_RSS_MB = 300


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_cli_case_is_bounded_and_answered_in_one_line(case: Case, tmp_path: Path) -> None:
    home = tmp_path / "home"
    argv, stdin = case.build(tmp_path, home)
    run = run_cli(argv, home=home, stdin=stdin, memory_limit=MEMORY_LIMIT)
    assert not run.timed_out, f"{case.name} hung: {run.describe()}"
    assert run.seconds < MAX_SECONDS and run.peak_rss_mb < MAX_PEAK_RSS_MB, run.describe()
    assert "Traceback" not in run.stderr and "MemoryError" not in run.stderr, run.stderr[-2000:]
    assert run.rc == case.rc, run.describe()
    if case.rc == 2:
        lines = run.stderr_lines
        assert 1 <= len(lines) <= 2, lines           # the error, and at most one notice or warning before it
        assert lines[-1].startswith("r1desk: error: ")
        assert all(len(line) < 600 for line in lines), [len(line) for line in lines]
        assert case.expect in run.stderr.lower(), run.stderr
    else:
        assert len(run.stdout) < 8000 and "\x1b" not in run.stdout and "\x07" not in run.stdout
        assert case.expect in run.stdout.lower(), run.stdout


def test_json_output_escapes_terminal_controls(tmp_path: Path) -> None:
    """``classify --json`` (like ``chat --json``, ``guard``, ``models``) printed text raw with ensure_ascii=False:
    an 8-bit CSI or a bidi override in the text reached the terminal. Now escaped, the same JSON."""
    import json

    text = "hello \x9b2J\x9b31m world \u202edcba. Second sentence here."
    run = run_cli(["classify", "--json", "--text", text], home=tmp_path / "home")
    out = run.stdout
    assert "\x9b" not in out and "\u202e" not in out, out[:200]
    segments = json.loads(out)["segments"]
    assert "".join(seg["text"] for seg in segments).startswith("hello \x9b2J\x9b31m world \u202edcba.")
