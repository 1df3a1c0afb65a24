"""Issue 16 in the desktop app, on real fastText, real files and a real audit log: Admin → Classifiers trains
(off the GUI thread, Cancel), imports, lists versions with their metrics, enables (refused in plain words
when not eligible), disables and rolls back through feedback_admin; the dashboard's feedback card; the
"most useful to review" order in the auditor view; the review period's queue, report, sign-off and reminders
(in the auditor view and on app start)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel

from r1desk.core.feedback import periods, versions
from r1desk.core.roles import ADMIN, AUDITOR, RoleStore, ScryptParams
from r1desk.settings import ReviewPeriodSettings, load_settings
from r1desk.ui import period_panel
from r1desk.ui.admin_view import AdminView
from r1desk.ui.auditor_view import AuditorView
from r1desk.ui.dashboard import Dashboard
from r1desk.ui.dashboard_data import collect
from tests.core.feedback.builders import labelled_set
from tests.storage.conftest import decision, log_turn

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")


def write_jsonl(path: Path, per_label: int, seed: int = 1) -> Path:
    path.write_text("".join(json.dumps({"text": e.text, "label": e.label, "channel": e.channel,
                                        "conversation": e.group}) + "\n"
                            for e in labelled_set(per_label, seed=seed)), encoding="utf-8")
    return path


@pytest.fixture
def admin(qtbot, audit, captured_dialogs):
    roles = RoleStore(audit=audit.log_admin_event, params=ScryptParams(n=2 ** 10))
    roles.set_initial(ADMIN, "admin passphrase")
    view = AdminView(audit=audit, roles=roles, classifiers_factory=lambda: [])
    qtbot.addWidget(view)
    return view


def import_and_train(qtbot, panel, path: Path) -> str:
    with qtbot.waitSignal(panel.imported, timeout=30000):
        panel.import_file(path)
    with qtbot.waitSignal(panel.trained, timeout=120000) as trained:
        panel.train_button.click()
    return str(trained.args[0])


def enable_events(audit) -> list[dict]:
    return [e["details"] for e in reversed(audit.list_admin_events(action="classifier.enable"))]


def test_train_enable_disable_roll_back_from_admin_classifiers(qtbot, admin, audit, tmp_path, captured_dialogs):
    panel = admin.feedback
    assert panel.table.rowCount() == 0 and "No version trained yet" in panel.details.text()
    saved = []
    admin.settings_saved.connect(saved.append)
    assert import_and_train(qtbot, panel, write_jsonl(tmp_path / "policy.jsonl", 150)) == "v1"
    assert [e["action"] for e in reversed(audit.list_admin_events())][-2:] == ["classifier.import", "classifier.train"]
    assert panel.table.rowCount() == 1 and panel.table.item(0, 0).text() == "v1"
    assert panel.table.item(0, 4).text() == "yes" and not panel.busy and panel.cancel_button.isHidden()
    details = panel.details.text()
    for words in ("harmful", "over-refusal", "precision", "recall", "held-out examples", "running classifiers"):
        assert words in details
    assert "Trained v1" in panel.status.text() and "can be enabled" in panel.status.text()

    assert panel.enable_selected()
    assert load_settings().guard.feedback_model == "v1" and admin.settings.guard.feedback_model == "v1"
    assert saved[-1].guard.feedback_model == "v1", "the chat gets it from the next turn"
    assert panel.table.item(0, 6).text() == "✓" and "v1" in panel.current_label.text()
    assert panel.disable()
    assert load_settings().guard.feedback_model is None
    assert panel.rollback()
    assert load_settings().guard.feedback_model == "v1"
    assert [(e["version"], e["reason"]) for e in enable_events(audit)] == [
        ("v1", "enable"), (None, "disable"), ("v1", "rollback")]
    assert all(e["actor"] == "admin" for e in audit.list_admin_events(action="classifier.enable"))
    admin.save()        # a later Save of the admin settings keeps the version the panel enabled
    assert load_settings().guard.feedback_model == "v1"
    assert not captured_dialogs

    # the dashboard: the version's metrics, and how its live flags agree with the reviews made after them
    live = [log_turn(audit, prompt=f"live {i}", decisions=[{**decision(label="review.harmful"), "classifier": "review",
                                                             "model": "feedback-v1"}]) for i in range(3)]
    audit.review(live[0], "harmful", reviewer="ann")
    audit.review(live[1], "ok", reviewer="ann")
    data = collect(audit)
    assert [v["version"] for v in data.feedback] == ["v1"] and data.feedback[0]["macro_f1"] > 0.8
    assert data.feedback[0]["live"] == {"flagged_turns": 3, "reviewed_later": 2, "confirmed": 1, "rejected": 1,
                                        "agreement": 0.5}
    dash = Dashboard(audit)
    qtbot.addWidget(dash)
    dash.show_data(data)
    assert not dash.feedback.is_empty
    bars = dash.feedback.chart.series()[0].barSets()
    assert [b.at(0) for b in bars] == [pytest.approx(100 * data.feedback[0]["macro_f1"]), 50.0]
    note = dash.feedback.findChild(QLabel, "FeedbackNote").text()
    assert "v1" in note and "1 of 2 live flags confirmed by later reviews" in note and "harmful P" in note


def test_enable_is_refused_in_plain_words_when_too_few_examples(qtbot, admin, tmp_path, captured_dialogs):
    panel = admin.feedback
    import_and_train(qtbot, panel, write_jsonl(tmp_path / "few.jsonl", 20))
    assert panel.table.item(0, 4).text() == "no"
    assert "cannot be enabled" in panel.status.text()
    assert not panel.enable_selected()
    assert load_settings().guard.feedback_model is None
    message = captured_dialogs[-1]["text"]
    assert "v1 cannot be enabled" in message and f"at least {versions.MIN_TRAIN_PER_LABEL} are needed" in message
    assert captured_dialogs[-1]["details"] == "", "a refusal, not a bug report"
    assert "Cannot be enabled" in panel.details.text()


def test_cancelled_training_writes_no_version(qtbot, admin, tmp_path):
    panel = admin.feedback
    with qtbot.waitSignal(panel.imported, timeout=30000):
        panel.import_file(write_jsonl(tmp_path / "policy.jsonl", 60))
    with qtbot.waitSignal(panel.busy_changed, timeout=120000, check_params_cb=lambda busy: not busy):
        panel.train_button.click()
        assert panel.busy and not panel.cancel_button.isHidden() and not panel.train_button.isEnabled()
        panel.cancel_button.click()
    assert "Training cancelled: no version was written" in panel.status.text()
    assert versions.list_versions() == [] and panel.table.rowCount() == 0
    assert not any(p.name.startswith(".v") for p in versions.root().iterdir())


def test_auditor_view_orders_the_queue_by_most_useful(qtbot, audit):
    near = log_turn(audit, prompt="near the threshold", decisions=[decision(score=0.51)])
    plain = log_turn(audit, prompt="nothing to see")
    view = AuditorView(audit)
    qtbot.addWidget(view)
    view.order.setCurrentIndex(view.order.findData("useful"))
    expected = [r["id"] for r in audit.review_queue(order="useful")]
    assert [view.model.turn_id(i) for i in range(view.model.rowCount())] == expected
    assert expected.index(near) < expected.index(plain) and view.model.useful_applies
    view.view_mode.setCurrentIndex(view.view_mode.findData("all"))      # other filters: by severity, said so
    assert "by severity here" in view.count_label.text()


def week_after(now: datetime) -> tuple[str, datetime]:
    """This week's id and a moment one hour into next week (this week has closed then)."""
    week = periods.period_at("weekly", now)
    _, _, end = periods.bounds(week)
    return week, datetime.strptime(end, "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=timezone.utc) + timedelta(hours=1)


def test_review_period_reminder_queue_report_and_sign_off(qtbot, audit, monkeypatch, captured_dialogs):
    flagged = log_turn(audit, prompt="flagged", decisions=[decision()])
    unflagged = [log_turn(audit, prompt=f"u{i}") for i in range(6)]
    week, later = week_after(datetime.now(timezone.utc))
    opened: list[Path] = []
    monkeypatch.setattr(period_panel, "open_url", lambda path: opened.append(path) or True)
    view = AuditorView(audit, reviewer="ann", review_settings=lambda: ReviewPeriodSettings("weekly", 3),
                       clock=lambda: later)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.periods.reminders_ready, timeout=10000):
        view.show()                 # the view opens: the closed week has reviews outstanding
    assert view.reminder.isVisible()
    assert f"Review period {week} has closed with 4 of 4 turns still to review." in view.reminder.message.text()
    with qtbot.waitSignal(view.periods.loaded, timeout=10000):
        view.reminder.show_button.click()
    assert view.tabs.currentWidget() is view.periods
    panel = view.periods
    assert panel.period_box.currentData() == week and panel.table.rowCount() == 4
    period = audit.get_period(week)
    assert period["flagged"] == [flagged] and set(period["sample"]) <= set(unflagged) and period["drawn_by"] == "ann"
    assert panel.table.item(0, 2).text() == "outstanding" and "4</b> still to review" in panel.summary_label.text()

    panel.open_turn.emit(flagged)           # read and review it from the period's queue
    assert view.tabs.currentIndex() == 0 and view.detail.turn["id"] == flagged
    with qtbot.waitSignal(panel.loaded, timeout=10000):
        view.detail.choose_label(2)
        assert view.detail.submit()
    assert panel.summary["outstanding"] == 3

    with qtbot.waitSignal(panel.report_written, timeout=10000) as written:
        panel.report_button.click()
    html = Path(written.args[0]).read_text(encoding="utf-8")
    assert opened == [Path(written.args[0])] and f"Review period {week}" in html and "<script" not in html
    panel.note.setText("three left for next week")
    with qtbot.waitSignal(panel.loaded, timeout=10000):             # and the refresh after it
        with qtbot.waitSignal(panel.signed_off, timeout=10000) as signed:
            panel.signoff_button.click()
    assert signed.args[0]["outstanding"] == 3
    signoff = audit.get_period(week)["signoffs"][0]
    assert signoff["auditor"] == "ann" and signoff["note"] == "three left for next week"
    assert signoff["report_sha256"] == signed.args[0]["report_sha256"]
    assert audit.verify().ok and not captured_dialogs
    assert "Signed off by ann" in panel.summary_label.text()


def test_no_reminder_when_periodic_review_is_off(qtbot, audit):
    log_turn(audit, prompt="flagged", decisions=[decision()])
    view = AuditorView(audit, review_settings=lambda: ReviewPeriodSettings("off", 3))
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.periods.reminders_ready, timeout=5000) as ready:
        view.show()
    assert ready.args[0] == [] and not view.reminder.isVisible()
    assert audit.list_periods() == []


class Auditors:
    def has_passphrase(self, role: str) -> bool:
        return role == AUDITOR


def test_app_start_reminds_the_auditor(qtbot, make_window):
    from tests.ui.conftest import ui_settings

    settings = ui_settings()
    settings.review_period.cadence = "weekly"
    window = make_window(settings=settings)
    log_turn(window.state.audit, prompt="flagged", decisions=[decision()])
    week, later = week_after(datetime.now(timezone.utc))
    assert period_panel.remind_at_start(window, roles=RoleStore(params=ScryptParams(n=2 ** 10))) is None, \
        "no auditor passphrase: nobody to remind"
    banner = period_panel.remind_at_start(window, roles=Auditors(), clock=lambda: later)
    assert banner is not None
    qtbot.waitUntil(banner.isVisible, timeout=10000)
    assert f"For the auditor: Review period {week} has closed with 1 of 1 turns still to review." in \
        banner.message.text()


def test_admin_sets_the_review_period_cadence_and_sample(admin, audit):
    admin.tabs.setCurrentIndex([admin.tabs.tabText(i) for i in range(admin.tabs.count())].index("Periodic review"))
    admin.editors["review_period.cadence"].set_value("monthly")
    admin.editors["review_period.sample_size"].set_value(12)
    assert admin.save()
    assert load_settings().review_period == ReviewPeriodSettings("monthly", 12)
    changes = audit.list_admin_events(action="settings.change")[0]["details"]["changes"]
    assert {c["key"] for c in changes} == {"review_period.cadence", "review_period.sample_size"}
