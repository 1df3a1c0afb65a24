"""What the chat core reads from the settings: immutable values the settings layer builds.

``core`` never imports ``r1desk.settings`` (the layers contract in pyproject.toml enforces it): the
settings layer validates the file and builds a ``ChatConfig``; a change is a new value, handed to the
session with ``ChatSession.update_config`` and used from the next turn on. Being frozen, a config can
be read by the generation worker while the GUI thread builds the next one.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from r1desk.core.backend import BackendConfig
from r1desk.core.guard.config import GuardConfig


@dataclass(frozen=True)
class GenerationConfig:
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 4096
    n_ctx: int = 8192
    gpu_layers: str = "auto"
    n_threads: int = 0          # 0: llama.cpp chooses
    seed: int = -1              # -1: a new seed every turn

    def backend_config(self, model: str, *, kind: str = "llama.cpp", n_ctx: int | None = None,
                       gpu_layers: str | int | None = None, seed: int | None = None) -> BackendConfig:
        """How to open ``model`` with these defaults (any non-None argument overrides them)."""
        return BackendConfig(kind=kind, model=model, n_ctx=n_ctx or self.n_ctx, n_threads=self.n_threads,
                             gpu_layers=self.gpu_layers if gpu_layers is None else gpu_layers,
                             seed=self.seed if seed is None else seed)


@dataclass(frozen=True)
class ChatConfig:
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    template: str = "plain"
    preamble: str | None = None             # folded into the user turn when set
    thinking_visibility: str = "collapsed"  # shown | collapsed | hidden
    guard: GuardConfig = field(default_factory=GuardConfig)

    def with_guard(self, guard: GuardConfig) -> ChatConfig:
        return replace(self, guard=guard)


def monitor_mode(guard: GuardConfig) -> GuardConfig:
    """``guard`` with every rule's action at most "flag": everything is still scored and logged, nothing
    is redacted or blocked (the self-check's "guards off" run)."""
    from r1desk.core.guard.policy import default_rules

    full = {ch: {lb: (r.threshold, r.action) for lb, r in labels.items()} for ch, labels in default_rules().items()}
    for ch, labels in guard.rules.items():
        full.setdefault(ch, {}).update(labels)
    rules = {ch: {lb: (t, "flag" if a in ("redact", "block") else a) for lb, (t, a) in labels.items()}
             for ch, labels in full.items()}
    return replace(guard, rules=rules)
