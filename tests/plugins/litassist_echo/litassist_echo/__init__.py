"""The `echo` provider: a deterministic chat model that answers with the title of evidence [1], cited.

It shows the whole plugin surface: a `Provider` subclass (name, description, the chat model, its window, its
price, its errors) registered under the `litassist.providers` entry point in this package's pyproject.toml.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from assistant.providers import Provider, ProviderError

_FIRST_EVIDENCE = re.compile(r'<evidence n="1"[^>]*>\n([^\n]*)')


class EchoUnavailable(Exception):
    """What the echo model raises when asked to fail (its own type, which litassist must never see)."""


class EchoChatModel(BaseChatModel):
    """Names the first evidence of the prompt and cites it; "fail" in the question raises EchoUnavailable."""

    @property
    def _llm_type(self) -> str:
        return "echo"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        prompt = str(messages[-1].content)
        if "please fail" in prompt:
            raise EchoUnavailable("the echo server is down")
        found = _FIRST_EVIDENCE.search(prompt)
        text = f"The closest paper is “{found.group(1)}” [1]." if found else "Nothing to echo."
        usage = {"input_tokens": len(prompt.split()), "output_tokens": len(text.split()),
                 "total_tokens": len(prompt.split()) + len(text.split())}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text, usage_metadata=usage))])


class EchoProvider(Provider):
    name = "echo"
    description = "an example plugin: names the first evidence, cited (tests/plugins/litassist_echo)"

    def model_name(self, settings: Any) -> str:
        return settings.llm_model or "echo-1"

    def chat_model(self, settings: Any) -> EchoChatModel:
        return EchoChatModel()

    def context_window(self, settings: Any) -> int:
        return 4096

    def price(self, model: str | None) -> tuple[float, float]:
        return (1.0, 2.0)  # USD per million prompt / completion tokens

    def error_types(self) -> tuple[type[BaseException], ...]:
        return (EchoUnavailable,)

    def classify(self, error: BaseException, settings: Any) -> ProviderError | None:
        if isinstance(error, EchoUnavailable):
            return ProviderError(f"the echo model failed: {error}; try again later")
        return super().classify(error, settings)
