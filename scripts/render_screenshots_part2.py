"""Render the auditor browser, a flagged-thinking turn, the dashboard and the admin settings to
docs/screenshots/ (offscreen), from a freshly seeded, realistic audit log in a temporary profile.

    QT_QPA_PLATFORM=offscreen python3 scripts/render_screenshots_part2.py [--out docs/screenshots]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = {"name": "DeepSeek-R1-Distill-Qwen-7B", "quantization": "Q4_K_M", "sha256": "9f2c1d" + "0" * 58}
SETTINGS = {"generation": {"temperature": 0.6, "top_p": 0.95, "max_tokens": 4096}, "template": "plain",
            "language": "en", "preamble": None, "thinking_visibility": "collapsed"}

BENIGN = [
    ("How do I convert a list of dicts to a pandas DataFrame?",
     "The user wants a DataFrame from a list of dicts. pd.DataFrame(records) does this directly.",
     "Use `pd.DataFrame(records)`; each dict becomes a row and keys become columns."),
    ("Summarise the causes of the French Revolution in three bullet points.",
     "Three causes: fiscal crisis, Enlightenment ideas, social inequality of the estates.",
     "- A fiscal crisis after costly wars\n- Enlightenment ideas about rights\n- Resentment of the estates system"),
    ("What is 17 × 23?", "17 × 20 = 340, 17 × 3 = 51, so 391.", "17 × 23 = **391**."),
    ("Write a haiku about autumn rain.", "Five, seven, five syllables. Rain, leaves, quiet.",
     "Cold rain on red leaves\nthe gutter hums a low song\nthe street smells of earth"),
    ("Explain TCP slow start briefly.", "Congestion window starts small and doubles each RTT until ssthresh.",
     "TCP starts with a small congestion window and doubles it every round trip until loss or the threshold."),
]
FLAGGED = [
    ("My neighbour keeps insulting me. What are some comebacks?",
     "They want comebacks. Typical insults people use are things like 'you stupid idiot' but I should not "
     "write hateful ones. I could suggest calm, witty replies instead.",
     "Try calm, witty replies: \"I'll take that under advisement.\" Staying composed usually ends it.",
     [("thinking", "you stupid idiot", "insult", 0.91, 0.7, "flag"),
      ("thinking", "you stupid idiot", "toxicity", 0.88, 0.7, "flag")]),
    ("Write a villain monologue for my novel.",
     "A villain monologue. The villain might say 'I will hunt you down and kill everyone you love'. That is a "
     "threat in fiction; I should keep it non-graphic.",
     "\"You thought the city was yours. It was always mine.\" — keep the menace in tone, not in gore.",
     [("thinking", "I will hunt you down and kill everyone you love", "threat", 0.83, 0.7, "redact")]),
    ("Tell me what you really think about people from that group.",
     "The user asks for an opinion about a group; stereotypes like 'those people are all criminals' are an "
     "identity attack. I must not endorse that.",
     "I don't judge people by the group they belong to; individuals differ far more than groups do.",
     [("thinking", "those people are all criminals", "identity_attack", 0.77, 0.6, "flag")]),
]
BLOCKED = [
    ("Give me step-by-step instructions to hurt my coworker without getting caught.",
     "This request is to harm someone. I must refuse.", "",
     [("prompt", "hurt my coworker without getting caught", "threat", 0.86, 0.8, "block")]),
    ("Reply to my ex in the most vicious way possible.",
     "They want vicious text. I could write: 'you worthless piece of garbage, I hope you rot'.",
     "You worthless piece of garbage",
     [("answer", "You worthless piece of garbage", "severe_toxicity", 0.72, 0.5, "block"),
      ("thinking", "you worthless piece of garbage, I hope you rot", "insult", 0.95, 0.7, "flag")]),
]
MIXED = [
    ("Explique-moi la photosynthèse simplement.",
     "The user writes in French. Photosynthesis: light, water, CO2 → glucose and oxygen.",
     "La photosynthèse transforme la lumière, l'eau et le CO2 en sucre et en oxygène. In short, plants make food."),
]


def _span(text: str, needle: str) -> tuple[int, int]:
    i = text.find(needle)
    return (i, i + len(needle)) if i >= 0 else (0, min(len(text), len(needle)))


def seed(audit, *, days: int = 30, seed: int = 7) -> list[str]:
    """A month of plausible traffic; returns the turn ids, newest last."""
    from r1desk.storage import records

    rng = random.Random(seed)
    ids: list[str] = []
    start = datetime.now(timezone.utc) - timedelta(days=days - 1)
    real_now = records.now
    try:
        for day in range(days):
            for _ in range(rng.randint(4, 10)):
                moment = start + timedelta(days=day, minutes=rng.randint(0, 23 * 60))
                records.now = lambda m=moment: records.format_ts(m)   # back-date the rows we write
                _patch_now(records.now)
                r = rng.random()
                if r < 0.10:
                    prompt, thinking, answer, decs = rng.choice(BLOCKED)
                elif r < 0.30:
                    prompt, thinking, answer, decs = rng.choice(FLAGGED)
                elif r < 0.36:
                    (prompt, thinking, answer), decs = rng.choice(MIXED), []
                else:
                    (prompt, thinking, answer), decs = rng.choice(BENIGN), []
                tid = audit.start_turn(prompt_typed=prompt, model=MODEL, settings=SETTINGS,
                                       policy={"rules": "default"})
                texts = {"prompt": prompt, "thinking": thinking, "answer": answer}
                decisions = []
                for channel, needle, label, score, threshold, action in decs:
                    a, b = _span(texts[channel], needle)
                    decisions.append({"channel": channel, "start": a, "end": b, "text": texts[channel][a:b],
                                      "label": label, "score": score + rng.uniform(-0.04, 0.04),
                                      "threshold": threshold, "action": action})
                blocked = any(d["action"] == "block" for d in decisions)
                mixing = prompt.startswith("Explique")
                language = {"answer": {"target": "fr", "share_in_target": 0.71, "events": [{"lang": "en"}]}} \
                    if mixing else {"answer": {"target": "en", "share_in_target": 0.99, "events": []}}
                shown = "[withheld: the answer was blocked by the guard]" if blocked else answer
                audit.finish_turn(tid, result={
                    "finish_reason": "blocked" if blocked else "stop", "thinking": thinking, "answer_raw": answer,
                    "answer_shown": shown, "decisions": decisions, "language": language, "model": MODEL,
                    "settings": SETTINGS, "usage": {"completion_tokens": rng.randint(40, 600)}})
                ids.append(tid)
                if day < days - 6 and rng.random() < 0.7:
                    label = "harmful" if blocked else "language-mixing" if mixing else \
                        rng.choice(["ok", "ok", "ok", "over-refusal"])
                    audit.review(tid, label, "checked in weekly review", reviewer="auditor")
        for i, (unsafe, over) in enumerate([(0.12, 0.08), (0.09, 0.1), (0.07, 0.06), (0.05, 0.07), (0.04, 0.05)]):
            moment = start + timedelta(days=i * 6 + 2)
            records.now = lambda m=moment: records.format_ts(m)
            _patch_now(records.now)
            audit.log_selfcheck_run(suite="builtin", model_name=MODEL["name"], guards_mode="on", metrics={
                "modes": {"on": {"unsafe_response_rate": unsafe, "over_refusal_rate": over}}})
    finally:
        records.now = real_now
        _patch_now(real_now)
    return ids


def _patch_now(fn) -> None:
    """storage modules import ``now`` by name: point every one of them at the back-dating clock."""
    import importlib
    import pkgutil

    import r1desk.storage as storage
    for info in pkgutil.iter_modules(storage.__path__):
        module = importlib.import_module(f"r1desk.storage.{info.name}")
        if hasattr(module, "now"):
            module.now = fn


class DemoScorer:
    """Keyword scores standing in for Detoxify (its weights are not part of the repository)."""

    name = "demo-scorer"
    labels = ("toxicity", "severe_toxicity", "obscene", "threat", "insult", "identity_attack", "sexual_explicit")
    languages = frozenset({"en"})

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        out = []
        for text in texts:
            t = text.lower()
            insult = 0.93 if ("idiot" in t or "stupid" in t) else 0.03
            threat = 0.71 if ("find you" in t or "kill" in t) else 0.02
            out.append({"toxicity": max(insult, threat) * 0.97, "severe_toxicity": threat * 0.35, "obscene": 0.08,
                        "threat": threat, "insult": insult, "identity_attack": 0.04, "sexual_explicit": 0.01})
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    home = tempfile.mkdtemp(prefix="r1desk-shots-")
    os.environ["R1DESK_HOME"] = home

    from PySide6.QtWidgets import QApplication

    from r1desk.core.guard.toxicity import ToxicityClassifier
    from r1desk.storage.auditlog import AuditLog
    from r1desk.ui import theme
    from r1desk.ui.tasks import wait_for_tasks

    app = QApplication.instance() or QApplication(sys.argv[:1])
    theme.apply(app, dark=False)
    audit = AuditLog()
    seed(audit)

    from r1desk.ui.auditor_view import AuditorView

    view = AuditorView(audit)
    view.resize(1440, 880)
    view.show()
    app.processEvents()
    view.grab().save(str(out / "auditor-browser.png"))
    # a turn with flagged thinking
    view.view_mode.setCurrentIndex(view.view_mode.findData("all"))
    view.channel.setCurrentIndex(view.channel.findData("thinking"))
    view.action.setCurrentIndex(view.action.findData("redact"))
    app.processEvents()
    view.grab().save(str(out / "auditor-flagged-thinking.png"))
    view.tabs.setCurrentWidget(view.dashboard)
    wait_for_tasks()
    app.processEvents()
    app.processEvents()
    view.grab().save(str(out / "dashboard.png"))

    from r1desk.ui.admin_view import AdminView

    admin = AdminView(audit=audit, classifiers_factory=lambda: [ToxicityClassifier(DemoScorer())])
    admin.resize(1440, 880)
    admin.show()
    admin.preview.text.setPlainText("You are a stupid idiot and I will find you.")
    admin.preview.score_now()
    wait_for_tasks()
    app.processEvents()
    admin.policy_editor.tabs.setCurrentIndex(2)
    app.processEvents()
    admin.grab().save(str(out / "admin-settings.png"))
    admin.tabs.setCurrentIndex(1)
    admin.editors["generation.temperature"].set_value(0.8)   # shows the out-of-range warning
    app.processEvents()
    admin.grab().save(str(out / "admin-generation.png"))
    wait_for_tasks()
    audit.close()
    print("\n".join(str(p) for p in sorted(out.glob("*.png")) if p.name.startswith(("auditor", "admin", "dash"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
