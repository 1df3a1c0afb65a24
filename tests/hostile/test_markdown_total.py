"""The Markdown renderer is total over any Unicode (private-use area included), never produces a link
other than http/https/mailto (besides its own "Copy code" link on each code block), and never an <img>
(remote images are links, never loaded)."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r1desk.ui import theme
from r1desk.ui.markdown_render import COPY_SCHEME, Flag, Redaction, Renderer, link_allowed

RENDERER = Renderer(theme.LIGHT)
PUA = st.characters(min_codepoint=0xE000, max_codepoint=0xE7FF)
MARKDOWN_BITS = st.sampled_from(["[", "]", "(", ")", "!", "*", "_", "`", "```", "\n", "# ", "- ", "> ", "|", "<",
                                 ">", "javascript:", "http://x.y/", "mailto:a@b.c", "&#106;", "\ue000", "\ue100",
                                 "\ue400", "\ue6ff", "    ", "1. ", "---"])
TEXT = st.lists(st.one_of(st.text(max_size=8), PUA, MARKDOWN_BITS), max_size=40).map("".join)


def _visible(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def _check(html: str) -> None:
    assert "<img" not in html
    copies = 0
    for href in re.findall(r'<a href="([^"]*)"', html):
        if re.fullmatch(rf"{COPY_SCHEME}:\d+", href):     # the app's own "Copy code" link, one per code block
            copies += 1
            continue
        assert link_allowed(href), href
    assert copies == html.count("<pre")
    assert html.count("<span") == html.count("</span>")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT, st.lists(st.tuples(st.integers(-5, 60), st.integers(-5, 60)), max_size=4), st.booleans())
def test_renderer_is_total_over_any_text_and_marks(text, spans, streaming) -> None:
    flags = [Flag(a, b, "insult", 0.9) for a, b in spans[:2]]
    redactions = [Redaction(a, b, "redacted") for a, b in spans[2:]]
    html = RENDERER.render(text, flags=flags, redactions=redactions, streaming=streaming)
    _check(html)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_renderer_is_total_over_arbitrary_unicode(text) -> None:
    _check(RENDERER.render(text))


@pytest.mark.parametrize("char", ["\ue000", "\ue100", "\ue400", "\ue3ff", "\ue6ff"])
def test_private_use_characters_are_shown_as_themselves(char: str) -> None:
    html = RENDERER.render(f"a{char}b")
    assert f"a{char}b" in html and "</span>" not in html and "⚑" not in html and "⛔" not in html


def test_private_use_characters_do_not_move_the_guard_marks() -> None:
    text = "\ue100\ue000 hello bad word"
    html = RENDERER.render(text, flags=[Flag(text.index("bad"), text.index("bad") + 3, "insult", 0.9)])
    assert "\ue100\ue000 hello" in _visible(html)
    assert re.search(r'title="Flagged[^"]*">bad</span>', html)


@pytest.mark.parametrize("source", [
    "[x](javascript:alert(1))", "[x](JaVaScRiPt:alert(1))", "[x](java\tscript:alert(1))", "[x](data:text/html,hi)",
    "[x](file:///etc/passwd)", "[x](relative/page.html)", "[x][r]\n\n[r]: javascript:alert(1)",
    "[x](&#106;avascript:alert(1))", "<javascript:alert(1)>",
])
def test_only_http_https_mailto_links_survive(source: str) -> None:
    html = RENDERER.render(source)
    assert "<a " not in html and "href" not in html    # shown as text
    _check(html)


@pytest.mark.parametrize("source, href", [
    ("[x](https://example.org/a?b=1)", "https://example.org/a?b=1"), ("<http://example.org>", "http://example.org"),
    ("[mail](mailto:a@example.org)", "mailto:a@example.org"),
])
def test_allowed_links_stay_links_with_their_target_shown(source: str, href: str) -> None:
    html = RENDERER.render(source)
    assert f'href="{href}"' in html and f'title="{href}"' in html


def test_images_are_never_loaded_only_linked() -> None:
    html = RENDERER.render("![cat](http://tracker.example/pixel.png) ![local](file:///home/me/secret.png)")
    assert "<img" not in html
    assert '<a href="http://tracker.example/pixel.png"' in html and "🖼 cat" in html
    assert "file:" not in html and "🖼 local" in html
