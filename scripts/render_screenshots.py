"""Render the desktop app's main states into docs/screenshots/*.png (offscreen, no display needed).

    QT_QPA_PLATFORM=offscreen python scripts/render_screenshots.py [--out docs/screenshots] [--dark]

The chat states replay a scripted turn (the events core.chat yields) so the pictures show a readable
answer; the real window, widgets, renderer and worker draw them. A throwaway profile is used.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("R1DESK_HOME", tempfile.mkdtemp(prefix="r1desk-shots-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r1desk.core import events as ev  # noqa: E402

THINKING = (
    "The user wants a function that checks whether a string is a palindrome. I should ignore case "
    "and anything that is not a letter or digit, so \"A man, a plan, a canal: Panama\" counts.\n\n"
    "Two pointers from both ends would avoid building a new string, but a cleaned copy compared with "
    "its reverse is clearer and fast enough. I'll show that, then mention the complexity."
)
ANSWER = (
    "Here is a small, readable version:\n\n"
    "```python\n"
    "def is_palindrome(text: str) -> bool:\n"
    "    \"\"\"True if text reads the same both ways, ignoring case and punctuation.\"\"\"\n"
    "    cleaned = [c.lower() for c in text if c.isalnum()]\n"
    "    return cleaned == cleaned[::-1]\n"
    "```\n\n"
    "**How it works**\n\n"
    "1. Keep only letters and digits, lower-cased.\n"
    "2. Compare the list with its reverse.\n\n"
    "| Input | Result |\n|---|---|\n| `\"racecar\"` | `True` |\n| `\"A man, a plan, a canal: Panama\"` | `True` |\n"
    "| `\"hello\"` | `False` |\n\n"
    "It runs in O(n) time and O(n) extra memory."
)
FLAG_THINKING = ("The user is angry at their coworker and wants a reply. Calling him a worthless idiot would "
                 "be an insult, so I should not write that. A firm, calm message works better.")
FLAG_ANSWER = ("You could write: \"I was surprised the report went out without my section. Can we talk "
               "about how we split the work?\" Stay factual and keep it short.")


@dataclass(frozen=True)
class _Info:
    name: str = "DeepSeek-R1-Distill-Qwen-7B"
    quantization: str = "Q4_K_M"
    path: str = "/models/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf"
    size_bytes: int = 4_683_073_184
    architecture: str = "qwen2"
    is_r1: bool = True


class _Engine:
    info = _Info()
    loaded = True


@dataclass(frozen=True)
class _Decision:
    channel: str
    start: int
    end: int
    label: str
    score: float
    threshold: float
    action: str


def _Status():  # noqa: N802 - the typed guard status the session reports: every filter active
    from r1desk.core.guard.classifier import ClassifierStatus, State
    from r1desk.core.guard.status import GuardStatus

    status = GuardStatus()
    status.classifiers["toxicity"] = ClassifierStatus("toxicity", "Toxicity filter", State.ACTIVE, "original")
    status.language = "active"
    return status


class ScriptedSession:
    """Yields the events of a scripted turn, like core.chat.ChatSession.run_turn."""

    guard_status = _Status()

    def __init__(self, script: str) -> None:
        self.script = script

    def run_turn(self, req, cancel: threading.Event | None = None):
        tid, cid = f"turn-{time.monotonic_ns()}", "conv-demo"
        yield ev.TurnStarted(tid, cid, {}, req.user_text, {})
        thinking, answer = (THINKING, ANSWER) if self.script == "code" else (FLAG_THINKING, FLAG_ANSWER)
        for channel, text in (("thinking", thinking), ("answer", answer)):
            for i in range(0, len(text), 12):
                yield ev.Delta(channel, text[i:i + 12])
        if self.script == "flag":
            start = FLAG_THINKING.index("Calling him")
            end = FLAG_THINKING.index("so I should") - 2
            yield ev.GuardDecision(_Decision("thinking", start, end, "insult", 0.87, 0.5, "flag"))
        yield ev.LanguageReport("answer", "en", 0.99 if self.script == "code" else 1.0, (), False)
        yield ev.Stats(24.6, 9.8, 241)
        result = ev.TurnResult(tid, cid, thinking, answer, answer, thinking, "stop", False, False,
                               timings={"thinking_s": 3.4})
        yield ev.TurnFinished(result)


def _settle(app, ms: int = 400) -> None:
    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _wait(app, predicate, timeout_s: float = 10) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("state not reached")
        app.processEvents()
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--dark", action="store_true", help="render the dark theme")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "-dark" if args.dark else ""

    from r1desk.ui import theme
    from r1desk.ui.app import create_app
    from r1desk.ui.app_state import AppState
    from r1desk.ui.main_window import MainWindow

    app = create_app(["r1desk"])
    theme.apply(app, dark=args.dark)

    empty_state = AppState(audit=None)
    window = MainWindow(empty_state)
    window.resize(1200, 780)
    window.show()
    _settle(app)
    window.grab().save(str(out / f"empty-state{suffix}.png"))
    window.close()

    state = AppState(audit=None, engine=_Engine())
    state.session = ScriptedSession("code")
    window = MainWindow(state)
    window.resize(1200, 900)
    window.chat.disclosure.set_model(_Info())
    window.chat.disclosure.set_guard_status(_Status())
    window.chat._update_can_send()
    from r1desk.ui.conversation_list import ConversationItem

    window.sidebar.set_items([ConversationItem(f"c{i}", t) for i, t in enumerate((
        "Palindrome checker in Python", "Reply to a coworker", "Explain the Monty Hall problem",
        "Résumé du rapport trimestriel", "SQL query for monthly totals"))], "c0")
    window.show()
    _settle(app)
    window.chat.send("Write a Python function that checks if a string is a palindrome.")
    _wait(app, lambda: not state.worker.busy and window.chat.view.exchanges[-1][1].result is not None)
    window.chat.view.exchanges[-1][1].thinking.set_expanded(True)
    _settle(app)
    window.chat.view.verticalScrollBar().setValue(0)
    _settle(app)
    window.grab().save(str(out / f"chat-streamed-answer{suffix}.png"))

    state.session = ScriptedSession("flag")
    window.chat.new_chat()
    window.chat.send("My coworker took credit for my work. Write him a reply telling him what I think of him.")
    _wait(app, lambda: not state.worker.busy and window.chat.view.exchanges[-1][1].result is not None)
    window.chat.view.exchanges[-1][1].thinking.set_expanded(True)
    window.chat.input.edit.setPlainText("Q: 2+2?\nA: 4\nQ: 3+3?\nA: 6\nQ: 5+5?\nA:")
    _settle(app, 600)
    window.grab().save(str(out / f"chat-guard-flagged{suffix}.png"))

    from r1desk.ui.model_manager import ModelManager

    manager = ModelManager(state, window)
    manager.show()
    _settle(app, 1500)
    manager.grab().save(str(out / f"model-manager{suffix}.png"))
    manager.close()
    window.close()
    print("\n".join(str(p) for p in sorted(out.glob(f"*{suffix}.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
