"""litassist in the browser: chat with cited sources, a topic map of the library, and the library itself.

Run with `litassist ui` or `streamlit run ui/app.py [-- --home DIR]`. The page calls only the `Assistant`
facade (and the models it returns); each tab is a module (chat.py, explore.py, library.py), the sources drawer
and confirmations live in sources.py, answers in progress in answers.py, and everything here is the frame around
them. A damaged conversations file costs the saved conversations (one line saying so), never the library.
"""

from __future__ import annotations

import sys

import streamlit as st
from assistant.ui.chat import answering, render_chat, send
from assistant.ui.components import ASSETS, asset, skip_link
from assistant.ui.explore import render_explore
from assistant.ui.library import progress_bar, render_library
from assistant.ui.rendering import md_escape
from assistant.ui.sidebar import conversation_sidebar, model_sidebar, open_conversation, retrieval_sidebar
from assistant.ui.sources import show_dialog
from assistant.ui.state import (
    CHAT,
    CONVERSATION_PARAM,
    EXPLORE,
    LIBRARY,
    home_argument,
    init_state,
    notify,
    open_library,
    settings_key,
)
from assistant.ui.uploads import UploadResult

from assistant import DEMO_CORPUS, Assistant, Conversation, ConversationError, ConversationsDamaged, load_settings


def render_first_run(lib: Assistant) -> None:
    with st.container(border=True):
        st.subheader("Welcome to litassist")
        st.markdown(f"The library at `{lib.settings.home}` is empty. Load the bundled **seed corpus** — 179 "
                    "abstracts on machine learning, multi-agent systems and more — to try the assistant, or add "
                    "your own BibTeX, RIS, CSV, JSON or arXiv exports in the **Library** tab.")
        if st.button("Load the seed corpus (179 papers)", type="primary", key="load_seeds",
                     icon=":material/library_add:"):
            bar = st.progress(0.0, text="Reading the seed files…")
            try:
                report = lib.ingest([DEMO_CORPUS], progress=progress_bar(bar))
            except Exception as error:  # noqa: BLE001 - one line, never a traceback
                st.error(f"Could not load the seed corpus: {error}")
                return
            st.session_state.last_ingest = UploadResult(report=report)
            notify(f"Loaded the seed corpus: {report.new} papers.")
            st.rerun()


def open_conversation_from_url(lib: Assistant) -> Conversation | None:
    """The open conversation: the session's, else the one the URL names (a reload), else none yet. A URL naming
    a conversation that is gone (deleted, or a stale link) leaves its id in `missing_conversation`."""
    wanted = st.session_state.conversation_id or st.query_params.get(CONVERSATION_PARAM)
    if not wanted:
        return None
    try:
        conversation = lib.conversation(wanted)
    except ConversationError:
        open_conversation(None)
        st.session_state.missing_conversation = wanted
        return None
    if st.session_state.conversation_id != conversation.conversation_id:
        open_conversation(conversation.conversation_id)  # restored after a reload: show its newest turn
    return conversation


def render_missing(conversation_id: str) -> None:
    """The page for a link to a conversation that no longer exists (instead of a blank chat)."""
    with st.container(border=True, key="missing-conversation"):
        st.subheader("Conversation not found")
        st.markdown(f"There is no saved conversation `{md_escape(conversation_id)}` in this library: it was deleted, "
                    "or the link comes from another library. Your other conversations are in the sidebar.")
        st.button("Start a new conversation", type="primary", key="missing-new", icon=":material/add_comment:",
                  on_click=lambda: st.session_state.update(missing_conversation=None))


def main() -> None:
    st.set_page_config(page_title="litassist", page_icon=str(ASSETS.joinpath("icon.png")), layout="wide")
    st.html(f"<style>{asset('app.css')}</style>")
    skip_link()
    init_state()
    base = load_settings(home_argument(sys.argv[1:]))
    with st.sidebar:
        st.title(":material/auto_stories: litassist")
        st.caption("Ask your papers; every answer cites them.")
        settings = model_sidebar(base)
    try:
        lib = open_library(settings_key(settings), settings)
        facets = lib.library_facets()  # counted from the catalog's indexes: no paper record is read
    except Exception as error:  # noqa: BLE001 - e.g. a library built with another embedding model
        st.error(f"Cannot open the library at {settings.home}: {error}")
        st.stop()
    conversations_error = None
    try:
        conversation = open_conversation_from_url(lib)
        saved = lib.conversations(st.session_state.get("conversation_search", ""))
    except ConversationsDamaged as error:  # the papers are fine: only the saved conversations are unreadable
        conversation, saved, conversations_error = None, [], str(error)
        st.error(conversations_error, icon=":material/error:")
    work = answering()
    with st.sidebar:
        if not conversations_error:
            conversation_sidebar(lib, conversation, saved)
        filters, k = retrieval_sidebar(facets)
        st.caption(f"{facets.papers} papers · `{settings.home}`")
    if not facets.papers:
        render_first_run(lib)
    elif st.session_state.notice and st.session_state.get("tab") != LIBRARY:
        st.toast(st.session_state.notice, icon=":material/check_circle:")
        st.session_state.notice = None
    chat, explore, library = st.tabs([CHAT, EXPLORE, LIBRARY], key="tab", on_change="rerun")
    if chat.open:
        # At the top level, the input is pinned to the bottom of the window; new turns appear above it. While an
        # answer is worked out, a question sent is saved and waits its turn.
        question = st.chat_input("Ask about your papers…", key="question",
                                 disabled=bool(conversations_error)) or st.session_state.pending
        st.session_state.pending = None
        if question and not conversations_error:
            st.session_state.missing_conversation = None
            conversation = send(lib, work, conversation, question, filters, k)
        with chat:
            if st.session_state.get("missing_conversation"):
                render_missing(st.session_state.missing_conversation)
            else:
                render_chat(lib, work, conversation, facets.papers)
    if explore.open:
        with explore:
            render_explore(lib, facets.papers, filters)
    if library.open:
        with library:
            render_library(lib, facets, filters)
    show_dialog()


main()
