"""The Library tab: add files, browse and read papers, search, and remove papers or whole source files, always
after a confirmation that names every paper that will go."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from assistant.ui.formatting import shorten
from assistant.ui.rendering import md_escape, paper_html
from assistant.ui.state import Confirm, SourceView, notify, open_dialog
from assistant.ui.uploads import MAX_UPLOAD_MB, UPLOAD_TYPES, UploadResult, ingest_uploads

from assistant import (
    NO_ABSTRACT,
    Assistant,
    Filters,
    IngestReport,
    LibraryFacets,
    Paper,
    PaperPage,
    ProgressCallback,
    author_names,
    display_title,
    is_demo_file,
    verbatim_spans,
)

STAGES = {"parse": "Reading files", "embed": "Embedding passages"}  # ingest embeds passages (chunks), not papers


def progress_bar(bar: Any) -> ProgressCallback:
    """An ingest progress callback drawing on a st.progress bar."""

    def update(stage: str, done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"{STAGES.get(stage, stage)}: {done} / {total}")

    return update


def paper_line(paper: Paper) -> str:
    """A paper as one line of a list of papers to delete: title, authors, year, id."""
    return (f"{shorten(display_title(paper), 110)} — {author_names(paper, 2)} ({paper.when or 'undated'}) "
            f"· {paper.paper_id}")


# --- removal, confirmed -------------------------------------------------------------------------------------


def confirm_delete(lib: Assistant, papers: list[Paper]) -> None:
    def delete() -> str:
        report = lib.remove(paper_ids=[p.paper_id for p in papers])
        st.session_state.selected_papers = []
        gone = [p.title for p in papers if p.paper_id in set(report.removed)]
        return f"Deleted {len(gone)} paper{'s' if len(gone) != 1 else ''}: " + "; ".join(shorten(t, 60) for t in gone)

    count = f"{len(papers)} paper{'s' if len(papers) != 1 else ''}"
    open_dialog(Confirm(title=f"Delete {count} from the library?", items=[paper_line(p) for p in papers],
                        message="They go from search, answers and topics (their source files are not touched; "
                                "ingesting a file again brings its papers back).",
                        confirm_label=f"Delete {count}", action=delete))


def confirm_forget(lib: Assistant, file: str) -> None:
    held = lib.papers_of_files([file])  # only this file's papers are read
    going = [p for p in held if all(s.file == file for s in p.sources)]
    staying = len(held) - len(going)

    def forget() -> str:
        report = lib.remove(sources=[file])
        return (f"Forgot {Path(file).name}: {len(report.removed)} paper(s) deleted, {len(report.detached)} kept "
                "because other files also hold them.")

    open_dialog(Confirm(
        title=f"Forget {Path(file).name}?", items=[paper_line(p) for p in going],
        message=f"These {len(going)} papers come only from this file and will be deleted"
                + (f"; {staying} more stay because other files also hold them." if staying else "."),
        confirm_label=f"Forget the file and delete {len(going)} papers", action=forget))


# --- add ------------------------------------------------------------------------------------------------------


def render_ingest_report(result: UploadResult) -> None:
    """What the last ingest did: counts, then every failed file and skipped entry with its reason."""
    for line in result.rejected:
        st.error(line, icon=":material/block:")
    report: IngestReport | None = result.report
    if report is None:
        return
    counts = [("New", report.new, "papers added"),
              ("Without abstract", report.without_abstract,
               "papers of these files stored from their title and details alone: searchable, never quoted"),
              ("Updated", report.updated, "papers whose record changed"),
              ("Merged", report.merged_duplicates, "duplicates of papers already stored, merged into them"),
              ("Unchanged", report.unchanged, "papers already stored as they are"),
              ("Skipped", report.skipped_total, "entries with no title, abstract, DOI or arXiv id (listed below)")]
    with st.container(horizontal=True, key="ingest-counts"):
        for name, value, meaning in counts:
            st.metric(name, value, help=meaning, width="content")
    formats = ", ".join(f"{n} {fmt}" for fmt, n in sorted(report.papers_by_format.items()))
    st.caption(f"{report.files} file(s) in {report.seconds:.1f} s" + (f" · papers read: {formats}" if formats else "")
               + (f" · {report.files_unchanged} unchanged file(s) skipped" if report.files_unchanged else "")
               + (f" · {report.removed} paper(s) no longer in any source removed" if report.removed else ""))
    if result.added:
        with st.expander(f"{len(result.added)} paper{'s' if len(result.added) != 1 else ''} added",
                         expanded=len(result.added) <= 10, key="ingest-added"):
            st.markdown("\n".join(f"- {md_escape(paper_line(p))}" + (f" · PDF, {p.pdf.pages} pages" if p.pdf else "")
                                   for p in result.added[:200])
                        + (f"\n- … and {len(result.added) - 200} more" if len(result.added) > 200 else ""))
    for failure in report.files_failed:
        st.error(f"{md_escape(Path(failure.file).name)}: {md_escape(failure.reason)}", icon=":material/error:")
    if report.skipped:
        with st.expander(f"{report.skipped_total:,} {'entry' if report.skipped_total == 1 else 'entries'} skipped"):
            st.dataframe(pd.DataFrame([{"file": Path(s.file).name, "entry": s.position, "key or title": s.label or "",
                                        "reason": s.reason}
                                       for s in report.skipped]), hide_index=True, width="stretch")


def render_upload(lib: Assistant) -> None:
    st.subheader("Add papers")
    files = st.file_uploader(
        f"PDFs (full text), BibTeX, RIS, CSL-JSON, JSON/JSONL, CSV/TSV, PubMed (.nbib, XML), Web of Science, EndNote "
        f"XML, Zotero RDF, OpenAlex, Semantic Scholar, arXiv or scraped text pages, gzipped or not — up to "
        f"{MAX_UPLOAD_MB} MB each",
        type=UPLOAD_TYPES, accept_multiple_files=True, key=f"uploads-{st.session_state.uploader_generation}")
    if st.button("Add to library", type="primary", disabled=not files, icon=":material/upload:", key="add_files"):
        bar = st.progress(0.0, text="Saving the uploads…")
        try:
            result = ingest_uploads(lib, files, progress=progress_bar(bar))
        except Exception as error:  # noqa: BLE001 - one line, never a traceback
            st.error(f"Could not add the files: {error}")
            return
        st.session_state.last_ingest = result
        st.session_state.uploader_generation += 1  # a fresh uploader: the added files are not offered again
        st.rerun()
    if st.session_state.last_ingest:
        render_ingest_report(st.session_state.last_ingest)


def render_overview(lib: Assistant, facets: LibraryFacets) -> None:
    """Counts, and every source file with its papers and a "forget" action."""
    st.subheader("Library")
    formats, held = facets.formats, facets.files
    with st.container(horizontal=True, key="library-counts"):
        st.metric("Papers", facets.papers, width="content")
        st.metric("Source files", len(held), width="content")
        st.metric("Formats", len(formats), width="content")
    if formats:
        st.caption(" · ".join(f"{fmt}: {n}" for fmt, n in formats.items()))  # most first
    files = list(held)  # in name order
    if demo := [f for f in files if is_demo_file(f)]:
        with st.container(horizontal=True, vertical_alignment="center", key="demo-row"):
            st.caption(
                f"The demo corpus is in this library ({sum(held[f] for f in demo)} paper records from "
                f"{len(demo)} seed pages), mixed with "
                f"{'your papers' if len(demo) < len(files) else 'nothing else yet'}."
            )
            st.button("Remove the demo papers", key="remove_demo", icon=":material/delete_sweep:",
                      on_click=lambda: notify(f"Removed {len(lib.remove_demo().removed)} demo papers."))
    if files:
        with st.container(horizontal=True, vertical_alignment="bottom", key="forget-row"):
            st.selectbox("Source file", files, key="forget_source", index=None, placeholder="Choose a file…",
                         format_func=lambda f: f"{Path(f).name} — {held[f]} paper(s)")
            st.button("Forget…", disabled=not st.session_state.forget_source, key="forget_button",
                      icon=":material/folder_delete:", help="Remove the file's papers (those only it holds)",
                      on_click=lambda: confirm_forget(lib, st.session_state.forget_source))
    st.caption(f"Stored at {md_escape(str(lib.settings.home))}")


# --- browse, read, search ----------------------------------------------------------------------------------------


def table_key(shown: list[Paper]) -> str:
    """The table's widget key, new whenever the rows change: Streamlit's selection is by row position, so a
    table whose rows changed must not keep the old positions (it would select other papers)."""
    return "papers_table-" + hashlib.sha1("\n".join(p.paper_id for p in shown).encode()).hexdigest()[:12]


TABLE_ROW_PX, TABLE_MAX_PX = 35, 420  # the table is as tall as its rows, up to a scrolling 420 px


def table_height(rows: int) -> int:
    return min(TABLE_ROW_PX * (rows + 1) + 3, TABLE_MAX_PX)


PAGE_ROWS = 200  # rows of the browse table per page: a page run reads these records, whatever the library's size


def browse_page(lib: Assistant, filters: Filters, text: str) -> PaperPage:
    """The page of the table the session is on; back to the first page when the filters or the text change, and
    onto the last one when papers went from under it."""
    query = f"{text.strip().lower()}\n{filters.model_dump_json()}"
    if st.session_state.get("browse_query") != query:
        st.session_state.browse_query, st.session_state.browse_page = query, 0
    page = lib.browse(filters, text, st.session_state.browse_page * PAGE_ROWS, PAGE_ROWS)
    last = max(0, page.total - 1) // PAGE_ROWS
    if st.session_state.browse_page > last:
        st.session_state.browse_page = last
        page = lib.browse(filters, text, last * PAGE_ROWS, PAGE_ROWS)
    return page


def turn_page(step: int) -> None:
    st.session_state.browse_page += step


def render_browse(lib: Assistant, size: int, filters: Filters) -> None:
    """The papers in a table, a page at a time, within the sidebar filters and the text filter; the actions on
    the selection sit between the filter box and the table (always there, so selecting never moves the rows); the
    selection is kept as paper ids, so it follows the papers, not the rows (within the page shown)."""
    st.subheader("Browse")
    text = st.text_input("Filter by title, author, abstract or id", key="papers_filter",
                         placeholder="e.g. reinforcement")
    page = browse_page(lib, filters, text)
    shown = page.papers
    position = {p.paper_id: row for row, p in enumerate(shown)}
    kept = [pid for pid in st.session_state.selected_papers if pid in position]
    bounded = f" within the sidebar filters ({filters.describe()})" if filters.active() else ""
    rows = f" · rows {page.offset + 1:,}-{page.offset + len(shown):,}" if page.total > PAGE_ROWS else ""
    st.caption(f"{page.total} of {size} papers{bounded}{rows} · select rows to read or delete them")
    actions = st.container(horizontal=True, key="selection-actions")
    table = pd.DataFrame([(display_title(p), author_names(p, 3), p.when or "undated", p.venue or "",
                           "yes" if p.has_abstract else NO_ABSTRACT,
                           ", ".join(sorted({Path(s.file).name for s in p.sources})), p.paper_id) for p in shown],
                         columns=["Title", "Authors", "Year", "Venue", "Abstract", "Source", "ID"])  # headers if empty
    event = st.dataframe(table, hide_index=True, width="stretch", height=table_height(len(shown)), on_select="rerun",
                         selection_mode="multi-row", key=table_key(shown),
                         selection_default={"selection": {"rows": [position[pid] for pid in kept]}},
                         column_config={"Year": st.column_config.TextColumn(width="small")})
    selected = [shown[row] for row in event.selection.rows if row < len(shown)]
    st.session_state.selected_papers = [p.paper_id for p in selected]
    with actions:
        st.button(f"Delete {len(selected)} selected paper{'s' if len(selected) != 1 else ''}…", key="delete_button",
                  icon=":material/delete:", on_click=confirm_delete, args=(lib, selected), disabled=not selected)
        st.button("Open in the reader", key="read_button", icon=":material/open_in_full:", disabled=len(selected) != 1,
                  on_click=open_dialog, args=(SourceView(paper=selected[0], origin="the library"),) if selected
                  else ())
    if len(selected) == 1:
        with st.container(border=True, key="selected-paper"):
            st.html(paper_html(selected[0], (), author_names(selected[0], 12)))
    elif selected:
        st.markdown("\n".join(f"- {md_escape(paper_line(p))}" for p in selected))
    if page.total > PAGE_ROWS:
        with st.container(horizontal=True, vertical_alignment="center", key="browse-pages"):
            st.button("Previous page", key="browse_previous", icon=":material/chevron_left:", on_click=turn_page,
                      args=(-1,), disabled=page.offset == 0)
            st.caption(f"Page {page.offset // PAGE_ROWS + 1:,} of {(page.total - 1) // PAGE_ROWS + 1:,}")
            st.button("Next page", key="browse_next", icon=":material/chevron_right:", on_click=turn_page,
                      args=(1,), disabled=page.offset + PAGE_ROWS >= page.total)


def relevance_bar(score: float, best: float) -> str:
    """A search score as a bar relative to the best hit: fused scores are relative, so "1.00" means "best
    of this search", never certainty."""
    share = max(0.0, min(1.0, score / best)) if best > 0 else 0.0
    return (f'<div class="la-relevance" title="relevance relative to the best match"><span style="width:'
            f'{share * 100:.0f}%"></span></div>')


def render_search(lib: Assistant, filters: Filters) -> None:
    st.subheader("Search")
    query = st.text_input("Hybrid search (keywords and meaning) within the sidebar filters", key="library_query",
                          placeholder="e.g. scalable multi-agent reinforcement learning")
    if not query.strip():
        return
    hits = lib.search(query, k=10, filters=filters)
    if not hits:
        st.info("No paper matches.")
        return
    st.caption("Best match first; the bar shows each paper's relevance relative to the best match.")
    best = hits[0].score
    for rank, hit in enumerate(hits, start=1):
        with st.expander(f"{rank}. {md_escape(hit.title)} ({md_escape(hit.paper.when or 'undated')})",
                         key=f"hit-{rank}"):
            st.html(relevance_bar(hit.score, best))
            st.html(paper_html(hit.paper, verbatim_spans(hit.text, hit.paper.abstract), author_names(hit.paper, 12)))
            st.caption("Highlighted: the passage that matched the search.")


def render_library(lib: Assistant, facets: LibraryFacets, filters: Filters) -> None:
    """Search first, then the table, then adding files and the overview."""
    if st.session_state.notice:
        st.success(md_escape(st.session_state.notice))
        st.session_state.notice = None
    if facets.papers:
        render_search(lib, filters)
        render_browse(lib, facets.papers, filters)
    left, right = st.columns([1, 1], gap="large")
    with left:
        render_upload(lib)
    with right:
        render_overview(lib, facets)
