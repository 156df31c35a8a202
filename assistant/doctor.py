"""`litassist doctor`'s model checks: which provider and model are configured, and whether the model answers."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .config import Settings
from .llm import chat_model, describe_error, model_name, resolve_provider


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def doctor(settings: Settings) -> list[Check]:
    """What is configured and whether it answers: provider, model, reachability, re-ranking."""
    try:
        provider = resolve_provider(settings)
    except Exception as error:  # noqa: BLE001 - doctor reports every failure as a line
        return [Check("provider", False, describe_error(error, settings))]
    checks = [Check("provider", True, f"{provider} (setting: {settings.llm_provider})")]
    try:
        model = chat_model(settings)
        if model is None:
            checks.append(Check("model", True, "none: answers are extractive (set OPENAI_API_KEY or OPENAI_BASE_URL)"))
        else:
            started = time.perf_counter()
            model.invoke("Reply with the single word: ok")
            checks.append(
                Check("model", True,
                      f"{model_name(settings, provider)} answered in {time.perf_counter() - started:.1f} s")
            )
    except Exception as error:  # noqa: BLE001 - doctor reports every failure as a line
        checks.append(Check("model", False, describe_error(error, settings)))
    if settings.rerank == "llm":
        usable = provider != "offline"
        checks.append(Check("re-ranking", usable, f"the chat model orders the top {settings.rerank_candidates} results"
                            if usable else "LITASSIST_RERANK=llm needs a chat model; searches are not re-ranked"))
    return checks
