"""The R1 prompt layer, rendered with the real DeepSeek-R1 and SmolLM2 chat templates."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from r1desk.core import prompts
from r1desk.core.gguf_info import ModelInfo, read_model_info
from r1desk.core.prompts import (FEW_SHOT_WARNING, TEMPLATES, Message, PromptRequest, build_prompt,
                                 language_instruction, looks_few_shot, strip_thinking)
from r1desk.errors import ContextOverflowError, SettingsError, UserFacingError

USER, ASSISTANT, BOS, EOS = "<｜User｜>", "<｜Assistant｜>", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
OLD_TAIL = "{{'<｜Assistant｜>'}}{% endif %}"
NEW_TAIL = "{{'<｜Assistant｜><think>\\n'}}{% endif %}"


@pytest.fixture(scope="module")
def r1_info(tiny_r1_path: Path) -> ModelInfo:
    info = read_model_info(tiny_r1_path)
    assert info.is_r1 and info.chat_template and OLD_TAIL in info.chat_template
    return info


@pytest.fixture(scope="module")
def r1_info_new_template(r1_info: ModelInfo) -> ModelInfo:
    """The newer DeepSeek template, which appends ``<think>\\n`` after the assistant tag itself."""
    return dataclasses.replace(r1_info, chat_template=r1_info.chat_template.replace(OLD_TAIL, NEW_TAIL))


@pytest.fixture(scope="module")
def smol_info(smollm2_path: Path) -> ModelInfo:
    info = read_model_info(smollm2_path)
    assert not info.is_r1
    return info


# -- R1 rendering ---------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["old", "new"])
def test_r1_prompt_ends_with_exactly_one_think(variant, r1_info, r1_info_new_template):
    info = r1_info if variant == "old" else r1_info_new_template
    built = build_prompt(info, PromptRequest("What is 2+2?"))
    assert built.text == f"{BOS}{USER}What is 2+2?{ASSISTANT}<think>\n"
    assert built.text.count("<think>") == 1
    assert built.starts_in_thinking is True


def test_r1_folds_system_and_preamble_into_the_user_turn(r1_info):
    req = PromptRequest("Summarise this.", system="You are terse.", preamble="Be safe and kind.",
                        language="fr")
    built = build_prompt(r1_info, req)
    expected_user = ("You are terse.\n\nBe safe and kind.\n\nSummarise this.\n\n"
                     "Please answer in French, and write your reasoning in French too.")
    assert built.sent_user_text == expected_user
    # No system text before the first user tag: the template puts a system turn right after BOS.
    assert built.text == f"{BOS}{USER}{expected_user}{ASSISTANT}<think>\n"


def test_r1_history_is_resent_without_thinking(r1_info):
    history = [Message("user", "Hi"), Message("assistant", "<think>\nsecret plan\n</think>\n\nHello!"),
               Message("user", "And?"), Message("assistant", "leftover reasoning</think>Fine.")]
    built = build_prompt(r1_info, PromptRequest("Bye", history=history))
    assert "secret plan" not in built.text and "leftover" not in built.text
    assert built.text == (f"{BOS}{USER}Hi{ASSISTANT}Hello!{EOS}{USER}And?{ASSISTANT}Fine.{EOS}"
                          f"{USER}Bye{ASSISTANT}<think>\n")


def test_r1_without_template_uses_the_deepseek_format(r1_info):
    info = dataclasses.replace(r1_info, chat_template=None, bos_token=None, eos_token=None)
    history = [Message("user", "a"), Message("assistant", "b")]
    built = build_prompt(info, PromptRequest("c", history=history))
    assert built.text == f"{BOS}{USER}a{ASSISTANT}b{EOS}{USER}c{ASSISTANT}<think>\n"


def test_broken_template_falls_back_with_a_warning(r1_info):
    info = dataclasses.replace(r1_info, chat_template="{{ raise_exception('no way') }}")
    built = build_prompt(info, PromptRequest("hi"))
    assert built.text == f"{BOS}{USER}hi{ASSISTANT}<think>\n"
    assert any("no way" in w for w in built.warnings)
    bad_syntax = dataclasses.replace(r1_info, chat_template="{% for %}")
    assert build_prompt(bad_syntax, PromptRequest("hi")).text.endswith("<think>\n")
    for template in ("{{ 1 / 0 }}", "{{ (1e308 * 10) | int }}"):   # ZeroDivisionError, OverflowError
        built = build_prompt(dataclasses.replace(r1_info, chat_template=template), PromptRequest("hi"))
        assert built.text == f"{BOS}{USER}hi{ASSISTANT}<think>\n" and built.warnings, template


def test_template_cannot_escape_the_sandbox(smol_info):
    info = dataclasses.replace(smol_info, chat_template="{{ ''.__class__.__mro__[1].__subclasses__() }}")
    built = build_prompt(info, PromptRequest("hi"))
    assert "subclasses" in built.warnings[0] or "unsafe" in built.warnings[0].lower()
    assert built.text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


# -- non-R1 models --------------------------------------------------------------------------------
def test_smollm2_uses_its_own_template_with_a_system_turn(smol_info):
    built = build_prompt(smol_info, PromptRequest("Hi", system="Be brief.", template="table"))
    assert built.starts_in_thinking is False
    assert "<think>" not in built.text
    assert built.text == ("<|im_start|>system\nBe brief.<|im_end|>\n"
                          "<|im_start|>user\nHi\n\nPresent your answer as a markdown table.<|im_end|>\n"
                          "<|im_start|>assistant\n")


def test_smollm2_default_system_prompt_comes_from_its_template(smol_info):
    built = build_prompt(smol_info, PromptRequest("Hi"))
    assert built.text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")


def test_non_r1_without_template_uses_chatml(smol_info):
    info = dataclasses.replace(smol_info, chat_template=None)
    built = build_prompt(info, PromptRequest("Hi", preamble="Stay safe."))
    assert built.text == ("<|im_start|>system\nStay safe.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                          "<|im_start|>assistant\n")


# -- templates, preset, language ------------------------------------------------------------------
def test_templates_wrap_the_user_text():
    assert set(TEMPLATES) == {"plain", "step_by_step", "math", "json", "table"}
    assert TEMPLATES["plain"].apply("x") == "x"
    assert TEMPLATES["math"].apply("1+1?") == (
        "1+1?\n\nPlease reason step by step, and put your final answer within \\boxed{}.")
    assert "valid JSON" in TEMPLATES["json"].apply("list colours")
    assert "markdown table" in TEMPLATES["table"].apply("compare")
    assert "{text}" not in TEMPLATES["step_by_step"].apply("{text}")[len("{text}"):]
    for template in TEMPLATES.values():
        assert template.title and template.description


def test_unknown_template_is_a_user_facing_error(r1_info):
    with pytest.raises(SettingsError, match="unknown prompt template 'poem'"):
        build_prompt(r1_info, PromptRequest("x", template="poem"))


def test_r1_recommended_preset():
    params = prompts.R1_RECOMMENDED
    assert (params.temperature, params.top_p) == (0.6, 0.95)
    assert prompts.R1_PRESET.title == "DeepSeek-R1 recommended"
    assert prompts.R1_PRESET.system_prompt is None and prompts.R1_PRESET.force_think


def test_language_instructions():
    assert language_instruction("de") == "Please answer in German, and write your reasoning in German too."
    strong = language_instruction("ja", strong=True)
    assert "Japanese" in strong and "only" in strong and strong != language_instruction("ja")
    assert "Brazilian Portuguese" in language_instruction("pt_BR")
    assert "Spanish" in language_instruction("ES")
    assert len(prompts.LANGUAGE_NAMES) >= 30


@pytest.mark.parametrize("bad", ["xx", "", "klingon"])
def test_unknown_language_is_a_user_facing_error(bad):
    with pytest.raises(UserFacingError, match="unknown output language"):
        language_instruction(bad)


def test_strong_language_flag_reaches_the_prompt(r1_info):
    built = build_prompt(r1_info, PromptRequest("Hi", language="fr", strong_language=True))
    assert built.sent_user_text.endswith(language_instruction("fr", strong=True))


def test_strip_thinking():
    assert strip_thinking("<think>a</think>\n\nb") == "b"
    assert strip_thinking("plain answer") == "plain answer"
    assert strip_thinking("x</think>y") == "y"


# -- few-shot detection ---------------------------------------------------------------------------
FEW_SHOT = [
    "Q: What is 2+2?\nA: 4\nQ: What is 3+3?\nA: 6\nQ: What is 5+5?\nA:",
    "Question: capital of France?\nAnswer: Paris\n\nQuestion: capital of Spain?\nAnswer: Madrid\n\n"
    "Question: capital of Italy?",
    "Input: cat\nOutput: chat\nInput: dog\nOutput: chien\nInput: bird\nOutput:",
    "Example 1: the film was great -> positive\nExample 2: boring plot -> negative\nNow: loved it",
    "User: hi\nAssistant: hello\nUser: how are you\nAssistant: fine",
    "cat -> chat\ndog -> chien\nhorse -> cheval\nbird ->",
    "sea => mer\nsun => soleil\nmoon =>",
    "**Q1:** first?\n**A1:** one\n**Q2:** second?\n**A2:** two",
    "- Problem: 1+1\n- Solution: 2\n- Problem: 2+2\n- Solution: 4",
]
NOT_FEW_SHOT = [
    "What is the question of life, the universe and everything?",
    "Answer the following question: what is 2+2?",
    "Q: what's the capital of France?",
    "Input: a list of integers\nOutput: the same list, sorted. Write the function.",
    "def f(x) -> int:\n    return x\ndef g(y) -> str:\n    return y\ndef h() -> None: ...",
    "Explain how A -> B works in a pipeline.",
    "I have a question and need an answer about taxes.",
    "",
]


@pytest.mark.parametrize("text", FEW_SHOT)
def test_looks_few_shot_positives(text):
    assert looks_few_shot(text)


@pytest.mark.parametrize("text", NOT_FEW_SHOT)
def test_looks_few_shot_negatives(text):
    assert not looks_few_shot(text)


def test_few_shot_prompt_gets_a_warning_not_a_block(r1_info, smol_info):
    built = build_prompt(r1_info, PromptRequest(FEW_SHOT[0]))
    assert built.warnings == [FEW_SHOT_WARNING]
    assert built.text.endswith(f"{ASSISTANT}<think>\n")
    # Only R1 models degrade with examples: other models get no warning.
    assert build_prompt(smol_info, PromptRequest(FEW_SHOT[0])).warnings == []


# -- context policy -------------------------------------------------------------------------------
def _history(n_pairs: int) -> list[Message]:
    history: list[Message] = []
    for i in range(n_pairs):
        history += [Message("user", f"question {i} " + "word " * 40),
                    Message("assistant", f"answer {i} " + "word " * 40)]
    return history


def test_oldest_turns_are_dropped_to_fit(r1_info, tiny_r1_engine):
    history = _history(6)
    count = tiny_r1_engine.count_tokens
    full = build_prompt(r1_info, PromptRequest("latest?", history=history), count_tokens=count)
    assert full.prompt_tokens is None   # no n_ctx: nothing is counted or dropped
    full_tokens = count(full.text)
    n_ctx = full_tokens - 50
    built = build_prompt(r1_info, PromptRequest("latest?", history=history), count_tokens=count,
                         n_ctx=n_ctx, max_tokens=20)
    assert built.dropped_messages == 2
    assert built.notices == [f"Dropped 2 earlier messages to fit the model's {n_ctx}-token context"]
    assert "question 0" not in built.text and "answer 0" not in built.text
    assert "question 1" in built.text and built.text.endswith("latest?<｜Assistant｜><think>\n")
    assert built.prompt_tokens == count(built.text) and built.prompt_tokens + 20 <= n_ctx


def test_dropping_keeps_pairs_together(r1_info, tiny_r1_engine):
    history = _history(3)
    count = tiny_r1_engine.count_tokens
    n_ctx = count(build_prompt(r1_info, PromptRequest("q", history=history[2:])).text)
    built = build_prompt(r1_info, PromptRequest("q", history=history), fit_tokens=count, n_ctx=n_ctx)
    assert built.dropped_messages == 2
    assert built.text.startswith(f"{BOS}{USER}question 1")


def test_everything_dropped_when_only_the_current_turn_fits(r1_info, tiny_r1_engine):
    count = tiny_r1_engine.count_tokens
    alone = count(build_prompt(r1_info, PromptRequest("now")).text)
    built = build_prompt(r1_info, PromptRequest("now", history=_history(4)), count_tokens=count,
                         n_ctx=alone + 10, max_tokens=10)
    assert built.dropped_messages == 8
    assert built.notices == [f"Dropped 8 earlier messages to fit the model's {alone + 10}-token context"]


def test_current_turn_too_long_raises_with_numbers(r1_info, tiny_r1_engine):
    count = tiny_r1_engine.count_tokens
    req = PromptRequest("word " * 500, history=_history(2))
    with pytest.raises(ContextOverflowError) as excinfo:
        build_prompt(r1_info, req, count_tokens=count, n_ctx=256, max_tokens=100)
    message = str(excinfo.value)
    assert "256" in message and "100" in message and "shorten" in message
    assert isinstance(excinfo.value, UserFacingError)


def test_reply_reserve_counts_towards_the_context(r1_info, tiny_r1_engine):
    count = tiny_r1_engine.count_tokens
    alone = count(build_prompt(r1_info, PromptRequest("hi")).text)
    build_prompt(r1_info, PromptRequest("hi"), count_tokens=count, n_ctx=alone + 5, max_tokens=5)
    with pytest.raises(ContextOverflowError):
        build_prompt(r1_info, PromptRequest("hi"), count_tokens=count, n_ctx=alone + 5, max_tokens=6)


# -- per-model recipes (issue 14 item 8: DeepSeek-R1-0528-Qwen3-8B) --------------------------------
def _r1_0528_gguf(path: Path, name: str, arch: str, template: str) -> Path:
    """A small GGUF that says what the 0528 distill's file says: its name, R1 tokens and template."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(path, arch)
    writer.add_name(name)
    writer.add_block_count(1)
    writer.add_context_length(256)
    writer.add_token_list([BOS, EOS, USER, ASSISTANT, "<think>", "</think>", "a", "b"])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_chat_template(template)
    writer.add_tensor("token_embd.weight", np.zeros((8, 16), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize("name, arch, expected", [
    ("DeepSeek R1 0528 Qwen3 8B", "qwen3", "r1-0528"),       # what bartowski's file says
    ("DeepSeek-R1-0528-Qwen3-8B", "qwen2", "r1-0528"),       # the name alone is enough
    ("Qwen3 8B", "qwen3", "r1-0528"),                        # an R1 on Qwen3 is the 0528 distill
    ("DeepSeek R1 Distill Qwen 7B", "qwen2", "r1"),
    ("DeepSeek R1 Distill Llama 8B 105280", "llama", "r1"),  # 0528 inside a longer number is not it
])
def test_recipe_is_detected_from_the_file(tmp_path, r1_info, name, arch, expected):
    path = _r1_0528_gguf(tmp_path / "renamed-to-anything.gguf", name, arch, r1_info.chat_template)
    info = read_model_info(path)
    assert info.is_r1
    assert prompts.model_recipe(info).name == expected


def test_r1_0528_gets_its_own_recipe_system_turn_and_no_forced_think(tmp_path, r1_info):
    info = read_model_info(_r1_0528_gguf(tmp_path / "m.gguf", "DeepSeek R1 0528 Qwen3 8B", "qwen3",
                                         r1_info.chat_template))
    req = PromptRequest("Summarise this.", system="You are terse.", preamble="Be safe and kind.")
    built = build_prompt(info, req)
    assert built.recipe == "r1-0528" and built.starts_in_thinking is False
    # DeepSeek's template puts the system prompt right after BOS; the user turn is what was typed
    assert built.text == f"{BOS}You are terse.\n\nBe safe and kind.{USER}Summarise this.{ASSISTANT}"
    assert "<think>" not in built.text and built.sent_user_text == "Summarise this."
    # the same request to a first-generation distill: folded in, forced <think> (its card's recipe)
    classic = build_prompt(r1_info, req)
    assert classic.recipe == "r1" and classic.starts_in_thinking is True
    assert classic.text.endswith(f"{ASSISTANT}<think>\n") and classic.text.startswith(f"{BOS}{USER}You are terse.")


def test_r1_0528_with_a_broken_template_falls_back_with_the_system_turn(tmp_path, r1_info):
    info = dataclasses.replace(read_model_info(_r1_0528_gguf(tmp_path / "m.gguf", "DeepSeek R1 0528", "qwen3",
                                                             r1_info.chat_template)),
                               chat_template="{% broken", chat_template_problem="syntax error")
    built = build_prompt(info, PromptRequest("Hi", system="Be brief."))
    assert built.text == f"{BOS}Be brief.{USER}Hi{ASSISTANT}" and built.template_fallback


def test_few_shot_warning_applies_to_every_r1_recipe(tmp_path, r1_info, smol_info):
    text = "Q: 1+1\nA: 2\nQ: 2+2\nA: 4\nQ: 3+3"
    info = read_model_info(_r1_0528_gguf(tmp_path / "m.gguf", "DeepSeek R1 0528", "qwen3", r1_info.chat_template))
    assert FEW_SHOT_WARNING in build_prompt(info, PromptRequest(text)).warnings
    assert build_prompt(smol_info, PromptRequest(text)).recipe == "native"
