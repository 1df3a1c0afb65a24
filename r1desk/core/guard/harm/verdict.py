"""A guard model's verdict on one text, in r1desk's harm taxonomy."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

VerdictLabel = Literal["safe", "unsafe", "controversial", "undetermined"]
VERDICTS: tuple[VerdictLabel, ...] = ("safe", "unsafe", "controversial", "undetermined")


@dataclass(frozen=True)
class Verdict:
    """What a guard model said, parsed strictly.

    verdict         "safe" | "unsafe" | "controversial" | "undetermined" (the output did not have
                    exactly the documented shape; ``raw`` keeps it, ``problem`` says why)
    categories      r1desk taxonomy names (core.guard.harm.taxonomy), in the model's order
    raw_categories  the model's own category names or codes, as it wrote them
    refusal         True/False where the model judges refusals (Qwen3Guard on responses), else None
    probability     the model's probability that the text is NOT safe, read from its token
                    distribution at the decision token and normalised over the verdict words;
                    None where it could not be read (scripted judges, tokenisations that collide)
    raw             the model's output exactly as generated (stop strings removed)
    profile         the profile id that parsed it ("qwen3guard-gen", "llama-guard-3", ...)
    risk            Granite Guardian's risk name for this check; None for other profiles
    problem         why the verdict is "undetermined"; None otherwise
    """

    verdict: VerdictLabel
    categories: tuple[str, ...] = ()
    raw_categories: tuple[str, ...] = ()
    refusal: bool | None = None
    probability: float | None = None
    raw: str = ""
    profile: str = ""
    risk: str | None = None
    problem: str | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")
        if (self.verdict == "undetermined") != (self.problem is not None):
            raise ValueError("an undetermined verdict needs a problem, and only it")

    @property
    def determined(self) -> bool:
        return self.verdict != "undetermined"

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "categories": list(self.categories),
                "raw_categories": list(self.raw_categories), "refusal": self.refusal,
                "probability": self.probability, "raw": self.raw, "profile": self.profile,
                "risk": self.risk, "problem": self.problem}


def undetermined(raw: str, problem: str, *, profile: str = "", risk: str | None = None,
                 probability: float | None = None) -> Verdict:
    return Verdict("undetermined", raw=raw, profile=profile, risk=risk, problem=problem,
                   probability=probability)
