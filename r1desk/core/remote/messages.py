"""The R1 recipe as chat messages, for a server that applies the model's template itself.

Same rules as ``core.prompts.build_prompt``, by the model's recipe: for a first-generation R1 distill no system
turn (system text and the safety preamble are folded into the user turn with the template and the language
instruction; R1-0528 takes them as a system turn), earlier answers
re-sent without their thinking, the few-shot warning, and the oldest turns dropped (with a notice) until
the conversation fits the server's context. ``BuiltPrompt.text`` is the exact JSON of the messages sent,
so the audit log's "prompt sent" is what the server received.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from r1desk.core.prompts import (FEW_SHOT_WARNING, BuiltPrompt, Message, PromptRequest, Recipe,
                                 chat_messages, compose_user_text, looks_few_shot)
from r1desk.errors import ContextOverflowError

MESSAGE_OVERHEAD_TOKENS = 4           # role markers around each message in a chat template


def _drop_oldest(history: list[Message]) -> list[Message]:
    rest = history[1:]
    while rest and rest[0].role == "assistant":
        rest = rest[1:]
    return rest


def build_messages(req: PromptRequest, *, recipe: Recipe, count_tokens: Callable[[str], int], n_ctx: int,
                   max_tokens: int) -> BuiltPrompt:
    """The chat messages ``recipe`` calls for (see ``core.prompts``): the first R1 distills fold the system
    text into the user turn and start in thinking; R1-0528 takes a system turn and opens ``<think>`` itself."""
    system_turn = recipe.system_turn
    user_text = compose_user_text(req, fold_system=not system_turn)
    warnings = [FEW_SHOT_WARNING] if recipe.is_r1 and looks_few_shot(req.user_text) else []

    def size(messages: list[dict[str, str]]) -> int:
        return sum(count_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in messages)

    history = list(req.history)
    messages = chat_messages(req, history, user_text, system_turn=system_turn)
    tokens = size(messages)
    while tokens + max_tokens > n_ctx and history:
        history = _drop_oldest(history)
        messages = chat_messages(req, history, user_text, system_turn=system_turn)
        tokens = size(messages)
    if tokens + max_tokens > n_ctx:
        raise ContextOverflowError(
            f"the message needs about {tokens} tokens plus {max_tokens} reserved for the reply, but the "
            f"server's context holds {n_ctx} tokens",
            hint="shorten the message or lower the maximum reply length")
    dropped = len(req.history) - len(history)
    notices = []
    if dropped:
        notices.append(f"Dropped {dropped} earlier message{'s' if dropped != 1 else ''} to fit the "
                       f"server's {n_ctx}-token context")
    return BuiltPrompt(text=json.dumps(messages, ensure_ascii=False, indent=1), starts_in_thinking=recipe.force_think,
                       notices=notices, warnings=warnings, sent_user_text=user_text, dropped_messages=dropped,
                       prompt_tokens=tokens, messages=messages)
