"""Run a guard model (GGUF) through llama.cpp and return Verdicts.

    judge = GuardModelJudge(path, n_threads=2, n_gpu_layers=0)       # profile detected from the GGUF
    judge.judge_prompt(prompt)                   -> Verdict
    judge.judge_thinking(prompt, thinking)       -> Verdict   (thinking so far, or one chunk)
    judge.judge_answer(prompt, answer)           -> Verdict   (answer so far, or one chunk)
    judge.last_stats                             -> JudgeStats (tokens in, evaluated, out, seconds)

Greedy decoding (top_k 1) with a small max_tokens; the verdict is parsed by the profile's strict
parser. The GGUF's own chat template is used (rendered by core.chat_template's guarded renderer,
with limits on steps, time and size); the profile's built-in template reproduces the documented
format when the file carries none or it fails to render.

KV-cache reuse: every call of the same kind renders the same prefix (task, policy, categories,
the user's prompt) and llama-cpp-python's prefix matching evaluates only what differs. Judging the
channel text *so far* (each call extends the last) reuses everything up to the previous chunk;
judging one chunk at a time reuses the prefix up to the judged text. ``last_stats`` reports
``evaluated_tokens`` (prompt tokens actually run through the model) per call.

Judged texts can never inject control tokens: the rendered prompt is tokenised piecewise, the
template's own special tokens parsed as such and every other run (judged texts included) with
special-token parsing off. The probability (``Verdict.probability``) is read from the logits at
the decision token (after the profile's ``decision_prefix``), normalised over the verdict words.

One lock serialises load, unload and judging (a llama.cpp context serves one sequence at a time).
The model loads lazily on first use; a missing or unusable file raises ClassifierUnavailableError.
"""
from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2

from r1desk.core.guard.harm.profiles import GuardProfile, Mode, combine, detect_profile
from r1desk.core.guard.harm.verdict import Verdict
from r1desk.errors import ClassifierUnavailableError, ModelFileError

log = logging.getLogger("r1desk.guard.harm")

Kind = Literal["prompt", "thinking", "answer"]
_OPEN, _CLOSE = "\ue000", "\ue001"          # marks around judged texts while rendering
_MARKS = re.compile(f"[{_OPEN}{_CLOSE}]")
MAX_PROMPT_CHARS = 8_000                    # the user's prompt is cut to its start beyond this
MAX_RENDER_CHARS = 400_000                  # a guard prompt is a few KB; far above any n_ctx


@dataclass(frozen=True)
class JudgeRequest:
    kind: Kind
    prompt: str
    text: str | None            # None for kind "prompt"
    risk: str | None = None


@dataclass(frozen=True)
class JudgeStats:
    """One model call: ``prompt_tokens`` rendered, ``evaluated_tokens`` of them run through the model
    (the rest came from the KV cache), ``generated_tokens``, wall ``seconds``, and whether the
    judged text had to be cut to fit ``n_ctx`` (``truncated``)."""

    prompt_tokens: int
    evaluated_tokens: int
    generated_tokens: int
    seconds: float
    truncated: bool
    template: Literal["gguf", "builtin"]


class _Shortcuts:
    """``judge_prompt`` / ``judge_thinking`` / ``judge_answer`` over a class's ``judge(JudgeRequest)``."""

    def judge(self, request: JudgeRequest) -> Verdict:
        raise NotImplementedError

    def judge_prompt(self, prompt: str) -> Verdict:
        return self.judge(JudgeRequest("prompt", prompt, None))

    def judge_thinking(self, prompt: str, thinking: str) -> Verdict:
        return self.judge(JudgeRequest("thinking", prompt, thinking))

    def judge_answer(self, prompt: str, answer: str) -> Verdict:
        return self.judge(JudgeRequest("answer", prompt, answer))


class GuardModelJudge(_Shortcuts):
    """A guard GGUF behind a lock. See the module docstring."""

    def __init__(self, path: str | os.PathLike[str], profile: GuardProfile | None = None, *,
                 n_threads: int = 1, n_gpu_layers: int = 0, n_ctx: int = 4096,
                 max_tokens: int | None = None, risks: tuple[str, ...] | None = None) -> None:
        self.path = Path(path).expanduser()
        self._profile = profile
        self.n_threads = max(1, int(n_threads))
        self.n_gpu_layers = int(n_gpu_layers)
        self.n_ctx = int(n_ctx)
        self._max_tokens = max_tokens
        self._risks = risks
        self._lock = threading.RLock()
        self._llm: Any = None
        self._template: str | None = None
        self._bos = ""
        self._eos = ""
        self._special_ids: dict[str, int] = {}
        self._decision_ids: dict[int, str] | None = None
        self._vocab: Any = None
        self.last_stats: JudgeStats | None = None
        self.history: deque[JudgeStats] = deque(maxlen=256)

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def profile(self) -> GuardProfile:
        if self._profile is None:
            self.load()
        assert self._profile is not None
        return self._profile

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    @property
    def risks(self) -> tuple[str, ...]:
        return self._risks if self._risks is not None else self.profile.risks

    def load(self) -> None:
        """Load the model now (judging loads it on first use). Raises ClassifierUnavailableError."""
        with self._lock:
            if self._llm is not None:
                return
            from r1desk.core.engine import _flush_native_log, _llama
            from r1desk.core.gguf_info import read_model_info

            try:
                info = read_model_info(self.path)
            except ModelFileError as exc:
                raise ClassifierUnavailableError(f"guard model unavailable: {exc.message}",
                                                 hint="choose or import a guard model in the model manager") from exc
            profile = self._profile or detect_profile(info.name, info.chat_template)
            if profile is None:
                raise ClassifierUnavailableError(
                    f"{self.path.name} is not a supported guard model (Qwen3Guard-Gen, Llama Guard 3, "
                    "Granite Guardian 3.x)")
            template = info.chat_template if info.chat_template and not info.chat_template_problem else None
            if template is None and profile.builtin_template is None:
                raise ClassifierUnavailableError(
                    f"{self.path.name} carries no usable chat template, and {profile.name} needs its own",
                    hint=info.chat_template_problem)
            llama_cpp = _llama()
            _flush_native_log()
            try:
                llm = llama_cpp.Llama(model_path=str(info.path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                                      n_threads_batch=self.n_threads, n_gpu_layers=self.n_gpu_layers,
                                      logits_all=False, verbose=False)
            except (ValueError, RuntimeError, OSError) as exc:
                errors = _flush_native_log()
                raise ClassifierUnavailableError(
                    f"llama.cpp could not load the guard model {self.path.name}: "
                    f"{errors[-1] if errors else exc}") from exc
            _flush_native_log()
            self._llm = llm
            self._profile = profile
            self._template = template
            self._bos, self._eos = info.bos_token or "", info.eos_token or ""
            self._special_ids = {}
            for tok in profile.special_tokens:
                ids = llm.tokenize(tok.encode(), add_bos=False, special=True)
                if len(ids) == 1:
                    self._special_ids[tok] = ids[0]
            self._decision_ids = self._decision_tokens(llm, profile)
            self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
            log.info("guard model %s loaded as %s (template: %s, n_ctx %d, threads %d, gpu layers %d)",
                     info.name, profile.id, "gguf" if template else "builtin", self.n_ctx, self.n_threads,
                     self.n_gpu_layers)

    def unload(self) -> None:
        with self._lock:
            llm, self._llm = self._llm, None
            if llm is not None:
                llm.close()

    close = unload

    # -- judging ------------------------------------------------------------------------------
    def judge(self, request: JudgeRequest) -> Verdict:
        """One verdict for the request (one model call per risk for multi-risk profiles)."""
        with self._lock:
            self.load()
            mode: Mode = "prompt" if request.kind == "prompt" else "response"
            risks = self.risks or (None,)
            verdicts = [self._judge_once(request, mode, risk) for risk in risks]
            return combine(verdicts)

    def _judge_once(self, request: JudgeRequest, mode: Mode, risk: str | None) -> Verdict:
        profile = self._profile
        assert profile is not None and self._llm is not None
        started = time.perf_counter()
        tokens, truncated, source = self._fit(request, risk)
        # input_ids is the whole n_ctx buffer: only its first n_tokens are in the KV cache (the rest are
        # stale tokens of earlier, longer calls, or of any call before a reset)
        evaluated = _evaluated_tokens(list(self._llm.input_ids[: self._llm.n_tokens]), tokens)
        raw, probability, generated = self._generate(tokens)
        stats = JudgeStats(len(tokens), evaluated, generated, time.perf_counter() - started, truncated, source)
        self.last_stats = stats
        self.history.append(stats)
        return profile.parse(raw, mode, risk=risk, probability=probability)

    # -- rendering and tokenising -------------------------------------------------------------
    def _fit(self, request: JudgeRequest, risk: str | None) -> tuple[list[int], bool, Literal["gguf", "builtin"]]:
        """Tokens for the request, the judged text cut from its start until it fits n_ctx."""
        budget = self.n_ctx - self._max_new_tokens() - 1
        prompt = _strip_marks(request.prompt)[:MAX_PROMPT_CHARS]
        text = _strip_marks(request.text) if request.text is not None else None
        truncated = len(request.prompt) > MAX_PROMPT_CHARS
        while True:
            tokens, source = self._tokens(prompt, text, risk)
            if len(tokens) <= budget:
                return tokens, truncated, source
            truncated = True
            over = len(tokens) - budget
            if text:                                       # keep the latest part of the judged text
                cut = max(over * 3, len(text) // 8, 16)
                text = text[cut:] if cut < len(text) else ""
            elif len(prompt) > 16:
                prompt = prompt[: max(16, len(prompt) - max(over * 3, len(prompt) // 8))]
            else:
                raise ClassifierUnavailableError(
                    f"the guard model's context ({self.n_ctx} tokens) is too small for its own prompt")

    def _tokens(self, prompt: str, text: str | None, risk: str | None) -> tuple[list[int], Literal["gguf", "builtin"]]:
        assert self._profile is not None and self._llm is not None
        rendered, source = self._render(prompt, text, risk)
        return self._tokenize_rendered(rendered), source

    def _render(self, prompt: str, text: str | None, risk: str | None) -> tuple[str, Literal["gguf", "builtin"]]:
        from r1desk.core.chat_template import render_guarded

        profile = self._profile
        assert profile is not None
        messages = _mark_messages(profile.messages(prompt, text))
        context = {"messages": messages, "add_generation_prompt": True, "bos_token": self._bos,
                   "eos_token": self._eos, **profile.template_variables(risk)}
        expected = len(messages)
        templates: tuple[tuple[Literal["gguf", "builtin"], str | None], ...] = (
            ("gguf", self._template), ("builtin", profile.builtin_template))
        for source, template in templates:
            if not template:
                continue
            try:
                out = render_guarded(template, context, max_output=MAX_RENDER_CHARS)
            except jinja2.TemplateError as exc:
                log.warning("%s chat template of %s failed (%s); trying the next", source, self.path.name, exc)
                continue
            if out.count(_OPEN) == expected and out.count(_CLOSE) == expected:
                return out, source
            log.warning("%s chat template of %s did not render every judged text once; trying the next",
                        source, self.path.name)
        raise ClassifierUnavailableError(f"the chat template of {self.path.name} cannot render a guard prompt")

    def _tokenize_rendered(self, rendered: str) -> list[int]:
        """Template special tokens as tokens; every other run, judged texts included, as plain text."""
        llm = self._llm
        specials = sorted(self._special_ids, key=len, reverse=True)
        split = re.compile("|".join(re.escape(s) for s in specials)) if specials else None
        tokens: list[int] = []
        run: list[str] = []

        def flush() -> None:
            if run:
                tokens.extend(llm.tokenize("".join(run).encode("utf-8"), add_bos=False, special=False))
                run.clear()

        for i, piece in enumerate(re.split(f"[{_OPEN}{_CLOSE}]", rendered)):
            if i % 2 == 1 or split is None:                # inside marks: a judged text
                run.append(piece)
                continue
            pos = 0
            for m in split.finditer(piece):
                run.append(piece[pos:m.start()])
                flush()
                tokens.append(self._special_ids[m.group(0)])
                pos = m.end()
            run.append(piece[pos:])
        flush()
        return tokens

    # -- decoding -----------------------------------------------------------------------------
    def _max_new_tokens(self) -> int:
        return self._max_tokens or (self._profile.max_tokens if self._profile else 24)

    def _generate(self, tokens: list[int]) -> tuple[str, float | None, int]:
        llm = self._llm
        profile = self._profile
        assert llm is not None and profile is not None
        out: list[int] = []
        text = ""
        probability: float | None = None
        eos = llm.token_eos()
        gen = llm.generate(tokens, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True)
        try:
            for token in gen:
                if probability is None and text.strip() == profile.decision_prefix:
                    probability = self._probability()
                if token == eos or self._is_eog(token):
                    break
                out.append(token)
                text = llm.detokenize(out, special=True).decode("utf-8", errors="replace")
                stop_at = min((text.find(s) for s in profile.stop if s in text), default=-1)
                if stop_at >= 0:
                    text = text[:stop_at]
                    break
                if len(out) >= self._max_new_tokens():
                    break
        finally:
            gen.close()
        return text, probability, len(out)

    def _probability(self) -> float | None:
        """P(not safe) at the decision token, normalised over the verdict words' first tokens."""
        if not self._decision_ids:
            return None
        import numpy as np

        from r1desk.core.engine import _llama

        llama_cpp = _llama()
        llm = self._llm
        ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        if not ptr:
            return None
        logits = np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),))
        ids = list(self._decision_ids)
        chosen = logits[ids].astype(np.float64)
        top = float(logits.max())
        weights = np.exp(chosen - top)
        total = float(weights.sum())
        if not math.isfinite(total) or total <= 0:
            return None
        unsafe = sum(float(w) for w, i in zip(weights, ids) if self._decision_ids[i] == "unsafe")
        return unsafe / total

    def _is_eog(self, token: int) -> bool:
        """End-of-generation tokens (eos, eot, ...) from the model's vocabulary."""
        if self._vocab is None:
            return False
        from r1desk.core.engine import _llama

        return bool(_llama().llama_vocab_is_eog(self._vocab, token))

    @staticmethod
    def _decision_tokens(llm: Any, profile: GuardProfile) -> dict[int, str] | None:
        """First token of each verdict word -> "safe"/"unsafe"; None if two words share one."""
        out: dict[int, str] = {}
        for word, label in profile.decision_words.items():
            ids = llm.tokenize(word.encode(), add_bos=False, special=False)
            if not ids or ids[0] in out:
                return None
            out[ids[0]] = label
        return out or None


def _strip_marks(text: str) -> str:
    return _MARKS.sub("", text)


def _mark_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Wrap each message's text in the private-use marks (string or list-of-parts content)."""
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            content = f"{_OPEN}{content}{_CLOSE}"
        else:
            content = [{**part, "text": f"{_OPEN}{part['text']}{_CLOSE}"} for part in content]
        out.append({**m, "content": content})
    return out


def _evaluated_tokens(cached: list[int], tokens: list[int]) -> int:
    """How many of ``tokens`` llama-cpp-python's prefix matching will run through the model."""
    common = 0
    for a, b in zip(cached, tokens):
        if a != b:
            break
        common += 1
    if common == len(tokens):
        return 1 if tokens else 0                  # it replays one token to refresh the logits
    return len(tokens) - common


class ScriptedJudge(_Shortcuts):
    """A judge for tests: returns queued raw outputs, parsed by the SAME profile parser.

    ``outputs`` is a list of raw strings (used in order; one per check, so Granite with two risks
    takes two) or a function of the JudgeRequest. ``requests`` records every request."""

    def __init__(self, profile: GuardProfile, outputs: Iterable[str] | Callable[[JudgeRequest], str], *,
                 risks: tuple[str, ...] | None = None) -> None:
        self._profile = profile
        self._risks = risks
        self._fn = outputs if callable(outputs) else None
        self._queue: deque[str] = deque() if callable(outputs) else deque(outputs)
        self._lock = threading.Lock()
        self.requests: list[JudgeRequest] = []
        self.loaded = False

    @property
    def profile(self) -> GuardProfile:
        return self._profile

    @property
    def risks(self) -> tuple[str, ...]:
        return self._risks if self._risks is not None else self._profile.risks

    def load(self) -> None:
        self.loaded = True

    def unload(self) -> None:
        self.loaded = False

    close = unload

    def judge(self, request: JudgeRequest) -> Verdict:
        with self._lock:
            self.loaded = True
            mode: Mode = "prompt" if request.kind == "prompt" else "response"
            verdicts = []
            for risk in self.risks or (None,):
                req = JudgeRequest(request.kind, request.prompt, request.text, risk)
                self.requests.append(req)
                if self._fn is not None:
                    raw = self._fn(req)
                elif self._queue:
                    raw = self._queue.popleft()
                else:
                    raise RuntimeError("ScriptedJudge: no scripted output left")
                verdicts.append(self._profile.parse(raw, mode, risk=risk))
            return combine(verdicts)
