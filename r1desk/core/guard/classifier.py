"""The classifier seam: what a guard classifier is, and the registry the guard builds them from.

A classifier judges texts of one channel (prompt, thinking, answer) and returns a score per label.
Its labels are the policy's rule keys, so they are unique across classifiers (Detoxify keeps its
historic bare names such as ``toxicity``; others prefix theirs, e.g. ``harm.self_harm``). The
policy keys rules by (channel, label), the audit log stores the label and the classifier's name,
and the UI lists whatever the registry holds: adding a classifier is one module that calls
``register(ClassifierSpec(...))`` and is named in ``BUILTIN_MODULES`` (or installed as a plug-in
under the ``r1desk.classifiers`` entry-point group). Nothing else changes.

What a classifier declares:

* ``granularity`` — what it is shown: each ``SEGMENT`` (a sentence), also the rolling ``WINDOW`` of
  the last few segments (harm that spans sentences), the channel's text so far in ``CHUNK``s (each
  time new sentences are ready; a judge that reuses its KV cache pays only for the new text), or the
  whole ``TURN`` text of a channel when it ends. All of them see the whole prompt.
* ``cost`` — ``CHEAP`` (microseconds: fastText), ``MODERATE`` (milliseconds on a CPU: a BERT), or
  ``EXPENSIVE`` (a generative judge sharing the cores with the chat model).
* ``status()`` — whether it is active, unavailable (and why), disabled on purpose or not installed;
  the disclosure bar shows every classifier's status and fails closed on anything it cannot read.
* ``notes`` — coverage limits (e.g. "English only") shown to users and kept in the audit log.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from importlib import import_module
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

from r1desk.core.guard.config import GuardConfig
from r1desk.vocabulary import CHANNEL_ACTIONS, CHANNELS

log = logging.getLogger("r1desk.guard")


class Granularity(str, Enum):
    SEGMENT = "segment"
    WINDOW = "window"     # segments and the rolling window over the last few
    CHUNK = "chunk"       # a channel's text so far, each time new sentences are ready (batched when slow)
    TURN = "turn"         # a channel's whole text, when it is complete


class Cost(str, Enum):
    CHEAP = "cheap"
    MODERATE = "moderate"
    EXPENSIVE = "expensive"


class State(str, Enum):
    ACTIVE = "active"
    UNAVAILABLE = "unavailable"       # configured but cannot run (weights missing, load failed)
    DISABLED = "disabled"             # switched off on purpose (``--no-guard``, the admin)
    NOT_INSTALLED = "not installed"   # optional, and nothing is installed for it


@dataclass(frozen=True)
class ClassifierStatus:
    name: str
    title: str
    state: State
    model: str | None = None
    message: str = ""                 # why it is not active, in words for people
    notes: tuple[str, ...] = ()       # coverage limits

    def describe(self) -> str:
        text = f"{self.title} {self.state.value}" + (f" ({self.model})" if self.model else "")
        return text + (f": {self.message}" if self.message else "")

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "title": self.title, "state": self.state.value, "model": self.model,
                "message": self.message, "notes": list(self.notes)}


@dataclass(frozen=True)
class Item:
    """One text to judge, with what a judge may need around it."""

    channel: str
    text: str
    language: str | None = None       # detected language of the text, when known
    prompt: str = ""                  # the user's prompt of the turn (context for a response judge)


@dataclass(frozen=True)
class Judgement:
    scores: Mapping[str, float]       # label -> 0..1; a label left out was not judged
    model: str | None = None          # which model judged it (e.g. the multilingual variant)
    coverage_limited: bool = False    # judged by a model that does not cover the item's language well
    raw: str | None = None            # a generative judge's raw output, kept for the audit log
    verdict: str | None = None        # a generative judge's verdict word (safe / unsafe / undetermined…)


@runtime_checkable
class Classifier(Protocol):
    """What the guard pipeline calls. Implementations must be safe to call from the guard's worker thread."""

    name: str
    title: str
    labels: tuple[str, ...]
    granularity: Granularity
    cost: Cost

    def load(self) -> None: ...                       # raises ClassifierUnavailableError
    def unload(self) -> None: ...
    def status(self) -> ClassifierStatus: ...
    def judge(self, items: Sequence[Item]) -> list[Judgement]: ...   # one Judgement per item, in order


@dataclass(frozen=True)
class Rule:
    threshold: float
    action: str


# A factory returns None for an optional classifier the configuration does not switch on (e.g. no feedback
# classifier version enabled): it is left out of that guard, and so out of its status, instead of showing
# as unavailable on every turn. Configured but unable to run is still a classifier whose status says so.
ClassifierFactory = Callable[[GuardConfig], "Classifier | None"]


@dataclass(frozen=True)
class ClassifierSpec:
    """A registered classifier: known (labels, default rules) without loading anything."""

    name: str
    title: str
    labels: tuple[str, ...]
    granularity: Granularity
    cost: Cost
    factory: ClassifierFactory
    default_rules: Mapping[str, Mapping[str, Rule]] = field(default_factory=dict)   # channel -> label -> Rule
    description: str = ""

    def __post_init__(self) -> None:
        for channel, rules in self.default_rules.items():
            if channel not in CHANNELS:
                raise ValueError(f"classifier {self.name}: unknown channel {channel!r} in its default rules")
            for label, rule in rules.items():
                if label not in self.labels:
                    raise ValueError(f"classifier {self.name}: default rule for unknown label {label!r}")
                if rule.action not in CHANNEL_ACTIONS[channel]:
                    raise ValueError(f"classifier {self.name}: action {rule.action!r} not allowed on {channel}")


# Modules that register the built-in classifiers when imported; adding one is adding its name here.
BUILTIN_MODULES = ("r1desk.core.guard.toxicity", "r1desk.core.guard.harm.classifier", "r1desk.core.guard.feedback")
ENTRY_POINT_GROUP = "r1desk.classifiers"


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, ClassifierSpec] = {}
        self._lock = threading.Lock()
        self._loaded_builtins = False
        self._overrides: dict[str, Classifier] = {}

    def register(self, spec: ClassifierSpec) -> ClassifierSpec:
        """Add (or replace, by name) a classifier. Its labels must not collide with another's."""
        with self._lock:
            for other in self._specs.values():
                if other.name != spec.name and set(other.labels) & set(spec.labels):
                    clash = sorted(set(other.labels) & set(spec.labels))
                    raise ValueError(f"classifier {spec.name}: labels {clash} already belong to {other.name}")
            self._specs[spec.name] = spec
        return spec

    @contextlib.contextmanager
    def overridden(self, *classifiers: Classifier) -> Iterator[None]:
        """While the block runs, ``build`` returns these instances for their names (how tests script a
        classifier behind code that builds its own guard, e.g. the CLI)."""
        with self._lock:
            saved = dict(self._overrides)
            self._overrides.update({c.name: c for c in classifiers})
        try:
            yield
        finally:
            with self._lock:
                self._overrides = saved

    def unregister(self, name: str) -> None:
        with self._lock:
            self._specs.pop(name, None)

    def _ensure_builtins(self) -> None:
        if self._loaded_builtins:
            return
        self._loaded_builtins = True
        for module in BUILTIN_MODULES:
            import_module(module)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()
            except Exception:   # a broken plug-in must not take the guard down; it is simply absent
                log.exception("classifier plug-in %s failed to load", ep.name)

    def specs(self) -> list[ClassifierSpec]:
        self._ensure_builtins()
        with self._lock:
            return list(self._specs.values())

    def spec(self, name: str) -> ClassifierSpec | None:
        return next((s for s in self.specs() if s.name == name), None)

    def labels(self) -> tuple[str, ...]:
        return tuple(label for s in self.specs() for label in s.labels)

    def owner(self, label: str) -> str | None:
        """The classifier whose label this is."""
        return next((s.name for s in self.specs() if label in s.labels), None)

    def default_rules(self) -> dict[str, dict[str, Rule]]:
        out: dict[str, dict[str, Rule]] = {ch: {} for ch in CHANNELS}
        for s in self.specs():
            for channel, rules in s.default_rules.items():
                out[channel].update(rules)
        return out

    def build(self, config: GuardConfig, overrides: Sequence[Classifier] = ()) -> list[Classifier]:
        """One instance per registered classifier (``overrides`` replace those of the same name: the one
        way tests inject a scripted classifier). A factory that raises leaves its classifier out and is
        reported by the caller as unavailable."""
        with self._lock:
            given = {**self._overrides, **{c.name: c for c in overrides}}
        out: list[Classifier] = []
        for s in self.specs():
            if s.name in given:
                out.append(given.pop(s.name))
                continue
            try:
                made = s.factory(config)
                if made is not None:
                    out.append(made)
            except Exception:
                log.exception("classifier %s could not be created", s.name)
                out.append(Unavailable(s, "it could not be created (see the log)"))
        out.extend(given.values())
        return out


class Unavailable:
    """Stands in for a classifier that could not be created, so its status still shows (failed closed)."""

    def __init__(self, spec: ClassifierSpec, message: str) -> None:
        self.name, self.title, self.labels = spec.name, spec.title, spec.labels
        self.granularity, self.cost = spec.granularity, spec.cost
        self.message = message

    def load(self) -> None:
        from r1desk.errors import ClassifierUnavailableError

        raise ClassifierUnavailableError(f"{self.title} unavailable: {self.message}")

    def unload(self) -> None:
        pass

    def status(self) -> ClassifierStatus:
        return ClassifierStatus(self.name, self.title, State.UNAVAILABLE, message=self.message)

    def judge(self, items: Sequence[Item]) -> list[Judgement]:
        self.load()
        return []


REGISTRY = Registry()
register = REGISTRY.register

