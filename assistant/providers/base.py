"""What a model provider is, and the errors litassist raises for every provider's failures.

A provider makes the chat model, says how long a prompt its model accepts and what it costs, and turns its own
client's exceptions into litassist's (`ProviderError` and subclasses), so no caller ever catches a vendor type.
LangChain's standard model exceptions (`langchain_core.exceptions.ModelError`, raised by recent integrations)
are classified here once, so a provider built on any LangChain chat model gets useful messages for free.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from langchain_core import exceptions as lc

from ..errors import ContextLengthError, ProviderError, RequestRefusedError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from ..config import Settings


_CONTEXT_ERROR = re.compile(
    r"context[ _](?:length|window|size)|maximum context|n_ctx|too many tokens|prompt is too long", re.IGNORECASE)
_WINDOW_IN_ERROR = re.compile(r"(?:context (?:length|window|size)|n_ctx)\D{0,24}?(\d{3,7})", re.IGNORECASE)


def says_context_overflow(message: str) -> bool:
    """Whether a server's error text says the prompt is longer than the context window."""
    return bool(_CONTEXT_ERROR.search(message))


def context_length_error(message: str) -> ContextLengthError:
    """The overflow error for a server's message, with the window it names (llama.cpp, vLLM and OpenAI do)."""
    found = _WINDOW_IN_ERROR.search(message)
    window = int(found.group(1)) if found else None
    return ContextLengthError(f"the prompt is longer than the model's context window ({window or 'unknown'} tokens): "
                              "lower LITASSIST_LLM_CONTEXT_WINDOW or LITASSIST_EVIDENCE_K", window)


# LangChain's standard exceptions -> the line the user reads (the most specific class first).
_STANDARD_LINES: list[tuple[type[BaseException], str]] = [
    (lc.ModelAuthenticationError, "the model provider rejected the credentials: check its API key"),
    (lc.ModelPermissionDeniedError, "the model provider denied this request: check the key's permissions"),
    (lc.ModelNotFoundError, "the model provider does not know this model (LITASSIST_LLM_MODEL)"),
    (lc.ModelRateLimitError, "rate limited by the model provider even after retries: wait a minute"),
    (lc.ModelTimeoutError, "the model did not answer in time (LITASSIST_LLM_TIMEOUT)"),
    (lc.ModelConnectionError, "cannot reach the model provider: is it running, and is its address right?"),
    (lc.ModelAPIError, "the model provider failed on its side; try again later"),
]


def classify_standard(error: BaseException) -> ProviderError | None:
    """litassist's error for one of LangChain's standard model exceptions; None for anything else."""
    if isinstance(error, ProviderError):
        return error
    if isinstance(error, lc.ContextOverflowError):
        return context_length_error(str(error))
    if isinstance(error, lc.ModelInvalidRequestError):
        return RequestRefusedError(f"the model provider refused the request: {str(error)[:200]}")
    line = next((text for kind, text in _STANDARD_LINES if isinstance(error, kind)), None)
    if line is not None:
        return ProviderError(line)
    if isinstance(error, lc.ModelError):
        return ProviderError(f"the model failed: {type(error).__name__}: {str(error)[:200]}")
    return None


class Provider(ABC):
    """One source of chat models. Subclass it, set `name` and `description`, and register the class under the
    `litassist.providers` entry-point group (see docs/extending.md); litassist needs no change."""

    name: ClassVar[str]
    description: ClassVar[str]  # one line: what it is and what it needs (shown in the app and `--help`)
    # `LITASSIST_LLM_PROVIDER=auto` tries providers in ascending `auto_order` and takes the first `configured`
    # one; None: chosen only by name.
    auto_order: ClassVar[int | None] = None
    # Prompts are counted with cl100k; a model with another tokenizer gets this share of its window (others' run
    # up to ~1.12x cl100k on abstracts).
    tokenizer_margin: ClassVar[float] = 0.9

    def configured(self, settings: Settings) -> bool:
        """Whether the settings give this provider what it needs (for `auto`)."""
        return False

    def model_name(self, settings: Settings) -> str | None:
        """The model answering: LITASSIST_LLM_MODEL, else the provider's default; None when there is no model."""
        return settings.llm_model or "default"

    @abstractmethod
    def chat_model(self, settings: Settings) -> BaseChatModel | None:
        """The LangChain chat model; None means no generative model (answers are extractive)."""

    def context_window(self, settings: Settings) -> int | None:
        """Tokens the served model accepts, when the provider knows; None: LITASSIST_LLM_CONTEXT_WINDOW."""
        return None

    def price(self, model: str | None) -> tuple[float, float] | None:
        """USD per million (prompt, completion) tokens, when known; cost is reported only then."""
        return None

    def error_types(self) -> tuple[type[BaseException], ...]:
        """The exceptions its chat model raises when the model (not litassist) fails."""
        return (lc.ModelError,)

    def classify(self, error: BaseException, settings: Settings) -> ProviderError | None:
        """litassist's error for a failure of this provider's model (None: not a model failure, i.e. a bug)."""
        return classify_standard(error)
