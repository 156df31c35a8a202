"""The provider registry and error classification, alone: every failure of a provider's client becomes one of
litassist's errors (ProviderError, ContextLengthError, RequestRefusedError) with one line saying what to do."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import openai
import pytest
from langchain_core import exceptions as lc

from assistant.config import load_settings
from assistant.llm import classify_error, cost_usd, describe_error, model_errors, resolve_provider
from assistant.providers import (
    ContextLengthError,
    Provider,
    ProviderError,
    RequestRefusedError,
    classify_standard,
    get_provider,
    providers,
)

URL = "http://127.0.0.1:9/v1"
REQUEST = httpx.Request("POST", f"{URL}/chat/completions")


def status_error(kind: type[openai.APIStatusError], status: int, message: str,
                 code: str | None = None) -> openai.APIStatusError:
    """The exception the OpenAI client raises for an HTTP error answer."""
    body = {"message": message, "type": "invalid_request_error", "code": code}
    return kind(message, response=httpx.Response(status, request=REQUEST), body=body)


@pytest.fixture()
def settings(tmp_path: Path) -> object:
    return load_settings(tmp_path, llm_provider="openai-compatible", openai_base_url=URL, llm_model="m",
                         llm_timeout=6, llm_max_retries=2)


def test_every_builtin_is_a_provider_with_a_description() -> None:
    assert list(providers()) == ["offline", "openai", "openai-compatible", "local"]
    for name, provider in providers().items():
        assert isinstance(provider, Provider) and provider.name == name and provider.description


def test_an_unknown_provider_name_is_one_line_naming_the_known_ones(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, llm_provider="anthropic")
    with pytest.raises(ProviderError) as caught:
        resolve_provider(settings)
    assert str(caught.value) == ("unknown model provider 'anthropic' (LITASSIST_LLM_PROVIDER): choose from auto, "
                                 "offline, openai, openai-compatible, local")


@pytest.mark.parametrize(("error", "kind", "line"), [
    (status_error(openai.BadRequestError, 400, "This model's maximum context length is 1500 tokens. However, you "
                  "requested 3000 tokens", "context_length_exceeded"), ContextLengthError,
     "the prompt is longer than the model's context window (1500 tokens)"),
    (status_error(openai.BadRequestError, 400, "request (5000 tokens) exceeds the available context size (4096 "
                  "tokens)"), ContextLengthError, "the prompt is longer than the model's context window (4096 tokens)"),
    (status_error(openai.BadRequestError, 400, "tools are not supported by this model"), RequestRefusedError,
     "the model server answered HTTP 400: tools are not supported by this model"),
    (status_error(openai.AuthenticationError, 401, "bad key"), ProviderError,
     "the model server rejected the API key: check OPENAI_API_KEY"),
    (status_error(openai.RateLimitError, 429, "slow down"), ProviderError, "rate limited by the model server"),
    (status_error(openai.NotFoundError, 404, "no such model"), ProviderError,
     "the model server does not know model 'm' (LITASSIST_LLM_MODEL)"),
    (status_error(openai.InternalServerError, 503, "overloaded"), ProviderError,
     "the model server answered HTTP 503: overloaded"),
    (openai.APITimeoutError(REQUEST), ProviderError,
     f"the model at {URL} did not answer within 6 s (3 tries of 2 s;"),
    (openai.APIConnectionError(request=REQUEST), ProviderError, f"cannot reach the model at {URL}"),
])
def test_openai_client_errors_become_litassist_errors(settings: object, error: BaseException,
                                                        kind: type[ProviderError], line: str) -> None:
    failure = classify_error(error, settings)
    assert type(failure) is kind and str(failure).startswith(line)
    assert describe_error(error, settings) == str(failure)
    assert isinstance(error, model_errors())


def test_the_window_a_server_names_is_kept_for_the_refit(settings: object) -> None:
    error = status_error(openai.BadRequestError, 400, "n_ctx: 2048, but the prompt has 3100 tokens")
    assert classify_error(error, settings).window == 2048
    unnamed = status_error(openai.BadRequestError, 400, "prompt is too long")
    assert classify_error(unnamed, settings).window is None


@pytest.mark.parametrize(("error", "kind", "line"), [
    (lc.ContextOverflowError("maximum context length is 8192 tokens"), ContextLengthError,
     "the prompt is longer than the model's context window (8192 tokens)"),
    (lc.ModelInvalidRequestError("tool_choice is not supported"), RequestRefusedError,
     "the model provider refused the request: tool_choice is not supported"),
    (lc.ModelAuthenticationError("401"), ProviderError, "the model provider rejected the credentials"),
    (lc.ModelRateLimitError("429"), ProviderError, "rate limited by the model provider"),
    (lc.ModelTimeoutError("slow"), ProviderError, "the model did not answer in time"),
    (lc.ModelConnectionError("refused"), ProviderError, "cannot reach the model provider"),
    (lc.ModelAPIError("500"), ProviderError, "the model provider failed on its side"),
])
def test_langchains_standard_errors_are_classified_for_any_provider(error: BaseException, kind: type,
                                                                   line: str) -> None:
    failure = classify_standard(error)
    assert type(failure) is kind and str(failure).startswith(line)


def test_a_bug_is_not_taken_for_a_model_failure(settings: object) -> None:
    assert classify_error(KeyError("tool"), settings) is None
    assert classify_standard(ValueError("x")) is None
    assert not isinstance(KeyError("tool"), model_errors())
    assert describe_error(KeyError("tool"), settings) == "the model failed: KeyError: 'tool'"


def test_prices_and_windows_belong_to_the_provider(tmp_path: Path) -> None:
    assert cost_usd("openai", "gpt-4o-mini", 1_000_000, 1_000_000) == 0.75
    assert cost_usd("openai", "my-finetune", 1000, 1000) is None
    # a local server's tokens cost nothing known
    assert cost_usd("openai-compatible", "gpt-4o-mini", 1000, 1000) is None
    assert get_provider("offline").chat_model(load_settings(tmp_path)) is None


def test_the_agent_never_imports_a_providers_client() -> None:
    """agent.py catches litassist's errors only: no openai or langchain_openai import, no provider name branch."""
    source = (Path(__file__).parent.parent / "assistant" / "agent.py").read_text(encoding="utf-8")
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Import | ast.ImportFrom) for alias in getattr(node, "names", [])}
    modules = {node.module.split(".")[0] for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.ImportFrom) and node.module}
    assert not {"openai", "langchain_openai"} & (imported | modules)
    assert '"openai"' not in source and "'openai'" not in source
