"""Issue 14 item 2: an edit (or a regenerate) replaces a branch of a conversation; the chat reads the live
branch, the audit log keeps every branch and its hash chain still verifies."""
from __future__ import annotations

from r1desk.storage.auditlog import AuditLog


def _turn(audit: AuditLog, cid: str | None, prompt: str, *, replaces: str | None = None) -> tuple[str, str]:
    tid = audit.start_turn(conversation_id=cid, prompt_typed=prompt, prompt_sent=prompt, regenerate_of=replaces)
    audit.finish_turn(tid, result={"thinking": "t", "answer_raw": f"A:{prompt}", "answer_shown": f"A:{prompt}",
                                   "finish_reason": "stop"})
    return tid, audit.get_turn(tid)["conversation_id"]


def _shown(audit: AuditLog, cid: str) -> list[str]:
    return [t["prompt_typed"] for t in audit.get_conversation(cid)["turns"] if not t["superseded"]]


def test_an_edit_replaces_the_branch_from_the_edited_turn_on(audit):
    t1, cid = _turn(audit, None, "one")
    t2, _ = _turn(audit, cid, "two")
    _turn(audit, cid, "three")
    e1, _ = _turn(audit, cid, "one, edited", replaces=t1)
    assert _shown(audit, cid) == ["one, edited"]
    _turn(audit, cid, "four")
    assert _shown(audit, cid) == ["one, edited", "four"]
    # every branch is kept, in order, and the chain verifies
    assert [t["prompt_typed"] for t in audit.get_conversation(cid)["turns"]] == \
        ["one", "two", "three", "one, edited", "four"]
    assert audit.verify().ok
    # a second edit, of the edited branch's first turn, and a regenerate of the last turn
    e2, _ = _turn(audit, cid, "one, edited twice", replaces=e1)
    f, _ = _turn(audit, cid, "five")
    _turn(audit, cid, "five", replaces=f)
    assert _shown(audit, cid) == ["one, edited twice", "five"]
    assert audit.verify().ok


def test_an_edit_in_the_middle_keeps_the_turns_before_it(audit):
    _t1, cid = _turn(audit, None, "one")
    t2, _ = _turn(audit, cid, "two")
    _turn(audit, cid, "three")
    _turn(audit, cid, "two, edited", replaces=t2)
    assert _shown(audit, cid) == ["one", "two, edited"]


def test_the_session_history_follows_the_live_branch(audit):
    from r1desk.core.chat import ChatSession

    t1, cid = _turn(audit, None, "one")
    _turn(audit, cid, "two")
    _turn(audit, cid, "one, edited", replaces=t1)
    history = ChatSession.history(type("S", (), {"audit": audit})(), cid)
    assert [m.content for m in history] == ["one, edited", "A:one, edited"]
