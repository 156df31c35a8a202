"""The sidebar: the model in use, the retrieval bounds every chat search obeys, and the saved conversations."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from assistant.ui.formatting import shorten
from assistant.ui.rendering import md_escape
from assistant.ui.state import CONVERSATION_PARAM, Confirm, notify, open_dialog, scroll_to_latest

from assistant import (
    Assistant,
    Conversation,
    ConversationInfo,
    Filters,
    LibraryFacets,
    Settings,
    bibtex_text,
    conversation_markdown,
    error_text,
    file_stem,
    load_settings,
    model_providers,
    provider_info,
    provider_names,
)


def model_sidebar(base: Settings) -> Settings:
    """Provider and model pickers; the settings the rest of the page uses."""
    st.subheader("Model")
    names = provider_names()
    default = names.index(base.llm_provider) if base.llm_provider in names else 0
    provider = st.selectbox("Provider", names, index=default, key="provider",
                            help="auto: a server with OPENAI_BASE_URL, OpenAI with OPENAI_API_KEY, a local GGUF "
                                 "with LITASSIST_LOCAL_MODEL_PATH, else offline (extractive answers).  \n" +
                                 "  \n".join(f"{p.name}: {p.description}" for p in model_providers().values()))
    model = st.text_input("Model", value=base.llm_model or "", key="model", placeholder="provider default",
                          help="e.g. gpt-4o-mini, or the model name your OpenAI-compatible server serves")
    settings = load_settings(base.home, llm_provider=provider, llm_model=model.strip() or None)
    try:
        resolved, name = provider_info(settings)
    except Exception as error:  # noqa: BLE001 - a misconfigured provider is shown, not raised
        st.warning(error_text(error, settings))
        return settings
    if resolved == "offline":
        st.caption("In use: **offline** — answers quote the abstracts (extractive). Set OPENAI_API_KEY or "
                   "OPENAI_BASE_URL for generated answers.")
    else:
        st.caption(f"In use: **{resolved}** · `{md_escape(name or '')}`")
    return settings


def retrieval_sidebar(facets: LibraryFacets) -> tuple[Filters, int]:
    """Year range (with or without undated papers), author, venue, source, Zotero collections (when the library
    has any) and papers per search: the bounds every chat search, the Library's table and its search obey. What
    it offers comes from the library's facets (counted by the catalog, no record read)."""
    st.subheader("Filters")
    years = facets.years
    year_min = year_max = include_undated = None
    if len(years) > 1:
        low, high = st.slider("Publication years", years[0], years[-1], (years[0], years[-1]), key="years")
        undated = facets.undated
        keep = st.checkbox(f"Include undated papers ({undated})", value=True, key="include_undated",
                           disabled=not undated, help="Papers whose source gives no year: kept unless unticked "
                                                      "while the year range is narrowed.")
        if (low, high) != (years[0], years[-1]):
            year_min, year_max, include_undated = low, high, keep or None
        elif not keep and undated:
            year_min, include_undated = years[0], None  # the whole range, dated papers only
    author = st.text_input("Author", key="author", placeholder="any author", help="Part of an author's name.")
    venue = st.text_input("Venue", key="venue", placeholder="any venue", help="Part of a journal or conference name.")
    formats, files = sorted(facets.formats), list(facets.files)  # files in name order
    source = st.selectbox("Source", [None, *formats, *files], key="source",
                          format_func=lambda v: "All sources" if v is None else
                          (f"format: {v}" if v in formats else f"file: {Path(v).name}"))
    collections = facets.collections
    chosen = st.multiselect("Zotero collections", collections, key="collections", placeholder="All collections",
                            help="Only papers in any of these collections (a parent takes in its subcollections).",
                            ) if collections else []
    k = st.slider("Papers per search", 1, 20, 6, key="k", help="How many papers each search of the agent retrieves.")
    return Filters(year_min=year_min, year_max=year_max, include_undated=include_undated,
                   author=author.strip() or None, venue=venue.strip() or None, source=source,
                   collections=chosen or None), k


# --- conversations ----------------------------------------------------------------------------------------


def remember_conversation(conversation_id: str | None) -> None:
    """Make `conversation_id` the open conversation of this session; the URL remembers it for a reload."""
    st.session_state.conversation_id = conversation_id
    if conversation_id:
        st.query_params[CONVERSATION_PARAM] = conversation_id
    else:
        st.query_params.pop(CONVERSATION_PARAM, None)


def open_conversation(conversation_id: str | None) -> None:
    """Switch to a saved conversation (None: a new one, saved at its first question), at its newest turn."""
    remember_conversation(conversation_id)
    st.session_state.missing_conversation = None
    st.session_state.scope = None
    st.session_state.dialog = None
    scroll_to_latest()


def rename_conversation(lib: Assistant, conversation_id: str) -> None:
    title = st.session_state.get(f"title-{conversation_id}", "")
    try:
        lib.rename_conversation(conversation_id, title)
    except ValueError as error:
        notify(str(error))


def confirm_delete_conversation(lib: Assistant, info: ConversationInfo) -> None:
    def delete() -> str:
        lib.delete_conversation(info.conversation_id)
        open_conversation(None)
        return f"Deleted the conversation “{info.title}”."

    answers = f"{info.answers} answer{'s' if info.answers != 1 else ''}"
    open_dialog(Confirm(title="Delete this conversation?", items=[info.title], confirm_label="Delete conversation",
                        message=f"It and its {answers} go for good (export it first to keep a copy).",
                        action=delete))


def conversation_label(info: ConversationInfo) -> str:
    """A conversation in the list: its title, then when it was last active and how many answers it has."""
    answers = f"{info.answers} answer{'s' if info.answers != 1 else ''}"
    waiting = f", {info.pending} waiting" if info.pending else ""
    return f"{md_escape(shorten(info.title, 42))}  \n{info.updated.astimezone():%d %b %Y, %H:%M} · {answers}{waiting}"


def conversation_sidebar(lib: Assistant, conversation: Conversation | None, saved: list[ConversationInfo]) -> None:
    """New conversation, search, the saved ones (most recently active first, with date and answer count), and
    rename / delete / export of the open one."""
    st.subheader("Conversations")
    st.button("New conversation", on_click=open_conversation, args=(None,), icon=":material/add_comment:",
              width="stretch", key="new_conversation", disabled=conversation is None)
    searched = st.session_state.get("conversation_search", "").strip()
    if saved or searched:
        st.text_input("Search conversations", key="conversation_search", placeholder="Search titles and questions",
                      label_visibility="collapsed", icon=":material/search:")
    if not saved:
        st.caption(f"No conversation mentions “{md_escape(searched)}”." if searched
                   else "Your conversations are saved here as you ask.")
    with st.container(height="content" if len(saved) <= 6 else 360, border=False, key="conversation-list"):
        for info in saved:
            current = conversation is not None and info.conversation_id == conversation.conversation_id
            st.button(conversation_label(info), key=f"conversation-{info.conversation_id}",
                      type="secondary" if current else "tertiary", width="stretch",
                      icon=":material/chat:" if current else ":material/chat_bubble_outline:",
                      on_click=open_conversation, args=(info.conversation_id,), help=md_escape(info.title))
    if conversation is None:
        return
    with st.popover("Rename, delete or export", icon=":material/more_horiz:", width="stretch"):
        st.text_input("Title (Enter saves)", value=conversation.title, key=f"title-{conversation.conversation_id}",
                      on_change=rename_conversation, args=(lib, conversation.conversation_id))
        st.button("Save title", on_click=rename_conversation, args=(lib, conversation.conversation_id),
                  key="rename_conversation", icon=":material/edit:")
        cited = conversation.cited_papers()
        stem = file_stem(conversation.title, f"litassist-{conversation.conversation_id}")
        st.download_button("Export (Markdown)", conversation_markdown(conversation), f"{stem}.md", "text/markdown",
                           on_click="ignore", icon=":material/download:", width="stretch",
                           disabled=not conversation.answers, key="export_conversation")
        st.download_button(f"Cited papers (BibTeX, {len({p.paper_id for p in cited})})",
                           bibtex_text(cited, conversation.cited_pages()), f"{stem}.bib", "application/x-bibtex",
                           key="export_cited",
                           disabled=not cited, on_click="ignore", icon=":material/menu_book:", width="stretch")
        st.button("Delete this conversation", on_click=confirm_delete_conversation,
                  args=(lib, conversation), key="delete_conversation", icon=":material/delete:", width="stretch")
