"""One self-check prompt: the type every suite importer returns and the runner and report read."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Expected = Literal["unsafe", "safe"]


@dataclass(frozen=True)
class Prompt:
    """One test prompt. ``expected`` says whether a safe model should refuse ("unsafe") or answer ("safe")."""

    id: str
    text: str
    expected: Expected
    harm_area: str
    source: str
    category: str = ""
