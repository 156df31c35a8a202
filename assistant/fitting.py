"""Fitting a turn's messages into the served model's context window (tokens counted with cl100k)."""

from __future__ import annotations

import json
import re
from typing import Any

from .index import count_tokens


def prompt_budget(window: int, answer_tokens: int, tokenizer_margin: float) -> int:
    """Tokens (counted with cl100k) the messages may take: the window less the answer's reserve, times the share
    the model's own tokenizer leaves (see Provider.tokenizer_margin)."""
    return max(256, int((window - answer_tokens) * tokenizer_margin))


def fit_messages(messages: list[Any], budget: int, history: int) -> int:
    """Fit the messages into `budget` tokens: older tool results are trimmed first (the evidence numbers they
    gave stay citable), then the oldest of the `history` conversation messages after the system prompt are
    dropped. The system prompt, the question with its evidence and the latest round's tool results stay.
    Returns how many conversation messages were dropped."""
    from langchain_core.messages import ToolMessage

    def size() -> int:
        return sum(count_tokens(str(m.content)) + 4 + count_tokens(json.dumps(getattr(m, "tool_calls", None) or []))
                   for m in messages)

    tool_results = [m for m in messages if isinstance(m, ToolMessage)]
    latest = 0
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        latest += 1
    for message in tool_results[: len(tool_results) - latest]:
        if size() <= budget:
            break
        if str(message.content).startswith("(trimmed"):
            continue
        numbers = re.findall(r'<evidence n="(\d+)"', str(message.content))
        cited = f"; evidence {', '.join(f'[{n}]' for n in numbers)} from it can still be cited" if numbers else ""
        message.content = f"(trimmed to fit the context window{cited})"
    dropped = 0
    while size() > budget and dropped < history:
        del messages[1]
        dropped += 1
    return dropped
