"""The configured chat model: the provider the settings choose (see assistant.providers), its model, the window
it accepts, what a call costs, and one clear line when it fails. Callers never see a provider's own types."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from .config import Settings
from .errors import ContextLengthError, ProviderError, RequestRefusedError
from .providers import get_provider, providers, resolve_provider

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = [
    "ChatSetup",
    "ContextLengthError",
    "ProviderError",
    "RequestRefusedError",
    "chat_model",
    "classify_error",
    "context_window",
    "cost_usd",
    "describe_error",
    "message_usage",
    "model_errors",
    "model_name",
    "resolve_provider",
    "tokenizer_margin",
]


class ChatSetup(NamedTuple):
    """The chat model (None: offline, extractive answers), its provider and model name: built once per library."""

    model: Any
    provider: str
    model_name: str | None


def model_name(settings: Settings, provider: str) -> str | None:
    return get_provider(provider).model_name(settings)


def chat_model(settings: Settings) -> BaseChatModel | None:
    """The configured chat model, or None for a provider without one (offline)."""
    return get_provider(resolve_provider(settings)).chat_model(settings)


def model_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the model failed" (as opposed to a bug), of every provider: for
    `except model_errors():` where the model is called outside the agent (summaries, re-ranking)."""
    kinds = {kind for provider in providers().values() for kind in provider.error_types()}
    return ProviderError, *sorted(kinds, key=lambda kind: kind.__qualname__)


def classify_error(error: BaseException, settings: Settings) -> ProviderError | None:
    """litassist's error for a model failure of the configured provider; None when it is not one (a bug)."""
    if isinstance(error, ProviderError):
        return error
    try:
        provider = get_provider(resolve_provider(settings))
    except ProviderError:
        return None
    return provider.classify(error, settings)


def describe_error(error: BaseException, settings: Settings) -> str:
    """One line for a model failure: what went wrong and what to do."""
    failure = classify_error(error, settings)
    if failure is not None:
        return str(failure)
    return f"the model failed: {type(error).__name__}: {str(error)[:200]}"


def context_window(settings: Settings) -> int:
    """Tokens the served model accepts: what the provider knows (the local server's n_ctx, a known OpenAI model's
    window, what an OpenAI-compatible server reports), else LITASSIST_LLM_CONTEXT_WINDOW. A window set explicitly
    in the settings is a ceiling on what the server reports."""
    served = get_provider(resolve_provider(settings)).context_window(settings)
    if served is None:
        return settings.llm_context_window
    if "llm_context_window" in settings.model_fields_set:
        return min(served, settings.llm_context_window)
    return served


def tokenizer_margin(settings: Settings) -> float:
    """The share of the window a prompt counted with cl100k may fill for the configured provider's model."""
    return get_provider(resolve_provider(settings)).tokenizer_margin


def cost_usd(provider: str, model: str | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    """USD for a call's tokens, when the provider prices the model."""
    price = get_provider(provider).price(model)
    if price is None:
        return None
    return round((prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000, 6)


def message_usage(message: Any) -> tuple[int, int]:
    """(prompt, completion) tokens a LangChain AI message reports, zeros when it reports none."""
    usage = getattr(message, "usage_metadata", None) or {}
    return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
