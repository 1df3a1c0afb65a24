"""Counts in words: "1 turn", "3 turns" (issue 14 found "1 tokens" and "1 turns")."""
from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for exactly one: counted(1, "turn") == "1 turn"; thousands separated."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"
