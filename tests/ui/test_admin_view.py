"""Admin settings: a threshold change is validated, saved, audited (old → new) and used by the next
turn's policy; invalid input saves nothing; the live preview decides with the edited policy; site
lock; policy import/export; passphrase change."""
from __future__ import annotations

import json

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from r1desk import settings as settings_mod
from r1desk.core.roles import ADMIN, AUDITOR, RoleStore, ScryptParams
from r1desk.core.guard.policy import Policy
from r1desk.core.guard.toxicity import ToxicityClassifier
from r1desk.errors import AccessDeniedError
from r1desk.settings import load_settings
from r1desk.ui.admin_view import AdminView
from r1desk.ui.roles_gate import apply_settings


class KeywordScorer:
    """A deterministic classifier for the preview (the real Detoxify path is tested in core/guard)."""

    name = "keywords"
    labels = ("toxicity", "insult")
    languages = frozenset({"en"})

    def score(self, texts):
        return [{"toxicity": 0.55 if "idiot" in t else 0.02, "insult": 0.65 if "idiot" in t else 0.01}
                for t in texts]


@pytest.fixture
def warnings(monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[1:3]) or QMessageBox.StandardButton.Ok)
    return shown


@pytest.fixture
def admin(qtbot, audit):
    roles = RoleStore(audit=audit.log_admin_event, params=ScryptParams(n=2 ** 10))
    roles.set_initial(ADMIN, "admin passphrase")
    roles.set_initial(AUDITOR, "auditor passphrase")
    view = AdminView(audit=audit, roles=roles, classifiers_factory=lambda: [ToxicityClassifier(KeywordScorer())])
    qtbot.addWidget(view)
    return view


def test_slider_and_number_stay_in_sync(admin):
    row = admin.policy_editor.row("answer", "toxicity")
    row.slider.setValue(80)
    assert row.spin.value() == pytest.approx(0.80)
    row.spin.setValue(0.35)
    assert row.slider.value() == 35


def test_threshold_change_saved_audited_and_used_next_turn(qtbot, admin, audit):
    text_scores = {"toxicity": 0.55}
    assert load_settings().policy().decide("answer", 0, 4, "x", text_scores)[0].action == "flag"
    row = admin.policy_editor.row("answer", "toxicity")
    row.spin.setValue(0.4)
    row.action.setCurrentIndex(row.action.findData("block"))

    class Session:                      # what the chat window holds; apply_settings feeds it
        config = None

        def update_config(self, c):
            self.config = c

    class State:
        settings = admin.settings
        session = Session()

    state = State()
    admin.settings_saved.connect(lambda s: apply_settings(state, s))
    with qtbot.waitSignal(admin.settings_saved) as sig:
        assert admin.save()
    new = sig.args[0]
    # persisted: a fresh load (what the next ChatSession gets) has the new rule ...
    decided = load_settings().policy().decide("answer", 0, 4, "x", text_scores)
    assert [(d.action, d.threshold) for d in decided] == [("block", 0.4)]
    # ... and the running session got it for its next turn
    assert state.session.config == new.chat_config() and state.settings is new
    assert Policy.from_config(state.session.config.guard).decide("answer", 0, 4, "x", {"toxicity": 0.45})[0].action == "block"
    assert new.policy().decide("answer", 0, 4, "x", {"toxicity": 0.45})[0].action == "block"
    # audited: one event with old -> new for each changed key
    event = audit.list_admin_events(action="settings.change")[0]
    assert event["actor"] == "admin"
    changes = {c["key"]: (c["old"], c["new"]) for c in event["details"]["changes"]}
    assert changes == {"guard.rules.answer.toxicity.threshold": (0.5, 0.4),
                       "guard.rules.answer.toxicity.action": ("flag", "block")}


def test_next_turn_policy_in_a_real_guard_pipeline(admin):
    """The policy saved here is the one the chat builds its guard from (settings.policy())."""
    admin.policy_editor.row("thinking", "insult").spin.setValue(0.2)
    assert admin.save()
    assert load_settings().policy().rule("thinking", "insult").threshold == 0.2


def test_invalid_value_saves_nothing(admin, audit, warnings):
    before = settings_mod.paths.settings_path().exists()
    admin.editors["generation.gpu_layers"].set_value("lots")
    assert not admin.save()
    assert warnings and "gpu_layers" in warnings[0][1]
    assert settings_mod.paths.settings_path().exists() == before
    assert audit.list_admin_events(action="settings.change") == []
    admin.editors["generation.gpu_layers"].set_value("auto")
    assert admin.save()


def test_template_and_language_are_picked_from_lists(admin):
    from PySide6.QtWidgets import QComboBox

    target = admin.editors["language.target"].widget
    assert isinstance(target, QComboBox) and target.findData("fr") >= 0 and target.findData("klingon") < 0
    assert isinstance(admin.editors["template"].widget, QComboBox)


def test_temperature_warning_outside_recommended_range(admin):
    editor = admin.editors["generation.temperature"]
    assert not editor.warning and "R1 recommended: 0.6" in editor.note.text()
    editor.set_value(0.9)
    assert editor.warning and "0.5–0.7" in editor.note.text()
    assert "R1 recommended: 0.95" in admin.editors["generation.top_p"].note.text()


def test_live_preview_uses_the_edited_policy(qtbot, admin):
    preview = admin.preview
    with qtbot.waitSignal(preview.scored, timeout=10000):
        preview.text.setPlainText("you idiot")
        preview.score_now()
    assert preview.table.item(6 - 2, 1).text() == "0.65"         # insult row
    assert preview.decision_for("answer") == "redact"            # default: insult ≥ 0.60 redact
    assert preview.decision_for("thinking") == "allow"           # 0.65 < 0.70 (and toxicity 0.55 < 0.70)
    admin.policy_editor.row("thinking", "insult").spin.setValue(0.5)   # edited, not saved
    assert preview.decision_for("thinking") == "flag"
    assert "thinking: <b" in preview.summary.text() and "flag" in preview.summary.text()
    assert not settings_mod.paths.settings_path().exists()


def test_preview_reports_a_missing_classifier(qtbot, audit):
    from r1desk.errors import ClassifierUnavailableError

    def broken():
        raise ClassifierUnavailableError("Detoxify weights are not installed")

    view = AdminView(audit=audit, classifiers_factory=broken)
    qtbot.addWidget(view)
    view.preview.text.setPlainText("hello")
    view.preview.score_now()
    qtbot.waitUntil(lambda: "not installed" in view.preview.status.text(), timeout=10000)


def test_site_locked_keys_are_read_only(qtbot, audit, warnings):
    site = settings_mod.site_policy_path()
    site.parent.mkdir(parents=True, exist_ok=True)
    site.write_text(json.dumps({"guard": {"rules": {"answer": {"threat": {"threshold": 0.3, "action": "block"}}}},
                                "generation": {"temperature": 0.6}}))
    view = AdminView(audit=audit, classifiers_factory=lambda: [])
    qtbot.addWidget(view)
    assert not view.policy_editor.row("answer", "threat").spin.isEnabled()
    assert view.policy_editor.row("answer", "insult").spin.isEnabled()
    assert not view.editors["generation.temperature"].isEnabled()
    assert view.editors["generation.top_p"].isEnabled()
    assert "site policy" in view.lock_note.text()


def test_policy_export_then_import(qtbot, admin, tmp_path, monkeypatch, audit, warnings):
    out = tmp_path / "policy.json"
    admin.policy_editor.row("prompt", "insult").spin.setValue(0.33)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    admin.export_policy()
    assert json.loads(out.read_text())["guard"]["rules"]["prompt"]["insult"]["threshold"] == 0.33
    admin.revert()
    assert admin.policy_editor.row("prompt", "insult").spin.value() == pytest.approx(0.8)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(out), ""))
    admin.import_policy()
    assert admin.policy_editor.row("prompt", "insult").spin.value() == pytest.approx(0.33)
    assert admin.save_button.isEnabled()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"guard": {"rules": {"prompt": {"insult": {"threshold": 3}}}}}))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    admin.import_policy()
    assert warnings and "threshold" in warnings[-1][1]
    assert admin.policy_editor.row("prompt", "insult").spin.value() == pytest.approx(0.33)


def test_passphrase_change(admin, audit, warnings):
    f = admin.pass_fields[ADMIN]
    f["current"].setText("wrong")
    f["new"].setText("a new admin passphrase")
    f["confirm"].setText("a new admin passphrase")
    assert not admin.change_passphrase(ADMIN)
    assert "Wrong passphrase" in warnings[-1][1]
    f["current"].setText("admin passphrase")
    assert admin.change_passphrase(ADMIN)
    admin.roles.verify(ADMIN, "a new admin passphrase")
    with pytest.raises(AccessDeniedError):
        admin.roles.verify(ADMIN, "admin passphrase")
    a = admin.pass_fields[AUDITOR]
    a["new"].setText("fresh auditor pass")
    a["confirm"].setText("different")
    assert not admin.change_passphrase(AUDITOR)
    a["confirm"].setText("fresh auditor pass")
    assert admin.change_passphrase(AUDITOR)
    actions = [e["action"] for e in audit.list_admin_events()]
    assert "role.passphrase_changed" in actions and "role.passphrase_reset" in actions


def test_an_unwritable_settings_file_is_a_message_not_a_crash(qtbot, tmp_path, warnings):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    view = AdminView(settings_path=blocker / "settings.json", classifiers_factory=lambda: [ToxicityClassifier(KeywordScorer())])
    qtbot.addWidget(view)
    view.policy_editor.row("answer", "toxicity").spin.setValue(0.4)
    assert not view.save()
    assert warnings and warnings[0][0] == "Settings not saved"
    assert view.status.text().startswith("Not saved:")


def test_a_locked_audit_log_does_not_undo_a_saved_change(qtbot, captured_dialogs):
    from r1desk.storage.connection import AuditStoreLockedError

    class LockedAudit:
        def log_admin_event(self, **_kw):
            raise AuditStoreLockedError("The audit log is locked by another program")

    view = AdminView(audit=LockedAudit(), roles=RoleStore(params=ScryptParams(n=2 ** 10)),
                     classifiers_factory=lambda: [ToxicityClassifier(KeywordScorer())])
    qtbot.addWidget(view)
    view.policy_editor.row("answer", "toxicity").spin.setValue(0.4)
    with qtbot.waitSignal(view.settings_saved):
        assert view.save()
    assert load_settings().policy().rule("answer", "toxicity").threshold == 0.4
    assert [d["title"] for d in captured_dialogs] == ["Settings saved, but the change is not in the audit log"]
    assert "locked" in captured_dialogs[0]["text"]
