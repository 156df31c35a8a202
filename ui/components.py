"""The app's small custom components (Streamlit components v2: inline HTML/JS, no iframe, no build step).

`cited_text` shows a cited text, built as safe HTML by ui/rendering.py, with its [n] markers as buttons that
report which one was clicked (and get the focus back when the source drawer closes); `scroll_anchor` scrolls the
page to where it is drawn, once per token; `reveal_highlight` scrolls the source drawer to its first highlighted
sentence (on a phone it is often below the fold); `skip_link` puts "Skip to the question box" first in the tab
order.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import streamlit as st

ASSETS = resources.files("assistant.ui")  # the app's files, in the source tree or the installed wheel


@functools.cache
def asset(name: str) -> str:
    """The text of one of the app's files (read once per process, not on every rerun)."""
    return ASSETS.joinpath(name).read_text(encoding="utf-8")


_cited_text = st.components.v2.component("litassist.cited_text", js=asset("cited_text.js"),
                                         css=asset("cited_text.css"))
_reveal = st.components.v2.component("litassist.reveal_highlight", js=asset("reveal_highlight.js"),
                                     css=":host { display: block; height: 0; }")
_skip_link = st.components.v2.component("litassist.skip_link", js=asset("skip_link.js"),
                                        css=":host { display: block; height: 0; }")
_scroll_anchor = st.components.v2.component("litassist.scroll_anchor", js=asset("scroll_anchor.js"),
                                            css=":host { display: block; height: 0; scroll-margin-top: 4.5rem; }")


def cited_text_html(html: str, key: str) -> str | None:
    """Draw `html` (already safe); returns the data-marker of the [n] button clicked in this run, if any."""
    result: Any = _cited_text(key=key, data={"html": html, "key": key}, on_cite_change=lambda: None)
    return result.cite


def scroll_anchor(token: str | None, key: str) -> None:
    """Scroll the page here the first time `token` is seen (nothing when it is None)."""
    _scroll_anchor(key=key, data={"token": token or ""}, height=0)


def reveal_highlight(token: str) -> None:
    """Scroll the open dialog so its first <mark> is in view (once per token: a new source, not every rerun)."""
    _reveal(key="reveal-highlight", data={"token": token}, height=0)


def skip_link() -> None:
    """A "Skip to the question box" link, first in the page's tab order, shown when focused."""
    _skip_link(key="skip-link", data={}, height=0)
