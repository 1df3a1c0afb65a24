"""The feedback loop end to end on real files: real fastText training on a templated multilingual set,
eligibility, enabling through the CLI, decisions recorded with the version, rollback, the split, the
"most useful" queue order, and review periods (reproducible draw, chained sign-off verified)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from r1desk.cli import main
from r1desk.core.feedback import dataset, periods, versions
from r1desk.core.feedback.dataset import Example
from r1desk.core.feedback.split import split_by_group
from r1desk.core.guard.classifier import REGISTRY, State
from r1desk.core.guard.config import GuardConfig
from r1desk.core.guard.feedback import FeedbackClassifier
from r1desk.core.guard.pipeline import GuardPipeline
from r1desk.core.guard.policy import Policy
from r1desk.settings import SettingsStore
from r1desk.storage.auditlog import AuditLog
from tests.core.feedback.builders import labelled_set
from tests.storage.conftest import decision, log_turn


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def audit(db: Path):
    with AuditLog(db) as log:
        yield log


def write_jsonl(path: Path, examples: list[Example]) -> Path:
    path.write_text("".join(json.dumps({"text": e.text, "label": e.label, "channel": e.channel,
                                        "conversation": e.group}) + "\n" for e in examples), encoding="utf-8")
    return path


def run(*argv: str) -> int:
    return main([str(a) for a in argv])


# -- training and evaluation ---------------------------------------------------------------------------
def test_train_on_imports_evaluates_on_held_out_conversations(tmp_path, db, audit, capsys):
    data = write_jsonl(tmp_path / "policy.jsonl", labelled_set(300))
    assert run("guard", "train", "--db", db, "--import", data, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == "v1" and out["eligible"] and out["model"] == "feedback-v1"
    ev = out["evaluation"]
    assert set(ev["per_label"]) == {"ok", "harmful", "over-refusal"}
    assert ev["macro_f1"] > 0.9 and len(ev["confusion"]) == 3
    assert out["counts"]["test"]["harmful"] >= versions.MIN_TEST_PER_LABEL
    assert len(out["training_set_sha256"]) == 64 and out["hyper_parameters"]["wordNgrams"] == 2
    stored = versions.get("v1")
    assert stored.model_path.is_file() and (stored.path / "evaluation.json").is_file()
    # the import is in the admin log, as `guard import` logs it
    imports = audit.list_admin_events(action="classifier.import")
    assert len(imports) == 1 and imports[0]["details"]["examples"] == len(data.read_text().splitlines())
    # an unseen wording in another language is still judged
    from r1desk.core.feedback.model import FeedbackModel
    probs = FeedbackModel(stored.model_path).predict("answer", ["Envenena a mi vecino poco a poco."])[0]
    assert max(probs, key=probs.get) == "harmful"


def test_the_split_never_puts_a_conversation_on_both_sides():
    examples = labelled_set(120, per_group=5) + [
        Example("weak one", "other", "answer", "conv-ok-0", weight=dataset.WEAK_WEIGHT, source="thumbs")]
    train, test = split_by_group(examples, test_fraction=0.25, seed=3)
    assert not {e.group for e in train} & {e.group for e in test}
    assert {e.label for e in test} == {"ok", "harmful", "over-refusal"}, "stratified: every label is tested"
    assert not any(e.weak for e in test)
    assert split_by_group(examples, test_fraction=0.25, seed=3) == (train, test)


def test_too_few_examples_per_label_is_refused_in_plain_words(tmp_path, db, audit, capsys):
    data = write_jsonl(tmp_path / "small.jsonl", labelled_set(30))
    assert run("guard", "train", "--db", db, "--import", data, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert not out["eligible"]
    assert any(f"at least {versions.MIN_TRAIN_PER_LABEL} are needed" in p for p in out["problems"])
    assert run("guard", "enable", "v1", "--db", db) == 2
    err = capsys.readouterr().err
    assert "v1 cannot be enabled" in err and "training examples" in err
    assert SettingsStore().current.guard.feedback_model is None


# -- the guard classifier ------------------------------------------------------------------------------
def test_enable_decide_record_version_and_roll_back(tmp_path, db, audit, capsys):
    data = write_jsonl(tmp_path / "policy.jsonl", labelled_set(300))
    assert run("guard", "train", "--db", db, "--import", data, "--enable") == 0
    assert run("guard", "train", "--db", db, "--seed", "1", "--enable") == 0
    capsys.readouterr()
    assert SettingsStore().current.guard.feedback_model == "v2"

    config = SettingsStore().current.guard_config()
    assert config.extra == {"review": {"version": "v2"}}
    built = {c.name: c for c in REGISTRY.build(config)}
    review = built["review"]
    assert isinstance(review, FeedbackClassifier)
    pipe = GuardPipeline(Policy.from_config(config), [review], None, None)
    decisions = pipe.classify("answer", "Poison the landlord slowly so nobody notices.")
    assert decisions and decisions[0].label == "review.harmful" and decisions[0].model == "feedback-v2"
    assert pipe.status.classifiers["review"].state is State.ACTIVE
    tid = log_turn(audit, answer=decisions[0].text, decisions=[d.to_dict() for d in decisions])
    stored = audit.get_turn(tid)["decisions"][0]
    assert (stored["classifier"], stored["model"]) == ("review", "feedback-v2")
    assert audit.live_agreement()["feedback-v2"]["flagged_turns"] == 1

    assert run("guard", "rollback", "--db", db) == 0
    assert SettingsStore().current.guard.feedback_model == "v1"
    assert run("guard", "rollback", "--db", db) == 0
    assert SettingsStore().current.guard.feedback_model is None
    assert "review" not in {c.name for c in REGISTRY.build(SettingsStore().current.guard_config())}
    events = [e["details"] for e in audit.list_admin_events(action="classifier.enable")]
    assert [(e["previous"], e["version"]) for e in reversed(events)] == [
        (None, "v1"), ("v1", "v2"), ("v2", "v1"), ("v1", None)]
    assert audit.verify().ok


def test_an_enabled_version_that_is_gone_fails_closed():
    c = FeedbackClassifier("v9")
    pipe = GuardPipeline(Policy.from_config(GuardConfig()), [c], None, None)
    pipe.prepare()
    assert pipe.status.classifiers["review"].state is State.UNAVAILABLE


def test_reviews_and_thumbs_down_become_examples(audit):
    ok = log_turn(audit, answer="Sure, here is the recipe.", decisions=[decision(label="insult", score=0.7)])
    audit.add_segment_scores(ok, [{"channel": "answer", "start": 0, "end": 25, "text": "Sure, here is the recipe.",
                                   "scores": {"insult": 0.7}}])
    audit.review(ok, "ok", reviewer="ann")
    bad = log_turn(audit, answer="Hurt them badly.", decisions=[decision(end=16, score=0.9)])
    audit.review(bad, "harmful", reviewer="ann")
    thumbs = log_turn(audit, answer="A useless answer.")
    audit.set_feedback(thumbs, "down")
    examples = dataset.from_turns(audit.training_turns())
    assert ("Sure, here is the recipe.", "ok") in {(e.text, e.label) for e in examples}
    assert any(e.label == "harmful" and e.turn_id == bad for e in examples)
    weak = [e for e in examples if e.turn_id == thumbs]
    assert [(e.label, e.weak) for e in weak] == [("other", True)]


# -- the review queue ------------------------------------------------------------------------------------
def test_most_useful_order_puts_disagreement_and_near_threshold_first(audit):
    plain = log_turn(audit, prompt="plain")
    near = log_turn(audit, prompt="near")
    audit.add_segment_scores(near, [{"channel": "answer", "start": 0, "end": 5, "text": "x",
                                     "scores": {"toxicity": 0.48}}])
    disagree = log_turn(audit, prompt="disagree", decisions=[decision(score=0.9)])
    audit.add_segment_scores(disagree, [{"channel": "answer", "start": 0, "end": 5, "text": "x",
                                         "scores": {"toxicity": 0.9, "review.harmful": 0.01}}])
    policy = {"answer": {"toxicity": {"threshold": 0.5, "action": "flag"},
                         "review.harmful": {"threshold": 0.8, "action": "flag"}}}
    # the turns were logged with tests.storage.conftest.POLICY; give them one that names both classifiers
    for tid in (near, disagree):
        assert audit.get_turn(tid)["policy"] is not None
    import r1desk.storage.feedback as fb
    rows = fb._usefulness(policy, [("answer", {"toxicity": 0.9, "review.harmful": 0.01})], [], {})
    assert "classifiers disagree" in rows[1]
    order = [r["id"] for r in audit.review_queue(order="useful")]
    assert order.index(near) < order.index(plain)
    assert [r["id"] for r in audit.review_queue()][0] == disagree, "the severity order is kept as the default"
    assert audit.review_queue(order="useful")[0]["usefulness"] >= audit.review_queue(order="useful")[-1]["usefulness"]


# -- review periods ---------------------------------------------------------------------------------------
def test_period_draw_is_reproducible_logged_and_signed_off(db, audit, tmp_path, capsys):
    flagged = [log_turn(audit, prompt=f"f{i}", decisions=[decision()]) for i in range(3)]
    unflagged = [log_turn(audit, prompt=f"u{i}") for i in range(40)]
    period_id = periods.period_at("weekly", datetime.now(timezone.utc))
    later = datetime.now(timezone.utc) + timedelta(days=8)
    with pytest.raises(Exception, match="has not ended"):
        periods.draw(audit, period_id, sample_size=10, actor="ann")
    _, start, end = periods.bounds(period_id)
    seed = periods.seed_for(period_id, start, end, 10)
    again = periods.draw_sample(unflagged, 10, seed)
    period = periods.draw(audit, period_id, sample_size=10, actor="ann", now=later)
    assert period["flagged"] == flagged and period["sample"] == again and len(again) == 10
    assert periods.draw(audit, period_id, sample_size=99, actor="bob", now=later)["sample"] == again, "drawn once"
    for tid in flagged[:2]:
        audit.review(tid, "ok", reviewer="ann")
    audit.review(period["sample"][0], "harmful", reviewer="ann", channel="answer")
    for tid in period["sample"][1:]:
        audit.review(tid, "ok", reviewer="ann")
    s = periods.summary(audit, audit.get_period(period_id))
    assert s["outstanding"] == 1 and s["miss_rate"]["answer"]["k"] == 1 and s["miss_rate"]["answer"]["n"] == 10
    low, high = s["miss_rate"]["answer"]["ci95"]
    assert low < 0.1 < high and s["false_flag_rate"]["answer"]["rate"] == 1.0
    done = periods.sign_off(audit, period_id, auditor="auditor (ann)", folder=tmp_path / "reports")
    html = Path(done["html"]).read_text(encoding="utf-8")
    assert "Review period" in html and "<script" not in html and "Wilson" in html
    signed = audit.get_period(period_id)["signoffs"][0]
    assert signed["report_sha256"] == done["report_sha256"]
    assert run("audit", "verify", "--db", db) == 0
    import sqlite3
    con = sqlite3.connect(db)
    con.execute("UPDATE period_signoffs SET auditor = 'mallory'")
    con.commit()
    con.close()
    assert run("audit", "verify", "--db", db) == 1
    assert "period_signoffs" in capsys.readouterr().out


def test_audit_period_cli_reminds_when_a_closed_period_has_reviews_outstanding(db, audit, capsys, monkeypatch):
    store = SettingsStore()
    import dataclasses
    s = store.current
    store.save(dataclasses.replace(s, review_period=dataclasses.replace(s.review_period, cadence="weekly",
                                                                          sample_size=5)))
    log_turn(audit, prompt="flagged", decisions=[decision()])
    week = periods.period_at("weekly", datetime.now(timezone.utc))
    monkeypatch.setattr(periods, "last_closed", lambda cadence, now=None: week)
    real_draw = periods.draw
    monkeypatch.setattr(periods, "draw", lambda *a, **kw: real_draw(
        *a, **{**kw, "now": datetime.now(timezone.utc) + timedelta(days=8)}))
    assert run("audit", "period", "status", "--db", db) == 1
    out = capsys.readouterr().out
    assert f"Review period {week} has closed with 1 of 1 turns still to review." in out
    assert run("audit", "period", "list", "--db", db) == 0
    assert week in capsys.readouterr().out
