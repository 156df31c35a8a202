"""The Chat tab: the open conversation's turns, a streamed answer for a new question, every citation clickable.

Turns are read back from the library's conversation store on every run (the store saves each turn as it ends),
so a reload, another tab or `litassist chat --resume` see the same conversation.
"""

from __future__ import annotations

import uuid
from typing import Any

import streamlit as st
from assistant.ui.components import scroll_anchor
from assistant.ui.formatting import step_line, steps_label, usage_caption
from assistant.ui.rendering import markdown_html, md_escape
from assistant.ui.sidebar import remember_conversation
from assistant.ui.sources import cited_text
from assistant.ui.state import Scope, scroll_to_latest

from assistant.api import Assistant
from assistant.conversations import Conversation, SavedTurn
from assistant.corpus import Paper
from assistant.retrieve import Filters

CLUSTER_QUESTION = "What are the main findings and methods in these papers?"


def clear_scope() -> None:
    st.session_state.scope = None


def ask_about_cluster(label: str, paper_ids: list[str]) -> None:
    """Scope the chat to one cluster, queue the standard question and bring the Chat tab forward."""
    from assistant.ui.state import CHAT

    st.session_state.scope = Scope(label=label, paper_ids=paper_ids)
    st.session_state.pending = CLUSTER_QUESTION
    st.session_state.tab = CHAT


def render_turn(turn: SavedTurn, number: int | None) -> None:
    """A saved turn: the question, then its answer (numbered) or, for a failed turn, why it failed."""
    with st.chat_message("user"):
        st.markdown(md_escape(turn.question))
        if turn.scope:
            st.caption(f"About {md_escape(turn.scope)}")
    with st.chat_message("assistant"):
        if turn.answer is None:
            st.error(turn.error or "No answer.", icon=":material/error:")
            st.caption("This turn failed: it has no number and is left out of follow-ups and exports.")
            return
        answer = turn.answer
        with st.status(f"Answer {number} · {steps_label(answer)}", state="complete", expanded=False):
            for step in answer.steps:
                st.markdown(f"- {md_escape(step_line(step))}")
        passages = {e.paper.paper_id: e.passage for e in answer.evidence}
        cited_text(answer, f"answer-{turn.turn_id}", f"answer {number}", passages)
        st.caption(usage_caption(answer))


def stream_answer(lib: Assistant, conversation_id: str, question: str, filters: Filters, k: int,
                  scope: Scope | None) -> None:
    """Steps in a status box and the answer token by token; the store keeps the turn (answered or failed)."""
    status = st.status("Searching your library…", expanded=False)
    shown = st.empty()
    text, answer = "", None
    try:
        for event in lib.stream(question, filters=filters, k=k, conversation=conversation_id,
                                scope=scope.describe() if scope else None):
            if event.kind == "step" and event.step:
                status.markdown(f"- {md_escape(step_line(event.step))}")
            elif event.kind == "token":
                text += event.text
                shown.html(markdown_html(text + " ▌"))  # model output: text only, never images or links
            elif event.kind == "final":
                answer = event.answer
        status.update(label=steps_label(answer), state="complete")
    except Exception:  # noqa: BLE001 - the store keeps the failed turn with its one line; the redraw shows it
        status.update(label="No answer", state="error")


def run_turn(lib: Assistant, conversation: Conversation | None, question: str, filters: Filters, k: int) -> None:
    """Ask in the open conversation (starting one at the first question) and redraw from the store."""
    if conversation is None:
        conversation_id = lib.start_conversation().conversation_id
        remember_conversation(conversation_id)
    else:
        conversation_id = conversation.conversation_id
    scope: Scope | None = st.session_state.scope
    if scope:
        filters = filters.model_copy(update={"paper_ids": scope.paper_ids})
    scroll_anchor(uuid.uuid4().hex, "scroll-new")
    with st.chat_message("user"):
        st.markdown(md_escape(question))
    with st.chat_message("assistant"):
        stream_answer(lib, conversation_id, question, filters, k, scope)
    scroll_to_latest()
    st.rerun()  # redraw the finished turn from the store, with its clickable citations


def render_chat(lib: Assistant, conversation: Conversation | None, papers: list[Paper]) -> Any:
    """The conversation so far; returns the container new turns stream into (above the pinned input)."""
    scope: Scope | None = st.session_state.scope
    if scope:
        with st.container(horizontal=True, vertical_alignment="center", key="scope-banner"):
            st.info(f"Questions are scoped to {md_escape(scope.describe())}.", icon=":material/filter_alt:")
            st.button("Ask the whole library", on_click=clear_scope, key="clear_scope")
    if conversation is None or not conversation.turns:
        st.caption("Ask a question about your papers. Answers cite the abstracts they draw on: click any [n] to "
                   "read the paper with the sentence the claim rests on highlighted. Conversations are saved "
                   "as you go (sidebar)." if papers else "")
    else:
        numbers = {turn.turn_id: number for number, turn in conversation.numbered()}
        for turn in conversation.turns:
            if turn is conversation.turns[-1]:
                scroll_anchor(st.session_state.scroll_to, "scroll-latest")  # the newest turn, once per token
            render_turn(turn, numbers.get(turn.turn_id))
    return st.container()
