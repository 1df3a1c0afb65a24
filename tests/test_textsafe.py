"""printable(): what the terminal shows is what is stored, never an escape sequence it obeys."""
from __future__ import annotations

from r1desk.textsafe import printable


def test_escape_sequences_become_visible():
    assert printable("a\x1b[31mred\x1b]0;title\x07") == "a\\x1b[31mred\\x1b]0;title\\x07"


def test_c1_controls_and_del_are_visible():
    assert printable("x\x9b2Jy\x7f") == "x\\x9b2Jy\\x7f"


def test_newline_and_tab_kept_only_in_multiline_bodies():
    assert printable("a\nb\tc\r", multiline=True) == "a\nb\tc\\x0d"
    assert printable("a\nb\tc") == "a\\x0ab\\x09c"


def test_bidi_overrides_are_visible():
    assert printable("abc\u202edcba") == "abc\\u202edcba"


def test_ordinary_text_unchanged():
    text = "Héllo — 你好 🙂 \\n"
    assert printable(text) == text
    assert printable(None) == ""


def test_safe_json_escapes_what_a_terminal_would_obey_and_parses_back_the_same() -> None:
    import json

    from r1desk.textsafe import safe_json

    data = {"name": "model \x9b31m\u202eevil\u2028x", "ok": "café 日本", "n": 1}
    text = safe_json(data)
    assert not any(c in text for c in "\x9b\u202e\u2028\x1b")
    assert "café 日本" in text                                  # readable, not \\u-escaped
    assert json.loads(text) == data


def test_every_json_printing_command_uses_safe_json() -> None:
    """A model name, a prompt or an answer can carry C1 controls; each ``--json`` printer escapes them (issue 10's
    rule for ``audit --json``, now for ``models``, ``guard``, ``chat``, ``classify`` and ``selfcheck`` too)."""
    import re
    from pathlib import Path

    import r1desk.cli

    for path in Path(r1desk.cli.__file__).parent.glob("*.py"):
        source = path.read_text()
        raw = re.findall(r"json\.dumps\([^\n]*ensure_ascii=False", source)
        assert not raw, (path.name, raw)
