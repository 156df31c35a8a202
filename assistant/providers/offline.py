"""The `offline` provider: no generative model; the agent answers extractively (assistant.offline_answer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Provider

if TYPE_CHECKING:
    from ..config import Settings


class OfflineProvider(Provider):
    name = "offline"
    description = "no model: answers quote the abstracts (extractive)"
    auto_order = 1000  # the last resort of `auto`: always configured

    def configured(self, settings: Settings) -> bool:
        return True

    def model_name(self, settings: Settings) -> None:
        return None

    def chat_model(self, settings: Settings) -> None:
        return None
