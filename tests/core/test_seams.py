"""The two seams of issue 12: a throwaway classifier and a throwaway backend plug in by registering, with no
other module edited, and a real turn runs through them into a real audit log."""
from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from r1desk.core import backend as backends
from r1desk.core.backend import BackendConfig, ModelDescription, ModelIdentity, open_backend
from r1desk.core.chat import ChatSession, TurnRequest
from r1desk.core.engine import GenParams, GenStats
from r1desk.core.events import TurnFinished
from r1desk.core.guard.classifier import (REGISTRY, ClassifierSpec, ClassifierStatus, Cost, Granularity, Item,
                                          Judgement, Rule, State)
from r1desk.core.guard.config import GuardConfig
from r1desk.core.guard.session import GuardSession
from r1desk.core.prompts import BuiltPrompt, PromptRequest
from r1desk.settings import Settings
from r1desk.storage.auditlog import AuditLog


class ShoutClassifier:
    """Scores the share of capital letters: a classifier nobody would ship, written only against the protocol."""

    name, title, labels = "shout", "Shouting filter", ("shout.caps",)
    granularity, cost = Granularity.SEGMENT, Cost.CHEAP

    def load(self) -> None:
        pass

    def unload(self) -> None:
        pass

    def status(self) -> ClassifierStatus:
        return ClassifierStatus(self.name, self.title, State.ACTIVE, "caps-v1")

    def judge(self, items: Sequence[Item]) -> list[Judgement]:
        out = []
        for item in items:
            letters = [c for c in item.text if c.isalpha()]
            out.append(Judgement({"shout.caps": sum(c.isupper() for c in letters) / max(1, len(letters))},
                                 model="caps-v1"))
        return out


class EchoStream:
    def __init__(self, text: str, cancel: threading.Event) -> None:
        self.pieces, self.cancel = text.split(" "), cancel
        self.text, self.stats = "", None
        self._n = 0

    def __iter__(self) -> Iterator[str]:
        for i, word in enumerate(self.pieces):
            if self.cancel.is_set():
                break
            piece = word if i == 0 else " " + word
            self.text += piece
            self._n += 1
            yield piece
        self.stats = GenStats(3, self._n, 0.0, None, 0.0, "cancelled" if self.cancel.is_set() else "stop")

    @property
    def completion_tokens(self) -> int:
        return self._n

    def close(self) -> None:
        self.cancel.set()


class EchoBackend:
    """A backend that answers with a fixed reply: written only against core.backend's protocol."""

    kind = "echo"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.loaded = True

    @property
    def n_ctx(self) -> int:
        return 4096

    def describe(self) -> ModelDescription:
        return ModelDescription(ModelIdentity("echo", "echo-1", "d1g3st", "http://127.0.0.1:1"), "Echo", False)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def build_prompt(self, request: PromptRequest, *, max_tokens: int) -> BuiltPrompt:
        return BuiltPrompt(request.user_text, False, messages=[{"role": "user", "content": request.user_text}])

    def stream(self, prompt: BuiltPrompt, params: GenParams, cancel: threading.Event) -> EchoStream:
        return EchoStream(self.reply, cancel)

    def unload(self) -> None:
        self.loaded = False


@pytest.fixture
def registered():
    spec = REGISTRY.register(ClassifierSpec(
        "shout", "Shouting filter", ("shout.caps",), Granularity.SEGMENT, Cost.CHEAP,
        factory=lambda config: ShoutClassifier(), default_rules={"answer": {"shout.caps": Rule(0.8, "flag")}}))
    backends.register_backend("echo", lambda config: EchoBackend(config.options["reply"]))
    yield spec
    REGISTRY.unregister("shout")
    backends.OPENERS.pop("echo", None)


def test_a_throwaway_classifier_and_backend_run_a_turn_into_the_audit_log(registered, tmp_path):
    settings = Settings()                                  # the settings know the new label's default rule
    assert settings.guard.rules["answer"]["shout.caps"].action == "flag"
    settings.language.target = "off"
    backend = open_backend(BackendConfig(kind="echo", model="echo-1",
                                         options={"reply": "Calm words first. THEN A LOUD ONE. Calm again."}))
    with AuditLog(tmp_path / "audit.db") as audit:
        guard = GuardSession(settings.guard_config(), langid=None)
        assert guard.status.state_of("shout") is State.ACTIVE
        session = ChatSession(backend, audit=audit, config=settings.chat_config(), guard=guard)
        events = list(session.run_turn(TurnRequest("hi", language=None)))
        result = next(e for e in events if isinstance(e, TurnFinished)).result
        [decision] = [d for d in result.decisions if d.classifier == "shout"]
        assert decision.text == "THEN A LOUD ONE." and decision.action == "flag" and decision.model == "caps-v1"
        turn = audit.get_turn(result.turn_id)
        assert turn["model"]["backend"] == "echo" and turn["model"]["model_id"] == "echo-1"
        assert turn["model"]["digest"] == "d1g3st" and turn["model"]["endpoint"] == "http://127.0.0.1:1"
        assert [d["label"] for d in turn["decisions"]] == ["shout.caps"]
        assert audit.verify().ok
        session.close()


def test_an_unknown_backend_or_label_is_a_clear_error(registered):
    from r1desk.errors import UserFacingError

    with pytest.raises(UserFacingError, match="unknown inference backend 'nope'"):
        open_backend(BackendConfig(kind="nope", model="x"))
    from r1desk.core.guard.policy import Policy

    with pytest.raises(ValueError, match="no registered classifier"):
        Policy.from_config(GuardConfig(rules={"answer": {"whisper.soft": (0.5, "flag")}}))
