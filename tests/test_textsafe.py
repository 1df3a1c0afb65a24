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
