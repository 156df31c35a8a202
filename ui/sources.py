"""Sources you can see: cited texts whose every [n] opens its paper, the numbered reference list under them, and
the drawer that shows a paper with exactly the sentence(s) a claim rests on highlighted.

The drawer is a right-hand `st.dialog`: it opens over whatever the user is looking at, at any scroll position and
on a phone (where it takes the screen). One dialog a run: pages put a SourceView or a Confirm in session state,
and app.py opens it last.
"""

from __future__ import annotations

import streamlit as st
from assistant.ui.components import cited_text_html, reveal_highlight
from assistant.ui.formatting import shorten
from assistant.ui.pages import show_pages
from assistant.ui.rendering import cited_html, md_escape, paper_html
from assistant.ui.state import Confirm, SourceView, close_dialog, notify, open_dialog

from assistant import (
    CitedText,
    Paper,
    Span,
    answer_claims,
    author_names,
    citation_spans,
    claim_text,
    display_title,
    marker_claims,
    verbatim_spans,
)


def _passage_spans(paper: Paper, passage: str | None) -> list[Span]:
    return verbatim_spans(passage, paper.abstract) if passage else []


def marker_source(cited: CitedText, index: int, origin: str, passages: dict[str, str]) -> SourceView | None:
    """The paper behind the index-th [n] marker of the text, highlighting what that claim rests on."""
    found = marker_claims(cited)
    if not 0 <= index < len(found):
        return None
    marker = found[index]
    number = marker.numbers[0]
    citation = next((c for c in cited.citations if c.number == number), None)
    if citation is None:
        return None
    if marker.claim is None:  # a marker outside every claim: what the whole text's citations of it rest on
        claim, (spans, weak) = None, citation_spans(cited, number)
    else:
        the_claim = answer_claims(cited)[marker.claim]
        claim = claim_text(the_claim)
        support = next((s for s in the_claim.citations if s.number == number), None)
        spans, weak = (support.spans, support.weak) if support else ([], False)
    return SourceView(paper=citation.paper, origin=f"[{number}] in {origin}", spans=spans,
                      passage_spans=_passage_spans(citation.paper, passages.get(citation.paper_id)),
                      claim=claim, weak=weak)


def reference_source(cited: CitedText, number: int, origin: str, passages: dict[str, str]) -> SourceView:
    """The paper of reference [number], highlighting everything the text's claims citing it rest on."""
    citation = next(c for c in cited.citations if c.number == number)
    spans, weak = citation_spans(cited, number)
    return SourceView(paper=citation.paper, origin=f"[{number}] in {origin}", spans=spans,
                      passage_spans=_passage_spans(citation.paper, passages.get(citation.paper_id)), weak=weak)


def cited_text(cited: CitedText, key: str, origin: str, passages: dict[str, str]) -> None:
    """The text with clickable inline markers, then its numbered references: any click opens the source."""
    clicked = cited_text_html(cited_html(cited), key)
    if clicked is not None:
        view = marker_source(cited, int(clicked), origin, passages)
        if view:
            open_dialog(view)
    references(cited, key, origin, passages)


def references(cited: CitedText, key: str, origin: str, passages: dict[str, str]) -> None:
    """Every cited paper with its number, as a list of links that open it."""
    if not cited.citations:
        return
    with st.container(gap=None, key=f"references-{key}"):
        for c in cited.citations:
            weak = " · weak support" if citation_spans(cited, c.number)[1] else ""
            label = (
                f"\\[{c.number}\\] {md_escape(shorten(display_title(c.paper), 90))} — "
                f"{md_escape(author_names(c.paper, 2))}, "
                f"{md_escape(c.paper.when or 'undated')}{weak}"
            )
            st.button(label, key=f"{key}-{c.number}", type="tertiary", icon=":material/article:",
                      on_click=lambda n=c.number: open_dialog(reference_source(cited, n, origin, passages)))


@st.dialog("Source", width=640, position="right", on_dismiss=close_dialog, icon=":material/article:")
def source_dialog(view: SourceView) -> None:
    st.caption(f"Opened from {md_escape(view.origin)}")
    if view.claim:
        st.markdown(f"**The answer says:** {md_escape(view.claim)}")
    spans = view.spans or view.passage_spans
    st.html(paper_html(view.paper, [s for s in spans if s.page is None], author_names(view.paper, 12)))
    if show_pages(view):  # spans on the pages of the paper's PDF: the page, boxed (ui/pages.py)
        return
    if view.weak:
        st.warning("Weak support: even the closest sentence of this abstract hardly supports the claim.",
                   icon=":material/warning:")
    if spans:
        reveal_highlight(f"{id(view)}")  # the highlight in view on every screen (a new token per opened source)
    if view.spans:
        st.caption("Highlighted: the sentence(s) of the abstract the claim rests on.")
    elif view.passage_spans:
        st.caption("Highlighted: the passage retrieved for this answer (no sentence was located for the claim "
                   "itself, so check it against the whole abstract).")
    elif view.claim is not None:
        st.caption("No sentence of this abstract was located for the claim: read the whole abstract to check it.")
    files = ", ".join(f"{s.file.rsplit('/', 1)[-1]} ({s.format})" for s in view.paper.sources)
    st.caption(f"Paper id {md_escape(view.paper.paper_id)}" + (f" · from {md_escape(files)}" if files else ""))


@st.dialog("Please confirm", width="medium", on_dismiss=close_dialog, icon=":material/warning:")
def confirm_dialog(request: Confirm) -> None:
    st.markdown(f"**{md_escape(request.title)}**")
    st.markdown(md_escape(request.message))
    with st.container(height="content" if len(request.items) <= 6 else 360, key="confirm-items"):
        st.markdown("\n".join(f"{number}. {md_escape(item)}" for number, item in enumerate(request.items, 1)))
    confirm, cancel = st.columns(2)
    if confirm.button(request.confirm_label, type="primary", key="confirm-yes", icon=":material/delete:",
                      width="stretch"):
        notify(request.action())
        close_dialog()
        st.rerun()
    if cancel.button("Cancel", key="confirm-no", width="stretch"):
        close_dialog()
        st.rerun()


def show_dialog() -> None:
    """Open the dialog a callback asked for, if any (at most one a run)."""
    request = st.session_state.dialog
    if isinstance(request, SourceView):
        source_dialog(request)
    elif isinstance(request, Confirm):
        confirm_dialog(request)
