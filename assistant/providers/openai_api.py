"""OpenAI, and any server speaking its API (Ollama, vLLM, llama.cpp, LM Studio): one client, two providers.

`langchain_openai.ChatOpenAI` is built directly: LangChain's `init_chat_model` lives in the `langchain` package,
which litassist does not otherwise need, and would build the same object.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from .base import (
    Provider,
    ProviderError,
    RequestRefusedError,
    classify_standard,
    context_length_error,
    says_context_overflow,
)

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from ..config import Settings

log = logging.getLogger("litassist.providers")

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
# USD per million tokens (input, output); cost is reported only for models listed here.
PRICES_PER_MILLION = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1": (2.00, 8.00),
}
# Tokens of context for OpenAI models (the longest matching name prefix wins: "gpt-4o-mini-2024-07-18").
KNOWN_CONTEXT_WINDOWS = {
    "gpt-4o-mini": 128_000,
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4-turbo": 128_000,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
}


def attempt_timeout(settings: Settings) -> float:
    """Seconds each try of a model request may wait: LITASSIST_LLM_TIMEOUT is the total for one request, retries
    included, so it is shared by the 1 + LITASSIST_LLM_MAX_RETRIES tries (backoff between them adds ~1-2 s)."""
    return settings.llm_timeout / (settings.llm_max_retries + 1)


class OpenAIClientProvider(Provider):
    """What every provider served through the OpenAI client shares: the chat model and the error lines."""

    def base_url(self, settings: Settings) -> str | None:
        return None

    def api_key(self, settings: Settings) -> str:
        return settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"

    def chat_model(self, settings: Settings) -> BaseChatModel:
        from langchain_openai import ChatOpenAI
        from pydantic import SecretStr

        return ChatOpenAI(
            model=self.model_name(settings) or "default",
            api_key=SecretStr(self.api_key(settings)),
            base_url=self.base_url(settings),
            timeout=attempt_timeout(settings),
            max_retries=settings.llm_max_retries,  # the client backs off on rate limits, timeouts and 5xx
            temperature=0,
            max_completion_tokens=settings.llm_answer_tokens,
            stream_usage=True,
        )

    def error_types(self) -> tuple[type[BaseException], ...]:
        import openai

        return (openai.OpenAIError, *super().error_types())

    def classify(self, error: BaseException, settings: Settings) -> ProviderError | None:
        """The OpenAI client's exceptions as one line each (what went wrong and what to do)."""
        import openai

        where = settings.openai_base_url or "api.openai.com"
        if isinstance(error, openai.BadRequestError):
            message = str(getattr(error, "message", "") or error)
            if getattr(error, "code", None) == "context_length_exceeded" or says_context_overflow(message):
                return context_length_error(message)
            return RequestRefusedError(f"the model server answered HTTP {error.status_code}: {message[:200]}")
        if isinstance(error, openai.AuthenticationError):
            return ProviderError("the model server rejected the API key: check OPENAI_API_KEY")
        if isinstance(error, openai.RateLimitError):
            return ProviderError("rate limited by the model server even after retries: wait a minute or lower the "
                                 "request rate")
        if isinstance(error, openai.APITimeoutError):
            tries = settings.llm_max_retries + 1
            return ProviderError(
                f"the model at {where} did not answer within {settings.llm_timeout:g} s ({tries} tries of "
                f"{attempt_timeout(settings):g} s; LITASSIST_LLM_TIMEOUT is the total, LITASSIST_LLM_MAX_RETRIES "
                "the retries)")
        if isinstance(error, openai.APIConnectionError):
            return ProviderError(f"cannot reach the model at {where}: is the server running and the URL right "
                                 "(OPENAI_BASE_URL)?")
        if isinstance(error, openai.NotFoundError):
            return ProviderError(f"the model server does not know model {self.model_name(settings)!r} "
                                 "(LITASSIST_LLM_MODEL)")
        if isinstance(error, openai.APIStatusError):
            return ProviderError(f"the model server answered HTTP {error.status_code}: {str(error.message)[:200]}")
        if isinstance(error, openai.OpenAIError):
            return ProviderError(f"the model failed: {type(error).__name__}: {str(error)[:200]}")
        return classify_standard(error)


class OpenAIProvider(OpenAIClientProvider):
    name = "openai"
    description = "OpenAI's chat models (needs OPENAI_API_KEY)"
    auto_order = 20
    tokenizer_margin = 1.0  # OpenAI's models count tokens as cl100k (or o200k, within a few percent) does

    def configured(self, settings: Settings) -> bool:
        return settings.openai_api_key is not None

    def model_name(self, settings: Settings) -> str:
        return settings.llm_model or DEFAULT_OPENAI_MODEL

    def api_key(self, settings: Settings) -> str:
        if not settings.openai_api_key:
            raise ProviderError("llm_provider=openai needs OPENAI_API_KEY; set it, or use "
                                "LITASSIST_LLM_PROVIDER=offline")
        return super().api_key(settings)

    def context_window(self, settings: Settings) -> int | None:
        name = self.model_name(settings)
        return next((KNOWN_CONTEXT_WINDOWS[p] for p in sorted(KNOWN_CONTEXT_WINDOWS, key=len, reverse=True)
                     if name.startswith(p)), None)

    def price(self, model: str | None) -> tuple[float, float] | None:
        return PRICES_PER_MILLION.get(model or "")


class OpenAICompatibleProvider(OpenAIClientProvider):
    name = "openai-compatible"
    description = "any server speaking the OpenAI API — Ollama, vLLM, llama.cpp, LM Studio (needs OPENAI_BASE_URL)"
    auto_order = 10

    def configured(self, settings: Settings) -> bool:
        return bool(settings.openai_base_url)

    def base_url(self, settings: Settings) -> str:
        if not settings.openai_base_url:
            raise ProviderError("llm_provider=openai-compatible needs OPENAI_BASE_URL (e.g. http://127.0.0.1:11434/v1)")
        return settings.openai_base_url

    def context_window(self, settings: Settings) -> int | None:
        if not settings.openai_base_url:
            return None
        return served_context_window(settings.openai_base_url, self.model_name(settings))


@functools.cache
def served_context_window(base_url: str, model: str) -> int | None:
    """Ask an OpenAI-compatible server for its context window: GET /models (vLLM `max_model_len`, LM Studio
    and others `context_length`), then llama.cpp's GET /props (`n_ctx`). None when it says nothing."""
    import httpx

    base = base_url.rstrip("/")
    probes = [(f"{base}/models", _window_in_models), (f"{base.removesuffix('/v1')}/props", _window_in_props)]
    for url, read in probes:
        try:
            response = httpx.get(url, timeout=3.0)
            if response.status_code == 200:
                window = read(response.json(), model)
                if window:
                    log.info("the model server reports a context window of %d tokens (%s)", window, url)
                    return window
        except (httpx.HTTPError, ValueError, TypeError, AttributeError):
            continue
    return None


def _window_in_models(payload: Any, model: str) -> int | None:
    entries = payload.get("data") or []
    entry = next((e for e in entries if e.get("id") == model), entries[0] if entries else {})
    for key in ("max_model_len", "context_length", "context_window", "n_ctx"):
        if isinstance(entry.get(key), int):
            return entry[key]
    meta = entry.get("meta") or {}
    return meta.get("n_ctx") if isinstance(meta.get("n_ctx"), int) else None


def _window_in_props(payload: Any, model: str) -> int | None:
    window = (payload.get("default_generation_settings") or {}).get("n_ctx", payload.get("n_ctx"))
    return window if isinstance(window, int) else None
