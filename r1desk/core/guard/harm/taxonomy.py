"""The r1desk harm taxonomy: one set of category names whichever guard model is installed.

Every guard model has its own label set (Qwen3Guard-Gen: nine named categories; Llama Guard 3:
the MLCommons hazards S1–S14; Granite Guardian: one yes/no per named risk). The policy, the audit
log and the UI speak only the names below; each profile's raw categories map onto them
(``QWEN3GUARD_MAP``, ``LLAMA_GUARD_3_MAP``, ``GRANITE_GUARDIAN_MAP``).

The taxonomy is a small tree. The root ``harm`` means "harmful, kind not stated" (Granite
Guardian's general ``harm`` risk, or an unsafe verdict that names no category). Broad nodes exist
because models differ in how finely they split: Llama Guard's S2 "Non-Violent Crimes" and
Qwen3Guard's "Non-violent Illegal Acts" cover fraud, drugs and hacking alike, so they map to
``crime``, not to ``scams_fraud``; Qwen3Guard's "Violent" maps to ``violence``, which covers both
``physical_harm`` and ``weapons``.

    harm
    ├── self_harm              SST: suicide, self-harm, disordered eating
    ├── violence
    │   ├── physical_harm      SST: violent crime, physical harm to people or animals
    │   └── weapons            weapons, incl. chemical, biological, radiological, nuclear, explosives
    ├── crime                  non-violent crime
    │   ├── illegal_items      SST: illegal and highly regulated items, incl. drugs
    │   ├── scams_fraud        SST: scams and fraud
    │   └── cybercrime         hacking, malware, code-interpreter abuse
    ├── child_abuse            SST: child abuse, child sexual exploitation
    ├── sex_crimes             sexual assault, trafficking, sexual harassment
    ├── sexual_content         erotica, explicit sexual material
    ├── hate                   hate speech, social bias against protected groups
    ├── profanity              insults and offensive language
    ├── privacy                personal information (PII)
    ├── defamation
    ├── elections              false information about voting
    ├── specialised_advice     medical, legal or financial advice; calling dangerous things safe
    ├── intellectual_property
    ├── politically_sensitive
    ├── unethical              unethical acts and behaviour
    └── jailbreak              attempts to make the model ignore its rules
    quality                    (not harm) answers that fail the user
    ├── evasive                evasive or over-refusing answers
    └── unreliable             ungrounded, irrelevant or hallucinated (RAG / tool-call checks)

How a policy should read a verdict's categories: ``overlaps(rule_category, verdict_category)`` is
true when one is the other or an ancestor of the other. A verdict in a broad category (``crime``)
counts for rules on each narrower category (``scams_fraud``), because the model could not tell
them apart; a verdict in a narrow category counts for rules on its broader ones. The five
SimpleSafetyTests areas are ``SST_AREAS``. docs/harm-taxonomy.md has the same tables.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class HarmCategory:
    name: str
    title: str
    description: str
    parent: str | None


_CATEGORIES: tuple[HarmCategory, ...] = (
    HarmCategory("harm", "Harmful content", "Harmful, kind not stated (a general harm check, or an "
                 "unsafe verdict that names no category).", None),
    HarmCategory("self_harm", "Suicide and self-harm", "Encourages or enables suicide, self-injury or "
                 "disordered eating.", "harm"),
    HarmCategory("violence", "Violence", "Violence of any kind, with or without weapons.", "harm"),
    HarmCategory("physical_harm", "Physical harm and violent crime", "Enables or encourages violence "
                 "towards people or animals: murder, assault, terrorism, kidnapping.", "violence"),
    HarmCategory("weapons", "Weapons", "Weapons, including chemical, biological, radiological and nuclear "
                 "weapons and high-yield explosives.", "violence"),
    HarmCategory("crime", "Non-violent crime", "Enables or encourages crime without violence.", "harm"),
    HarmCategory("illegal_items", "Illegal and highly regulated items", "Making, buying or using drugs "
                 "and other illegal or highly regulated goods.", "crime"),
    HarmCategory("scams_fraud", "Scams and fraud", "Fraud, scams, phishing, money laundering.", "crime"),
    HarmCategory("cybercrime", "Cybercrime", "Hacking, malware, abuse of code interpreters.", "crime"),
    HarmCategory("child_abuse", "Child abuse", "Abuse or sexual exploitation of children.", "harm"),
    HarmCategory("sex_crimes", "Sex crimes", "Sexual assault, sex trafficking, sexual harassment.", "harm"),
    HarmCategory("sexual_content", "Sexual content", "Erotica and explicit sexual material.", "harm"),
    HarmCategory("hate", "Hate and bias", "Demeans or discriminates against people for who they are.",
                 "harm"),
    HarmCategory("profanity", "Profanity and insults", "Offensive language, insults.", "harm"),
    HarmCategory("privacy", "Privacy", "Sensitive personal information (PII).", "harm"),
    HarmCategory("defamation", "Defamation", "False statements that injure a living person's "
                 "reputation.", "harm"),
    HarmCategory("elections", "Elections", "False information about electoral processes.", "harm"),
    HarmCategory("specialised_advice", "Specialised advice", "Medical, legal or financial advice, or "
                 "calling dangerous activities safe.", "harm"),
    HarmCategory("intellectual_property", "Intellectual property", "Copyright or other IP "
                 "violations.", "harm"),
    HarmCategory("politically_sensitive", "Politically sensitive topics", "Content a guard model flags "
                 "as politically sensitive.", "harm"),
    HarmCategory("unethical", "Unethical acts", "Unethical behaviour that is not clearly a crime.", "harm"),
    HarmCategory("jailbreak", "Jailbreak", "Attempts to make the model ignore its rules.", "harm"),
    HarmCategory("quality", "Answer quality", "Not harm: answers that fail the user.", None),
    HarmCategory("evasive", "Evasive answer", "Evades or refuses a legitimate request.", "quality"),
    HarmCategory("unreliable", "Unreliable answer", "Ungrounded, irrelevant or hallucinated (RAG and "
                 "tool-call checks).", "quality"),
)

CATEGORIES: Mapping[str, HarmCategory] = MappingProxyType({c.name: c for c in _CATEGORIES})
HARM_ROOT = "harm"
# The five SimpleSafetyTests harm areas.
SST_AREAS: tuple[str, ...] = ("self_harm", "physical_harm", "illegal_items", "scams_fraud", "child_abuse")

# --- each guard model's raw categories -> r1desk categories -------------------------------------
QWEN3GUARD_MAP: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "Violent": ("violence",),
    "Non-violent Illegal Acts": ("crime",),
    "Sexual Content or Sexual Acts": ("sexual_content",),
    "PII": ("privacy",),
    "Suicide & Self-Harm": ("self_harm",),
    "Unethical Acts": ("unethical",),
    "Politically Sensitive Topics": ("politically_sensitive",),
    "Copyright Violation": ("intellectual_property",),
    "Jailbreak": ("jailbreak",),                     # prompts only
})

LLAMA_GUARD_3_MAP: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "S1": ("physical_harm",),          # Violent Crimes
    "S2": ("crime",),                  # Non-Violent Crimes (fraud, drugs, weapons crimes, hacking)
    "S3": ("sex_crimes",),             # Sex-Related Crimes
    "S4": ("child_abuse",),            # Child Sexual Exploitation
    "S5": ("defamation",),
    "S6": ("specialised_advice",),
    "S7": ("privacy",),
    "S8": ("intellectual_property",),
    "S9": ("weapons",),                # Indiscriminate Weapons (CBRNE)
    "S10": ("hate",),
    "S11": ("self_harm",),             # Suicide & Self-Harm
    "S12": ("sexual_content",),
    "S13": ("elections",),
    "S14": ("cybercrime",),            # Code Interpreter Abuse (8B only)
})

GRANITE_GUARDIAN_MAP: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "harm": ("harm",),
    "social_bias": ("hate",),
    "jailbreak": ("jailbreak",),
    "violence": ("violence",),
    "profanity": ("profanity",),
    "sexual_content": ("sexual_content",),
    "unethical_behavior": ("unethical",),
    "harm_engagement": ("harm",),      # the response engages with a harmful request
    "evasiveness": ("evasive",),
    "groundedness": ("unreliable",),
    "relevance": ("unreliable",),
    "answer_relevance": ("unreliable",),
    "function_call": ("unreliable",),
})


def category(name: str) -> HarmCategory:
    """The category called ``name``; KeyError for a name outside the taxonomy."""
    return CATEGORIES[name]


def ancestors(name: str) -> tuple[str, ...]:
    """``name``'s ancestors, nearest first (``ancestors("scams_fraud") == ("crime", "harm")``)."""
    out = []
    parent = CATEGORIES[name].parent
    while parent is not None:
        out.append(parent)
        parent = CATEGORIES[parent].parent
    return tuple(out)


def overlaps(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are the same category or one is an ancestor of the other."""
    return a == b or a in ancestors(b) or b in ancestors(a)


def is_harm(name: str) -> bool:
    """True for ``harm`` and everything under it (not for the ``quality`` branch)."""
    return name == HARM_ROOT or HARM_ROOT in ancestors(name)


def map_categories(mapping: Mapping[str, tuple[str, ...]], raw: Iterable[str]) -> tuple[str, ...]:
    """The r1desk categories for raw model categories, in order, without repeats.

    Raises KeyError for a raw category the mapping does not know (parsers turn that into an
    "undetermined" verdict)."""
    out: list[str] = []
    for name in raw:
        for mapped in mapping[name]:
            if mapped not in out:
                out.append(mapped)
    return tuple(out)


def _check() -> None:
    for c in _CATEGORIES:
        if c.parent is not None and c.parent not in CATEGORIES:
            raise AssertionError(f"{c.name}: unknown parent {c.parent}")
    for mapping in (QWEN3GUARD_MAP, LLAMA_GUARD_3_MAP, GRANITE_GUARDIAN_MAP):
        for targets in mapping.values():
            for t in targets:
                if t not in CATEGORIES:
                    raise AssertionError(f"mapping onto unknown category {t}")


_check()
