"""The words every layer shares: guard actions (with their order) and the three channels.

It sits at the bottom of the layers (beside ``paths`` and ``errors``) so that storage, core,
settings, the CLI and the UI all use one definition instead of seven copies of a tuple.
"""
from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Literal

Channel = Literal["prompt", "thinking", "answer"]
CHANNELS: tuple[Channel, ...] = ("prompt", "thinking", "answer")


class Action(str, Enum):
    """What the policy does with a judged span, in increasing severity."""

    ALLOW = "allow"
    FLAG = "flag"       # badge + log
    REDACT = "redact"   # replace the span with a notice
    BLOCK = "block"     # stop the turn, withhold the rest

    @property
    def severity(self) -> int:
        return _ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Action):
            return NotImplemented
        return self.severity < other.severity

    @classmethod
    def parse(cls, value: str | Action) -> Action:
        """The action named ``value``; ValueError for anything else (never a default)."""
        return cls(value)


_ORDER = (Action.ALLOW, Action.FLAG, Action.REDACT, Action.BLOCK)
ACTIONS: tuple[str, ...] = tuple(a.value for a in _ORDER)
# redact is not offered for the prompt: the model either gets the prompt or it does not
CHANNEL_ACTIONS: dict[str, tuple[str, ...]] = {"prompt": ("allow", "flag", "block"), "thinking": ACTIONS,
                                               "answer": ACTIONS}


def severity(action: str | Action) -> int:
    """0 (allow) … 3 (block); ValueError for an unknown action."""
    return Action.parse(action).severity


def strongest(actions: Iterable[str | Action]) -> Action:
    """The most severe of ``actions`` (ALLOW when there are none)."""
    return max((Action.parse(a) for a in actions), key=lambda a: a.severity, default=Action.ALLOW)
