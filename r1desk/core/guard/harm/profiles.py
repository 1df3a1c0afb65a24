"""One profile per supported guard model: input format, categories, licence, catalog, strict parser.

A profile knows how to turn (prompt, text to judge) into the model's chat messages and template
variables, which words its verdict starts with (for the probability), and how to parse what it
says. Parsers are strict: an output that is not exactly the documented shape (surrounding
whitespace aside) is an "undetermined" Verdict carrying the raw text and the reason.

    PROFILES["qwen3guard-gen"]  Qwen3Guard-Gen 0.6B / 4B   "Safety: Safe|Unsafe|Controversial\\n
                                                            Categories: None|A, B[\\nRefusal: Yes|No]"
    PROFILES["llama-guard-3"]   Llama Guard 3 1B           "safe" | "unsafe\\nS1,S10"
    PROFILES["granite-guardian-3"] Granite Guardian 3.x    "Yes" | "No" (3.2: + "\\n<confidence> High
                                                            </confidence>"), one check per risk
    detect_profile(model_info) -> GuardProfile | None      which profile fits a GGUF
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from r1desk.core.guard.harm import taxonomy
from r1desk.core.guard.harm.templates import (LLAMA_GUARD_3_TEMPLATE, QWEN3GUARD_PROMPT_CATEGORIES,
                                              QWEN3GUARD_RESPONSE_CATEGORIES, QWEN3GUARD_TEMPLATE)
from r1desk.core.guard.harm.verdict import Verdict, undetermined

Mode = Literal["prompt", "response"]
Message = dict[str, Any]
# Longest raw output a parser looks at: real verdicts are under 100 characters.
MAX_RAW_CHARS = 400


@dataclass(frozen=True)
class CatalogEntry:
    """A downloadable GGUF. Sizes are approximate (from the hosting page, or estimated)."""

    label: str                      # shown in the model manager, e.g. "Llama Guard 3 1B · Q4_K_M"
    source_repo: str                # the original (safetensors) model
    hf_repo: str | None             # a public GGUF repository; None: convert or import your own
    filename: str | None
    quant: str
    approx_bytes: int
    size_is_estimate: bool = True
    note: str = ""


@dataclass(frozen=True)
class GuardProfile:
    """Base for the profiles; subclasses implement ``messages`` and ``parse``."""

    id: str
    name: str
    licence: str
    licence_url: str
    architectures: frozenset[str]
    raw_categories: tuple[str, ...]
    category_map: Mapping[str, tuple[str, ...]]
    builtin_template: str | None            # None: the GGUF's own template is required
    special_tokens: tuple[str, ...]         # control tokens the template writes (never parsed in texts)
    stop: tuple[str, ...]
    max_tokens: int
    catalog: tuple[CatalogEntry, ...]
    markers: tuple[str, ...]                # template substrings that identify the model's format
    name_patterns: tuple[str, ...]          # lower-case general.name substrings
    risks: tuple[str, ...] = ()             # one check per risk (Granite Guardian); () = one check
    decision_prefix: str = ""               # output text before the verdict word
    decision_words: Mapping[str, str] = field(default_factory=dict)   # word -> "safe" | "unsafe"
    notes: str = ""

    def messages(self, prompt: str, text: str | None) -> list[Message]:
        """The chat messages to judge ``prompt`` alone (text None) or ``text`` as the reply."""
        msgs: list[Message] = [{"role": "user", "content": prompt}]
        if text is not None:
            msgs.append({"role": "assistant", "content": text})
        return msgs

    def template_variables(self, risk: str | None) -> dict[str, Any]:
        """Extra variables the chat template reads (Granite Guardian's guardian_config)."""
        return {}

    def parse(self, raw: str, mode: Mode, *, risk: str | None = None,
              probability: float | None = None) -> Verdict:
        raise NotImplementedError

    # helpers for subclasses
    def _undetermined(self, raw: str, problem: str, risk: str | None = None,
                      probability: float | None = None) -> Verdict:
        return undetermined(raw, problem, profile=self.id, risk=risk, probability=probability)


def _clean(raw: str) -> str | None:
    """The output with surrounding whitespace removed, or None if it is too long to be a verdict."""
    if len(raw) > MAX_RAW_CHARS:
        return None
    return raw.strip()


# --- Qwen3Guard-Gen --------------------------------------------------------------------------------
_QWEN_SAFETY = {"Safe": "safe", "Unsafe": "unsafe", "Controversial": "controversial"}
_QWEN_PROMPT_RE = re.compile(r"Safety: (Safe|Unsafe|Controversial)\nCategories: ([^\n]+)")
_QWEN_RESPONSE_RE = re.compile(r"Safety: (Safe|Unsafe|Controversial)\nCategories: ([^\n]+)\nRefusal: (Yes|No)")
_LIST_SPLIT = re.compile(r", ?")


@dataclass(frozen=True)
class Qwen3GuardProfile(GuardProfile):
    def parse(self, raw: str, mode: Mode, *, risk: str | None = None,
              probability: float | None = None) -> Verdict:
        text = _clean(raw)
        if text is None:
            return self._undetermined(raw, "output too long", probability=probability)
        m = (_QWEN_RESPONSE_RE if mode == "response" else _QWEN_PROMPT_RE).fullmatch(text)
        if not m:
            return self._undetermined(raw, f"not the documented {mode} verdict shape", probability=probability)
        verdict = _QWEN_SAFETY[m.group(1)]
        allowed = QWEN3GUARD_RESPONSE_CATEGORIES if mode == "response" else QWEN3GUARD_PROMPT_CATEGORIES
        listed = m.group(2)
        raw_cats: tuple[str, ...]
        if listed == "None":
            raw_cats = ()
        else:
            raw_cats = tuple(_LIST_SPLIT.split(listed))
            unknown = [c for c in raw_cats if c not in allowed]
            if unknown:
                return self._undetermined(raw, f"unknown category {unknown[0]!r}", probability=probability)
            if len(set(raw_cats)) != len(raw_cats):
                return self._undetermined(raw, "a category is listed twice", probability=probability)
        if verdict == "safe" and raw_cats:
            return self._undetermined(raw, "safe, yet categories are listed", probability=probability)
        categories = taxonomy.map_categories(self.category_map, raw_cats)
        if verdict != "safe" and not categories:
            categories = (taxonomy.HARM_ROOT,)     # not safe, kind not stated: the general category
        refusal = None if mode == "prompt" else m.group(3) == "Yes"
        return Verdict(verdict, categories, raw_cats, refusal, probability, raw, self.id)  # type: ignore[arg-type]


# --- Llama Guard 3 -------------------------------------------------------------------------------
_LG_RE = re.compile(r"safe|unsafe\n(S\d{1,2}(?:, ?S\d{1,2})*)")


@dataclass(frozen=True)
class LlamaGuard3Profile(GuardProfile):
    def messages(self, prompt: str, text: str | None) -> list[Message]:
        # Llama Guard 3 1B's own template reads content as a list of {"type": "text"} parts.
        msgs = super().messages(prompt, text)
        return [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]} for m in msgs]

    def parse(self, raw: str, mode: Mode, *, risk: str | None = None,
              probability: float | None = None) -> Verdict:
        text = _clean(raw)
        if text is None:
            return self._undetermined(raw, "output too long", probability=probability)
        m = _LG_RE.fullmatch(text)
        if not m:
            return self._undetermined(raw, "not 'safe' or 'unsafe' + category codes", probability=probability)
        if text == "safe":
            return Verdict("safe", raw=raw, probability=probability, profile=self.id)
        codes = tuple(_LIST_SPLIT.split(m.group(1)))
        unknown = [c for c in codes if c not in self.category_map]
        if unknown:
            return self._undetermined(raw, f"unknown category {unknown[0]!r}", probability=probability)
        if len(set(codes)) != len(codes):
            return self._undetermined(raw, "a category is listed twice", probability=probability)
        return Verdict("unsafe", taxonomy.map_categories(self.category_map, codes), codes,
                       probability=probability, raw=raw, profile=self.id)


# --- Granite Guardian 3.x ------------------------------------------------------------------------
_GRANITE_RE = re.compile(r"(Yes|No)(?:\n<confidence> (?:High|Low) </confidence>)?")


@dataclass(frozen=True)
class GraniteGuardianProfile(GuardProfile):
    def template_variables(self, risk: str | None) -> dict[str, Any]:
        return {"guardian_config": {"risk_name": risk or self.risks[0]}}

    def parse(self, raw: str, mode: Mode, *, risk: str | None = None,
              probability: float | None = None) -> Verdict:
        risk = risk or self.risks[0]
        if risk not in self.category_map:
            return self._undetermined(raw, f"unknown risk {risk!r}", risk, probability)
        text = _clean(raw)
        if text is None:
            return self._undetermined(raw, "output too long", risk, probability)
        m = _GRANITE_RE.fullmatch(text)
        if not m:
            return self._undetermined(raw, "not 'Yes' or 'No'", risk, probability)
        if m.group(1) == "No":
            return Verdict("safe", raw=raw, probability=probability, profile=self.id, risk=risk)
        return Verdict("unsafe", self.category_map[risk], (risk,), None, probability, raw, self.id, risk)


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """One verdict from several checks of the same text (Granite Guardian: one per risk).

    unsafe if any check is unsafe, else controversial if any is, else undetermined if any is, else
    safe; categories and raw outputs from every check; the highest probability."""
    if not verdicts:
        raise ValueError("no verdicts to combine")
    if len(verdicts) == 1:
        return verdicts[0]
    order = ("unsafe", "controversial", "undetermined", "safe")
    label = min((v.verdict for v in verdicts), key=order.index)
    cats: list[str] = []
    raw_cats: list[str] = []
    for v in verdicts:
        cats += [c for c in v.categories if c not in cats]
        raw_cats += [c for c in v.raw_categories if c not in raw_cats]
    probs = [v.probability for v in verdicts if v.probability is not None]
    refusals = [v.refusal for v in verdicts if v.refusal is not None]
    raw = "\n".join(f"[{v.risk}] {v.raw}" if v.risk else v.raw for v in verdicts)
    problems = [f"{v.risk}: {v.problem}" if v.risk else str(v.problem) for v in verdicts if v.problem]
    return Verdict(label, tuple(cats), tuple(raw_cats), any(refusals) if refusals else None,
                   max(probs) if probs else None, raw, verdicts[0].profile, None,
                   "; ".join(problems) if label == "undetermined" else None)


_GB = 1_000_000_000
QWEN3GUARD = Qwen3GuardProfile(
    id="qwen3guard-gen", name="Qwen3Guard-Gen", licence="Apache-2.0",
    licence_url="https://www.apache.org/licenses/LICENSE-2.0",
    architectures=frozenset({"qwen3"}),
    raw_categories=QWEN3GUARD_PROMPT_CATEGORIES, category_map=taxonomy.QWEN3GUARD_MAP,
    builtin_template=QWEN3GUARD_TEMPLATE,
    special_tokens=("<|im_start|>", "<|im_end|>", "<|endoftext|>"),
    stop=("<|im_end|>", "<|endoftext|>", "<|im_start|>"), max_tokens=24,
    catalog=(
        CatalogEntry("Qwen3Guard-Gen 0.6B · Q8_0", "Qwen/Qwen3Guard-Gen-0.6B", None, None, "Q8_0",
                     int(0.64 * _GB), note="no public GGUF confirmed: convert with llama.cpp's "
                     "convert_hf_to_gguf.py and import (size estimated from Qwen3-0.6B Q8_0)"),
        CatalogEntry("Qwen3Guard-Gen 4B · Q4_K_M", "Qwen/Qwen3Guard-Gen-4B", None, None, "Q4_K_M",
                     int(2.5 * _GB), note="no public GGUF confirmed: convert and import (size "
                     "estimated from Qwen3-4B Q4_K_M)"),
    ),
    markers=("Safety: Safe", "Safety: Controversial"), name_patterns=("qwen3guard",),
    decision_prefix="Safety:",
    decision_words=MappingProxyType({" Safe": "safe", " Unsafe": "unsafe", " Controversial": "unsafe"}),
    notes="Judges prompts (with a Jailbreak category) and responses (with a refusal verdict); 119 "
          "languages. 'Violent' and 'Non-violent Illegal Acts' are broad: they map to violence and crime.",
)

LLAMA_GUARD_3 = LlamaGuard3Profile(
    id="llama-guard-3", name="Llama Guard 3", licence="Llama 3.2 Community License",
    licence_url="https://www.llama.com/llama3_2/license/",
    architectures=frozenset({"llama"}),
    raw_categories=tuple(taxonomy.LLAMA_GUARD_3_MAP), category_map=taxonomy.LLAMA_GUARD_3_MAP,
    builtin_template=LLAMA_GUARD_3_TEMPLATE,
    special_tokens=("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                    "<|end_of_text|>"),
    stop=("<|eot_id|>", "<|end_of_text|>"), max_tokens=20,
    catalog=(
        CatalogEntry("Llama Guard 3 1B · Q4_K_M", "meta-llama/Llama-Guard-3-1B",
                     "RichardErkhov/meta-llama_-_Llama-Guard-3-1B-gguf", "Llama-Guard-3-1B.Q4_K_M.gguf",
                     "Q4_K_M", int(0.96 * _GB), note="community quantisation; the original is gated "
                     "(accept Meta's licence)"),
        CatalogEntry("Llama Guard 3 1B · Q8_0", "meta-llama/Llama-Guard-3-1B",
                     "RichardErkhov/meta-llama_-_Llama-Guard-3-1B-gguf", "Llama-Guard-3-1B.Q8_0.gguf",
                     "Q8_0", int(1.6 * _GB), note="community quantisation"),
    ),
    markers=("<BEGIN UNSAFE CONTENT CATEGORIES>",), name_patterns=("llama guard 3", "llama-guard-3"),
    decision_words=MappingProxyType({"safe": "safe", "unsafe": "unsafe"}),
    notes="MLCommons hazards S1–S13 (the 1B model; S14 Code Interpreter Abuse only in 8B). S2 "
          "'Non-Violent Crimes' covers fraud, drugs and hacking alike: it maps to crime. Eight "
          "languages. No refusal verdict.",
)

GRANITE_GUARDIAN_3 = GraniteGuardianProfile(
    id="granite-guardian-3", name="Granite Guardian 3.x", licence="Apache-2.0",
    licence_url="https://www.apache.org/licenses/LICENSE-2.0",
    architectures=frozenset({"granite", "granitemoe"}),
    raw_categories=tuple(taxonomy.GRANITE_GUARDIAN_MAP), category_map=taxonomy.GRANITE_GUARDIAN_MAP,
    builtin_template=None,       # the risk definitions live in its own template (guardian_config)
    special_tokens=("<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>"),
    stop=("<|end_of_text|>",), max_tokens=16,
    catalog=(
        CatalogEntry("Granite Guardian 3.0 2B · Q4_K_M", "ibm-granite/granite-guardian-3.0-2b",
                     "QuantFactory/granite-guardian-3.0-2b-GGUF", "granite-guardian-3.0-2b.Q4_K_M.gguf",
                     "Q4_K_M", int(1.55 * _GB), note="community quantisation"),
        CatalogEntry("Granite Guardian 3.0 2B · Q8_0", "ibm-granite/granite-guardian-3.0-2b",
                     "DevQuasar/ibm-granite.granite-guardian-3.0-2b-GGUF",
                     "ibm-granite.granite-guardian-3.0-2b.Q8_0.gguf", "Q8_0", int(2.69 * _GB),
                     note="community quantisation"),
    ),
    markers=("guardian_config",), name_patterns=("granite guardian", "granite-guardian"),
    risks=("harm",),
    decision_words=MappingProxyType({"Yes": "unsafe", "No": "safe"}),
    notes="One yes/no check per risk (default: the general 'harm' risk); each extra risk is one more "
          "model call. English. Needs the GGUF's own chat template (its risk definitions).",
)

PROFILES: Mapping[str, GuardProfile] = MappingProxyType(
    {p.id: p for p in (QWEN3GUARD, LLAMA_GUARD_3, GRANITE_GUARDIAN_3)})


def detect_profile(name: str | None, chat_template: str | None) -> GuardProfile | None:
    """The profile whose format a GGUF carries: its chat template's markers first, then its name."""
    if chat_template:
        for profile in PROFILES.values():
            if any(marker in chat_template for marker in profile.markers):
                return profile
    lowered = (name or "").lower()
    for profile in PROFILES.values():
        if any(pattern in lowered for pattern in profile.name_patterns):
            return profile
    return None
