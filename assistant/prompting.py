"""Prompt templates (prompts/<name>.md) and the quoting that keeps paper text data inside them."""

from __future__ import annotations

import functools
import re
from importlib import resources


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
