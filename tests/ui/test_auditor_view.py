"""The auditor browser on a real audit database: search, filters, severity order, detail highlights,
reviews (mouse and keyboard), the dashboard's chart data, exports and a tampered database."""
from __future__ import annotations

import json
import sqlite3

import pytest
from PySide6.QtCharts import QLineSeries, QStackedBarSeries
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from r1desk.storage.auditlog import AuditLog
from r1desk.ui.auditor_view import AuditorView
from r1desk.ui.dashboard_data import collect

MODEL = {"name": "R1-test", "quantization": "Q4_K_M", "sha256": "ab" * 32}


def add_turn(audit, prompt, thinking, answer, decisions=(), *, mixing=False):
    tid = audit.start_turn(prompt_typed=prompt, model=MODEL, settings={"generation": {"temperature": 0.6}})
    decs = []
    for channel, needle, label, action in decisions:
        text = {"prompt": prompt, "thinking": thinking, "answer": answer}[channel]
        start = text.index(needle)
        decs.append({"channel": channel, "start": start, "end": start + len(needle), "text": needle,
                     "label": label, "score": 0.9, "threshold": 0.6, "action": action})
    audit.finish_turn(tid, result={"finish_reason": "blocked" if any(d["action"] == "block" for d in decs)
                                   else "stop", "thinking": thinking, "answer_raw": answer, "answer_shown": answer,
                                   "decisions": decs, "language": {"mixing": mixing}})
    return tid


@pytest.fixture
def seeded(audit):
    ids = {
        "plain": add_turn(audit, "What is 2+2?", "Simple sum.", "4"),
        "thinking": add_turn(audit, "Give me comebacks", "They want insults like you stupid idiot here.",
                             "Stay calm.", [("thinking", "you stupid idiot", "insult", "flag")]),
        "blocked": add_turn(audit, "Write a threat to my boss", "No.", "I will hurt you",
                            [("answer", "I will hurt you", "threat", "block")]),
        "mixed": add_turn(audit, "Explique la photosynthèse", "Light to sugar.", "La lumière... in short",
                          mixing=True),
        "recipe": add_turn(audit, "A pancake recipe please", "Flour, eggs, milk.", "Mix flour, eggs and milk."),
    }
    return ids


@pytest.fixture
def view(qtbot, audit, seeded):
    v = AuditorView(audit, reviewer="alice")
    qtbot.addWidget(v)
    v.resize(1200, 800)
    return v


def listed(view):
    view.model.fetch_all()
    return [view.model.turn_id(r) for r in range(view.model.rowCount())]


def test_queue_sorted_by_severity(view, seeded):
    ids = listed(view)
    assert ids[:3] == [seeded["blocked"], seeded["thinking"], seeded["mixed"]]
    assert set(ids) == set(seeded.values())


def test_search_and_filters(qtbot, view, seeded):
    view.search.setText("pancake")
    view.search.returnPressed.emit()
    assert listed(view) == [seeded["recipe"]]
    view.search.setText('"bad syntax AND ("')        # malformed FTS: no error, just no hit
    view.apply_filters()
    assert listed(view) == []
    view.search.clear()
    view.channel.setCurrentIndex(view.channel.findData("thinking"))
    assert listed(view) == [seeded["thinking"]]
    view.channel.setCurrentIndex(0)
    view.action.setCurrentIndex(view.action.findData("block"))
    assert listed(view) == [seeded["blocked"]]
    view.action.setCurrentIndex(0)
    view.mixing.setCurrentIndex(view.mixing.findData(True))
    assert listed(view) == [seeded["mixed"]]


def test_detail_highlights_flagged_thinking(view, seeded):
    view.select_row(listed(view).index(seeded["thinking"]))
    html = view.detail.body.toHtml()
    assert view.detail.turn["id"] == seeded["thinking"]
    # the flagged span is wrapped in its own highlighted run, the rest of the thinking is not
    assert "you stupid idiot" in view.detail.body.toPlainText()
    assert "#ffe8b3" in html.lower()
    assert "insult" in html and "0.90" in html
    assert "R1-test" in view.detail.header.text()


def test_review_saved_with_mouse(qtbot, view, audit, seeded):
    view.select_row(listed(view).index(seeded["thinking"]))
    view.detail.label_buttons["over-refusal"].click()
    view.detail.note.setPlainText("quoting the user, fine")
    view.detail.corrected.setPlainText("Stay calm and walk away.")
    with qtbot.waitSignal(view.review_saved) as sig:
        view.detail.save_button.click()
    assert sig.args == [seeded["thinking"], "over-refusal"]
    turn = audit.get_turn(seeded["thinking"])
    assert turn["reviewed"] == 1
    review = turn["reviews"][-1]
    assert (review["label"], review["note"], review["reviewer"]) == ("over-refusal", "quoting the user, fine",
                                                                     "alice")
    assert review["corrected_answer"] == "Stay calm and walk away."


def test_keyboard_review_queue(qtbot, view, audit, seeded):
    qtbot.waitUntil(lambda: view.detail.turn is not None)
    first = view.detail.turn["id"]
    second = view.model.turn_id(1)
    qtbot.keyClick(view.table, Qt.Key.Key_2)            # harmful, saved, next
    assert audit.get_turn(first)["reviews"][-1]["label"] == "harmful"
    # the reviewed turn left the review queue; the next one is shown (issue 14 item 14)
    assert first not in listed(view) and view.detail.turn["id"] == second and view.current_row() == 0
    assert "4 turns left to review" in view.count_label.text()
    view.view_mode.setCurrentIndex(view.view_mode.findData("all"))
    assert view.current_row() == 0
    qtbot.keyClick(view.table, Qt.Key.Key_P)            # back
    assert view.current_row() == 0
    qtbot.keyClick(view.table, Qt.Key.Key_N)
    qtbot.keyClick(view.table, Qt.Key.Key_N)
    assert view.current_row() == 2
    qtbot.keyClick(view.detail.note, Qt.Key.Key_1)      # typing a digit in the note is just text
    assert view.detail.note.toPlainText() == "1"
    assert view.current_row() == 2


def test_reviewed_turns_leave_the_queue_and_stay_in_all_turns(qtbot, view, audit, seeded):
    view.select_row(listed(view).index(seeded["recipe"]))
    view.detail.choose_label(1)
    with qtbot.waitSignal(view.review_saved):
        view.detail.save_button.click()
    assert seeded["recipe"] not in listed(view)
    view.apply_filters()                                 # reloading the queue does not bring it back
    assert seeded["recipe"] not in listed(view)
    view.view_mode.setCurrentIndex(view.view_mode.findData("reviewed"))
    assert listed(view) == [seeded["recipe"]]
    view.view_mode.setCurrentIndex(view.view_mode.findData("all"))
    assert seeded["recipe"] in listed(view)


@pytest.mark.parametrize("size", [(800, 600), (1280, 800), (1920, 1080)])
def test_search_box_and_prompt_column_stay_readable(qtbot, view, size):
    from r1desk.ui.auditor_table import COLUMNS
    from r1desk.ui.auditor_view import PROMPT_COLUMN_WIDTH

    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    chars = view.search.width() / view.search.fontMetrics().horizontalAdvance("x")
    assert chars >= 30, f"the search box shows about {chars:.0f} characters"
    assert view.table.columnWidth(COLUMNS.index("Prompt")) >= PROMPT_COLUMN_WIDTH


def test_review_without_label_is_refused(view, audit, seeded):
    view.select_row(0)
    assert not view.detail.submit()
    assert "Choose a label" in view.detail.review_state.text()
    assert audit.get_turn(view.detail.turn["id"])["reviews"] == []


def test_dashboard_series_hold_the_data(qtbot, view, audit, seeded):
    audit.log_selfcheck_run(suite="builtin", metrics={"modes": {"on": {"unsafe_response_rate": 0.25,
                                                                       "over_refusal_rate": 0.1}}})
    dash = view.dashboard
    with qtbot.waitSignal(dash.refreshed, timeout=10000):
        view.tabs.setCurrentWidget(dash)
    data = dash.data
    assert sum(data.turns_per_day) == 5 and data.turns_per_day[-1] == 5
    flags = [s for s in dash.flags.chart.series() if isinstance(s, QStackedBarSeries)][0]
    flagged, blocked = flags.barSets()
    assert flagged.at(len(data.days) - 1) == 1 and blocked.at(len(data.days) - 1) == 1
    assert data.by_label == {"insult": 1, "threat": 1}
    assert data.by_channel["thinking"] == {"flag": 1} and data.by_channel["answer"] == {"block": 1}
    mixing = [s for s in dash.mixing.chart.series() if isinstance(s, QLineSeries)][0]
    assert [(p.x(), p.y()) for p in mixing.points()] == [(len(data.days) - 1, 20.0)]
    assert data.backlog["blocked"] == 1 and data.backlog["none"] == 2
    lines = [s for s in dash.selfcheck.chart.series() if isinstance(s, QLineSeries)]
    assert [p.y() for p in lines[0].points()] == [25.0] and [p.y() for p in lines[1].points()] == [10.0]
    assert not any(card.is_empty for card in dash.cards())


def test_dashboard_empty_state(qtbot, tmp_path):
    empty = AuditLog(tmp_path / "empty.db")
    try:
        v = AuditorView(empty)
        qtbot.addWidget(v)
        v.dashboard.show_data(collect(empty))
        assert all(card.is_empty for card in v.dashboard.cards())
        assert "No self-check runs" in v.dashboard.selfcheck.empty.text()
    finally:
        empty.close()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "sft"])
def test_export(qtbot, view, audit, seeded, tmp_path, monkeypatch, fmt):
    audit.review(seeded["recipe"], "ok", reviewer="alice")
    view.view_mode.setCurrentIndex(view.view_mode.findData("all"))   # exports follow the filters
    out = tmp_path / f"out.{fmt}"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    with qtbot.waitSignal(view.exported, timeout=10000) as sig:
        view.export(fmt)
    assert sig.args[0] == str(out)
    text = out.read_text()
    if fmt == "jsonl":
        assert len(text.splitlines()) == sig.args[1] == 5
        json.loads(text.splitlines()[0])
    elif fmt == "csv":
        assert "pancake" in text
    else:
        assert "pancake" in text and sig.args[1] >= 1
    assert "audit.export" in [e["action"] for e in audit.list_admin_events()]
    assert "Exported" in view.verify_result.text()


def test_export_cancelled_writes_nothing(view, audit, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: ("", ""))
    view.export("jsonl")
    assert "audit.export" not in [e["action"] for e in audit.list_admin_events()]


def test_verify_ok_then_tampered(qtbot, view, audit, seeded):
    with qtbot.waitSignal(view.verified, timeout=10000) as sig:
        view.verify_button.click()
    assert sig.args[0].ok and "Integrity verified" in view.verify_result.text()
    con = sqlite3.connect(audit.path)         # an attacker edits an answer behind the app's back
    con.execute("UPDATE turns SET answer = 'something else' WHERE id = ?", [seeded["plain"]])
    con.commit()
    con.close()
    with qtbot.waitSignal(view.verified, timeout=10000) as sig:
        view.verify_button.click()
    assert not sig.args[0].ok
    assert "Tampering detected" in view.verify_result.text()
    assert view.verify_result.property("state") == "broken"


def test_export_to_an_unwritable_place_is_a_plain_message(qtbot, view, seeded, tmp_path, monkeypatch,
                                                          captured_dialogs):
    out = tmp_path / "no-such-folder" / "out.jsonl"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    view.export("jsonl")
    qtbot.waitUntil(lambda: bool(captured_dialogs), timeout=10000)
    shown, = captured_dialogs
    assert shown["text"] == f"No such file or directory: {out}"
    assert shown["details"] == "" and "bug" not in shown["text"]      # the environment's fault, not a bug
    assert view.export_button.isEnabled() and not out.exists()


def test_detail_keeps_the_text_as_logged(qtbot, audit):
    """Code in an answer lost its indentation in the detail view (HTML collapsed the spaces)."""
    answer = "def f(x):\n    if x:\n        return  x\n"
    turn = add_turn(audit, "code please", "Think  twice.", answer)
    v = AuditorView(audit, reviewer="alice")
    qtbot.addWidget(v)
    v.detail.show_turn(audit.get_turn(turn))
    shown = v.detail.body.toPlainText()
    assert "def f(x):\n    if x:\n        return  x" in shown.replace("\u2028", "\n")
    assert "Think  twice." in shown
