"""A stand-in for the desktop app's audit writes, run as its own process by the multi-process tests.

It opens the audit log the way the app does — one ``AuditLog`` for the conversation list and a
second one for the chat session (and their write-behind queue) — and then writes on command, so a
test can interleave its writes with other r1desk processes deterministically:

    stdin  "turn"    -> start, two partial commits, finish; prints "turn <id>"
    stdin  "review"  -> reviews the last turn; prints "review <turn id>"
    stdin  "burst N" -> N turns and reviews in a row (while other processes run); prints their ids
    stdin  "quit"    -> closes both logs; prints "bye"
"""
from __future__ import annotations

import sys
from pathlib import Path

from r1desk.storage.auditlog import AuditLog
from r1desk.storage.pending import PendingQueue


def main(db: Path) -> int:
    listing = AuditLog(db)                 # the conversation list, opened at start
    session = AuditLog(db)                 # the chat session's log, opened when a model loads
    writer = PendingQueue(session)
    last: str | None = None

    def turn() -> str:
        tid = writer.start_turn(prompt_typed="What is 2 + 2?", model={"name": "stand-in"})
        writer.update_partial(tid, thinking="Two plus two.", answer="")
        writer.update_partial(tid, thinking="Two plus two is four.", answer="4")
        writer.finish_turn(tid, result={"thinking": "Two plus two is four.", "answer": "4",
                                        "finish_reason": "stop"})
        writer.flush()
        return tid

    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "turn":
            last = turn()
            print("turn", last, flush=True)
        elif command == "review" and last is not None:
            listing.review(last, "ok", note="fine", reviewer="auditor")
            print("review", last, flush=True)
        elif command == "burst":
            for _ in range(int(arg)):
                last = turn()
                listing.review(last, "ok", reviewer="auditor")
                print("turn", last, flush=True)
                print("review", last, flush=True)
            print("burst-done", flush=True)
        elif command == "quit":
            break
    writer.close()
    session.close()
    listing.close()
    print("bye", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
