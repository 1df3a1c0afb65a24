"""The renderer turns channel text and guard marks into HTML (no Qt needed, except where a test says qtbot)."""
from __future__ import annotations

from r1desk.ui.markdown_render import (COPY_SCHEME, Flag, Redaction, Renderer, close_open_fence, code_block_text,
                                       place_marks)
from r1desk.ui.theme import DARK, LIGHT


def test_markdown_and_highlighted_code() -> None:
    html = Renderer(LIGHT).render("# Title\n\nSome **bold** text.\n\n```python\ndef f(x):\n    return x\n```\n")
    assert "<h1>" in html and "<strong>bold</strong>" in html
    assert "<table" in html and LIGHT.code_bg in html          # code block boxed for QTextBrowser
    assert 'style="color:' in html                             # pygments inline colours
    assert "def" in html


def test_raw_html_in_model_output_is_escaped() -> None:
    html = Renderer(LIGHT).render("Click <img src=x onerror=alert(1)> <b>here</b>")
    assert "<img" not in html and "&lt;img" in html
    assert "<b>" not in html


def test_unclosed_fence_is_rendered_as_code_while_streaming() -> None:
    text = "Here:\n```python\nprint(1)\n"
    assert close_open_fence(text).endswith("```")
    assert close_open_fence("no fences") == "no fences"
    html = Renderer(DARK).render(text, streaming=True)
    assert DARK.code_bg in html


def test_flag_badge_with_label_and_score_tooltip() -> None:
    raw = "A fine sentence. A nasty sentence. Another one."
    start = raw.index("A nasty")
    end = start + len("A nasty sentence.")
    html = Renderer(LIGHT).render(raw, flags=[Flag(start, end, "insult", 0.91, 0.5)])
    assert "insult 0.91" in html
    assert 'title="Flagged by the guard: insult — score 0.91 (threshold 0.50)"' in html
    assert "A nasty sentence." in html and "Another one." in html


def test_redaction_replaces_span_with_notice() -> None:
    raw = "Keep this. Remove this part. Keep that."
    start = raw.index("Remove")
    end = raw.index("Keep that")
    html = Renderer(LIGHT).render(raw, redactions=[Redaction(start, end, "[removed: threat]")])
    assert "Remove this part" not in html
    assert "[removed: threat]" in html and "Keep that." in html


def test_block_cuts_text_and_shows_notice() -> None:
    raw = "Safe start. Unsafe rest of the answer."
    html = Renderer(LIGHT).render(raw, block_start=raw.index("Unsafe"), block_notice="Stopped by the guard.")
    assert "Unsafe" not in html and "Safe start." in html and "Stopped by the guard." in html


def test_flag_inside_redaction_is_dropped_and_out_of_range_spans_are_clamped() -> None:
    raw = "one two three"
    marked = place_marks(raw, [Flag(4, 7, "toxicity", 0.8), Flag(50, 90, "threat", 0.9)],
                         [Redaction(4, 7, "x")], None)
    assert "two" not in marked and marked.startswith("one ")
    assert marked.count("\ue000") == 0


def test_flag_at_list_item_start_keeps_the_list() -> None:
    raw = "- first item\n- second item\n"
    html = Renderer(LIGHT).render(raw, flags=[Flag(0, 12, "obscene", 0.7)])
    assert "<li style=" in html and "obscene 0.70" in html


# -- issue 14 (cosmetic): even line spacing, a copy link on each code block ------------------------------

def _line_gaps(widget) -> list[float]:
    """The distance between consecutive lines of every text block, as Qt laid them out."""
    gaps, block = [], widget.document().begin()
    while block.isValid():
        layout = block.layout()
        ys = [layout.lineAt(i).y() for i in range(layout.lineCount())]
        gaps += [round(b - a, 1) for a, b in zip(ys, ys[1:])]
        block = block.next()
    return gaps


def test_every_paragraph_has_the_same_line_spacing(qtbot) -> None:
    from r1desk.ui.messages import MessageText

    view = MessageText()
    qtbot.addWidget(view)
    view.resize(260, 100)
    words = " ".join(["word"] * 50)
    view.setHtml(Renderer(LIGHT).render(f"{words}\n\n{words}\n\n- {words}\n- {words}"))
    view.show()
    gaps = _line_gaps(view)
    assert len(gaps) > 8 and len(set(gaps)) == 1, gaps      # was 19.6 in the first paragraph, 14.0 after


CODE = 'if a < b and c & d:\n    print("<tag>")\n'


def test_code_block_text_is_the_code_as_written() -> None:
    html = Renderer(LIGHT).render(f"Text\n\n```python\n{CODE}```\n\nmore\n\n```\nsecond\n```\n")
    assert f'href="{COPY_SCHEME}:0"' in html and f'href="{COPY_SCHEME}:1"' in html
    assert code_block_text(html, 0) == CODE.rstrip("\n")
    assert code_block_text(html, 1) == "second"
    assert code_block_text(html, 2) is None


def test_the_model_cannot_write_a_copy_link() -> None:
    html = Renderer(LIGHT).render(f"[click]({COPY_SCHEME}:0) and <a href=\"{COPY_SCHEME}:0\">x</a>")
    assert f'<a href="{COPY_SCHEME}' not in html and "&lt;a href" in html      # shown as text, not a link


def test_copy_code_link_puts_the_code_on_the_clipboard(qtbot) -> None:
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QGuiApplication

    from r1desk.ui.messages import MessageText

    view = MessageText()
    qtbot.addWidget(view)
    view.setHtml(Renderer(LIGHT).render(f"```python\n{CODE}```\n"))
    QGuiApplication.clipboard().setText("before")
    with qtbot.waitSignal(view.code_copied) as copied:
        view.anchorClicked.emit(QUrl(f"{COPY_SCHEME}:0"))
    assert copied.args == [0]
    assert QGuiApplication.clipboard().text() == CODE.rstrip("\n")
    assert not view.copy_code(5)                                     # no such block: nothing copied
    assert QGuiApplication.clipboard().text() == CODE.rstrip("\n")
