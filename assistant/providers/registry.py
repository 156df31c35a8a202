"""Every provider by name: litassist's own, then those other packages register under the `litassist.providers`
entry-point group (a `Provider` subclass each), so a new provider is a package of its own."""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from .base import Provider, ProviderError
from .local import LocalProvider
from .offline import OfflineProvider
from .openai_api import OpenAICompatibleProvider, OpenAIProvider

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger("litassist.providers")

ENTRY_POINT_GROUP = "litassist.providers"
AUTO = "auto"
BUILTIN: tuple[type[Provider], ...] = (OfflineProvider, OpenAIProvider, OpenAICompatibleProvider, LocalProvider)


@functools.cache
def providers() -> dict[str, Provider]:
    """Name -> provider, built-in ones first. A plugin that fails to load, is not a Provider or takes a taken
    name is skipped with a warning: a broken plugin must not stop litassist."""
    found = {cls.name: cls() for cls in BUILTIN}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = entry.load()
        except Exception as error:  # noqa: BLE001 - any import failure of a plugin is reported, not raised
            log.warning("provider plugin %s (%s) failed to load: %s: %s", entry.name, entry.value,
                        type(error).__name__, error)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Provider)):
            log.warning("provider plugin %s (%s) is not a litassist Provider subclass; skipped", entry.name,
                        entry.value)
        elif cls.name in found:
            log.warning("provider plugin %s (%s) takes the name %r, already used; skipped", entry.name, entry.value,
                        cls.name)
        else:
            found[cls.name] = cls()
    return found


def provider_names() -> list[str]:
    """What LITASSIST_LLM_PROVIDER accepts: `auto`, then every provider."""
    return [AUTO, *providers()]


def get_provider(name: str) -> Provider:
    try:
        return providers()[name]
    except KeyError:
        raise ProviderError(f"unknown model provider {name!r} (LITASSIST_LLM_PROVIDER): choose from "
                            f"{', '.join(provider_names())}") from None


def resolve_provider(settings: Settings) -> str:
    """The provider's name; `auto` takes the first provider (by `auto_order`) the settings configure: a base
    URL, else an OpenAI key, else a local GGUF, else offline."""
    if settings.llm_provider != AUTO:
        return get_provider(settings.llm_provider).name
    ranked = sorted((p for p in providers().values() if p.auto_order is not None), key=lambda p: p.auto_order or 0)
    return next(p.name for p in ranked if p.configured(settings))
