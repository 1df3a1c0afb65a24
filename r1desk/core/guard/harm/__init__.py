"""Harm judging with a local guard model (issue 13): taxonomy, model profiles, verdicts, the judge.

    from r1desk.core.guard.harm import GuardModelJudge, ScriptedJudge, Verdict, PROFILES, detect_profile
"""
from __future__ import annotations

from r1desk.core.guard.harm.judge import GuardModelJudge, JudgeRequest, JudgeStats, ScriptedJudge
from r1desk.core.guard.harm.profiles import PROFILES, CatalogEntry, GuardProfile, combine, detect_profile
from r1desk.core.guard.harm.verdict import VERDICTS, Verdict

__all__ = ["PROFILES", "VERDICTS", "CatalogEntry", "GuardModelJudge", "GuardProfile", "JudgeRequest",
           "JudgeStats", "ScriptedJudge", "Verdict", "combine", "detect_profile"]
