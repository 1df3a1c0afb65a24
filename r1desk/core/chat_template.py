"""A GGUF's chat template, rendered with limits on time, work, value sizes and output.

A chat template is Jinja code that comes with a downloaded model. The sandbox (Jinja's
``ImmutableSandboxedEnvironment``) stops attribute escapes; it does not stop resource attacks: two
nested ``range(100000)`` loops spin for hours, ``'A' * 3000000000`` allocates 3 GB. This module
renders templates in one guarded environment, in process (a render costs well under a millisecond
more than plain Jinja, so it runs every turn):

* the source is at most ``MAX_TEMPLATE_CHARS`` characters, compiled without constant folding (which
  would run ``'A' * 3000000000`` at compile time);
* every loop iteration, call and guarded operator is a step: at most ``MAX_STEPS`` per render, and
  the render stops after ``MAX_SECONDS``;
* ``*``, ``+``, ``%``, ``**``, ``~``, ``join`` and the padding filters and methods are checked *before*
  they allocate: no value may exceed ``MAX_VALUE_CHARS`` characters (items for lists); other calls'
  results are checked after;
* the output stops at ``MAX_OUTPUT_CHARS`` characters.

Any breach raises ``TemplateLimitError`` (a ``jinja2.TemplateError``), so callers fall back to the
built-in format exactly as for a template with a syntax error. ``check_template`` validates a
template once (syntax, limits, a sample conversation) and caches the verdict by the template's hash;
``core.gguf_info`` calls it when a file is first inspected.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

log = logging.getLogger("r1desk.prompts")

MAX_TEMPLATE_CHARS = 256 * 1024     # real templates: 1-20 KB
MAX_STEPS = 200_000                 # a 200-message chat under Qwen3's template: about 2,000
MAX_SECONDS = 2.0
MAX_VALUE_CHARS = 4_000_000         # about 1M tokens of text
MAX_OUTPUT_CHARS = 4_000_000
_CHECK_TIME_EVERY = 256
_WIDTH_IN_FORMAT = re.compile(r"%[^%a-zA-Z]*?(?:\d{7,}|\*)|\{[^{}]*?\d{7,}[^{}]*\}")
_SIZED_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "indent", "wordwrap",
                            "truncate"})


class TemplateLimitError(jinja2.TemplateError):
    """A template went over one of this module's limits."""


class _Budget:
    def __init__(self, steps: int, seconds: float) -> None:
        self.steps_left = steps
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self._tick = 0

    def step(self, n: int = 1) -> None:
        self.steps_left -= n
        if self.steps_left < 0:
            raise TemplateLimitError(f"the template took more than {MAX_STEPS} steps (loop iterations "
                                     f"and calls)")
        self._tick += n
        if self._tick >= _CHECK_TIME_EVERY:
            self._tick = 0
            if time.monotonic() > self.deadline:
                raise TemplateLimitError(f"the template ran for more than {self.seconds:g} s")


_local = threading.local()


def _budget() -> _Budget:
    budget = getattr(_local, "budget", None)
    if budget is None:      # rendered outside render_guarded (e.g. a test): fresh limits
        budget = _local.budget = _Budget(MAX_STEPS, MAX_SECONDS)
    return budget


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple, dict)) else 0


def _check_size(value: Any, what: str = "a value") -> Any:
    if _size(value) > MAX_VALUE_CHARS:
        raise TemplateLimitError(f"{what} in the template grew over {MAX_VALUE_CHARS} characters")
    return value


def _refuse_big(n: Any, what: str) -> None:
    if isinstance(n, int) and not isinstance(n, bool) and n > MAX_VALUE_CHARS:
        raise TemplateLimitError(f"{what} asks for {n} characters (the limit is {MAX_VALUE_CHARS})")


def _total_len(items: Any, sep: Any = "") -> int:
    if not isinstance(items, (list, tuple, str)):
        return 0
    total = len(sep) * max(len(items) - 1, 0) if isinstance(sep, str) else 0
    return total + sum(len(x) for x in items if isinstance(x, (str, list, tuple)))


def _precheck(name: str, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *,
              is_filter: bool = False) -> None:
    """Refuse calls whose result would be too big, before they allocate it."""
    if name in _SIZED_METHODS:
        for value in (*args, *kwargs.values()):
            _refuse_big(value, name)
    elif name == "join":
        if is_filter or not isinstance(obj, str):       # value|join(sep)
            items, sep = obj, (args[0] if args else kwargs.get("d", ""))
        else:                                           # sep.join(items)
            items, sep = (args[0] if args else ()), obj
        if _total_len(items, sep) > MAX_VALUE_CHARS:
            raise TemplateLimitError(f"join would make more than {MAX_VALUE_CHARS} characters")
    elif name == "replace" and len(args) >= 2 and isinstance(obj, str) and isinstance(args[1], str):
        hits = obj.count(args[0]) if isinstance(args[0], str) and args[0] else len(obj) + 1
        if len(obj) + hits * len(args[1]) > MAX_VALUE_CHARS:
            raise TemplateLimitError(f"replace would make more than {MAX_VALUE_CHARS} characters")
    elif name == "format" and isinstance(obj, str) and _WIDTH_IN_FORMAT.search(obj):
        raise TemplateLimitError("a format width or precision over 6 digits")


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = getattr(func, "jinja_pass_arg", None)

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _budget().step()
        rest = args[1:] if pass_arg is not None else args    # drop the context/environment argument
        if rest:
            _precheck(name, rest[0], rest[1:], kwargs, is_filter=True)
        return _check_size(func(*args, **kwargs), f"the {name} filter's result")

    return guarded


def _raise_exception(message: str) -> None:
    raise jinja2.TemplateError(message)


class GuardedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox plus a step budget, a deadline and checks on everything that can grow."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.ChainableUndefined,
                         optimized=False)   # no constant folding: it would run 'A' * 3e9 at compile time
        self.globals["raise_exception"] = _raise_exception
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.loop_guard = _loop_guard
        self.concat_guard = _concat_guard

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):       # every loop pays one step per iteration
            loop.iter = nodes.Call(nodes.EnvironmentAttribute("loop_guard"), [loop.iter], [], None, None,
                                   lineno=loop.lineno)
        for concat in list(tree.find_all(nodes.Concat)):   # `~` is not an interceptable operator
            guarded = nodes.Call(nodes.EnvironmentAttribute("concat_guard"), list(concat.nodes), [], None,
                                 None, lineno=concat.lineno)
            concat.nodes = [guarded]
        return tree

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _budget().step()
        name = getattr(__obj, "__name__", "") if not isinstance(__obj, jinja2.Undefined) else ""
        name = name if isinstance(name, str) else ""
        _precheck(name, getattr(__obj, "__self__", None), args, kwargs)
        return _check_size(super().call(__context, __obj, *args, **kwargs), f"the result of {name or 'a call'}")

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        _budget().step()
        if op == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * max(n, 0) > MAX_VALUE_CHARS:
                    raise TemplateLimitError(f"a repetition of {len(seq)} × {n} (the limit is "
                                             f"{MAX_VALUE_CHARS} characters)")
        elif op == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)) \
                    and len(left) + len(right) > MAX_VALUE_CHARS:
                raise TemplateLimitError(f"a value in the template grew over {MAX_VALUE_CHARS} characters")
        elif op == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 \
                    and right * max(abs(left).bit_length(), 1) > 4096:
                raise TemplateLimitError("a power with a result over 4096 bits")
        elif op == "%" and isinstance(left, str) and _WIDTH_IN_FORMAT.search(left):
            raise TemplateLimitError("a format width or precision over 6 digits")
        return _check_size(super().call_binop(context, op, left, right))


def _loop_guard(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _budget()
    for item in iterable:
        budget.step()
        yield item


def _concat_guard(*parts: Any) -> str:
    pieces = [str(p) for p in parts]
    if sum(map(len, pieces)) > MAX_VALUE_CHARS:
        raise TemplateLimitError(f"a value in the template grew over {MAX_VALUE_CHARS} characters")
    return "".join(pieces)


_ENV = GuardedEnvironment()
_compiled: dict[str, jinja2.Template] = {}
_compiled_lock = threading.Lock()


def compile_template(source: str) -> jinja2.Template:
    """The compiled template (cached by source); TemplateLimitError when the source is too big."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateLimitError(f"the template is {len(source)} characters (the limit is {MAX_TEMPLATE_CHARS})")
    with _compiled_lock:
        template = _compiled.get(source)
    if template is None:
        template = _ENV.from_string(source)
        with _compiled_lock:
            if len(_compiled) > 32:
                _compiled.clear()
            _compiled[source] = template
    return template


def render_guarded(source: str, context: dict[str, Any], *, max_steps: int = MAX_STEPS,
                   max_seconds: float = MAX_SECONDS, max_output: int = MAX_OUTPUT_CHARS) -> str:
    """Render with the limits above; raises jinja2.TemplateError (TemplateLimitError for a limit)."""
    template = compile_template(source)
    previous = getattr(_local, "budget", None)
    _local.budget = _Budget(max_steps, max_seconds)
    try:
        out: list[str] = []
        total = 0
        for chunk in template.generate(**context):
            total += len(chunk)
            if total > max_output:
                raise TemplateLimitError(f"the template's output passed {max_output} characters")
            out.append(chunk)
        return "".join(out)
    except (RecursionError, MemoryError, OverflowError) as exc:
        raise TemplateLimitError(f"the template failed ({type(exc).__name__})") from None
    finally:
        _local.budget = previous


# -- validation when a model file is first inspected -------------------------------------------
_SAMPLE = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello! What is 2 + 2?"},
    {"role": "assistant", "content": "2 + 2 = 4."},
    {"role": "user", "content": "Thanks. And 3 + 3?"},
]
_verdicts: dict[str, str | None] = {}
_verdict_lock = threading.Lock()


def template_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8", errors="surrogatepass")).hexdigest()


def check_template(source: str, *, bos_token: str = "", eos_token: str = "") -> str | None:
    """Why this template cannot be used (one line), or None when it renders a sample chat within the
    limits. The verdict is cached by the template's hash for the life of the process."""
    if len(source) > MAX_TEMPLATE_CHARS:
        return f"it is {len(source):,} characters long (the limit is {MAX_TEMPLATE_CHARS:,})"
    key = template_hash(source)
    with _verdict_lock:
        if key in _verdicts:
            return _verdicts[key]
    verdict: str | None = None
    try:
        for messages in (_SAMPLE, _SAMPLE[1:]):     # with and without a system turn
            try:
                render_guarded(source, {"messages": messages, "bos_token": bos_token, "eos_token": eos_token,
                                        "add_generation_prompt": True})
            except TemplateLimitError:
                raise
            except jinja2.TemplateSyntaxError:
                raise
            except jinja2.TemplateError:
                if messages is _SAMPLE:             # raise_exception("System role not supported") is fine
                    continue
                raise
    except jinja2.TemplateSyntaxError as exc:
        verdict = f"it has a syntax error (line {exc.lineno}: {str(exc.message or exc)[:200]})"
    except TemplateLimitError as exc:
        verdict = str(exc)[:300]
    except Exception as exc:  # foreign code: any failure means "not usable"
        verdict = f"it fails to render ({type(exc).__name__}: {str(exc)[:200]})"
    if verdict:
        log.warning("chat template %s… refused: %s", key[:12], verdict)
    with _verdict_lock:
        if len(_verdicts) > 256:
            _verdicts.clear()
        _verdicts[key] = verdict
    return verdict


__all__ = ["GuardedEnvironment", "MAX_OUTPUT_CHARS", "MAX_SECONDS", "MAX_STEPS", "MAX_TEMPLATE_CHARS",
           "MAX_VALUE_CHARS", "TemplateLimitError", "check_template", "compile_template", "render_guarded",
           "template_hash"]
