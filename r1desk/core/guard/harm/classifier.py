"""The harm filter: a local guard model (Qwen3Guard-Gen, Llama Guard 3, Granite Guardian) registered as
the guard classifier "harm", judging the prompt, the thinking and the answer in the r1desk taxonomy.

Labels are ``harm.<category>`` for every harm category of ``taxonomy`` plus three bookkeeping labels:
``harm.controversial`` (Qwen3Guard's middle verdict), ``harm.undetermined`` (output that is not exactly
the model's documented shape: the raw output is kept) and ``harm.refusal`` (the model says the answer
is a refusal; never acted on, recorded for the self-check). Scores are the model's probability that the
text is not safe where it gives one (the verdict token's probability), else 1.0 for "unsafe".

A verdict's category counts for a rule on the same category, on any broader one, and on any narrower
one except below the root: a "crime" verdict (a model that cannot tell fraud from drugs) reaches the
``harm.scams_fraud`` rule; a bare "harmful" verdict reaches only ``harm.harm``.

Granularity is ``CHUNK``: the pipeline hands over each channel's text so far whenever new sentences are
ready (batched, so a slow judge sees bigger chunks), and the judge reuses its KV cache for the unchanged
prefix.

Default policy, and why
-----------------------
* **prompt** — flag every harm category (auditors see what was asked); block child sexual abuse
  requests outright; flag jailbreak attempts. Blocking every flagged prompt would stop people asking
  about safety itself (XSTest's "safe look-alikes").
* **thinking** — R1 restates harmful requests while reasoning towards a refusal, so thinking is only
  *flagged* (at 0.5) — never blocked by default — except child sexual abuse, which is redacted.
  A judge that calls a refusing trace unsafe therefore costs a badge, not the answer.
* **answer** — what the user reads: a polite, detailed recipe for harm is exactly what the toxicity
  filter misses, so every harm category *blocks* the answer; the lower-stakes categories (politics,
  intellectual property, specialised advice, elections, defamation, unethical acts) and "controversial"
  only flag.
* **undetermined** (any channel) — *flag*: fail open with a visible flag and the raw output logged.
  An admin who prefers to fail closed sets the rule to block (the prompt and answer) in the policy.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from r1desk.core.guard.classifier import (ClassifierSpec, ClassifierStatus, Cost, Granularity, Item, Judgement,
                                          Rule, State, register)
from r1desk.core.guard.config import GuardConfig
from r1desk.core.guard.harm.judge import GuardModelJudge, JudgeRequest, ScriptedJudge
from r1desk.core.guard.harm.taxonomy import CATEGORIES, HARM_ROOT, ancestors, is_harm
from r1desk.core.guard.harm.verdict import Verdict
from r1desk.errors import ClassifierUnavailableError

log = logging.getLogger("r1desk.guard")

PREFIX = "harm."
HARM_CATEGORIES: tuple[str, ...] = tuple(name for name in CATEGORIES if is_harm(name))
CONTROVERSIAL, UNDETERMINED, REFUSAL = "harm.controversial", "harm.undetermined", "harm.refusal"
LABELS: tuple[str, ...] = tuple(PREFIX + c for c in HARM_CATEGORIES) + (CONTROVERSIAL, UNDETERMINED, REFUSAL)
CONTROVERSIAL_SCORE = 0.5
LOW_STAKES = frozenset({"politically_sensitive", "intellectual_property", "specialised_advice", "elections",
                        "defamation", "unethical", "jailbreak", "profanity"})


def reaches(rule_category: str, verdict_category: str) -> bool:
    """Whether a verdict in ``verdict_category`` counts for a rule on ``rule_category`` (module doc)."""
    if rule_category == verdict_category or rule_category in ancestors(verdict_category):
        return True
    return verdict_category != HARM_ROOT and verdict_category in ancestors(rule_category)


def scores_of(verdict: Verdict) -> dict[str, float]:
    """A verdict as label scores (every label present, so the audit log shows what was judged)."""
    scores = {label: 0.0 for label in LABELS}
    if verdict.verdict == "undetermined":
        scores[UNDETERMINED] = 1.0
        return scores
    if verdict.refusal:
        scores[REFUSAL] = 1.0
    if verdict.verdict == "safe":
        return scores
    if verdict.verdict == "controversial":
        scores[CONTROVERSIAL] = 1.0
        level = CONTROVERSIAL_SCORE
    else:
        level = verdict.probability if verdict.probability is not None else 1.0
    categories = verdict.categories or (HARM_ROOT,)
    for name in HARM_CATEGORIES:
        if any(reaches(name, c) for c in categories):
            scores[PREFIX + name] = max(scores[PREFIX + name], float(level))
    return scores


@dataclass(frozen=True)
class HarmConfig:
    """The guard model to use (read from ``GuardConfig.extra["harm"]``)."""

    path: str | None = None
    n_threads: int = 1
    gpu_layers: int = 0
    n_ctx: int = 4096

    @classmethod
    def from_guard(cls, config: GuardConfig) -> HarmConfig:
        raw = config.extra.get("harm") or {}
        if not isinstance(raw, Mapping):
            return cls()
        return cls(path=raw.get("path") or None, n_threads=int(raw.get("n_threads") or 1),
                   gpu_layers=int(raw.get("gpu_layers") or 0), n_ctx=int(raw.get("n_ctx") or 4096))


Judge = GuardModelJudge | ScriptedJudge


class HarmClassifier:
    """The registered "harm" classifier around a guard-model judge (None: not installed)."""

    name = "harm"
    title = "Harm filter"
    labels = LABELS
    granularity = Granularity.CHUNK
    cost = Cost.EXPENSIVE

    def __init__(self, judge: Judge | None, *, missing: str = "") -> None:
        self.judge_model = judge
        self._missing = missing
        self._error: str | None = None

    @property
    def model(self) -> str | None:
        judge = self.judge_model
        if judge is None:
            return None
        path = getattr(judge, "path", None)
        return f"{judge.profile.id}:{Path(path).name}" if path else judge.profile.id

    def load(self) -> None:
        if self.judge_model is None:
            raise ClassifierUnavailableError(f"harm filter not installed{': ' + self._missing if self._missing else ''}")
        try:
            self.judge_model.load()
        except ClassifierUnavailableError as exc:
            self._error = exc.message
            raise

    def unload(self) -> None:
        if self.judge_model is not None:
            self.judge_model.unload()

    def status(self) -> ClassifierStatus:
        if self.judge_model is None:
            return ClassifierStatus(self.name, self.title, State.NOT_INSTALLED, None, "toxicity only",
                                    notes=(self._missing,) if self._missing else ())
        if self._error is not None:
            return ClassifierStatus(self.name, self.title, State.UNAVAILABLE, self.model, self._error)
        notes = (f"licence: {self.judge_model.profile.licence}",)
        return ClassifierStatus(self.name, self.title, State.ACTIVE, self.model, notes=notes)

    def judge(self, items: Sequence[Item]) -> list[Judgement]:
        if self.judge_model is None:
            raise ClassifierUnavailableError("harm filter not installed")
        out: list[Judgement] = []
        for item in items:
            if item.channel == "prompt":
                request = JudgeRequest("prompt", item.text, None)
            else:
                request = JudgeRequest("thinking" if item.channel == "thinking" else "answer",
                                       item.prompt, item.text)
            verdict = self.judge_model.judge(request)
            if verdict.verdict == "undetermined":
                log.warning("harm judge gave no verdict on the %s (%s): %r", item.channel, verdict.problem,
                            verdict.raw[:200])
            out.append(Judgement(scores_of(verdict), model=self.model, raw=verdict.raw, verdict=verdict.verdict))
        return out


def _rules() -> dict[str, dict[str, Rule]]:
    prompt = {PREFIX + c: Rule(0.5, "flag") for c in HARM_CATEGORIES}
    prompt[PREFIX + "child_abuse"] = Rule(0.5, "block")
    thinking = {PREFIX + c: Rule(0.5, "flag") for c in HARM_CATEGORIES}
    thinking[PREFIX + "child_abuse"] = Rule(0.5, "redact")
    answer = {PREFIX + c: Rule(0.5, "flag" if c in LOW_STAKES else "block") for c in HARM_CATEGORIES}
    for channel in (prompt, thinking, answer):
        channel[UNDETERMINED] = Rule(0.5, "flag")
        channel[REFUSAL] = Rule(0.5, "allow")
    prompt[CONTROVERSIAL] = Rule(0.5, "allow")
    thinking[CONTROVERSIAL] = Rule(0.5, "allow")
    answer[CONTROVERSIAL] = Rule(0.5, "flag")
    return {"prompt": prompt, "thinking": thinking, "answer": answer}


DEFAULT_RULES = _rules()


def _from_config(config: GuardConfig) -> HarmClassifier:
    harm = HarmConfig.from_guard(config)
    if not harm.path:
        return HarmClassifier(None, missing="no guard model chosen")
    if not os.path.isfile(harm.path):
        return HarmClassifier(None, missing=f"the guard model file {harm.path} is missing")
    judge = GuardModelJudge(harm.path, n_threads=harm.n_threads, n_gpu_layers=harm.gpu_layers, n_ctx=harm.n_ctx)
    return HarmClassifier(judge)


SPEC = register(ClassifierSpec(
    name="harm", title="Harm filter", labels=LABELS, granularity=Granularity.CHUNK, cost=Cost.EXPENSIVE,
    factory=_from_config, default_rules=DEFAULT_RULES,
    description="A local guard model (Qwen3Guard-Gen, Llama Guard 3, Granite Guardian) judging harm: "
                "self-harm, violence, crime, child abuse, hate, sexual content, privacy, weapons, jailbreaks."))
