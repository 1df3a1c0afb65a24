"""Turn a user's request into the exact prompt text a model sees.

DeepSeek's usage recommendations are built in rather than left to the user, per model: each file gets
the ``Recipe`` its own model card recommends (``model_recipe``, detected from the file, never one rule
for all). The first R1 distills: no system prompt (every instruction goes into the user turn), the
assistant turn forced to open with ``<think>\\n`` so the model always reasons. DeepSeek-R1-0528 and its
Qwen3-8B distill changed that: a system prompt is supported and no ``<think>`` needs forcing (the model
opens it itself). For every R1: earlier answers re-sent without their thinking, zero-shot prompts. Other models (SmolLM2, any GGUF with its own template) get their own chat
template untouched. The template comes from the GGUF itself and is rendered in a sandboxed jinja2
environment with limits on time, work and size (core.chat_template); a template that breaks them
falls back to the built-in format with a "template_fallback" notice.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from r1desk.core.chat_template import render_guarded
from r1desk.errors import ContextOverflowError, SettingsError

if TYPE_CHECKING:
    from r1desk.core.gguf_info import ModelInfo

log = logging.getLogger("r1desk.prompts")

THINK_PREFIX = "<think>\n"
R1_BOS = "<｜begin▁of▁sentence｜>"
R1_EOS = "<｜end▁of▁sentence｜>"

# Used only when a GGUF carries no chat template (or a broken one).
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
DEEPSEEK_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '<｜Assistant｜>' + message['content'] + eos_token }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif %}"
)

FEW_SHOT_WARNING = (
    "This prompt looks few-shot (it pastes worked examples). DeepSeek-R1 models answer worse "
    "with examples: describe the task and the output format instead, zero-shot."
)


# -- the request and the result (docs/architecture.md) ------------------------------------------
@dataclass
class Message:
    role: Literal["user", "assistant"]
    content: str            # for the assistant: the answer only (thinking is never re-sent)


@dataclass
class PromptRequest:
    user_text: str
    history: list[Message] = field(default_factory=list)
    template: str = "plain"
    language: str | None = None     # "en", "fr", ...; None = no language instruction
    preamble: str | None = None     # safety preamble, folded into the user turn
    system: str | None = None       # never sent as a system turn to an R1 model: folded in
    strong_language: bool = False   # the stronger instruction used for the one language retry


@dataclass
class BuiltPrompt:
    text: str
    starts_in_thinking: bool
    notices: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sent_user_text: str = ""
    dropped_messages: int = 0
    prompt_tokens: int | None = None    # when a token counter was given
    template_fallback: str | None = None    # the warning (also in warnings) when the model's template was not used
    # the same turn as chat messages ({"role", "content"}), for a backend whose server applies the template
    messages: list[dict[str, str]] = field(default_factory=list)
    recipe: str = ""                    # the Recipe.name applied ("r1", "r1-0528", "native")


# -- per-model recipes (each model card's own usage recommendations) ---------------------------
@dataclass(frozen=True)
class Recipe:
    """How one model family wants to be prompted."""

    name: str                   # "r1" | "r1-0528" | "native"
    title: str
    system_turn: bool           # system prompt and preamble sent as a system turn (else folded into the user turn)
    force_think: bool           # the assistant turn is made to open with <think>\n
    is_r1: bool                 # an R1 reasoner: DeepSeek's template fallback, few-shot warning

    @property
    def starts_in_thinking(self) -> bool:
        return self.force_think


R1_RECIPE = Recipe("r1", "DeepSeek-R1 distill (Jan 2025): no system prompt, forced <think>",
                   system_turn=False, force_think=True, is_r1=True)
R1_0528_RECIPE = Recipe("r1-0528", "DeepSeek-R1-0528: system prompt supported, no forced <think>",
                        system_turn=True, force_think=False, is_r1=True)
NATIVE_RECIPE = Recipe("native", "the model's own chat template", system_turn=True, force_think=False, is_r1=False)

_R1_0528_NAME = re.compile(r"(?<!\d)0528(?!\d)")


def model_recipe(info: ModelInfo) -> Recipe:
    """The recipe for this file, from what it says about itself (never the file name).

    An R1 (DeepSeek's chat markers and ``<think>`` in its tokenizer or template) is the 0528 generation
    when its ``general.name`` says 0528 or it is a Qwen3 (the 0528 distill is the only R1 on Qwen3; the
    first distills are qwen2 and llama); otherwise the first-generation recipe.
    """
    if not info.is_r1:
        return NATIVE_RECIPE
    if _R1_0528_NAME.search(info.name or "") or info.architecture == "qwen3":
        return R1_0528_RECIPE
    return R1_RECIPE


_QWEN3_NAME = re.compile(r"qwen-?3", re.IGNORECASE)


def recipe_for_name(name: str, *, is_r1: bool) -> Recipe:
    """The recipe for a model known by its name only (a server's model id: no tokenizer to inspect): the
    0528 generation when the name says 0528 or Qwen3, as :func:`model_recipe` decides for a file."""
    if not is_r1:
        return NATIVE_RECIPE
    if _R1_0528_NAME.search(name) or _QWEN3_NAME.search(name):
        return R1_0528_RECIPE
    return R1_RECIPE


# -- presets and templates ----------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    """A named generation recipe (the GUI's template picker shows it first)."""

    name: str
    title: str
    temperature: float
    top_p: float
    system_prompt: str | None
    force_think: bool
    description: str

    def gen_params(self, **overrides: Any) -> Any:
        from r1desk.core.engine import GenParams

        return GenParams(temperature=self.temperature, top_p=self.top_p, **overrides)


R1_PRESET = Preset(
    name="r1_recommended", title="DeepSeek-R1 recommended", temperature=0.6, top_p=0.95,
    system_prompt=None, force_think=True,
    description="DeepSeek's settings for the R1 distills: temperature 0.6, top-p 0.95, no system "
                "prompt, the reply always starts by thinking, zero-shot prompts.",
)


def __getattr__(name: str) -> Any:
    # R1_RECOMMENDED is a core.engine.GenParams; built lazily so importing prompts stays light.
    if name == "R1_RECOMMENDED":
        return R1_PRESET.gen_params()
    raise AttributeError(name)


@dataclass(frozen=True)
class PromptTemplate:
    """How a picked template wraps what the user typed; ``{text}`` stands for it."""

    name: str
    title: str
    description: str
    pattern: str

    def apply(self, text: str) -> str:
        return self.pattern.replace("{text}", text)


TEMPLATES: dict[str, PromptTemplate] = {t.name: t for t in (
    PromptTemplate("plain", "Plain", "Your message as typed.", "{text}"),
    PromptTemplate("step_by_step", "Step-by-step reasoning",
                   "Asks the model to work through the problem one step at a time.",
                   "{text}\n\nPlease reason step by step, then give your final answer clearly."),
    PromptTemplate("math", "Math",
                   "DeepSeek's own math instruction: reason step by step, final answer boxed.",
                   "{text}\n\nPlease reason step by step, and put your final answer within \\boxed{}."),
    PromptTemplate("json", "JSON output", "The answer is valid JSON only, nothing around it.",
                   "{text}\n\nAnswer only with valid JSON: no text before or after it and no "
                   "markdown code fence."),
    PromptTemplate("table", "Markdown table", "The answer is a markdown table.",
                   "{text}\n\nPresent your answer as a markdown table."),
)}


def get_template(name: str) -> PromptTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise SettingsError(f"unknown prompt template {name!r}", key="template", value=name,
                            hint="choose one of: " + ", ".join(TEMPLATES)) from None


# The output languages an instruction can name (ISO 639-1 codes; the langid lock uses the same).
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "pl": "Polish", "cs": "Czech", "sv": "Swedish",
    "da": "Danish", "no": "Norwegian", "nb": "Norwegian", "fi": "Finnish", "el": "Greek",
    "ru": "Russian", "uk": "Ukrainian", "tr": "Turkish", "ar": "Arabic", "he": "Hebrew",
    "fa": "Persian", "hi": "Hindi", "bn": "Bengali", "ur": "Urdu", "zh": "Chinese",
    "ja": "Japanese", "ko": "Korean", "vi": "Vietnamese", "th": "Thai", "id": "Indonesian",
    "ms": "Malay", "ro": "Romanian", "hu": "Hungarian", "ca": "Catalan", "sw": "Swahili",
}
_REGIONAL_NAMES = {"zh-cn": "Simplified Chinese", "zh-hans": "Simplified Chinese",
                   "zh-tw": "Traditional Chinese", "zh-hant": "Traditional Chinese",
                   "pt-br": "Brazilian Portuguese", "en-us": "English", "en-gb": "British English"}


def language_name(code: str) -> str:
    """English name of a language code ("fr", "pt-BR", "zh_Hant"); a bad code is a SettingsError."""
    key = (code or "").strip().lower().replace("_", "-")
    if key in _REGIONAL_NAMES:
        return _REGIONAL_NAMES[key]
    base = key.split("-", 1)[0]
    if base in LANGUAGE_NAMES:
        return LANGUAGE_NAMES[base]
    by_name = {name.lower(): name for name in LANGUAGE_NAMES.values()}
    if key in by_name:
        return by_name[key]
    raise SettingsError(f"unknown output language {code!r}", key="language", value=code,
                        hint="use a language code such as " + ", ".join(list(LANGUAGE_NAMES)[:8]))


def language_instruction(code: str, *, strong: bool = False) -> str:
    """The sentence that asks for the answer (and the reasoning) in one language."""
    lang = language_name(code)
    if strong:
        return (f"Important: write your entire response in {lang} only, both your reasoning and your "
                f"final answer. Do not use any other language, not even for a single sentence.")
    return f"Please answer in {lang}, and write your reasoning in {lang} too."


# -- few-shot detection -------------------------------------------------------------------------
# Line labels that come in (prompt, reply) pairs when someone pastes worked examples.
_PAIR_LABELS = (
    (r"q\d*", r"a\d*"), (r"question\s*\d*", r"answer\s*\d*"), (r"input\s*\d*", r"output\s*\d*"),
    (r"user", r"assistant"), (r"human", r"(?:ai|assistant|bot)"), (r"problem\s*\d*", r"solution\s*\d*"),
    (r"prompt", r"(?:response|completion)"), (r"text", r"(?:label|sentiment|category)"),
)
_LINE_START = r"^[ \t]*(?:[-*>]+[ \t]*|\d+[.)][ \t]*)?(?:\*\*|__)?"
_PAIR_RES = [
    (re.compile(_LINE_START + q + r"(?:\*\*|__)?[ \t]*:", re.I | re.M),
     re.compile(_LINE_START + a + r"(?:\*\*|__)?[ \t]*:", re.I | re.M))
    for q, a in _PAIR_LABELS
]
_EXAMPLE_RE = re.compile(_LINE_START + r"example[ \t]*#?\d*(?:\*\*|__)?[ \t]*:", re.I | re.M)
_ARROW_RE = re.compile(r"^[ \t]*(?!(?:def|fn|func|function|lambda)\b)([^\n]*?\S)[ \t]*(?:->|=>|→)[ \t]*(\S[^\n]*)?$",
                       re.M)


def looks_few_shot(text: str) -> bool:
    """True when the text pastes two or more worked example pairs (Q:/A:, Input:/Output:, ...)."""
    for q_re, a_re in _PAIR_RES:
        if min(len(q_re.findall(text)), len(a_re.findall(text))) >= 2:
            return True
    if len(_EXAMPLE_RE.findall(text)) >= 2:
        return True
    arrows = [m for m in _ARROW_RE.finditer(text) if "(" not in m.group(1)]
    complete = [m for m in arrows if m.group(2)]
    return len(complete) >= 3 or (len(complete) >= 2 and len(arrows) > len(complete))


# -- rendering ----------------------------------------------------------------------------------
def render_chat_template(template: str, messages: list[dict[str, str]], *, bos_token: str = "",
                         eos_token: str = "", add_generation_prompt: bool = True) -> str:
    """Render a GGUF/Hugging Face chat template within core.chat_template's limits (time, steps,
    value sizes, output); raises jinja2.TemplateError when it cannot."""
    return render_guarded(template, {"messages": messages, "bos_token": bos_token, "eos_token": eos_token,
                                     "add_generation_prompt": add_generation_prompt})


_THINK_BLOCK_RE = re.compile(r"<think>.*?</think>", re.S)


def strip_thinking(content: str) -> str:
    """An earlier assistant turn as it is re-sent: the answer only (as DeepSeek's template does)."""
    content = _THINK_BLOCK_RE.sub("", content)
    if "</think>" in content:
        content = content.split("</think>")[-1]
    return content.strip()


def force_think(text: str) -> str:
    """Make the prompt end with ``<think>\\n`` exactly once, whatever the template appended."""
    if text.endswith(THINK_PREFIX):
        return text
    if text.endswith("<think>"):
        return text + "\n"
    return text + THINK_PREFIX


def compose_user_text(req: PromptRequest, *, fold_system: bool) -> str:
    """The current user turn as sent: [system] [preamble] templated text [language instruction]."""
    parts: list[str] = []
    if fold_system:
        parts += [p.strip() for p in (req.system, req.preamble) if p and p.strip()]
    parts.append(get_template(req.template).apply(req.user_text.strip()))
    if req.language:
        parts.append(language_instruction(req.language, strong=req.strong_language))
    return "\n\n".join(parts)


def chat_messages(req: PromptRequest, history: list[Message], user_text: str, *,
                  system_turn: bool) -> list[dict[str, str]]:
    """The turn as chat messages: a system turn only where the model's recipe takes one (R1 distills: no,
    everything is folded into ``user_text``), earlier answers without their thinking."""
    messages: list[dict[str, str]] = []
    if system_turn:
        system = "\n\n".join(p.strip() for p in (req.system, req.preamble) if p and p.strip())
        if system:
            messages.append({"role": "system", "content": system})
    for msg in history:
        content = strip_thinking(msg.content) if msg.role == "assistant" else msg.content
        messages.append({"role": msg.role, "content": content})
    messages.append({"role": "user", "content": user_text})
    return messages


def _render(info: ModelInfo, recipe: Recipe, messages: list[dict[str, str]], warnings: list[str]) -> str:
    fallback = DEEPSEEK_TEMPLATE if info.is_r1 else CHATML_TEMPLATE
    bos = info.bos_token or (R1_BOS if info.is_r1 else "")
    eos = info.eos_token or (R1_EOS if info.is_r1 else "")
    template = info.chat_template
    problem = info.chat_template_problem
    if template and not problem:
        try:
            text = render_chat_template(template, messages, bos_token=bos, eos_token=eos)
        except Exception as exc:  # a GGUF's template is foreign code: any failure means "not usable"
            problem = str(exc)[:300]
        else:
            return force_think(text) if recipe.force_think else text
    if problem:
        log.warning("chat template of %s not used (%s); using the built-in format", info.name, problem)
        warnings.append(template_fallback_message(info, problem))
    text = render_chat_template(fallback, messages, bos_token=bos, eos_token=eos)
    return force_think(text) if recipe.force_think else text


def template_fallback_message(info: ModelInfo, problem: str) -> str:
    return (f"This model's chat template could not be used ({problem}); the built-in "
            f"{'DeepSeek' if info.is_r1 else 'ChatML'} format is used instead.")


def _drop_oldest(history: list[Message]) -> list[Message]:
    """Drop the oldest message, and an assistant reply left at the front (keep pairs together)."""
    rest = history[1:]
    while rest and rest[0].role == "assistant":
        rest = rest[1:]
    return rest


def build_prompt(info: ModelInfo, req: PromptRequest, *,
                 count_tokens: Callable[[str], int] | None = None, n_ctx: int | None = None,
                 max_tokens: int = 0, fit_tokens: Callable[[str], int] | None = None) -> BuiltPrompt:
    """Render the prompt; with a token counter and ``n_ctx``, drop the oldest turns until it fits.

    ``fit_tokens`` is the name docs/architecture.md first gave ``count_tokens``; both work.
    Raises ContextOverflowError when the current turn alone, plus ``max_tokens`` of reply, does
    not fit.
    """
    counter = count_tokens or fit_tokens
    warnings: list[str] = []
    notices: list[str] = []
    recipe = model_recipe(info)
    user_text = compose_user_text(req, fold_system=not recipe.system_turn)
    if recipe.is_r1 and looks_few_shot(req.user_text):
        warnings.append(FEW_SHOT_WARNING)

    history = list(req.history)
    text = _render(info, recipe, chat_messages(req, history, user_text, system_turn=recipe.system_turn), warnings)
    tokens: int | None = None
    if counter is not None and n_ctx:
        tokens = counter(text)
        while tokens + max_tokens > n_ctx and history:
            history = _drop_oldest(history)
            text = _render(info, recipe, chat_messages(req, history, user_text, system_turn=recipe.system_turn), [])
            tokens = counter(text)
        if tokens + max_tokens > n_ctx:
            raise ContextOverflowError(
                f"the message needs {tokens} tokens plus {max_tokens} reserved for the reply, but the "
                f"model's context holds {n_ctx} tokens",
                hint="shorten the message, lower the maximum reply length, or load the model with a "
                     "larger context size")
    dropped = len(req.history) - len(history)
    fallback = next((w for w in warnings if w.startswith("This model's chat template could not be used")), None)
    if dropped:
        notices.append(f"Dropped {dropped} earlier message{'s' if dropped != 1 else ''} to fit the "
                       f"model's {n_ctx}-token context")
        log.info("dropped %d history messages to fit n_ctx=%s", dropped, n_ctx)
    return BuiltPrompt(text=text, starts_in_thinking=recipe.starts_in_thinking, notices=notices, warnings=warnings,
                       sent_user_text=user_text, dropped_messages=dropped, prompt_tokens=tokens,
                       template_fallback=fallback, recipe=recipe.name)


__all__ = [
    "BuiltPrompt", "CHATML_TEMPLATE", "DEEPSEEK_TEMPLATE", "FEW_SHOT_WARNING", "LANGUAGE_NAMES",
    "Message", "NATIVE_RECIPE", "Preset", "PromptRequest", "PromptTemplate", "R1_0528_RECIPE", "R1_PRESET",
    "R1_RECIPE", "Recipe", "model_recipe", "TEMPLATES", "build_prompt",
    "compose_user_text", "force_think", "get_template", "language_instruction", "language_name",
    "looks_few_shot", "render_chat_template", "strip_thinking", "template_fallback_message",
]
