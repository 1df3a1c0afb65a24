"""Hostile chat templates: refused when the file is inspected, bounded when rendered, and a turn falls
back to the built-in format with a notice of kind "template_fallback" (not "few_shot")."""
from __future__ import annotations

import dataclasses
import resource
import time
from pathlib import Path

import pytest

from r1desk.core import chat_template
from r1desk.core.chat_template import TemplateLimitError, check_template, render_guarded
from r1desk.core.gguf_info import read_model_info
from r1desk.core.prompts import PromptRequest, build_prompt
from tests.hostile import builders as b

HOSTILE = {**b.TEMPLATES, "big_50mb": None}
MESSAGES = {"messages": [{"role": "user", "content": "hi"}], "bos_token": "", "eos_token": "",
            "add_generation_prompt": True}


def _template(name: str) -> str:
    return b.big_template() if name == "big_50mb" else b.TEMPLATES[name]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_template_is_refused_at_inspection_in_bounded_time(name: str, tmp_path: Path) -> None:
    path = b.template_model(tmp_path / "m.gguf", _template(name))
    before = _peak_rss_mb()
    started = time.perf_counter()
    info = read_model_info(path)
    assert time.perf_counter() - started < 3.0
    assert _peak_rss_mb() - before < 200                   # the 50 MB source is read, never rendered
    assert info.chat_template_problem, name


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_template_falls_back_with_the_right_notice(name: str, tmp_path: Path) -> None:
    info = read_model_info(b.template_model(tmp_path / "m.gguf", "{{ messages[0]['content'] }}"))
    hostile = dataclasses.replace(info, chat_template=_template(name))    # as if it passed inspection
    started = time.perf_counter()
    built = build_prompt(hostile, PromptRequest("hello"))
    assert time.perf_counter() - started < 3.0
    assert built.text == "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"   # built-in ChatML
    assert built.template_fallback and built.template_fallback in built.warnings


def test_limits_bound_the_work_not_just_the_source() -> None:
    with pytest.raises(TemplateLimitError, match="steps"):
        render_guarded(b.TEMPLATES["nested_range"], MESSAGES, max_steps=10_000)
    with pytest.raises(TemplateLimitError, match="output"):
        render_guarded("{% for i in range(100000) %}xxxxxxxxxx{% endfor %}", MESSAGES, max_output=50_000)
    for source in ("{{ 'a'.center(10**9) }}", "{{ 'ab'.replace('', 'x' * 3000000) }}",
                   "{{ (['x' * 3000000] * 3) | join }}", "{{ '{:>999999999}'.format(1) }}",
                   "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}"):
        with pytest.raises(TemplateLimitError):
            render_guarded(source, MESSAGES)


def test_ordinary_templates_pass_and_the_verdict_is_cached() -> None:
    chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    assert check_template(chatml) is None
    assert chat_template.template_hash(chatml) in chat_template._verdicts
    started = time.perf_counter()
    for _ in range(100):
        check_template(chatml)
    assert time.perf_counter() - started < 0.05


def test_real_r1_template_renders_the_same_as_plain_jinja(r1_source_path: Path) -> None:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from r1desk.core.gguf_info import read_gguf_header

    # the package holds the first part of a split file: its header is whole, its data is not
    template = read_gguf_header(r1_source_path, header_only=True).fields["tokenizer.chat_template"]
    assert check_template(template) is None
    messages = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
                {"role": "user", "content": "3+3?"}]
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.ChainableUndefined)
    context = {"messages": messages, "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": True}
    assert render_guarded(template, context) == env.from_string(template).render(**context)
