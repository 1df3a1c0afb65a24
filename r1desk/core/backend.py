"""The inference-backend seam: what the chat core needs from whatever runs the model.

``core.chat`` talks to an ``InferenceBackend`` only: describe the model, count tokens, build the prompt
for a request (render it with the model's template, or keep it as chat messages for a server that
applies its own), and stream text pieces with cancellation and stats. The local llama.cpp
``core.engine.Engine`` is the first implementation; ``open_backend(config)`` is the one place that
picks and loads one. A new backend (e.g. an OpenAI-compatible server) is one module that implements
the protocol and registers an opener in ``OPENERS``; the chat, guard, audit log and UI do not change.

Model identity in the audit log is (backend, model id, digest where one exists): for a local file the
id is its path and the digest its sha256; a server reports its own id and, where it has one, a digest.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from r1desk.errors import UserFacingError

if TYPE_CHECKING:     # engine implements this protocol and imports this module
    from r1desk.core.engine import GenParams, GenStats
    from r1desk.core.prompts import BuiltPrompt, PromptRequest


@dataclass(frozen=True)
class ModelIdentity:
    backend: str                      # "llama.cpp", "openai", ...
    model_id: str                     # a file path, or the server's model id
    digest: str | None = None         # sha256 of the file, or what the server reports
    endpoint: str | None = None       # the server's base URL, never with credentials


@dataclass(frozen=True)
class ModelDescription:
    """What the chat, the audit log and the UI know about the model a backend serves."""

    identity: ModelIdentity
    name: str
    is_r1: bool
    context_length: int | None = None
    quantization: str | None = None
    details: dict[str, Any] = field(default_factory=dict)   # backend-specific extras (JSON-ready)

    def to_dict(self) -> dict[str, Any]:
        """The audit record: identity first, plus the keys older records used (name, sha256, path)."""
        ident = self.identity
        out = {**self.details, "name": self.name, "is_r1": self.is_r1, "backend": ident.backend,
               "model_id": ident.model_id, "digest": ident.digest, "context_length": self.context_length,
               "quantization": self.quantization}
        if ident.endpoint:
            out["endpoint"] = ident.endpoint
        if ident.digest and ident.backend == "llama.cpp":
            out["sha256"] = ident.digest
        return out


class TextStream(Protocol):
    """One streamed reply: iterate for text pieces; ``stats`` once the iteration has ended."""

    stats: GenStats | None
    text: str                         # what was yielded so far
    # (prompt tokens read, prompt tokens) while the model reads the prompt, announced by an empty piece;
    # None where the backend cannot tell (a server)
    prompt_progress: tuple[int, int] | None

    def __iter__(self) -> Iterator[str]: ...
    @property
    def completion_tokens(self) -> int: ...
    def close(self) -> None: ...      # ends the reply now (cancelled) and frees the backend


@runtime_checkable
class InferenceBackend(Protocol):
    kind: str

    @property
    def loaded(self) -> bool: ...
    @property
    def n_ctx(self) -> int: ...
    def describe(self) -> ModelDescription: ...                     # RuntimeError when nothing is loaded
    def count_tokens(self, text: str) -> int: ...
    def build_prompt(self, request: PromptRequest, *, max_tokens: int) -> BuiltPrompt: ...
    def stream(self, prompt: BuiltPrompt, params: GenParams, cancel: threading.Event) -> TextStream: ...
    def unload(self) -> None: ...


class LinkedEvent(threading.Event):
    """A stop event that also reads as set once any of its ``parents`` is (e.g. the user's Stop), without
    waiting for anyone to copy it across: a backend blocked on the network (a watcher thread polling
    ``wait(timeout)``) sees Stop at once, not after the next token arrives."""

    def __init__(self, *parents: threading.Event) -> None:
        super().__init__()
        self._parents = parents

    def is_set(self) -> bool:
        return super().is_set() or any(p.is_set() for p in self._parents)

    def wait(self, timeout: float | None = None) -> bool:
        return super().wait(timeout) or self.is_set()


@dataclass(frozen=True)
class BackendConfig:
    """Which backend to open and how (built by the settings layer, or from CLI flags)."""

    kind: str = "llama.cpp"
    model: str = ""                   # a GGUF path for llama.cpp; a model id for a server
    n_ctx: int = 8192
    n_threads: int = 0
    gpu_layers: str | int = "auto"
    seed: int = -1
    options: dict[str, Any] = field(default_factory=dict)   # backend-specific (e.g. a server URL)


Opener = Callable[[BackendConfig], InferenceBackend]


def _open_llama_cpp(config: BackendConfig) -> InferenceBackend:
    from r1desk.core.engine import Engine, LoadOptions

    engine = Engine()
    engine.load(config.model, LoadOptions(n_ctx=config.n_ctx, n_threads=config.n_threads or None,
                                          gpu_layers=config.gpu_layers, seed=config.seed))
    return engine


OPENERS: dict[str, Opener] = {"llama.cpp": _open_llama_cpp}
# Backends shipped with r1desk that register themselves when imported (kind -> module).
BUILTIN_BACKENDS: dict[str, str] = {"openai": "r1desk.core.remote"}


def register_backend(kind: str, opener: Opener) -> None:
    OPENERS[kind] = opener


def open_backend(config: BackendConfig) -> InferenceBackend:
    """Open (load) the configured backend; the one place the chat, the CLI and the GUI get one."""
    if not config.model:
        raise UserFacingError("no model given", hint="pass --model PATH to a GGUF file, or pick one in the "
                                                     "model manager")
    if config.kind not in OPENERS and config.kind in BUILTIN_BACKENDS:
        import importlib

        importlib.import_module(BUILTIN_BACKENDS[config.kind])
    opener = OPENERS.get(config.kind)
    if opener is None:
        raise UserFacingError(f"unknown inference backend {config.kind!r}",
                              hint="one of " + ", ".join(sorted({*OPENERS, *BUILTIN_BACKENDS})))
    return opener(config)
