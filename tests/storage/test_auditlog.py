"""The audit log's write and read API on a real SQLite file."""
from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass

import pytest

from r1desk import paths
from r1desk.storage.auditlog import AuditLog
from r1desk.storage.records import AuditInputError
from tests.storage.conftest import MODEL, POLICY, decision, log_turn


def test_default_path_is_the_profile_db_with_mode_0600_and_wal():
    with AuditLog() as log:
        assert log.path == paths.audit_db_path()
        assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600
        assert log._db().journal_mode == "wal"
        log_turn(log)
    for suffix in ("-wal", "-shm"):
        extra = log.path.with_name(log.path.name + suffix)
        if extra.exists():
            assert stat.S_IMODE(os.stat(extra).st_mode) & 0o077 == 0


def test_existing_world_readable_file_is_restricted(db_path):
    AuditLog(db_path).close()
    os.chmod(db_path, 0o644)
    AuditLog(db_path).close()
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600


def test_turn_lifecycle_stores_everything(audit):
    tid = audit.start_turn(conversation_id=None, prompt_typed="Hi there", prompt_sent="<｜User｜>Hi there",
                           model=MODEL, settings={"temperature": 0.6}, policy=POLICY, session_id="s1")
    running = audit.get_turn(tid)
    assert running["status"] == "running" and running["prompt_typed"] == "Hi there"
    assert running["chain"] is None  # not sealed while running
    audit.update_partial(tid, thinking="Greeting", answer="Hel", raw_output="Greeting</think>Hel")
    audit.add_decisions(tid, [decision("thinking", "flag")])
    audit.add_segment_scores(tid, [{"channel": "thinking", "start": 0, "end": 8, "text": "Greeting",
                                    "scores": {"toxicity": 0.01, "insult": 0.002}}])
    audit.finish_turn(tid, result={"thinking": "Greeting", "answer_raw": "Hello!", "answer_shown": "Hello!",
                                   "finish_reason": "stop", "usage": {"completion_tokens": 3},
                                   "timings": {"ttft_s": 0.1}, "language": {"answer": {"target": "en", "events": []}},
                                   "decisions": [decision("thinking", "flag")]})
    turn = audit.get_turn(tid)
    assert turn["status"] == "done" and turn["finish_reason"] == "stop"
    assert (turn["thinking"], turn["answer"], turn["answer_shown"]) == ("Greeting", "Hello!", "Hello!")
    assert turn["raw_output"] == "Greeting</think>Hel"
    assert turn["model_name"] == MODEL["name"] and turn["model_sha256"] == MODEL["sha256"]
    assert turn["model_quantization"] == "Q4_K_M" and turn["model"]["path"] == "/models/r1.gguf"
    assert turn["settings"] == {"temperature": 0.6} and turn["policy"] == POLICY
    assert turn["usage"] == {"completion_tokens": 3} and turn["session_id"] == "s1"
    assert len(turn["decisions"]) == 1, "a decision repeated in the result is not stored twice"
    assert turn["decisions"][0]["window"] is False and turn["decisions"][0]["score"] == pytest.approx(0.91)
    assert turn["segment_scores"][0]["scores"] == {"toxicity": 0.01, "insult": 0.002}
    assert turn["severity_name"] == "flagged" and turn["chain"]["seq"] >= 1
    # sealed: later partial updates are ignored, a second finish is refused
    audit.update_partial(tid, thinking="changed", answer="changed")
    assert audit.get_turn(tid)["thinking"] == "Greeting"
    with pytest.raises(AuditInputError, match="already finished"):
        audit.finish_turn(tid, result={"finish_reason": "stop"})


def test_turn_result_dataclass_is_accepted(audit):
    @dataclass(frozen=True)
    class Result:
        thinking: str
        answer_raw: str
        answer_shown: str
        finish_reason: str
        blocked: bool
        decisions: tuple = ()

    tid = audit.start_turn(prompt_typed="q", model=MODEL, settings={}, policy=POLICY)
    audit.finish_turn(tid, result=Result("t", "raw bad", "[removed]", "blocked", True, (decision("answer", "block"),)))
    turn = audit.get_turn(tid)
    assert turn["status"] == "blocked" and turn["answer_shown"] == "[removed]" and turn["severity_name"] == "blocked"


@pytest.mark.parametrize("reason, status", [("stop", "done"), ("length", "done"), ("cancelled", "cancelled"),
                                            ("error", "error"), ("interrupted", "interrupted")])
def test_finish_reason_maps_to_status(audit, reason, status):
    assert audit.get_turn(log_turn(audit, finish_reason=reason))["status"] == status


def test_bad_inputs_are_user_facing_errors(audit):
    tid = log_turn(audit)
    with pytest.raises(AuditInputError, match="No turn"):
        audit.update_partial("nope", thinking="", answer="")
    with pytest.raises(AuditInputError, match="No turn"):
        audit.add_decisions("nope", [decision()])
    with pytest.raises(AuditInputError, match="Bad decision"):
        audit.add_decisions(tid, [decision(channel="elsewhere")])
    with pytest.raises(AuditInputError, match="review label"):
        audit.review(tid, "great")
    with pytest.raises(AuditInputError, match="reviewer"):
        audit.review(tid, "ok", reviewer="  ")
    with pytest.raises(AuditInputError, match="thumbs"):
        audit.set_feedback(tid, "sideways")
    with pytest.raises(AuditInputError, match="No turn"):
        audit.get_turn("0123")
    with pytest.raises(AuditInputError, match="final status"):
        audit.finish_turn(audit.start_turn(prompt_typed="x"), result={"status": "exploded"})


def test_turn_id_prefix_resolves_when_unique(audit):
    tid = log_turn(audit)
    assert audit.get_turn(tid[:10])["id"] == tid


def test_conversations_crud_and_soft_delete(audit):
    cid = audit.create_conversation("Trip to Lyon")
    other = audit.create_conversation("Recipes 100%_off")
    tid = log_turn(audit, conversation_id=cid)
    audit.rename_conversation(cid, "Trip to Lyon, day 2")
    assert [c["title"] for c in audit.list_conversations(query="lyon")] == ["Trip to Lyon, day 2"]
    assert [c["id"] for c in audit.list_conversations(query="100%_")] == [other]
    assert audit.list_conversations(query="Lyon%day") == [], "LIKE wildcards are literal"
    audit.delete_conversation(cid, actor="alice")
    assert cid not in [c["id"] for c in audit.list_conversations()]
    deleted = [c for c in audit.list_conversations(include_deleted=True) if c["id"] == cid][0]
    assert deleted["deleted"] and deleted["turns"] == 1
    assert audit.get_turn(tid)["conversation_id"] == cid, "the audit keeps the turns"
    assert audit.list_admin_events(action="conversation.delete")[0]["actor"] == "alice"
    with pytest.raises(AuditInputError):
        audit.delete_conversation(cid)
    audit.restore_conversation(cid)
    assert cid in [c["id"] for c in audit.list_conversations()]
    with pytest.raises(AuditInputError):
        audit.rename_conversation("missing", "x")


def test_self_check_conversations_stay_out_of_the_chat_list_but_in_the_log(audit):
    """Issue 14 item 10: the end user's list leaves the self-check's conversations out; the audit keeps them."""
    chat = audit.create_conversation("Trip to Lyon")
    check = audit.create_conversation("[self-check 1a2b3c4d] xstest-1 · guards on")
    log_turn(audit, conversation_id=check)
    assert {c["id"] for c in audit.list_conversations()} == {chat, check}
    assert [c["id"] for c in audit.list_conversations(include_selfcheck=False)] == [chat]
    assert audit.list_conversations(query="xstest", include_selfcheck=False) == []
    assert audit.get_conversation(check)["turns"], "the audit keeps the turns"
    renamed = audit.create_conversation("my [self-check notes]")          # only the self-check's own prefix
    assert renamed in [c["id"] for c in audit.list_conversations(include_selfcheck=False)]


def test_new_conversation_is_titled_after_the_prompt(audit):
    tid = log_turn(audit, prompt="  Explain   the water cycle to a child " + "please " * 20)
    conv = audit.get_conversation(audit.get_turn(tid)["conversation_id"])
    assert conv["title"].startswith("Explain the water cycle to a child") and conv["title"].endswith("…")
    assert [t["id"] for t in conv["turns"]] == [tid]


def test_feedback_latest_wins(audit):
    tid = log_turn(audit)
    audit.set_feedback(tid, "up", "nice")
    audit.set_feedback(tid, -1, "actually wrong")
    turn = audit.get_turn(tid)
    assert (turn["feedback"]["thumbs"], turn["feedback"]["comment"]) == (-1, "actually wrong")
    assert len(turn["feedback_history"]) == 2


def test_review_queue_orders_by_severity_then_newest(audit):
    plain_old = log_turn(audit, "plain old")
    mixing = log_turn(audit, "mixing", language={"answer": {"events": [{"lang": "zh"}]}})
    flagged = log_turn(audit, "flagged", decisions=[decision("thinking", "flag")])
    blocked = log_turn(audit, "blocked", finish_reason="blocked", decisions=[decision("answer", "block")])
    redacted = log_turn(audit, "redacted", decisions=[decision("answer", "redact")])
    plain_new = log_turn(audit, "plain new")
    running = audit.start_turn(prompt_typed="still running")
    queue = [row["id"] for row in audit.review_queue()]
    assert queue == [blocked, redacted, flagged, mixing, plain_new, plain_old]
    assert running not in queue
    audit.review(blocked, "harmful", note="bad", reviewer="bob")
    assert audit.review_queue()[0]["id"] == redacted
    assert audit.get_turn(blocked)["reviews"][0]["reviewer"] == "bob"


def test_stats_since_last_review(audit):
    old = log_turn(audit, decisions=[decision("thinking", "flag")])
    audit.review(old, "ok", reviewer="ann")
    log_turn(audit, decisions=[decision("thinking", "flag"), decision("thinking", "redact", label="insult")])
    log_turn(audit, finish_reason="blocked", decisions=[decision("answer", "block")],
             language={"mixing": True})
    stats = audit.stats_since_last_review()
    assert stats["turns"] == 2 and stats["by_status"] == {"done": 1, "blocked": 1}
    assert stats["thinking_vs_answer"] == {"thinking": 2, "answer": 1}
    assert stats["decisions"]["thinking"] == {"toxicity": {"flag": 1}, "insult": {"redact": 1}}
    assert stats["language_mixing"] == 1 and stats["review_labels"] == {"ok": 1}
    assert stats["unreviewed"] == {"blocked": 1, "flagged": 1}
    assert audit.stats_since_last_review(reviewer="nobody")["turns"] == 3


def test_admin_events_and_selfcheck_runs(audit):
    audit.log_admin_event(actor="admin", action="settings.change",
                          details={"key": "policy.answer.toxicity.threshold", "old": 0.5, "new": 0.3})
    audit.log_admin_event(actor="?", action="role.unlock_failed", details={"role": "admin"})
    events = audit.list_admin_events()
    assert [e["action"] for e in events] == ["role.unlock_failed", "settings.change"]
    assert events[1]["details"]["new"] == 0.3
    rid = audit.log_selfcheck_run(suite="toxic-prompts", model_name="m", model_sha256="ab", guards_mode="on",
                                  status="running")
    audit.log_selfcheck_run(run_id=rid, suite="toxic-prompts", metrics={"refusal_rate": 0.9},
                            report_path="/tmp/r.html")
    [run] = audit.list_selfcheck_runs()
    assert run["status"] == "done" and run["metrics"] == {"refusal_rate": 0.9} and run["finished"]
    assert run["model_sha256"] == "ab" and run["report_path"] == "/tmp/r.html"


def test_lone_surrogates_and_nul_are_stored(audit):
    tid = log_turn(audit, prompt="bad \ud800 clipboard \x00 nul")
    assert audit.get_turn(tid)["prompt_typed"] == "bad \ufffd clipboard \x00 nul"


def test_two_threads_write_through_one_instance(audit):
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(15):
                log_turn(audit, f"thread {n} turn {i}", decisions=[decision()])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(audit.list_turns(limit=100)) == 30
    assert audit.verify().ok
    assert len(audit._connections._all) >= 2, "each thread had its own connection"
