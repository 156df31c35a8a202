"""litassist: ask questions of a pile of paper abstracts and get answers that cite them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import Assistant
    from .config import Settings
    from .corpus import Paper
    from .corpus.display import display_abstract, display_date, display_title, plain_text
    from .enrich import EnrichError, EnrichReport

__all__ = ["Assistant", "EnrichError", "EnrichReport", "Paper", "Settings", "display_abstract", "display_date",
           "display_title", "plain_text"]
_HOMES = {"Assistant": "api", "Settings": "config", "Paper": "corpus", "EnrichError": "enrich", "EnrichReport": "enrich",
          **dict.fromkeys(["display_abstract", "display_date", "display_title", "plain_text"], "corpus.display")}


def __getattr__(name: str) -> Any:
    """Import lazily, so `litassist --help` and other light commands do not load numpy, Chroma or torch."""
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
