"""Markdown written by a model or a summarizer as HTML with text structure only, for the app and the report alike.

Paragraphs, lists, emphasis, code and quotes are rendered; images, links, autolinks, link references and raw HTML
stay visible as the literal text they are, so nothing a paper or a model wrote can make a viewer fetch a URL
(one renderer: the report used to have a hand-rolled one whose bold rule was quadratic on unclosed `**`).
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _renderer() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).disable(
        ["image", "link", "autolink", "reference", "html_inline", "html_block"])


def markdown_html(text: str) -> str:
    """`text` as safe HTML: text structure only (see the module's docstring)."""
    return _renderer().render(text)
