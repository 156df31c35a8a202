"""litassist in the browser: chat with cited sources, a topic map of the library, and the library itself.

Run with `litassist ui` or `streamlit run ui/app.py [-- --home DIR]`. The page calls only the `Assistant`
facade (and the models it returns); everything else here is presentation and session state.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from assistant.ui.conversation import Scope, Turn, cited_papers, conversation_markdown, history
from assistant.ui.formatting import (
    authors_line,
    highlight,
    md_escape,
    selected_paper,
    shorten,
    step_line,
    steps_label,
    usage_caption,
)
from assistant.ui.uploads import MAX_UPLOAD_MB, UPLOAD_TYPES, UploadResult, ingest_uploads

from assistant.agent import Answer
from assistant.api import DEMO_CORPUS, Assistant
from assistant.bibtex import bibtex
from assistant.citations import Citation
from assistant.clusters import UNCLUSTERED, Cluster, ClusterMap, ClusterSummary
from assistant.config import Settings, load_settings
from assistant.corpus import Paper
from assistant.index import IngestReport, ProgressCallback
from assistant.llm import describe_error, model_name, resolve_provider
from assistant.retrieve import Filters

CHAT, EXPLORE, LIBRARY = ":material/forum: Chat", ":material/hub: Explore", ":material/library_books: Library"
PROVIDERS = ["auto", "offline", "openai", "openai-compatible", "local"]
CLUSTER_QUESTION = "What are the main findings and methods in these papers?"
EMPTY_LIBRARY = "Your library is empty: load the seed corpus above, or add your own exports in the Library tab."
MAP_SELECTION = "pick"
PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D", "#EECA3B",
           "#1F77B4", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#17BECF", "#BCBD22", "#AEC7E8"]
STYLE = """<style>
mark { background: #ffe58a; color: inherit; padding: 0 .15em; border-radius: .2em; }
.la-abstract { line-height: 1.65; font-size: 0.95rem; }
[data-testid="stMainBlockContainer"] { padding-top: 4rem; }
.st-key-references button { justify-content: flex-start; text-align: left; min-height: 1.9rem; }
.st-key-references button p { text-align: left; }
</style>"""


# --- the library and its settings ------------------------------------------------------------------------


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
    """One Assistant per home and model choice, shared across reruns (it holds the store and the model)."""
    return Assistant(settings=_settings)


def model_sidebar(base: Settings) -> Settings:
    """Provider and model pickers; the settings the rest of the page uses."""
    st.subheader("Model")
    default = PROVIDERS.index(base.llm_provider) if base.llm_provider in PROVIDERS else 0
    provider = st.selectbox("Provider", PROVIDERS, index=default, key="provider",
                            help="auto: OpenAI with OPENAI_API_KEY, a server with OPENAI_BASE_URL, a local GGUF "
                                 "with LITASSIST_LOCAL_MODEL_PATH, else offline (extractive answers).")
    model = st.text_input("Model", value=base.llm_model or "", key="model", placeholder="provider default",
                          help="e.g. gpt-4o-mini, or the model name your OpenAI-compatible server serves")
    settings = load_settings(base.home, llm_provider=provider, llm_model=model.strip() or None)
    try:
        resolved = resolve_provider(settings)
        name = model_name(settings, resolved)
    except Exception as error:  # noqa: BLE001 - a misconfigured provider is shown, not raised
        st.warning(describe_error(error, settings))
        return settings
    if resolved == "offline":
        st.caption("In use: **offline** — answers quote the abstracts (extractive). Set OPENAI_API_KEY or "
                   "OPENAI_BASE_URL for generated answers.")
    else:
        st.caption(f"In use: **{resolved}** · `{name}`")
    return settings


def retrieval_sidebar(papers: list[Paper]) -> tuple[Filters, int]:
    """Year range, source and papers per search: the bounds every search of a chat turn obeys."""
    st.subheader("Retrieval")
    years = sorted({p.year for p in papers if p.year})
    year_min = year_max = None
    if len(years) > 1:
        low, high = st.slider("Publication years", years[0], years[-1], (years[0], years[-1]), key="years")
        if (low, high) != (years[0], years[-1]):
            year_min, year_max = low, high
            undated = sum(p.year is None for p in papers)
            if undated:
                st.caption(f"{undated} papers without a year are left out while the range is narrowed.")
    formats = sorted({s.format for p in papers for s in p.sources})
    files = sorted({s.file for p in papers for s in p.sources}, key=lambda f: Path(f).name)
    source = st.selectbox("Source", [None, *formats, *files], key="source",
                          format_func=lambda v: "All sources" if v is None else
                          (f"format: {v}" if v in formats else f"file: {Path(v).name}"))
    k = st.slider("Papers per search", 1, 20, 6, key="k", help="How many papers each search of the agent retrieves.")
    return Filters(year_min=year_min, year_max=year_max, source=source), k


def conversation_sidebar() -> None:
    st.subheader("Conversation")
    turns: list[Turn] = st.session_state.turns
    cited = cited_papers(turns)
    st.download_button("Export chat (Markdown)", conversation_markdown(turns), "litassist-conversation.md",
                       "text/markdown", disabled=not turns, on_click="ignore", icon=":material/download:",
                       width="stretch")
    st.download_button(f"Export citations (BibTeX, {len(set(p.paper_id for p in cited))})", bibtex(cited),
                       "litassist-citations.bib", "application/x-bibtex", disabled=not cited, on_click="ignore",
                       icon=":material/menu_book:", width="stretch")
    st.button("New conversation", on_click=new_conversation, disabled=not turns, icon=":material/add_comment:",
              width="stretch")


# --- state changes (callbacks run before the page is drawn, so every panel sees them) ---------------------


def init_state() -> None:
    defaults: dict[str, Any] = {"turns": [], "open_paper": None, "scope": None, "pending": None,
                                "last_ingest": None, "uploader_generation": 0, "notice": None, "summaries": {}}
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value


def open_paper(paper_id: str, passage: str | None, origin: str) -> None:
    st.session_state.open_paper = {"paper_id": paper_id, "passage": passage, "origin": origin}


def close_paper() -> None:
    st.session_state.open_paper = None


def new_conversation() -> None:
    st.session_state.turns = []
    st.session_state.scope = None
    st.session_state.open_paper = None


def ask_about_cluster(label: str, paper_ids: list[str]) -> None:
    """Scope the chat to one cluster, queue the standard question and bring the Chat tab forward."""
    st.session_state.scope = Scope(label=label, paper_ids=paper_ids)
    st.session_state.pending = CLUSTER_QUESTION
    st.session_state.tab = CHAT


def clear_scope() -> None:
    st.session_state.scope = None


def open_map_point() -> None:
    paper_id = selected_paper(st.session_state.topic_map.selection, MAP_SELECTION)
    if paper_id:
        open_paper(paper_id, None, "topic map")


def remove_papers(lib: Assistant) -> None:
    report = lib.remove(paper_ids=st.session_state.delete_papers)
    st.session_state.delete_papers = []
    st.session_state.notice = f"Deleted {len(report.removed)} paper(s)."


def forget_source(lib: Assistant) -> None:
    file = st.session_state.forget_source
    report = lib.remove(sources=[file])
    st.session_state.notice = (f"Forgot {Path(file).name}: {len(report.removed)} paper(s) deleted, "
                               f"{len(report.detached)} kept because other files also hold them.")


# --- shared pieces ----------------------------------------------------------------------------------------


def progress_bar(bar: Any) -> ProgressCallback:
    """An ingest progress callback drawing on a st.progress bar."""
    names = {"parse": "Reading files", "embed": "Embedding papers"}

    def update(stage: str, done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"{names.get(stage, stage)}: {done} / {total}")

    return update


def render_paper(paper: Paper, passage: str | None) -> None:
    """A paper's record with its abstract, the supporting passage (if any) highlighted."""
    st.markdown(f"#### {md_escape(paper.title)}")
    when = str(paper.year or paper.date or "n.d.")
    st.caption(" · ".join(md_escape(part) for part in (authors_line(paper), when, paper.venue or "") if part))
    links = [f"[link]({paper.url})" if paper.url else "", f"[doi:{paper.doi}](https://doi.org/{paper.doi})"
             if paper.doi else "", f"[arXiv:{paper.arxiv_id}](https://arxiv.org/abs/{paper.arxiv_id})"
             if paper.arxiv_id else ""]
    if any(links):
        st.markdown(" · ".join(link for link in links if link))
    marked = highlight(paper.abstract, passage)
    st.markdown(f'<div class="la-abstract">{marked}</div>', unsafe_allow_html=True)
    if "<mark>" in marked:
        st.caption("Highlighted: the passage the answer drew on.")
    sources = ", ".join(f"{Path(s.file).name} ({s.format})" for s in paper.sources)
    st.caption(f"`{paper.paper_id}` · from {md_escape(sources)}")


def render_sources_panel(lib: Assistant, where: str) -> None:
    """The right-hand panel: the paper a citation or map point opened."""
    with st.container(border=True, key=f"sources-{where}"):
        opened = st.session_state.open_paper
        if not opened:
            st.markdown("##### Sources")
            st.caption("Click a citation under an answer, a cited paper in a topic summary or a point on the map "
                       "to read the paper here, with the supporting passage highlighted.")
            return
        paper = lib.paper(opened["paper_id"])
        head, close = st.columns([5, 1], vertical_alignment="center")
        head.caption(f"Opened from {opened['origin']}")
        close.button("", icon=":material/close:", key=f"close-{where}", on_click=close_paper, help="Close")
        if paper is None:
            st.warning("This paper is no longer in the library.")
            return
        render_paper(paper, opened["passage"])


def citation_buttons(citations: list[Citation], passages: dict[str, str], key: str, origin: str) -> None:
    """The references as a list of links: clicking one opens the paper in the sources panel."""
    with st.container(gap=None, key=f"references-{key}"):
        for c in citations:
            st.button(f"\\[{c.number}\\] {md_escape(shorten(c.title, 70))}", key=f"{key}-{c.number}", type="tertiary",
                      icon=":material/article:", on_click=open_paper, args=(c.paper_id, passages.get(c.paper_id), origin))


# --- first run ------------------------------------------------------------------------------------------


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
            st.session_state.notice = f"Loaded the seed corpus: {report.new} papers."
            st.rerun()


# --- chat ---------------------------------------------------------------------------------------------


def render_turn(turn: Turn, index: int) -> None:
    with st.chat_message("user"):
        st.markdown(md_escape(turn.question))
        if turn.scope:
            st.caption(f"About the topic “{md_escape(turn.scope.label)}” ({len(turn.scope.paper_ids)} papers)")
    with st.chat_message("assistant"):
        if turn.answer is None:
            st.error(turn.error or "No answer.")
            return
        render_answer(turn.answer, index)


def render_answer(answer: Answer, index: int) -> None:
    with st.status(steps_label(answer), state="complete", expanded=False):
        for step in answer.steps:
            st.markdown(f"- {md_escape(step_line(step))}")
    st.markdown(answer.text.removesuffix(answer.references).strip())
    if answer.citations:
        passages = {e.paper.paper_id: e.passage for e in answer.evidence}
        citation_buttons(answer.citations, passages, f"cite-{index}", f"citation in answer {index + 1}")
    st.caption(usage_caption(answer))


def stream_answer(lib: Assistant, turn: Turn, past: list[dict[str, str]], filters: Filters, k: int) -> None:
    """Show steps in a status box and the answer token by token; the turn gets the answer or the error line."""
    status = st.status("Searching your library…", expanded=False)
    shown = st.empty()
    text = ""
    try:
        for event in lib.stream(turn.question, past, filters, k):
            if event.kind == "step" and event.step:
                status.markdown(f"- {md_escape(step_line(event.step))}")
            elif event.kind == "token":
                text += event.text
                shown.markdown(text + " ▌")
            elif event.kind == "final":
                turn.answer = event.answer
        status.update(label=steps_label(turn.answer), state="complete")
    except Exception as error:  # noqa: BLE001 - a failed model call is one line for the user, never a traceback
        status.update(label="No answer", state="error")
        turn.error = describe_error(error, lib.settings)


def run_turn(lib: Assistant, question: str, filters: Filters, k: int, has_papers: bool) -> None:
    scope: Scope | None = st.session_state.scope
    turn = Turn(question=question, scope=scope)
    if scope:
        filters = filters.model_copy(update={"paper_ids": scope.paper_ids})
    with st.chat_message("user"):
        st.markdown(md_escape(question))
    with st.chat_message("assistant"):
        if has_papers:
            stream_answer(lib, turn, history(st.session_state.turns), filters, k)
        else:
            turn.error = EMPTY_LIBRARY
    st.session_state.turns.append(turn)
    st.rerun()  # redraw the finished turn from session state, with its citation buttons


def render_chat(lib: Assistant, papers: list[Paper], filters: Filters, k: int) -> None:
    left, right = st.columns([3, 2], gap="large")
    with right:
        render_sources_panel(lib, "chat")
    with left:
        scope: Scope | None = st.session_state.scope
        if scope:
            with st.container(horizontal=True, vertical_alignment="center"):
                st.info(f"Questions are scoped to the topic **{md_escape(scope.label)}** ({len(scope.paper_ids)} "
                        "papers).", icon=":material/filter_alt:")
                st.button("Ask the whole library", on_click=clear_scope, key="clear_scope")
        turns: list[Turn] = st.session_state.turns
        if not turns:
            st.caption("Ask a question about your papers. Answers cite the abstracts they draw on; click a "
                       "citation to read the paper next to the chat.")
        messages = st.container()
        with messages:
            for index, turn in enumerate(turns):
                render_turn(turn, index)
        question = st.chat_input("Ask about your papers…", key="question")
        pending = st.session_state.pending
        st.session_state.pending = None
        if question or pending:
            with messages:  # above the input box, after the earlier turns
                run_turn(lib, question or pending, filters, k, bool(papers))


# --- explore --------------------------------------------------------------------------------------------


def topic_labels(cluster_map: ClusterMap) -> dict[str, str]:
    """Cluster labels for the legend; a repeated label gets its id so two topics never share a colour."""
    counts = Counter(c.label for c in cluster_map.clusters)
    return {c.cluster_id: c.label if counts[c.label] == 1 else f"{c.label} ({c.cluster_id})"
            for c in cluster_map.clusters}


def topic_map(cluster_map: ClusterMap, labels: dict[str, str], papers: dict[str, Paper]) -> None:
    """The 2-D map: one point per paper coloured by topic; clicking a point opens the paper."""
    rows = [{"paper_id": p.paper_id, "title": p.title, "topic": labels[p.cluster_id], "x": p.x, "y": p.y,
             "year": papers[p.paper_id].year if p.paper_id in papers else None} for p in cluster_map.points]
    domain = [labels[c.cluster_id] for c in cluster_map.clusters]
    colours = [("#b8b8b8" if c.cluster_id == UNCLUSTERED else PALETTE[i % len(PALETTE)])
               for i, c in enumerate(cluster_map.clusters)]
    pick = alt.selection_point(name=MAP_SELECTION, fields=["paper_id"], on="click")
    chart = (
        alt.Chart(pd.DataFrame(rows))
        .mark_circle(size=80, opacity=0.85, stroke="white", strokeWidth=0.6)
        .encode(
            x=alt.X("x:Q", axis=None),
            y=alt.Y("y:Q", axis=None),
            color=alt.Color("topic:N", scale=alt.Scale(domain=domain, range=colours),
                            legend=alt.Legend(title=None, orient="bottom", columns=2, labelLimit=260)),
            tooltip=[alt.Tooltip("title:N", title="Paper"), alt.Tooltip("topic:N", title="Topic"),
                     alt.Tooltip("year:Q", title="Year")],
        )
        .add_params(pick)
        .properties(height=520)
    )
    st.altair_chart(chart, key="topic_map", on_select=open_map_point, selection_mode=MAP_SELECTION, width="stretch")


def cluster_summary(lib: Assistant, cluster: Cluster, offline: bool) -> ClusterSummary | None:
    """Offline summaries are instant, so they are always shown; a model's are written when asked for (they cost
    a call each), then kept for the session (the library also caches them on disk)."""
    key = f"{lib.settings.home}|{cluster.content_key}|{lib.settings.llm_provider}|{lib.settings.llm_model}"
    summaries: dict[str, ClusterSummary] = st.session_state.summaries
    if key not in summaries and (offline or st.button("Summarize this topic", key=f"summarize-{cluster.cluster_id}",
                                                      icon=":material/summarize:")):
        try:
            with st.spinner("Summarizing…"):
                summaries[key] = lib.cluster_summary(cluster.cluster_id)
        except Exception as error:  # noqa: BLE001 - one line, never a traceback
            st.error(describe_error(error, lib.settings))
    return summaries.get(key)


def render_cluster(lib: Assistant, cluster: Cluster, label: str, papers: dict[str, Paper], offline: bool,
                   expanded: bool) -> None:
    with st.expander(f"**{md_escape(label)}** · {len(cluster.paper_ids)} papers", expanded=expanded):
        if cluster.keywords:
            st.caption("Keywords: " + md_escape(", ".join(cluster.keywords)))
        if cluster.cluster_id != UNCLUSTERED:
            summary = cluster_summary(lib, cluster, offline)
            if summary:
                st.markdown(summary.text)
                passages = {c.paper_id: None for c in summary.citations}
                citation_buttons(summary.citations, passages, f"topic-{cluster.cluster_id}", f"topic “{label}”")
            st.button("Ask about this cluster", key=f"ask-{cluster.cluster_id}", type="primary",
                      icon=":material/forum:", on_click=ask_about_cluster, args=(label, cluster.paper_ids))
        members = []
        for paper_id in cluster.paper_ids:
            paper = papers.get(paper_id)
            if paper:
                star = "★ " if paper_id in cluster.representative_ids else ""
                members.append(f"- {star}{md_escape(paper.title)} ({paper.year or paper.date or 'n.d.'})")
        st.markdown("**Papers** (★ most central)\n\n" + "\n".join(members))


def render_explore(lib: Assistant, papers: list[Paper]) -> None:
    if not papers:
        st.info(EMPTY_LIBRARY)
        return
    most = max(2, min(30, len(papers) // 3))
    choice = st.select_slider("Topics", ["auto", *range(2, most + 1)], value="auto", key="n_clusters",
                              help="auto picks the number of topics from the library's structure")
    try:
        with st.spinner("Grouping the papers into topics…"):
            cluster_map = lib.clusters(None if choice == "auto" else int(choice))
    except Exception as error:  # noqa: BLE001 - one line, never a traceback
        st.error(f"Could not compute the topics: {error}")
        return
    labels = topic_labels(cluster_map)
    by_id = {p.paper_id: p for p in papers}
    unclustered = len(cluster_map.points) - sum(len(c.paper_ids) for c in cluster_map.topics)
    st.caption(f"{len(cluster_map.topics)} topics over {len(cluster_map.points)} papers"
               + (f" · {unclustered} fit no topic" if unclustered else "") + " · hover a point for its title, "
               "click it to open the paper; open a topic for its summary and papers")
    left, right = st.columns([3, 2], gap="large")
    with left:
        topic_map(cluster_map, labels, by_id)
    with right:
        if st.session_state.open_paper:
            render_sources_panel(lib, "explore")
        offline = resolve_provider(lib.settings) == "offline"
        with st.container(height=640, border=False, key="topics"):
            for index, cluster in enumerate(cluster_map.clusters):
                render_cluster(lib, cluster, labels[cluster.cluster_id], by_id, offline, expanded=index == 0)


# --- library ------------------------------------------------------------------------------------------


def render_ingest_report(result: UploadResult) -> None:
    """What the last ingest did: counts, then every failed file and skipped entry with its reason."""
    for line in result.rejected:
        st.error(line, icon=":material/block:")
    report: IngestReport | None = result.report
    if report is None:
        return
    columns = st.columns(5)
    for column, (name, value) in zip(columns, [("New", report.new), ("Updated", report.updated),
                                               ("Merged duplicates", report.merged_duplicates),
                                               ("Unchanged", report.unchanged), ("Skipped", report.skipped_total)]):
        column.metric(name, value)
    formats = ", ".join(f"{n} {fmt}" for fmt, n in sorted(report.papers_by_format.items()))
    st.caption(f"{report.files} file(s) in {report.seconds:.1f} s" + (f" · papers read: {formats}" if formats else "")
               + (f" · {report.files_unchanged} unchanged file(s) skipped" if report.files_unchanged else "")
               + (f" · {report.removed} paper(s) no longer in any source removed" if report.removed else ""))
    for failure in report.files_failed:
        st.error(f"{Path(failure.file).name}: {failure.reason}", icon=":material/error:")
    if report.skipped:
        with st.expander(f"{report.skipped_total:,} {'entry' if report.skipped_total == 1 else 'entries'} skipped"):
            st.dataframe(pd.DataFrame([{"file": Path(s.file).name, "entry": s.position, "reason": s.reason}
                                       for s in report.skipped]), hide_index=True, width="stretch")


def render_upload(lib: Assistant) -> None:
    st.subheader("Add papers")
    files = st.file_uploader(
        f"BibTeX, RIS, CSL-JSON, JSON/JSONL, CSV/TSV, arXiv Atom or scraped text pages — up to {MAX_UPLOAD_MB} MB each",
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


def paper_rows(papers: list[Paper], text: str) -> list[Paper]:
    """Papers whose title, authors, abstract, venue or id contain `text` (case-insensitive)."""
    needle = text.strip().lower()
    if not needle:
        return papers
    return [p for p in papers
            if needle in " ".join([p.title, *p.authors, p.abstract, p.venue or "", p.paper_id]).lower()]


def render_browse(papers: list[Paper]) -> None:
    st.subheader("Browse")
    shown = paper_rows(papers, st.text_input("Filter by title, author, abstract or id", key="papers_filter",
                                             placeholder="e.g. reinforcement"))
    table = pd.DataFrame([{"Title": p.title, "Authors": authors_line(p, 3), "Date": str(p.year or p.date or ""),
                           "Venue": p.venue or "",
                           "Source": ", ".join(sorted({Path(s.file).name for s in p.sources})), "ID": p.paper_id}
                          for p in shown])
    st.caption(f"{len(shown)} of {len(papers)} papers · select a row to read it")
    event = st.dataframe(table, hide_index=True, width="stretch", height=360, on_select="rerun",
                         selection_mode="single-row", key="papers_table",
                         column_config={"Date": st.column_config.TextColumn(width="small")})
    rows = [r for r in event.selection.rows if r < len(shown)]
    if rows:
        with st.container(border=True):
            render_paper(shown[rows[0]], None)


def render_search(lib: Assistant, filters: Filters) -> None:
    st.subheader("Search")
    query = st.text_input("Hybrid search (keywords and meaning) within the sidebar filters", key="library_query",
                          placeholder="e.g. scalable multi-agent reinforcement learning")
    if not query.strip():
        return
    hits = lib.search(query, k=10, filters=filters)
    if not hits:
        st.info("No paper matches.")
    for hit in hits:
        with st.expander(f"{hit.score:.2f} · {md_escape(hit.title)} ({hit.paper.year or hit.paper.date or 'n.d.'})"):
            render_paper(hit.paper, hit.text)


def render_manage(lib: Assistant, papers: list[Paper]) -> None:
    st.subheader("Remove")
    titles = {p.paper_id: shorten(p.title, 90) for p in papers}
    chosen = st.multiselect("Papers to delete", list(titles), format_func=titles.__getitem__, key="delete_papers",
                            placeholder="Choose papers…")
    st.button(f"Delete {len(chosen)} paper(s)", disabled=not chosen, on_click=remove_papers, args=(lib,),
              key="delete_button", icon=":material/delete:")
    held = Counter(s.file for p in papers for s in p.sources)
    files = sorted(held, key=lambda f: Path(f).name)
    st.selectbox("Source file to forget (its papers go unless another file holds them)", files, key="forget_source",
                 format_func=lambda f: f"{Path(f).name} — {held[f]} paper(s)", index=None,
                 placeholder="Choose a file…")
    st.button("Forget this file", disabled=not st.session_state.forget_source, on_click=forget_source, args=(lib,),
              key="forget_button", icon=":material/folder_delete:")


def render_library(lib: Assistant, papers: list[Paper], filters: Filters) -> None:
    if st.session_state.notice:
        st.success(st.session_state.notice)
        st.session_state.notice = None
    left, right = st.columns([1, 1], gap="large")
    with left:
        render_upload(lib)
    with right:
        st.subheader("Library")
        formats = Counter(s.format for p in papers for s in p.sources)
        files = {s.file for p in papers for s in p.sources}
        a, b, c = st.columns(3)
        a.metric("Papers", len(papers))
        b.metric("Source files", len(files))
        c.metric("Formats", len(formats))
        if formats:
            st.caption(" · ".join(f"{fmt}: {n}" for fmt, n in formats.most_common()))
        st.caption(f"Stored at `{lib.settings.home}`")
    if not papers:
        return
    render_browse(papers)
    left, right = st.columns([3, 2], gap="large")
    with left:
        render_search(lib, filters)
    with right:
        render_manage(lib, papers)


# --- the page -------------------------------------------------------------------------------------------


def main() -> None:
    st.set_page_config(page_title="litassist", page_icon=":material/auto_stories:", layout="wide")
    st.html(STYLE)
    init_state()
    base = load_settings(home_argument(sys.argv[1:]))
    with st.sidebar:
        st.title(":material/auto_stories: litassist")
        st.caption("Ask your papers; every answer cites them.")
        settings = model_sidebar(base)
    try:
        lib = open_library(settings_key(settings), settings)
        papers = lib.papers()
    except Exception as error:  # noqa: BLE001 - e.g. a library built with another embedding model
        st.error(f"Cannot open the library at {settings.home}: {error}")
        st.stop()
    with st.sidebar:
        filters, k = retrieval_sidebar(papers)
        conversation_sidebar()
        st.caption(f"{len(papers)} papers · `{settings.home}`")
    if not papers:
        render_first_run(lib)
    elif st.session_state.notice and st.session_state.get("tab") != LIBRARY:
        st.toast(st.session_state.notice, icon=":material/check_circle:")
        st.session_state.notice = None
    chat, explore, library = st.tabs([CHAT, EXPLORE, LIBRARY], key="tab", on_change="rerun")
    if chat.open:
        with chat:
            render_chat(lib, papers, filters, k)
    if explore.open:
        with explore:
            render_explore(lib, papers)
    if library.open:
        with library:
            render_library(lib, papers, filters)


main()
