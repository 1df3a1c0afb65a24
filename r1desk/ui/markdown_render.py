"""Channel text → HTML for a QTextBrowser: markdown, highlighted code, and the guard's marks.

Qt-free on purpose (fast to test). The guard's spans index the channel's *raw* text, so marks are
placed in the raw text first, as private-use characters markdown leaves alone, and turned into HTML
after the markdown pass: flagged spans get a highlight and a badge whose tooltip says label and score;
redacted spans are replaced by their notice; a block cuts the text and shows its notice. Private-use
characters the model itself wrote are first swapped for an ASCII token built on a nonce that does not
occur in the text, and swapped back at the end, so they can never be taken for marks.

Model output is untrusted: raw HTML is shown escaped, only http, https and mailto links stay links
(anything else is shown as its text), and images are never loaded: each becomes a link to its source
(or plain text). Opening a link is the view's business (it shows the target and asks first).
"""
from __future__ import annotations

import bisect
import html
import itertools
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

import markdown

from r1desk.ui.theme import Palette

_OPEN = 0xE100      # chr(_OPEN + i): flag i starts
_CLOSE = "\ue000"    # a flag ends
_REDACT = 0xE400    # chr(_REDACT + j): redaction notice j
_MAX_MARKS = 0x2FF
_MARK_CHARS = re.compile("[\ue000-\ue6ff]")
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_ANCHOR = re.compile(r'<a href="([^"]*)"(?: title="[^"]*")?>(.*?)</a>', re.DOTALL)
_IMAGE = re.compile(r'<img\b[^>]*?/?>', re.DOTALL)
_ATTR = re.compile(r'\b(src|alt)="([^"]*)"')
_LINE_PREFIX = re.compile(r"[ \t]*(?:[-*+][ \t]+|\d+[.)][ \t]+|#{1,6}[ \t]+|>[ \t]*)*")


COPY_SCHEME = "r1desk-copy"     # the code blocks' own "Copy code" links (model output cannot make one)
_BLOCK_TAG = re.compile(r"<(p|li|dt|dd)>")
_PRE = re.compile(r"<pre\b[^>]*>(.*?)</pre>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Flag:
    start: int
    end: int
    label: str
    score: float
    threshold: float | None = None
    action: str = "flag"


@dataclass(frozen=True)
class Redaction:
    start: int
    end: int
    notice: str


def link_allowed(href: str) -> bool:
    """True for an http(s) or mailto target (after HTML unescaping, ignoring control characters)."""
    target = re.sub(r"[\x00-\x20\x7f]", "", html.unescape(href))
    match = _SCHEME.match(target)
    return match is not None and match.group(1).lower() in ALLOWED_SCHEMES


def _safe_links(body: str) -> str:
    """Anchors with other schemes (javascript:, file:, data:, relative) become their text; images become
    links to their source (never loaded) or their alt text."""
    def anchor(match: re.Match[str]) -> str:
        href, text = match.group(1), match.group(2)
        if link_allowed(href):
            return f'<a href="{href}" title="{href}">{text}</a>'
        return text

    def image(match: re.Match[str]) -> str:
        attrs = dict(_ATTR.findall(match.group(0)))
        src, alt = attrs.get("src", ""), attrs.get("alt", "")
        label = f"🖼 {alt or 'image'}"
        if src and link_allowed(src):
            return f'<a href="{src}" title="{src}">{label}</a>'
        return label

    return _ANCHOR.sub(anchor, _IMAGE.sub(image, body))


_TOKEN_LEN = 3 + 16 + 4      # "pua" + 16 hex nonce + 4 hex digits


def _protect(text: str) -> tuple[str, str | None, list[int]]:
    """Swap private-use characters the text already holds for ``nonce + 4 hex digits``; also returns
    their positions (to move the guard's spans)."""
    positions = [m.start() for m in _MARK_CHARS.finditer(text)]
    if not positions:
        return text, None, []
    nonce = "pua" + secrets.token_hex(8)
    while nonce in text:                       # pragma: no cover - 2**-64
        nonce = "pua" + secrets.token_hex(8)
    return _MARK_CHARS.sub(lambda m: f"{nonce}{ord(m.group()):04X}", text), nonce, positions


def _shift(pos: int, positions: list[int]) -> int:
    return pos + (_TOKEN_LEN - 1) * bisect.bisect_left(positions, pos) if positions else pos


def _restore(body: str, nonce: str | None) -> str:
    if nonce is None:
        return body
    return re.sub(re.escape(nonce) + "([0-9A-F]{4})", lambda m: chr(int(m.group(1), 16)), body)


def flag_tooltip(flag: Flag) -> str:
    text = f"Flagged by the guard: {flag.label.replace('_', ' ')} — score {flag.score:.2f}"
    if flag.threshold is not None:
        text += f" (threshold {flag.threshold:.2f})"
    return text


def close_open_fence(text: str) -> str:
    """While streaming, an unclosed ``` fence would show as prose until it closes: close it for display."""
    fences: list[str] = re.findall(r"^[ \t]*(```|~~~)", text, flags=re.MULTILINE)
    if len(fences) % 2:
        return text + ("\n" if not text.endswith("\n") else "") + fences[-1]
    return text


def _line_start_shift(text: str, pos: int) -> int:
    """Move an opening mark past list/heading/quote syntax so markdown still sees the block."""
    if pos == 0 or text[pos - 1] == "\n":
        match = _LINE_PREFIX.match(text, pos)
        if match:
            return match.end()
    return pos


def place_marks(raw: str, flags: list[Flag], redactions: list[Redaction],
                block_start: int | None) -> str:
    """Return ``raw`` cut at the block, with redactions replaced and flags wrapped in marks."""
    text = raw if block_start is None else raw[:max(0, min(block_start, len(raw)))]
    n = len(text)
    inserts: list[tuple[int, int, str]] = []   # (position, order, string); replaced spans handled apart
    cuts: list[tuple[int, int, str]] = []
    for j, red in enumerate(sorted(redactions, key=lambda r: r.start)[:_MAX_MARKS]):
        start, end = max(0, min(red.start, n)), max(0, min(red.end, n))
        if end > start and not any(s < end and start < e for s, e, _ in cuts):
            cuts.append((start, end, chr(_REDACT + j)))
    for i, flag in enumerate(flags[:_MAX_MARKS]):
        start, end = max(0, min(flag.start, n)), max(0, min(flag.end, n))
        if end <= start or any(s < end and start < e for s, e, _ in cuts):
            continue    # nothing left to show, or covered by a redaction notice
        start = _line_start_shift(text, start)
        while end > start and text[end - 1] in " \t\n":
            end -= 1
        if end <= start:
            continue
        inserts.append((start, 1, chr(_OPEN + i)))
        inserts.append((end, 0, _CLOSE))
    out: list[str] = []
    pos = 0
    events = sorted([(s, 2, "cut", e, m) for s, e, m in cuts] + [(p, o, "ins", p, m) for p, o, m in inserts],
                    key=lambda x: (x[0], x[1]))
    for at, _order, kind, end, mark in events:
        if at < pos:
            continue
        out.append(text[pos:at])
        out.append(mark)
        pos = end if kind == "cut" else at
    out.append(text[pos:])
    return "".join(out)


class Renderer:
    """Renders one palette's HTML; reuse one instance (the markdown parser is reset per call)."""

    def __init__(self, palette: Palette) -> None:
        self.palette = palette
        self._md = markdown.Markdown(
            extensions=["fenced_code", "codehilite", "tables", "sane_lists"],
            extension_configs={"codehilite": {"noclasses": True, "pygments_style": palette.pygments_style,
                                              "guess_lang": False, "css_class": "codehilite"}},
            output_format="html",
        )
        # Model output is text, not markup: raw HTML in it is shown escaped, never interpreted.
        self._md.preprocessors.deregister("html_block")
        self._md.inlinePatterns.deregister("html")

    def render(self, raw: str, *, flags: Sequence[Flag] = (), redactions: Sequence[Redaction] = (),
               block_start: int | None = None, block_notice: str | None = None,
               streaming: bool = False, muted: bool = False) -> str:
        p = self.palette
        flags, redactions = list(flags), list(redactions)
        protected, nonce, at = _protect(raw)
        moved_flags = [replace(f, start=_shift(f.start, at), end=_shift(f.end, at)) for f in flags] if at else flags
        moved_reds = [replace(r, start=_shift(r.start, at), end=_shift(r.end, at)) for r in redactions] if at \
            else redactions
        cut = _shift(block_start, at) if block_start is not None and at else block_start
        text = place_marks(protected, moved_flags, moved_reds, cut)
        if streaming:
            text = close_open_fence(text)
        self._md.reset()
        body = self._md.convert(text)
        body = _safe_links(body)
        body = self._tables(body)
        body = self._tidy_code(body)
        body = self._inline_code(body)
        body = self._apply_marks(body, moved_flags, sorted(moved_reds, key=lambda r: r.start))
        body = _restore(body, nonce)
        if block_start is not None:
            notice = html.escape(block_notice or "The rest of this text was blocked by the guard.")
            body += (f'<table width="100%" cellpadding="8" style="margin-top:6px;" bgcolor="{p.danger_bg}">'
                     f'<tr><td style="color:{p.danger};">⛔ {notice}</td></tr></table>')
        body = _BLOCK_TAG.sub(r'<\1 style="line-height:140%;">', body)   # each paragraph, not only the first
        color = p.muted if muted else p.text
        return f'<div style="color:{color};">{body}</div>'

    def _tidy_code(self, body: str) -> str:
        """Qt's rich text ignores div backgrounds: wrap highlighted blocks in a one-cell table."""
        p = self.palette

        count = itertools.count()

        def repl(match: re.Match[str]) -> str:
            pre = match.group(1)
            # long lines wrap: a rich-text block cannot scroll sideways, and a wide table ran off the view
            pre = re.sub(r"^<pre[^>]*>", '<pre style="margin:0; font-family: monospace; white-space: pre-wrap;">', pre)
            pre = pre.replace("<code>", "").replace("</code>", "")   # not inline code: no chip background
            pre = re.sub(r"\s*</code></pre>\s*$|\s*</pre>\s*$", lambda m: m.group(0).strip(), pre)
            copy = (f'<tr><td style="padding:4px 10px 0 10px; font-size:small;">'
                    f'<a href="{COPY_SCHEME}:{next(count)}" style="color:{p.muted}; text-decoration:none;">'
                    f'Copy code</a></td></tr>')
            return (f'<table width="100%" cellspacing="0" cellpadding="0" bgcolor="{p.code_bg}" '
                    f'style="margin:6px 0; border:1px solid {p.code_border};">{copy}'
                    f'<tr><td style="padding:2px 10px 10px 10px;">{pre}</td></tr></table>')

        return re.sub(r'<div class="codehilite"[^>]*>(.*?)</div>', repl, body, flags=re.DOTALL)

    def _tables(self, body: str) -> str:
        """Markdown tables: borders and padding Qt understands (attributes, not CSS)."""
        p = self.palette
        body = body.replace("<table>", f'<table border="1" cellspacing="0" cellpadding="6" '
                            f'style="border-color:{p.border}; border-style:solid; margin:6px 0;">')
        return body.replace("<th>", f'<th bgcolor="{p.code_bg}" align="left">').replace(
            '<th style="text-align: left;">', f'<th bgcolor="{p.code_bg}" align="left">')

    def _inline_code(self, body: str) -> str:
        p = self.palette
        return re.sub(r"<code>", f'<code style="background-color:{p.inline_code_bg}; '
                      f'font-family: monospace;">', body)

    def _apply_marks(self, body: str, flags: list[Flag], redactions: list[Redaction]) -> str:
        p = self.palette
        if not any(0xE000 <= ord(c) <= _REDACT + _MAX_MARKS for c in body if c >= "\ue000"):
            return body

        def repl(match: re.Match[str]) -> str:
            code = ord(match.group(0))
            if match.group(0) == _CLOSE:
                return "</span>"
            if _OPEN <= code < _OPEN + _MAX_MARKS:
                flag = flags[code - _OPEN]
                tip = html.escape(flag_tooltip(flag), quote=True)
                badge = html.escape(flag.label.replace("_", " "))
                return (f'<span style="background-color:{p.flag_bg}; color:{p.flag}; font-size:small;" '
                        f'title="{tip}">&nbsp;⚑ {badge} {flag.score:.2f}&nbsp;</span> '
                        f'<span style="background-color:{p.flag_bg};" title="{tip}">')
            red = redactions[code - _REDACT]
            notice = html.escape(red.notice or "redacted by the guard")
            return (f'<span style="background-color:{p.danger_bg}; color:{p.danger};" '
                    f'title="This text was removed by the guard">&nbsp;⛔ {notice}&nbsp;</span>')

        return re.sub("[\ue000-\ue6ff]", repl, body)


def code_block_text(rendered: str, index: int) -> str | None:
    """The text of code block ``index`` in HTML from :meth:`Renderer.render`, as shown (None if absent)."""
    blocks = _PRE.findall(rendered)
    if not 0 <= index < len(blocks):
        return None
    return html.unescape(_TAG.sub("", blocks[index]))


def plain_text_notice(text: str) -> str:
    """Escape a short message for a notice label."""
    return html.escape(text)
