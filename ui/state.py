"""What the page keeps between reruns: the library it opened, session state, and the requests callbacks make
(open a source, confirm a deletion) for the one dialog a run may show.

Kept out of app.py so the classes survive reruns (the script is re-executed, imported modules are not).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from assistant import Assistant, Paper, Settings, Span

CHAT, EXPLORE, LIBRARY = "Chat", "Explore", "Library"  # no icons: a screen reader would read "forum Chat"
CONVERSATION_PARAM = "c"  # ?c=<conversation id>: the open conversation survives a reload


@dataclass(frozen=True)
class Scope:
    """Questions bounded to some papers (one topic cluster, or papers chosen in an evidence table): every search
    of the turn stays inside them."""

    label: str
    paper_ids: list[str]
    kind: str = "topic"  # or "selection": `label` then says which papers ("3 papers of answer 2")

    def describe(self) -> str:
        if self.kind == "selection":
            return self.label
        return f"the topic “{self.label}” ({len(self.paper_ids)} papers)"


@dataclass(frozen=True)
class SourceView:
    """A paper opened from a citation (or the map, or the library), and what in it to highlight."""

    paper: Paper
    origin: str  # where it was opened from, shown above the paper: "[2] in answer 3", "the topic map"
    spans: list[Span] = field(default_factory=list)  # the sentence(s) the claim rests on
    passage_spans: list[Span] = field(default_factory=list)  # else: where the retrieved passage sits
    claim: str | None = None  # the sentence of the answer citing it, when opened from an inline marker
    weak: bool = False


@dataclass(frozen=True)
class Confirm:
    """A destructive action waiting for the user's yes: what will go, named in full."""

    title: str
    message: str
    items: list[str]
    confirm_label: str
    action: Callable[[], str]  # does it; returns the notice to show


def init_state() -> None:
    defaults: dict[str, Any] = {
        "conversation_id": None, "scope": None, "pending": None, "dialog": None, "scroll_to": None,
        "last_ingest": None, "uploader_generation": 0, "notice": None, "summaries": {}, "selected_papers": [],
        "missing_conversation": None,
    }
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value


def open_dialog(request: SourceView | Confirm) -> None:
    st.session_state.dialog = request


def close_dialog() -> None:
    st.session_state.dialog = None


def scroll_to_latest() -> None:
    """Scroll to the newest turn on the next run, once (a fresh token: cited_text.js scrolls once per token)."""
    st.session_state.scroll_to = uuid.uuid4().hex


def notify(message: str) -> None:
    st.session_state.notice = message


def home_argument(argv: list[str]) -> str | None:
    """`litassist ui --home DIR` runs `streamlit run app.py -- --home DIR`: the script sees `--home DIR`."""
    for position, arg in enumerate(argv):
        if arg == "--home" and position + 1 < len(argv):
            return argv[position + 1]
        if arg.startswith("--home="):
            return arg.split("=", 1)[1]
    return None


def settings_key(settings: Settings) -> str:
    """Everything that makes two Assistants differ, the API key included (hashed: the dump masks it)."""
    secret = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    return settings.model_dump_json() + hashlib.sha256(secret.encode()).hexdigest()


@st.cache_resource(show_spinner=False, max_entries=16)
def open_library(key: str, _settings: Settings) -> Assistant:
    """One Assistant per home and model choice, shared by every session and rerun (it holds the store and the
    model; conversations are per session, in the store's SQLite file)."""
    return Assistant(settings=_settings)
