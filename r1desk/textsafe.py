"""Text from the log, model files and prompts, made safe to print on a terminal.

A logged prompt or a GGUF metadata string can carry ANSI/OSC escape sequences (recolour the terminal,
rewrite the title, hide lines, fake a "verify OK") or other control characters. ``printable`` maps every
C0 and C1 control character, DEL and the escape character itself to a visible Python-style escape
(``\\x1b``, ``\\x07``, ``\\x9b`` ...), so what the terminal shows is exactly what is stored.
Newline and tab are kept in multi-line bodies (``multiline=True``) and made visible in one-line cells.
Unicode bidirectional overrides (which reorder what is shown) are made visible too.
"""
from __future__ import annotations

import json
import re

# C0 controls, DEL, C1 controls; bidi embedding/override/isolate marks and the line/paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_KEEP_MULTILINE = frozenset("\n\t")


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def printable(text: object, *, multiline: bool = False) -> str:
    """``text`` with control and escape characters shown as ``\\xNN`` / ``\\uNNNN``.

    ``multiline`` keeps newline and tab (a turn's body); otherwise they are escaped too (a table cell,
    a one-line snippet). A backslash is left alone: the result is for reading, not for parsing back.
    """
    s = "" if text is None else str(text)
    if multiline:
        return _CONTROL.sub(lambda m: m.group() if m.group() in _KEEP_MULTILINE else _escape(m.group()), s)
    return _CONTROL.sub(lambda m: _escape(m.group()), s)


# JSON escapes C0 controls itself; with ensure_ascii=False the rest of _CONTROL (DEL, C1 such as the 8-bit CSI,
# bidi overrides, line separators) would reach the terminal raw. Escaped, the parsed JSON is the same.
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in (*range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F),
                                             *range(0x2066, 0x206A))}


def safe_json(data: object, *, indent: int | None = 2) -> str:
    """``data`` as JSON for a terminal: readable non-ASCII text, every control or reordering character escaped
    (the parsed value is unchanged)."""
    return json.dumps(data, indent=indent, ensure_ascii=False, default=str).translate(_JSON_ESCAPES)
