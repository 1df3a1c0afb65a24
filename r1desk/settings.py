"""One typed settings model, stored as JSON in ``paths.settings_path()``.

Every field carries a title and a description in its metadata (and, where it applies, choices and
a numeric range), so the admin view and the docs are generated from this file and validation is
driven by it. ``load_settings`` validates everything and raises ``SettingsError`` naming the file,
key and value; ``SettingsStore`` keeps the last valid settings in force when a reload fails (and a
last-known-good copy on disk, next to the file, for the next start). A site policy file in
``paths.site_config_dir()/policy.json`` (a fixed system path) overrides the user's keys and locks them.
The site policy fails closed: one that cannot be used (malformed, unreadable, not a regular file — a FIFO
is never opened —, larger than ``SITE_POLICY_MAX_BYTES``) makes ``load_settings`` raise ``SitePolicyError``
(the CLI prints it and stops), ``SettingsStore`` run on ``safe_settings()`` with the error in ``problems``,
``locked_keys`` lock every key and ``save_settings`` refuse.
"""
from __future__ import annotations

import json
import logging
import math
import os
import stat
import threading
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from r1desk import paths
from r1desk.core.backend import BackendConfig
from r1desk.core.config import ChatConfig, GenerationConfig
from r1desk.core.guard.config import GuardConfig
from r1desk.core.guard.policy import Policy, default_rules, known_labels, validate_rule
from r1desk.core.prompts import LANGUAGE_NAMES, TEMPLATES
from r1desk.errors import SettingsError
from r1desk.fileutil import NotReadableFile, atomic_write_text, read_regular_file
from r1desk.vocabulary import ACTIONS, CHANNELS

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

log = logging.getLogger("r1desk.settings")
_D = TypeVar("_D", bound="DataclassInstance")     # the settings dataclass _build makes

SCHEMA_VERSION = 1
SITE_POLICY_NAME = "policy.json"
SITE_POLICY_MAX_BYTES = 1024 * 1024
LAST_GOOD_SUFFIX = ".last-good"
MODEL_TYPES = ("original", "unbiased", "multilingual", "original-small", "unbiased-small")


def setting(default: Any = MISSING, *, title: str, description: str, choices: tuple[str, ...] | None = None,
            minimum: float | None = None, maximum: float | None = None,
            default_factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field with the metadata the validator, the admin view and the docs read."""
    meta = {"title": title, "description": description, "choices": choices, "min": minimum, "max": maximum}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class GenerationSettings:
    temperature: float = setting(0.6, title="Temperature", minimum=0.0, maximum=2.0,
                                 description="Sampling temperature. DeepSeek recommends 0.5–0.7 (0.6) for R1 "
                                             "models; lower values make repetition loops likelier.")
    top_p: float = setting(0.95, title="Top-p", minimum=0.0, maximum=1.0,
                           description="Nucleus sampling cut-off; 0.95 is DeepSeek's recommendation for R1.")
    max_tokens: int = setting(4096, title="Maximum new tokens", minimum=1, maximum=131072,
                              description="Upper bound on generated tokens per turn (thinking + answer).")
    n_ctx: int = setting(8192, title="Context length", minimum=256, maximum=1048576,
                         description="Context window in tokens; older turns are dropped (with a notice) "
                                     "when a conversation outgrows it.")
    gpu_layers: str = setting("auto", title="GPU offload",
                              description="Layers offloaded to the GPU: none, all, auto, or a number.")
    n_threads: int = setting(0, title="CPU threads", minimum=0, maximum=1024,
                             description="Threads for decoding; 0 lets llama.cpp choose.")
    seed: int = setting(-1, title="Seed", minimum=-1, maximum=2**32 - 1,
                        description="Random seed; -1 picks a new one for every turn.")


@dataclass
class LanguageSettings:
    target: str = setting("auto", title="Target language", choices=("auto", "off", *LANGUAGE_NAMES),
                          description="Language the model must answer in: 'auto' (the language of your "
                                      "prompt), 'off' (no lock), or a language code such as 'en' or 'fr'.")
    action: str = setting("flag", title="On language mixing", choices=("flag", "annotate", "regenerate"),
                          description="flag: log and badge the turn; annotate: show the measured share next "
                                      "to the answer; regenerate: retry once with a stronger instruction.")
    min_share: float = setting(0.9, title="Minimum share in target language", minimum=0.0, maximum=1.0,
                               description="Below this share of letters in the target language, the answer "
                                           "counts as mixed.")


@dataclass
class PreambleSettings:
    enabled: bool = setting(False, title="Safety preamble",
                            description="Fold a safety preamble into the user turn (R1 models take no "
                                        "system prompt).")
    text: str = setting("Answer helpfully and safely. Refuse requests for dangerous or illegal help.",
                        title="Preamble text", description="Text placed before the user's message.")


@dataclass
class RuleSetting:
    threshold: float = setting(0.5, title="Threshold", minimum=0.0, maximum=1.0,
                               description="Classifier score (0–1) at which the action applies.")
    action: str = setting("flag", title="Action", choices=ACTIONS,
                          description="allow, flag (badge + log), redact (replace the segment) or block "
                                      "(stop the turn).")


def _default_rules() -> dict[str, dict[str, RuleSetting]]:
    """The registered classifiers' default rules (core.guard.classifier.REGISTRY)."""
    return {ch: {lb: RuleSetting(r.threshold, r.action) for lb, r in labels.items()}
            for ch, labels in default_rules().items()}


@dataclass
class GuardSettings:
    rules: dict[str, dict[str, RuleSetting]] = setting(
        title="Policy", default_factory=_default_rules,
        description="Per channel (prompt, thinking, answer) and label: threshold and action. "
                    "See r1desk.core.guard.policy for the reasoning behind the defaults.")
    channels: dict[str, bool] = setting(
        title="Moderated channels", default_factory=lambda: {ch: True for ch in CHANNELS},
        description="Switch moderation of a channel on or off.")
    model_type: str = setting("original", title="Toxicity model", choices=MODEL_TYPES,
                              description="Detoxify model: original (BERT), unbiased (RoBERTa), multilingual "
                                          "(XLM-R: en fr es it pt tr ru), or the small ALBERT variants.")
    multilingual: bool = setting(True, title="Use the multilingual model for other languages",
                                 description="Score non-English text with the multilingual model when it "
                                             "is installed; otherwise coverage is reported as limited.")
    device: str = setting("cpu", title="Classifier device", choices=("cpu", "cuda"),
                          description="Where the classifier runs.")
    num_threads: int = setting(1, title="Classifier threads", minimum=0, maximum=256,
                               description="torch threads for scoring (0 = torch default). On small "
                                           "machines the classifier competes with decoding for cores.")
    runtime: str = setting("onnx", title="Classifier runtime", choices=("onnx", "torch"),
                           description="onnx: ONNX Runtime with int8 weights, about 5× faster per segment than "
                                       "torch with no decision changed (bench/RESULTS.md), no torch needed; the "
                                       "weights are converted once. torch: Detoxify's own code (needs r1desk[torch]).")
    quantize: bool = setting(False, title="int8 classifier",
                             description="Dynamic int8 quantisation of the toxicity model: about half the "
                                         "scoring lag and CPU (bench/RESULTS.md); scores shift by about 0.01.")
    window_segments: int = setting(3, title="Rolling window", minimum=1, maximum=16,
                                   description="Also score the last N segments together, because harm can "
                                               "span sentences (1 = no window).")
    max_segment_chars: int = setting(400, title="Longest segment", minimum=50, maximum=4000,
                                     description="A sentence longer than this is scored in windows of "
                                                 "this many characters.")
    feedback_model: str | None = setting(None, title="Feedback classifier version",
                                         description="The version of the classifier trained on reviews "
                                                     "(r1desk guard train) that the guard uses, e.g. v3; "
                                                     "none: not used. Rolling back is enabling the previous one.")
    harm_model: str | None = setting(None, title="Guard model (harm filter)",
                                     description="A guard-model GGUF (Qwen3Guard-Gen, Llama Guard 3, Granite "
                                                 "Guardian) that judges harm in the prompt, the thinking and the "
                                                 "answer; none: the harm filter is not installed (toxicity only).")
    harm_threads: int = setting(1, title="Guard model threads", minimum=1, maximum=256,
                                description="CPU threads for the guard model; it shares the cores with the chat "
                                            "model (bench/bench_harm.py measures the cost).")
    harm_gpu_layers: int = setting(0, title="Guard model GPU layers", minimum=-1, maximum=1000,
                                   description="Layers of the guard model offloaded to the GPU (-1: all).")


@dataclass
class ReviewPeriodSettings:
    cadence: str = setting("off", title="Review period", choices=("off", "weekly", "monthly"),
                           description="Periodic review: each closed week or month gets a review queue of every "
                                       "flagged turn plus a random sample of unflagged ones, and a report to sign off.")
    sample_size: int = setting(30, title="Unflagged sample per period", minimum=0, maximum=10000,
                               description="How many unflagged turns of each period are drawn for review, so "
                                           "the guard's miss rate can be estimated (with a confidence interval).")


@dataclass
class RemoteSettings:
    """The OpenAI-compatible server the model manager's "Remote server" section uses (core.remote).
    The API key is never here: it lives in the operating system's credential store."""

    url: str = setting("", title="Server URL",
                       description="Base URL of an OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio), "
                                   "e.g. http://gpu-box:8080; empty: no remote server.")
    model: str = setting("", title="Server model", description="The model id on that server (from its /v1/models).")
    verify_tls: bool = setting(True, title="Verify TLS certificates",
                               description="Check the server's HTTPS certificate; switch off only for a server "
                                           "you trust on a network you trust.")
    connect_timeout_s: float = setting(10.0, title="Connect timeout (s)", minimum=0.5, maximum=300.0,
                                       description="How long to wait for the server to accept the connection.")
    read_timeout_s: float = setting(120.0, title="Read timeout (s)", minimum=1.0, maximum=3600.0,
                                    description="How long the server may stay silent (before the first token of a "
                                                "long prompt, or mid-answer) before the turn fails.")
    r1_recipe: str = setting("auto", title="R1 recipe", choices=("auto", "on", "off"),
                             description="Apply DeepSeek-R1's recipe (no system turn, instructions in the user turn, "
                                         "thinking expected): auto decides from the model id.")

    def backend_config(self, generation: GenerationConfig, *, url: str | None = None, model: str | None = None,
                       api_key: str | None = None) -> BackendConfig:
        """How to open the server's model (``url``/``model`` override the saved ones, e.g. from the CLI)."""
        options: dict[str, Any] = {"url": url or self.url, "verify_tls": self.verify_tls,
                                   "connect_timeout_s": self.connect_timeout_s,
                                   "read_timeout_s": self.read_timeout_s, "r1_recipe": self.r1_recipe}
        if api_key:
            options["api_key"] = api_key
        return BackendConfig(kind="openai", model=model or self.model, n_ctx=generation.n_ctx, seed=generation.seed,
                             options=options)


@dataclass
class Settings:
    schema_version: int = setting(SCHEMA_VERSION, title="Schema version",
                                  description="Format version of this file; older files are migrated.")
    generation: GenerationSettings = setting(title="Generation defaults", default_factory=GenerationSettings,
                                             description="Sampling and loading defaults for new turns.")
    template: str = setting("plain", title="Prompt template", choices=tuple(TEMPLATES),
                            description="Default prompt template (plain, step_by_step, math, json, table).")
    language: LanguageSettings = setting(title="Language lock", default_factory=LanguageSettings,
                                         description="Keep thinking and answer in one language.")
    thinking_visibility: str = setting("collapsed", title="Thinking visibility",
                                       choices=("shown", "collapsed", "hidden"),
                                       description="How end users see the thinking trace; it is always kept "
                                                   "in the audit log.")
    enter_sends: bool = setting(True, title="Enter sends the message",
                                description="On: Enter sends and Shift+Enter starts a new line. Off: Ctrl+Enter "
                                            "sends and Enter starts a new line. Ctrl+Enter always sends.")
    preamble: PreambleSettings = setting(title="Safety preamble", default_factory=PreambleSettings,
                                         description="Optional text folded into the user turn.")
    guard: GuardSettings = setting(title="Guard", default_factory=GuardSettings,
                                   description="Classifiers and the moderation policy.")
    review_period: ReviewPeriodSettings = setting(title="Periodic review", default_factory=ReviewPeriodSettings,
                                                  description="Review periods, their sample and reminders.")
    remote: RemoteSettings = setting(title="Remote server", default_factory=RemoteSettings,
                                     description="An OpenAI-compatible server to chat with instead of a local file.")
    retention_days: int = setting(0, title="Audit retention (days)", minimum=0, maximum=36500,
                                  description="Turns older than this are pruned; 0 keeps everything.")
    last_model_path: str | None = setting(None, title="Last model",
                                          description="The model loaded at the end of the last session.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def policy(self) -> Policy:
        return Policy.from_config(self.guard_config())

    def chat_config(self) -> ChatConfig:
        """The immutable configuration the chat core reads (core never imports this module)."""
        g = self.generation
        return ChatConfig(
            generation=GenerationConfig(temperature=g.temperature, top_p=g.top_p, max_tokens=g.max_tokens,
                                        n_ctx=g.n_ctx, gpu_layers=g.gpu_layers, n_threads=g.n_threads, seed=g.seed),
            template=self.template, preamble=self.preamble.text if self.preamble.enabled else None,
            thinking_visibility=self.thinking_visibility, guard=self.guard_config())

    def guard_config(self) -> GuardConfig:
        """The immutable configuration the guard reads (core never sees these mutable settings)."""
        g, lang = self.guard, self.language
        return GuardConfig(
            rules={ch: {lb: (r.threshold, r.action) for lb, r in labels.items()} for ch, labels in g.rules.items()},
            channels=dict(g.channels), model_type=g.model_type, multilingual=g.multilingual, device=g.device,
            num_threads=g.num_threads, quantize=g.quantize, runtime=g.runtime, window_segments=g.window_segments,
            max_segment_chars=g.max_segment_chars, language_target=lang.target, language_action=lang.action,
            min_share=lang.min_share,
            extra={**({"review": {"version": g.feedback_model}} if g.feedback_model else {}),
                   **({"harm": {"path": g.harm_model, "n_threads": g.harm_threads,
                                "gpu_layers": g.harm_gpu_layers}} if g.harm_model else {})})


# --- migrations -------------------------------------------------------------------------------------
# MIGRATORS[n] turns a version-n dict into a version-(n+1) dict. Append-only, never edit a shipped one.
def _migrate_0_to_1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (unversioned pre-release files) kept the guard rules under a top-level "policy"."""
    data = dict(data)
    if "policy" in data:
        data.setdefault("guard", {})
        data["guard"] = {**data["guard"], "rules": data.pop("policy")}
    return data


MIGRATORS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _migrate_0_to_1}


def migrate(data: dict[str, Any], *, path: str | None = None) -> dict[str, Any]:
    version = data.get("schema_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise SettingsError(f"{path or 'settings'}: schema_version = {version!r} is not a version number",
                            path=path, key="schema_version", value=version)
    if version > SCHEMA_VERSION:
        raise SettingsError(f"{path or 'settings'} was written by a newer r1desk (schema {version}, "
                            f"this one reads up to {SCHEMA_VERSION})", path=path, key="schema_version",
                            value=version, hint="upgrade r1desk or restore an older settings file")
    while version < SCHEMA_VERSION:
        data = MIGRATORS[version](data)
        version += 1
        data["schema_version"] = version
    return data


# --- validation -------------------------------------------------------------------------------------
class _Invalid(Exception):
    def __init__(self, key: str, value: Any, why: str) -> None:
        super().__init__(why)
        self.key, self.value, self.why = key, value, why


def _check_scalar(key: str, value: Any, tp: Any, meta: Mapping[str, Any]) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise _Invalid(key, value, "must be true or false")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(key, value, "must be a whole number")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid(key, value, "must be a number")
        if not math.isfinite(value):
            raise _Invalid(key, value, "must be a finite number")
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise _Invalid(key, value, "must be text")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise _Invalid(key, value, f"must be between {lo} and {hi}")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise _Invalid(key, value, f"must be one of {', '.join(map(str, choices))}")
    return value


def _build(cls: type[_D], data: Any, prefix: str) -> _D:
    if not isinstance(data, Mapping):
        raise _Invalid(prefix.rstrip(".") or "(top level)", data, "must be an object")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            raise _Invalid(f"{prefix}{key}", data[key], "unknown setting")
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        if name not in data:
            continue
        kwargs[name] = _convert(f"{prefix}{name}", data[name], hints[name], f.metadata, cls, name)
    obj = cls(**kwargs)
    _check_object(obj, prefix)
    return obj


def _convert(key: str, value: Any, tp: Any, meta: Mapping[str, Any], owner: type, name: str) -> Any:
    if owner is GuardSettings and name == "rules":
        return _convert_rules(key, value)
    if owner is GuardSettings and name == "channels":
        if not isinstance(value, Mapping):
            raise _Invalid(key, value, "must be an object of channel: true/false")
        out = {ch: True for ch in CHANNELS}
        for ch, on in value.items():
            if ch not in CHANNELS:
                raise _Invalid(f"{key}.{ch}", on, f"unknown channel (expected {', '.join(CHANNELS)})")
            out[ch] = _check_scalar(f"{key}.{ch}", on, bool, {})
        return out
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(key, value, args[0], meta, owner, name)
    if isinstance(tp, type) and is_dataclass(tp):
        return _build(tp, value, f"{key}.")
    return _check_scalar(key, value, tp, meta)


def _convert_rules(key: str, value: Any) -> dict[str, dict[str, RuleSetting]]:
    if not isinstance(value, Mapping):
        raise _Invalid(key, value, "must be an object of channel: {label: {threshold, action}}")
    rules = _default_rules()
    for ch, labels in value.items():
        if ch not in CHANNELS:
            raise _Invalid(f"{key}.{ch}", labels, f"unknown channel (expected {', '.join(CHANNELS)})")
        if not isinstance(labels, Mapping):
            raise _Invalid(f"{key}.{ch}", labels, "must be an object of label: {threshold, action}")
        for lb, raw in labels.items():
            if lb not in known_labels():
                raise _Invalid(f"{key}.{ch}.{lb}", raw, f"unknown label (expected {', '.join(known_labels())})")
            current = asdict(rules[ch][lb]) if lb in rules[ch] else {}
            merged = {**current, **raw} if isinstance(raw, Mapping) else raw
            rule, problems = validate_rule(ch, lb, merged)
            if problems:
                suffix, bad, why = problems[0]
                raise _Invalid(f"{key}.{ch}.{lb}{suffix}", bad, why)
            assert rule is not None     # validate_rule returns a rule exactly when it finds no problem
            rules[ch][lb] = RuleSetting(rule.threshold, rule.action)
    return rules


def _check_object(obj: Any, prefix: str) -> None:
    """Cross-field and free-form checks the metadata cannot express."""
    if isinstance(obj, GenerationSettings):
        g = obj.gpu_layers
        if not (g in ("none", "all", "auto") or (isinstance(g, str) and g.isdecimal())):
            raise _Invalid(f"{prefix}gpu_layers", g, "must be none, all, auto or a number of layers")
    if isinstance(obj, RemoteSettings) and obj.url:
        if not obj.url.startswith(("http://", "https://")):
            raise _Invalid(f"{prefix}url", obj.url, "must start with http:// or https://")
        if "@" in obj.url.split("://", 1)[1].split("/", 1)[0]:
            raise _Invalid(f"{prefix}url", "<a URL with credentials>", "must not contain credentials (the API key "
                                                                      "goes into the credential store)")
    if isinstance(obj, LanguageSettings):
        t = obj.target
        if not (t in ("auto", "off") or (2 <= len(t) <= 3 and t.isalpha() and t.islower())):
            raise _Invalid(f"{prefix}target", t, "must be auto, off or a language code such as en, fr, zh")


def settings_from_dict(data: Any, *, path: str | None = None) -> Settings:
    """Validate a settings dict (any schema version) into Settings, or raise SettingsError."""
    where = path or "settings"
    if not isinstance(data, dict):
        raise SettingsError(f"{where}: the file must contain a JSON object", path=path, key=None, value=data)
    data = migrate(data, path=path)
    try:
        return _build(Settings, data, "")
    except _Invalid as exc:
        raise SettingsError(f"{where}: {exc.key} = {quote_value(exc.value)}: {exc.why}",
                            path=path, key=exc.key, value=exc.value) from None


SETTINGS_MAX_BYTES = 4 * 1024 * 1024    # a settings or policy file is a few KB
QUOTED_VALUE_CHARS = 80                 # a bad value is quoted in messages and the log up to this length


def quote_value(value: Any, limit: int = QUOTED_VALUE_CHARS) -> str:
    """A bad value as messages quote it: JSON, control characters visible, at most ``limit`` characters."""
    size = f", {len(value):,} characters" if isinstance(value, str) else ""
    if isinstance(value, str) and len(value) > limit * 4:
        value = value[:limit * 4]            # never serialise a 100 MB string just to cut it
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (ValueError, RecursionError):
        text = repr(type(value))
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                   for c in text[:limit + 1])
    if len(text) > limit:
        text = text[:limit] + f"… (cut{size})"
    return text


def _read_json(path: Path) -> Any:
    try:
        text = read_regular_file(path, SETTINGS_MAX_BYTES).decode("utf-8")
    except NotReadableFile as exc:
        raise SettingsError(f"{path}: {exc.why}", path=str(path)) from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: not a text file (it is not valid UTF-8)", path=str(path)) from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:       # JSONDecodeError is a ValueError
        raise SettingsError(f"{path}: not valid JSON (line {getattr(exc, 'lineno', '?')}: "
                            f"{getattr(exc, 'msg', exc)})", path=str(path)) from None


# --- site lock --------------------------------------------------------------------------------------
def site_policy_path() -> Path:
    return paths.site_config_dir() / SITE_POLICY_NAME


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; an empty mapping at the top has no keys (an empty one below is a value)."""
    if isinstance(data, Mapping) and (data or not prefix):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


class SitePolicyError(SettingsError):
    """The site policy exists but cannot be used: the app is locked to the safe defaults."""


def _site_error(path: Path, why: str) -> SitePolicyError:
    return SitePolicyError(f"{path}: the site policy cannot be used ({why}); every setting is locked to the "
                           f"safe defaults", path=str(path), hint="ask the site administrator to fix the file")


def _read_site_json(path: Path) -> Any:
    """The site file's JSON, None when there is none; checked with stat first (a FIFO would block)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _site_error(path, f"cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _site_error(path, "not a regular file")
    if st.st_size > SITE_POLICY_MAX_BYTES:
        raise _site_error(path, f"larger than {SITE_POLICY_MAX_BYTES} bytes")
    try:   # the shared reader: opened non-blocking and re-checked, so a FIFO swapped in now cannot hang us
        raw = read_regular_file(path, SITE_POLICY_MAX_BYTES)
    except NotReadableFile as exc:
        raise _site_error(path, f"cannot be read: {exc.why}") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _site_error(path, "not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise _site_error(path, f"not valid JSON, line {getattr(exc, 'lineno', '?')}: {getattr(exc, 'msg', exc)}") \
            from None


def read_site_overrides() -> dict[str, Any]:
    """The site policy file's keys (validated against the model), or {} when there is none.

    Raises SitePolicyError when the file exists but cannot be used (callers fail closed)."""
    path = site_policy_path()
    data = _read_site_json(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _site_error(path, "it must contain a JSON object")
    data = {k: v for k, v in data.items() if k != "schema_version"}
    # validate by applying the overrides to the defaults
    try:
        settings_from_dict(_deep_merge(Settings().to_dict(), data), path=str(path))
    except SitePolicyError:
        raise
    except SettingsError as exc:
        raise _site_error(path, str(exc)) from None
    return data


def safe_settings() -> Settings:
    """What runs while the site policy cannot be used: the defaults (guards on), every key locked."""
    return Settings()


def site_policy_problem() -> SitePolicyError | None:
    """Why the site policy cannot be used (the app is then locked to the safe defaults), or None."""
    try:
        read_site_overrides()
    except SitePolicyError as exc:
        return exc
    return None


def locked_keys() -> set[str]:
    """Dotted keys set by the site policy file: shown read-only, and saving a different value fails.

    Every key when the site policy cannot be used (fail closed)."""
    try:
        return set(_flatten(read_site_overrides()))
    except SitePolicyError as exc:
        log.error("%s", exc)
        return set(_flatten(Settings().to_dict()))


# --- load / save ------------------------------------------------------------------------------------
def load_settings(path: Path | None = None, *, apply_site: bool = True) -> Settings:
    """Read, migrate and validate the settings (defaults when there is no file); site keys win."""
    path = Path(path) if path else paths.settings_path()
    overrides: dict[str, Any] = {}
    if apply_site:
        try:                      # read and checked once; fail closed: callers run on safe_settings()
            overrides = read_site_overrides()
        except SitePolicyError as problem:
            log.error("%s", problem)
            raise
    data: dict[str, Any] = Settings().to_dict()
    if os.path.lexists(path):       # a symlink loop or a FIFO is reported, not taken for "no file"
        raw = _read_json(path)
        data = settings_from_dict(raw, path=str(path)).to_dict()
    if overrides:
        data = _deep_merge(data, overrides)
        return settings_from_dict(data, path=str(site_policy_path()))
    return settings_from_dict(data, path=str(path))


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Validate, then write atomically (temp file + rename); also refresh the last-known-good copy.

    Keys locked by the site policy must keep the site's value."""
    path = Path(path) if path else paths.settings_path()
    data = settings.to_dict()
    settings_from_dict(data, path=str(path))  # never write something we could not read back
    flat = _flatten(data)
    for key, value in _flatten(read_site_overrides()).items():
        if key in flat and flat[key] != value:
            raise SettingsError(f"{key} is locked by the site policy ({site_policy_path()})",
                                path=str(site_policy_path()), key=key, value=flat[key])
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    atomic_write_text(path, text)
    atomic_write_text(path.with_name(path.name + LAST_GOOD_SUFFIX), text)


def settings_diff(old: Settings, new: Settings) -> list[tuple[str, Any, Any]]:
    """[(dotted key, old value, new value)] for every leaf that differs (the admin view audits these)."""
    a, b = _flatten(old.to_dict()), _flatten(new.to_dict())
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def export_policy(settings: Settings, path: Path) -> None:
    """Write the guard section (policy, channels, classifier choice) as a shareable file."""
    data = {"schema_version": SCHEMA_VERSION, "guard": settings.to_dict()["guard"]}
    atomic_write_text(Path(path), json.dumps(data, indent=2) + "\n")


def import_policy(path: Path, base: Settings) -> Settings:
    """Validate a policy file and return ``base`` with its guard section replaced (not saved)."""
    path = Path(path)
    raw = _read_json(path)
    if not isinstance(raw, dict) or set(raw) - {"schema_version", "guard"} or "guard" not in raw:
        raise SettingsError(f"{path}: a policy file holds only 'schema_version' and 'guard'",
                            path=str(path), key=None, value=None)
    data = base.to_dict()
    guard = raw["guard"]        # not an object: the validation below says so
    data["guard"] = _deep_merge(Settings().to_dict()["guard"], guard) if isinstance(guard, Mapping) else guard
    data["schema_version"] = raw.get("schema_version", SCHEMA_VERSION)
    return settings_from_dict(data, path=str(path))


def describe_fields(cls: type = Settings, prefix: str = "") -> list[dict[str, Any]]:
    """Flat list of {key, title, description, choices, min, max, default} for the admin view and docs."""
    out: list[dict[str, Any]] = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        key = f"{prefix}{f.name}"
        meta = dict(f.metadata)
        if is_dataclass(hints[f.name]):
            out.append({"key": key, "title": meta["title"], "description": meta["description"], "group": True})
            out.extend(describe_fields(hints[f.name], f"{key}."))
            continue
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            raise TypeError(f"setting {key} has neither a default nor a default_factory")
        if is_dataclass(default) and not isinstance(default, type):
            default = asdict(default)
        out.append({"key": key, "title": meta["title"], "description": meta["description"],
                    "choices": meta.get("choices"), "min": meta.get("min"), "max": meta.get("max"),
                    "default": default, "group": False})
    return out


class SettingsStore:
    """The settings in force. ``reload()`` returns the problems found and keeps the previous valid
    settings when the file is invalid; on a fresh start it falls back to the last-known-good copy."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else paths.settings_path()
        self._lock = threading.Lock()
        self.current = Settings()
        self.problems: list[SettingsError] = []
        self.reload(first=True)

    @property
    def last_good_path(self) -> Path:
        return self.path.with_name(self.path.name + LAST_GOOD_SUFFIX)

    def reload(self, *, first: bool = False) -> list[SettingsError]:
        with self._lock:
            try:
                loaded = load_settings(self.path)
            except SitePolicyError as exc:   # fail closed: the safe defaults, not the previous/last-good ones
                log.error("site policy unusable, running on the safe defaults: %s", exc)
                self.current = safe_settings()
                self.problems = [exc]
                return [exc]
            except SettingsError as exc:
                log.warning("settings not applied, keeping the previous ones: %s", exc)
                problems = [exc]
                if first and self.last_good_path.exists():
                    try:
                        self.current = load_settings(self.last_good_path)
                    except SettingsError as exc2:
                        problems.append(exc2)
                self.problems = problems
                return list(problems)
            self.current = loaded
            self.problems = []
            if self.path.exists():
                try:
                    atomic_write_text(self.last_good_path, json.dumps(loaded.to_dict(), indent=2) + "\n")
                except OSError as exc:  # read-only profile: the in-memory copy still holds
                    log.warning("could not write %s: %s", self.last_good_path, exc)
            return []

    def save(self, settings: Settings) -> list[tuple[str, Any, Any]]:
        """Validate and save; returns the diff against the settings that were in force."""
        with self._lock:
            save_settings(settings, self.path)
            diff = settings_diff(self.current, settings)
            self.current = settings
            self.problems = []
            return diff

    def locked_keys(self) -> set[str]:
        return locked_keys()
