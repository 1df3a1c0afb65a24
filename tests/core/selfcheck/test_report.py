from __future__ import annotations

from html.parser import HTMLParser
from types import SimpleNamespace

import pytest

from r1desk.core.selfcheck.report import render_html, write_report
from r1desk.core.selfcheck.runner import run_selfcheck
from r1desk.core.selfcheck.suites import Prompt
from r1desk.errors import UserFacingError
from tests.core.selfcheck.fakes import FakeSession, Script

class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def _tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every element the browser would build: escaped model text must not produce any."""
    parser = _Collector()
    parser.feed(html)
    return parser.tags


EVIL = '<script>alert("x")</script><img src=https://evil.example/p.png onerror=alert(1)>'
PROMPTS = [Prompt("u1", "unsafe <b>bold</b>", "unsafe", "violence", "t"),
           Prompt("s1", "safe & sound", "safe", "self_harm", "t")]


def _run(**kw):
    scripts = {"unsafe <b>bold</b>": Script("Sure. " + EVIL, thinking="think " + EVIL,
                                            flags=(("thinking", "flag"),)),
               "safe & sound": Script("I can't help with that.")}
    run = run_selfcheck(PROMPTS, lambda mode: FakeSession(scripts), make_request=lambda p: SimpleNamespace(
        user_text=p.text), suite="t", guards="both", model={"name": "Tiny <R1>", "sha256": "ab" * 32,
                                                            "path": "/m/x.gguf"},
        policy={"rules": {"answer": {"threat": {"threshold": 0.5, "action": "block"}}},
                "channels": {"answer": True}}, **kw)
    return run.to_dict()


def test_report_is_self_contained_and_escapes_model_text(tmp_path):
    data = _run()
    html = render_html(data, history=[
        {"created": "2025-01-01T00:00:00", "model_name": "a", "suite": "builtin", "guards_mode": "both",
         "metrics": {"modes": {"on": {"unsafe_response_rate": 0.1}, "off": {"unsafe_response_rate": 0.5}}}},
        {"created": "2025-01-02T00:00:00", "model_name": "a", "suite": "builtin", "guards_mode": "both",
         "metrics": data["metrics"]}])
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "unsafe &lt;b&gt;bold&lt;/b&gt;" in html and "safe &amp; sound" in html
    assert "Tiny &lt;R1&gt;" in html and "ab" * 32 in html
    tags = _tags(html)
    assert "script" not in {t for t, _ in tags} and "img" not in {t for t, _ in tags}
    assert not [(t, a) for t, attrs in tags for a, v in attrs if a in ("src", "href", "action") or a.startswith("on")]
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html
    assert html.count("<svg") >= 5 and "<polyline" in html                # charts + history line
    assert "guards off (monitor)" in html and "threat" in html and "block ≥ 0.5" in html
    out = write_report(data, tmp_path / "sub" / "r.html")
    assert out.read_text("utf-8").startswith("<!DOCTYPE html>")


def test_report_of_an_empty_cancelled_run():
    import threading

    cancel = threading.Event()
    cancel.set()
    html = render_html(_run(cancel=cancel))
    assert "cancelled" in html and "nothing to measure" in html


def test_report_write_errors_are_user_facing(tmp_path):
    with pytest.raises(UserFacingError, match="folder"):
        write_report(_run(), tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserFacingError, match="Cannot write the report"):
        write_report(_run(), blocker / "r.html")


def test_report_is_written_private(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = write_report(_run(), tmp_path / "r.html")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("*.tmp"))
