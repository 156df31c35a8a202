"""The evidence table under an answer: every paper the answer looked at (cited first), with the sentence that
counts, and actions on a selection of them: export (BibTeX, RIS, CSL-JSON), ask only about them, find similar."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from assistant.ui.formatting import shorten
from assistant.ui.rendering import md_escape
from assistant.ui.state import Scope, SourceView, open_dialog

from assistant import (
    PAPER_EXPORTS,
    Answer,
    Assistant,
    Evidence,
    Paper,
    SavedTurn,
    author_names,
    citation_spans,
    display_title,
    file_stem,
    split_sentences,
)

SENTENCE_CHARS = 240  # the table shows one sentence; the drawer has the whole abstract


def best_sentence(answer: Answer, evidence: Evidence) -> str:
    """For a cited paper, the sentence(s) the answer's claims rest on; else the retrieved passage's first."""
    number = next((c.number for c in answer.citations if c.paper_id == evidence.paper.paper_id), None)
    spans = citation_spans(answer, number)[0] if number is not None else []
    text = " … ".join(" ".join(s.text.split()) for s in spans)
    if not text:
        sentences = split_sentences(evidence.passage or evidence.paper.abstract)
        text = " ".join(sentences[0].split()) if sentences else ""
    return shorten(text, SENTENCE_CHARS)


def evidence_rows(answer: Answer) -> list[tuple[Paper, int | None, str]]:
    """(paper, its citation number or None, best sentence): cited papers in citation order, then the rest."""
    cited = {c.paper_id: c.number for c in answer.citations}
    ordered = sorted(answer.evidence, key=lambda e: (e.paper.paper_id not in cited,
                                                     cited.get(e.paper.paper_id, 0), e.number))
    seen, rows = set(), []
    for evidence in ordered:
        if evidence.paper.paper_id not in seen:
            seen.add(evidence.paper.paper_id)
            rows.append((evidence.paper, cited.get(evidence.paper.paper_id), best_sentence(answer, evidence)))
    return rows


def ask_about(papers: list[Paper], number: int) -> None:
    st.session_state.scope = Scope(label=f"{len(papers)} paper{'s' if len(papers) != 1 else ''} of answer {number}",
                                   paper_ids=[p.paper_id for p in papers], kind="selection")


def find_similar(lib: Assistant, papers: list[Paper], key: str) -> None:
    st.session_state[key] = lib.similar_papers([p.paper_id for p in papers], k=5)


def evidence_table(lib: Assistant, answer: Answer, turn: SavedTurn, number: int, expanded: bool) -> None:
    rows = evidence_rows(answer)
    cited = sum(n is not None for _, n, _ in rows)
    with st.expander(f"Evidence: {len(rows)} papers looked at, {cited} cited", expanded=expanded,
                     icon=":material/table_view:", key=f"evidence-box-{turn.turn_id}"):
        table = pd.DataFrame(
            [
                {
                    "Cited": f"[{n}]" if n else "no",
                    "Title": display_title(p),
                    "Authors": author_names(p, 3),
                    "Year": p.when or "undated",
                    "Venue": p.venue or "",
                    "Best sentence": sentence,
                }
                for p, n, sentence in rows
            ]
        )
        event = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun", selection_mode="multi-row",
                             key=f"evidence-{turn.turn_id}", height=38 + 35 * len(rows),
                             column_config={"Cited": st.column_config.TextColumn(width="small"),
                                            "Year": st.column_config.TextColumn(width="small"),
                                            "Title": st.column_config.TextColumn(width="medium"),
                                            "Best sentence": st.column_config.TextColumn(width="large")})
        chosen = [rows[i][0] for i in event.selection.rows if i < len(rows)]
        papers = chosen or [p for p, _, _ in rows]
        which = f"{len(chosen)} selected" if chosen else f"all {len(rows)}"
        with st.container(horizontal=True, vertical_alignment="bottom", key=f"evidence-actions-{turn.turn_id}"):
            kind = st.selectbox("Export format", list(PAPER_EXPORTS), key=f"evidence-format-{turn.turn_id}",
                                width=150)
            export = PAPER_EXPORTS[kind]
            st.download_button(f"Export {which} ({kind})", export.write(papers),
                               f"{file_stem(turn.question)}.{export.extension}", export.mime, on_click="ignore",
                               icon=":material/download:", key=f"evidence-export-{turn.turn_id}")
            st.button(f"Ask only about {which}", key=f"evidence-ask-{turn.turn_id}", icon=":material/filter_alt:",
                      on_click=ask_about, args=(papers, number))
            similar_key = f"similar-{turn.turn_id}"
            st.button(f"Find papers similar to {which}", key=f"evidence-similar-{turn.turn_id}",
                      icon=":material/travel_explore:", on_click=find_similar, args=(lib, papers, similar_key))
        if similar := st.session_state.get(similar_key):
            st.caption("Similar papers (nearest by content), best first:")
            for rank, (paper, _) in enumerate(similar, start=1):
                st.button(
                    f"{rank}. {md_escape(shorten(display_title(paper), 100))} ({md_escape(paper.when or 'undated')})",
                    key=f"{similar_key}-{rank}",
                    type="tertiary",
                    icon=":material/article:",
                    on_click=open_dialog,
                    args=(SourceView(paper=paper, origin=f"papers similar to answer {number}'s evidence"),),
                )
