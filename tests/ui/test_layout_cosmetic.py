"""Issue 14, cosmetic items, as layout checks at the sizes people use (800×600 to 1920×1080): nothing the
user must read is clipped, squashed or pushed behind a sideways scroll bar. The same screens were looked at
under a real X server (see the closing note); these tests keep them that way."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QPushButton, QTableWidget

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")

SIZES = [(800, 600), (1280, 800), (1920, 1080)]


def _buttons(table: QTableWidget, column: int) -> list[QPushButton]:
    out = []
    for row in range(table.rowCount()):
        box = table.cellWidget(row, column)
        button = box.findChild(QPushButton) if box is not None else None
        if button is not None:
            out.append(button)
    return out


def _unclipped(button: QPushButton, table: QTableWidget, column: int) -> bool:
    return button.width() >= button.sizeHint().width() and table.columnWidth(column) >= button.width()


def _text_fits(table: QTableWidget, row: int, column: int) -> bool:
    """The cell's text, wrapped at the column's width, fits the row's height (no "…")."""
    text = table.item(row, column).text()
    width = table.columnWidth(column) - 8
    need = table.fontMetrics().boundingRect(QRect(0, 0, width, 10_000), int(Qt.TextFlag.TextWordWrap), text)
    return need.width() <= width and need.height() <= table.rowHeight(row)


@pytest.mark.parametrize("size", SIZES)
def test_model_manager_names_and_buttons_are_never_cut(qtbot, make_window, tiny_r1_engine, smollm2_path, size,
                                                       monkeypatch):
    """"Loaded" was clipped to ".oade"; catalog names were "DeepSeek-R1 Distill Qwe…" even at 1280×800."""
    from r1desk.core.gguf_info import read_model_info
    from r1desk.ui import model_sources

    two = {str(i.path): i for i in (tiny_r1_engine.info, read_model_info(smollm2_path))}
    monkeypatch.setattr(model_sources, "_imported", two)                 # two models "on this computer"
    window = make_window(tiny_r1_engine)
    window.resize(*size)
    window.open_model_manager()
    manager = window._model_manager
    manager.resize(min(920, size[0] - 48), min(600, size[1] - 48))
    qtbot.waitExposed(manager)
    catalog, local = manager.catalog_table, manager.local_table
    qtbot.waitUntil(lambda: catalog.rowCount() > 0 and local.rowCount() > 0, timeout=20000)
    manager.tabs.setCurrentWidget(catalog)
    qtbot.waitUntil(lambda: catalog.isVisible())
    assert catalog.horizontalScrollBar().maximum() == 0                       # no sideways scrolling
    for row in range(catalog.rowCount()):
        assert _text_fits(catalog, row, 0), catalog.item(row, 0).text()
    downloads = _buttons(catalog, 6)
    assert downloads and len({b.width() for b in downloads}) == 1
    assert all(_unclipped(b, catalog, 6) for b in downloads)
    manager.tabs.setCurrentWidget(manager.local_page)
    qtbot.waitUntil(lambda: local.isVisible())
    buttons = _buttons(local, 4)
    assert sorted(b.text() for b in buttons) == ["Load", "Loaded"]
    assert all(_unclipped(b, local, 4) for b in buttons)
    assert len({b.width() for b in buttons}) == 1                        # the column never jumps
    # the Safety models list: names wrap, no sideways scrolling, one button width
    safety = manager.safety.catalog_table
    manager.tabs.setCurrentWidget(manager.safety)
    qtbot.waitUntil(lambda: safety.isVisible() and safety.rowCount() > 0, timeout=20000)
    assert safety.horizontalScrollBar().maximum() == 0
    assert all(_text_fits(safety, row, 0) for row in range(safety.rowCount()))
    assert len({b.width() for b in _buttons(safety, 5)}) == 1
    # the status line has its own row: a loaded model's name is shown, not "Lo"
    manager._on_loaded(tiny_r1_engine.info)
    assert manager.status.text() == f"Loaded {tiny_r1_engine.info.shown_name}"
    manager.close()


# The room a page gets inside the main window (sidebar and header taken off) at each screen size.
CONTENT = {(800, 600): (540, 500), (1280, 800): (900, 680), (1920, 1080): (1560, 940)}


@pytest.fixture
def admin_view(qtbot, audit):
    from r1desk.core.roles import ADMIN, RoleStore, ScryptParams
    from r1desk.ui.admin_view import AdminView

    roles = RoleStore(audit=audit.log_admin_event, params=ScryptParams(n=2 ** 10))
    roles.set_initial(ADMIN, "admin passphrase")
    view = AdminView(audit=audit, roles=roles, classifiers_factory=lambda: [])
    qtbot.addWidget(view)
    return view


def _no_sideways_scroll(area) -> bool:
    return area.horizontalScrollBar().maximum() == 0 and area.widget().width() <= area.viewport().width()


@pytest.mark.parametrize("size", SIZES)
def test_guard_policy_rows_keep_their_height(qtbot, admin_view, size):
    """Thirty-odd labels since the harm guard were squeezed into the page: 8-pixel rows, unreadable."""
    admin_view.resize(*CONTENT[size])
    admin_view.show()
    qtbot.waitExposed(admin_view)
    editor = admin_view.policy_editor
    area = editor.scrolls["prompt"]
    qtbot.waitUntil(lambda: area.isVisible())
    assert _no_sideways_scroll(area)
    for (channel, _label), row in editor.rows.items():
        if channel == "prompt":
            for widget in (row.slider, row.spin, row.action):
                assert widget.height() >= widget.minimumSizeHint().height(), (_label, widget.height())
            assert row.spin.width() >= row.spin.minimumSizeHint().width()
    assert area.verticalScrollBar().maximum() > 0          # the rest is a scroll away, not squashed
    # the preview's label column shows whole names ("Harm: physical harm", not "H……")
    table = admin_view.preview.table
    widest = max(table.fontMetrics().horizontalAdvance(table.item(r, 0).text()) for r in range(table.rowCount()))
    assert table.columnWidth(0) >= widest + 8
    assert table.horizontalScrollBar().maximum() == 0


@pytest.mark.parametrize("size", SIZES)
def test_generation_tab_never_scrolls_sideways(qtbot, admin_view, size):
    """The Generation and language tab scrolled sideways and cut "Auto (the prompt's language)"."""
    from PySide6.QtWidgets import QComboBox, QLabel

    admin_view.resize(*CONTENT[size])
    admin_view.show()
    admin_view.tabs.setCurrentIndex(1)
    form = admin_view.general_form
    qtbot.waitUntil(lambda: form.isVisible())
    area = admin_view.tabs.currentWidget()
    qtbot.waitUntil(lambda: _no_sideways_scroll(area), timeout=3000)      # once the cards have reflowed
    assert form.cards.columns == (1 if size == (800, 600) else 2)
    for editor in form.editors.values():
        widget = editor.widget
        assert widget.width() >= widget.minimumSizeHint().width(), editor.key
        if isinstance(widget, QComboBox):
            assert widget.width() >= widget.sizeHint().width(), (editor.key, widget.currentText())
    for label in form.findChildren(QLabel):
        if label.isVisible() and label.text() and not label.wordWrap():
            assert label.width() >= label.sizeHint().width() - 1, label.text()
    note = form.editors["generation.temperature"].note                 # one line, not "R1 recommended:" / "0.6"
    qtbot.waitUntil(lambda: 0 < note.height() <= note.fontMetrics().lineSpacing() * 1.5, timeout=3000)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_titles_and_axes_are_not_cut(qtbot, audit, size):
    """Titles were cut ("Where the guards fired: prompt, th"), charts squashed until the date axis vanished."""
    from r1desk.ui.dashboard import CHART_MIN_HEIGHT, Dashboard
    from r1desk.ui.dashboard_data import collect
    from tests.ui.test_auditor_view import add_turn

    add_turn(audit, "Write a threat", "No.", "I will hurt you", [("answer", "I will hurt you", "threat", "block")])
    dash = Dashboard(audit)
    qtbot.addWidget(dash)
    dash.resize(*CONTENT[size])
    dash.show()
    qtbot.waitExposed(dash)
    dash.show_data(collect(audit))
    assert dash.summary.text().startswith("<b>1</b> turn in the last")              # not "1 turns"
    summary = dash.summary
    qtbot.waitUntil(lambda: summary.height() >= summary.heightForWidth(summary.width()) - 1, timeout=3000)
    expected = {(800, 600): 1, (1280, 800): 2, (1920, 1080): 3}[size]
    qtbot.waitUntil(lambda: dash.grid.columns == expected)
    assert _no_sideways_scroll(dash.scroll_area)
    for card in dash.cards():
        heading = card.heading
        qtbot.waitUntil(lambda: heading.height() >= heading.heightForWidth(heading.width()) - 1, timeout=3000)
        assert heading.width() <= card.width()
        if not card.is_empty:
            assert card.view.height() >= CHART_MIN_HEIGHT


def test_selfcheck_numbers_look_like_fields_and_the_report_folder_shows(qtbot, monkeypatch):
    """The number fields looked like labels (their frame and arrows styled away) and the report path showed
    only its end ("…ck-20261127-161950.html")."""
    from PySide6.QtWidgets import QAbstractSpinBox

    from r1desk import paths
    from r1desk.ui.selfcheck_form import SelfCheckForm

    monkeypatch.setenv("HOME", str(paths.data_dir().parent))
    form = SelfCheckForm(max_tokens=512)
    qtbot.addWidget(form)
    form.resize(560, 300)
    form.show()
    qtbot.waitExposed(form)
    for spin in (form.limit_spin, form.seed_spin, form.tokens_spin):
        assert spin.buttonSymbols() != QAbstractSpinBox.ButtonSymbols.NoButtons and not spin.styleSheet()
        assert spin.hasFrame() and spin.width() >= spin.minimumSizeHint().width()
    edit = form.report_edit
    assert edit.text().startswith("~/") and edit.cursorPosition() == 0          # the folder is what shows
    full = paths.data_dir() / "selfcheck"
    assert edit.toolTip().startswith(str(full)) and edit.toolTip().endswith(".html")
    assert form.report_target() == Path(edit.toolTip())                           # "~" is expanded for writing


@pytest.mark.parametrize("size", SIZES)
def test_audit_browser_fits_every_size(qtbot, audit, size):
    """At 800×600 the search box overlapped the filters, the list was 40 px wide and the review buttons read
    "3 Ov…fusal"."""
    from PySide6.QtWidgets import QComboBox

    from r1desk.ui.auditor_view import AuditorView
    from tests.ui.test_auditor_view import add_turn

    add_turn(audit, "A pancake recipe please", "Flour, eggs, milk.", "Mix flour, eggs and milk.")
    view = AuditorView(audit, reviewer="alice")
    qtbot.addWidget(view)
    view.resize(*CONTENT[size])
    view.show()
    qtbot.waitExposed(view)
    view.select_row(0)
    boxes = [view.search] + view.filter_grid.cards
    qtbot.waitUntil(lambda: all(b.isVisible() and b.width() >= b.minimumSizeHint().width() for b in boxes),
                    timeout=3000)                                   # the filters have reflowed
    rects = [b.geometry().translated(b.parentWidget().mapTo(view, b.parentWidget().rect().topLeft()))
             for b in boxes]
    for i, a in enumerate(rects):                                   # nothing drawn over anything else
        assert all(not a.intersects(b) for b in rects[i + 1:]), boxes[i]
        assert view.rect().contains(a)
    assert view.search.width() >= view.search.minimumSizeHint().width()
    assert all(isinstance(b, QComboBox) for b in boxes[1:])
    buttons = view.detail.label_buttons.values()                  # "3  Over-refusal", never "3 Ov…fusal"
    qtbot.waitUntil(lambda: all(b.width() >= b.sizeHint().width() for b in buttons), timeout=3000)
    assert view.table.width() >= 300 and view.table.height() >= 60  # the list is a list, not a 40 px strip
    assert view.detail.body.height() >= 150


@pytest.mark.parametrize("size", SIZES)
def test_classifiers_and_review_period_fit(qtbot, admin_view, audit, size):
    """At 800×600 the feedback panel's buttons ran past the page ("Disable" cut, "Roll back" gone) and the
    review period's header read "e queue bec"."""
    from r1desk.ui.period_panel import PeriodPanel

    admin_view.resize(*CONTENT[size])
    admin_view.show()
    admin_view.tabs.setCurrentIndex(2)
    area = admin_view.tabs.currentWidget().findChild(type(admin_view.tabs.widget(1)))
    panel = admin_view.feedback_panel if hasattr(admin_view, "feedback_panel") else None
    buttons = [b for b in admin_view.tabs.currentWidget().findChildren(QPushButton)
               if b.isVisibleTo(admin_view) and b.text() in ("Train new version", "Import examples…",
                                                             "Enable selected", "Disable", "Roll back")]
    assert len(buttons) == 5, [b.text() for b in buttons]
    viewport = area.viewport()
    qtbot.waitUntil(lambda: all(b.isVisible() for b in buttons))
    qtbot.waitUntil(lambda: all(viewport.rect().contains(b.geometry().translated(
        b.parentWidget().mapTo(viewport, b.parentWidget().rect().topLeft()))) for b in buttons), timeout=3000)
    qtbot.waitUntil(lambda: all(b.width() >= b.sizeHint().width() for b in buttons), timeout=3000)
    del panel
    period = PeriodPanel(audit, review_settings=lambda: admin_view.settings.review_period, reviewer="alice")
    qtbot.addWidget(period)
    period.resize(*CONTENT[size])
    period.show()
    qtbot.waitExposed(period)
    header = period.table.horizontalHeader()
    for col in (1, 2):
        text = period.table.horizontalHeaderItem(col).text()
        qtbot.waitUntil(lambda: header.sectionSize(col) >= header.fontMetrics().horizontalAdvance(text), timeout=3000)
