"""The Chat tab: the open conversation's turns, every citation clickable, and the questions still being answered.

A question is saved the moment it is sent (a pending turn) and answered in the background (ui/answers.py), so
opening a source, switching tabs or sending a second question never loses it. A turn in progress is drawn by a
fragment (`watch_answer`) that alone redraws, on a timer, until the turn is saved; only then does the whole page
run again, once, to draw the answer from the store. So nothing else on the page (an earlier answer's evidence
table with a list open, the question being typed) is redrawn or interrupted while an answer is worked out. Queued
questions show as waiting; failed and interrupted turns stay, each with a retry. Under every answer: the evidence
table (ui/evidence.py), "copy answer with references" and follow-up questions drawn from the library's topics.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import streamlit as st
from assistant.ui.answers import Answering
from assistant.ui.components import scroll_anchor
from assistant.ui.evidence import evidence_table
from assistant.ui.formatting import shorten, step_line, steps_label, usage_caption
from assistant.ui.rendering import markdown_html, md_escape
from assistant.ui.sidebar import remember_conversation
from assistant.ui.sources import cited_text
from assistant.ui.state import CHAT, Scope, scroll_to_latest

from assistant import (
    INTERRUPTED,
    Answer,
    Assistant,
    Conversation,
    Filters,
    SavedTurn,
    about,
    paper_name,
    reference_line,
)

CLUSTER_QUESTION = "What are the main findings and methods in these papers?"
POLL_SECONDS = 0.25  # how often the fragment of an answer in progress redraws it (the rest of the page is not run)
FOLLOW_UPS = ("How is it evaluated?", "What are its limitations?", "How does it compare with other methods?")


@st.cache_resource(show_spinner=False)
def answering() -> Answering:
    """The background answers of this server process (shared by its browser sessions)."""
    return Answering()


def clear_scope() -> None:
    st.session_state.scope = None


def ask_about_cluster(label: str, paper_ids: list[str]) -> None:
    """Scope the chat to one cluster, queue the standard question and bring the Chat tab forward."""
    st.session_state.scope = Scope(label=label, paper_ids=paper_ids)
    st.session_state.pending = CLUSTER_QUESTION
    st.session_state.tab = CHAT


def ask_next(question: str) -> None:
    """A suggested question, sent as if typed."""
    st.session_state.pending = question


def send(lib: Assistant, work: Answering, conversation: Conversation | None, question: str, filters: Filters,
         k: int) -> Conversation:
    """Save the question now (starting a conversation at the first one) and queue its answer."""
    if conversation is None:
        conversation_id = lib.start_conversation().conversation_id
        remember_conversation(conversation_id)
    else:
        conversation_id = conversation.conversation_id
    scope: Scope | None = st.session_state.scope
    if scope:
        filters = filters.model_copy(update={"paper_ids": scope.paper_ids})
    turn = lib.queue_question(conversation_id, question, filters, scope.describe() if scope else None)
    work.submit(lib, conversation_id, turn, k)
    scroll_to_latest()
    return lib.conversation(conversation_id)


def retry(lib: Assistant, work: Answering, conversation_id: str, turn: SavedTurn) -> None:
    """Ask a failed or interrupted turn's question again, as a new turn (the failed one stays as it was)."""
    again = lib.queue_question(conversation_id, turn.question, turn.filters, turn.scope)
    work.submit(lib, conversation_id, again, st.session_state.get("k", 6))
    scroll_to_latest()


def answer_markdown(answer: Answer, question: str) -> str:
    """The answer as Markdown with its numbered reference list: what "Copy answer with references" gives."""
    references = "\n".join(f"- {reference_line(c.paper, c.number)}" for c in answer.citations)
    return f"**{question}**\n\n{answer.body.strip()}\n" + (f"\n**References**\n\n{references}\n" if references else "")


@dataclass(frozen=True)
class Topics:
    """The library's topics as phrases to ask about: per paper id (for follow-ups) and per topic, largest first
    (for example questions)."""

    by_paper: dict[str, list[str]]
    largest: list[list[str]]


def topic_phrases(label: str, keywords: list[str]) -> list[str]:
    """A topic's keywords worth a question: phrases of several words first, then single words of five letters or
    more, or acronyms (written as the label writes them: "RL", "GNN")."""
    acronyms = {part.strip().lower(): part.strip() for part in label.split(",") if part.strip().isupper()}
    multi = [k for k in keywords if " " in k or "-" in k]
    return multi + [acronyms.get(k, k) for k in keywords if k not in multi and (len(k) >= 5 or k in acronyms)]


def library_topics(lib: Assistant, size: int) -> Topics:
    """The topics of the library (of `size` papers), read once per session and library size."""
    cached = st.session_state.get("library_topics")
    if cached is None or cached[0] != size:
        try:
            clusters = lib.clusters().topics
        except Exception:  # noqa: BLE001 - suggestions are a convenience: none rather than an error
            clusters = []
        phrases = [topic_phrases(c.label, c.keywords) for c in clusters]
        cached = (size, Topics({pid: words for c, words in zip(clusters, phrases, strict=True) for pid in c.paper_ids},
                               phrases))
        st.session_state.library_topics = cached
    return cached[1]


def follow_ups(topics: Topics, question: str, answer: Answer) -> list[str]:
    """Up to three follow-up questions (FOLLOW_UPS, asked about a name), one per cited paper while there are
    several: the paper's name (before its title's colon, the method its abstract introduces, or its short title),
    else a phrase of several words of its topic; never a lone word ("the limitations of policy"), nor a name the
    question already says."""
    asked = question.lower()
    names: list[str] = []
    for citation in answer.citations:
        paper = citation.paper
        candidates = [paper_name(paper.title, paper.abstract, paper.title_derived),
                      *(phrase for phrase in topics.by_paper.get(citation.paper_id, []) if " " in phrase)]
        name = next((n for n in candidates if n and n.lower() not in asked and n not in names), None)
        if name:
            names.append(name)
    return [about(template, names[i] if i < len(names) else names[0])
            for i, template in enumerate(FOLLOW_UPS)] if names else []


def example_questions(topics: Topics) -> list[str]:
    """Questions on the library's three largest topics, for an empty chat."""
    return [f"What are the main findings on {' and '.join(words[:2])}?" for words in topics.largest[:3] if words]


def rewritten(question: str, answer: Answer) -> str | None:
    """The standalone question a follow-up was searched as, when it differs from what was typed."""
    standalone = (answer.standalone_question or "").strip()
    return standalone if standalone and standalone.lower() != question.strip().lower() else None


def render_answer(lib: Assistant, topics: Topics, turn: SavedTurn, answer: Answer, number: int, newest: bool) -> None:
    with st.status(f"Answer {number} · {steps_label(answer)}", state="complete", expanded=False):
        for step in answer.steps:
            st.markdown(f"- {md_escape(step_line(step))}")
    if understood := rewritten(turn.question, answer):
        st.caption(f"Read as “{md_escape(understood)}” (a follow-up, completed from the conversation)",
                   help="The question as searched: its pronouns replaced by what they refer to earlier on.")
    passages = {e.paper.paper_id: e.passage for e in answer.evidence}
    cited_text(answer, f"answer-{turn.turn_id}", f"answer {number}", passages)
    st.caption(usage_caption(answer))
    if answer.evidence:
        evidence_table(lib, answer, turn, number, expanded=newest)
    with st.expander("Copy answer with references", icon=":material/content_copy:"):
        st.code(answer_markdown(answer, turn.question), language="markdown", wrap_lines=True)
    if newest and (suggested := follow_ups(topics, turn.question, answer)):
        with st.container(horizontal=True, key=f"follow-ups-{turn.turn_id}"):
            for position, question in enumerate(suggested):
                st.button(question, key=f"follow-{turn.turn_id}-{position}", icon=":material/subdirectory_arrow_right:",
                          on_click=ask_next, args=(question,))


def render_turn(lib: Assistant, work: Answering, topics: Topics, conversation_id: str, turn: SavedTurn,
                number: int | None, newest: bool, queued: set[int]) -> None:
    """A saved turn: the question, then its answer, its progress while this process answers it (`queued`: the
    turn ids in this process's queue, read before the conversation was), or why it has none, with a retry."""
    with st.chat_message("user"):
        st.markdown(md_escape(turn.question))
        if turn.scope:
            st.caption(f"About {md_escape(turn.scope)}")
    with st.chat_message("assistant"):
        if turn.answer is not None and number is not None:  # every answered turn has its number
            render_answer(lib, topics, turn, turn.answer, number, newest)
            return
        if turn.state == "pending" and turn.turn_id in queued:
            watch_answer(lib, work, conversation_id, turn.turn_id)
            return
        if turn.state == "pending" and turn.worker != os.getpid():
            st.caption("Being answered by another litassist process (a terminal): reload to see the answer.")
            return
        orphaned = turn.state == "pending"  # this process's, yet out of its queue before the store was read
        st.error(INTERRUPTED if orphaned else turn.reason or "No answer.", icon=":material/error:")
        with st.container(horizontal=True, vertical_alignment="center"):
            st.button("Retry", key=f"retry-{turn.turn_id}", icon=":material/refresh:",
                      on_click=retry, args=(lib, work, conversation_id, turn))
            st.caption(f"This turn {'failed' if turn.error else 'was interrupted'}: it is kept, but has no number "
                       "and is left out of follow-ups and exports.")


def render_chat(lib: Assistant, work: Answering, conversation: Conversation | None, size: int) -> None:
    """The conversation so far, its turns in progress each in a `watch_answer` fragment (`size`: papers in the
    library)."""
    scope: Scope | None = st.session_state.scope
    if scope:
        with st.container(horizontal=True, vertical_alignment="center", key="scope-banner"):
            st.info(f"Questions are scoped to {md_escape(scope.describe())}.", icon=":material/filter_alt:")
            st.button("Ask the whole library", on_click=clear_scope, key="clear_scope")
    if conversation is None or not conversation.turns:
        if size:
            st.caption("Ask a question about your papers. Answers cite the abstracts they draw on: click any [n] to "
                       "read the paper with the sentence the claim rests on highlighted. Conversations are saved "
                       "as you go (sidebar).")
            if examples := example_questions(library_topics(lib, size)):
                st.caption("For example:")
                with st.container(horizontal=True, key="examples"):
                    for position, question in enumerate(examples):
                        st.button(question, key=f"example-{position}", icon=":material/lightbulb:",
                                  on_click=ask_next, args=(question,))
        return
    # One snapshot of the queue, then the store: a turn of this process missing from the snapshot was saved before
    # it (answered, or failed), so reading the store again after it shows the turn as it ended, never as interrupted.
    queued = work.queued(lib, conversation.conversation_id)
    if any(t.state == "pending" and t.worker == os.getpid() and t.turn_id not in queued for t in conversation.turns):
        conversation = lib.conversation(conversation.conversation_id)
    numbers = {turn.turn_id: number for number, turn in conversation.numbered()}
    topics = library_topics(lib, size)
    answered = [t for t in conversation.turns if t.answer is not None]
    for turn in conversation.turns:
        if turn is conversation.turns[-1]:
            scroll_anchor(st.session_state.scroll_to, "scroll-latest")  # the newest question, once per token
        render_turn(lib, work, topics, conversation.conversation_id, turn, numbers.get(turn.turn_id),
                    newest=bool(answered) and turn is answered[-1], queued=queued)


@st.fragment(run_every=POLL_SECONDS)
def watch_answer(lib: Assistant, work: Answering, conversation_id: str, turn_id: int) -> None:
    """A turn in progress: what it has produced so far, or that it waits for the one before it. Only this fragment
    reruns on its timer; once the turn has left the queue (saved), the whole page runs once to draw it."""
    if turn_id not in work.queued(lib, conversation_id):
        st.session_state.scroll_to = uuid.uuid4().hex  # the answer lands with its question in view
        st.rerun()
    progress = work.progress(lib, conversation_id)
    if progress is None or progress.turn_id != turn_id:
        st.caption("Waiting: answered after the question before it.")
        return
    steps = [step_line(s) for s in progress.steps]
    label = f"Working out the answer… {steps[-1]}" if steps else "Searching your library…"
    st.caption(md_escape(shorten(label, 160)))
    if progress.text:
        st.html(markdown_html(progress.text + " ▌"))  # model output: text only, never images or links
