"""The Explore tab: the topic map across the page's width, a legend that wraps on any screen, and one topic at
a time below it (its keywords, cited summary, papers, and "ask about this topic")."""

from __future__ import annotations

from collections import Counter

import altair as alt
import pandas as pd
import streamlit as st
from assistant.ui.chat import ask_about_cluster
from assistant.ui.formatting import selected_paper
from assistant.ui.rendering import md_escape, text_html
from assistant.ui.sources import cited_text
from assistant.ui.state import SourceView, open_dialog

from assistant.api import Assistant
from assistant.clusters import UNCLUSTERED, Cluster, ClusterMap, ClusterSummary
from assistant.corpus import Paper
from assistant.llm import describe_error, resolve_provider

MAP_SELECTION = "pick"
UNCLUSTERED_COLOUR = "#b8b8b8"
PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D", "#EECA3B",
           "#1F77B4", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#17BECF", "#BCBD22", "#AEC7E8"]


def topic_labels(cluster_map: ClusterMap) -> dict[str, str]:
    """Cluster labels for the legend; a repeated label gets its id so two topics never share a colour."""
    counts = Counter(c.label for c in cluster_map.clusters)
    return {c.cluster_id: c.label if counts[c.label] == 1 else f"{c.label} ({c.cluster_id})"
            for c in cluster_map.clusters}


def topic_colours(cluster_map: ClusterMap) -> dict[str, str]:
    return {c.cluster_id: UNCLUSTERED_COLOUR if c.cluster_id == UNCLUSTERED else PALETTE[i % len(PALETTE)]
            for i, c in enumerate(cluster_map.clusters)}


def map_rows(cluster_map: ClusterMap, labels: dict[str, str], papers: dict[str, Paper]) -> list[dict[str, object]]:
    """One row per point for the chart; the year is text ("undated" rather than a blank "null")."""
    rows = []
    for point in cluster_map.points:
        paper = papers.get(point.paper_id)
        rows.append({"paper_id": point.paper_id, "title": point.title, "topic": labels[point.cluster_id],
                     "x": point.x, "y": point.y, "year": (paper.when if paper else "") or "undated"})
    return rows


def open_map_point(papers: dict[str, Paper]) -> None:
    paper_id = selected_paper(st.session_state.topic_map.selection, MAP_SELECTION)
    if paper_id in papers:
        open_dialog(SourceView(paper=papers[paper_id], origin="the topic map"))


def topic_map(cluster_map: ClusterMap, labels: dict[str, str], papers: dict[str, Paper]) -> None:
    """The 2-D map: one point per paper coloured by topic; clicking a point opens the paper. The legend is drawn
    as HTML beneath it (it wraps at any width; a chart legend is cut off on a phone)."""
    colours = topic_colours(cluster_map)
    domain = [labels[c.cluster_id] for c in cluster_map.clusters]
    pick = alt.selection_point(name=MAP_SELECTION, fields=["paper_id"], on="click")
    chart = (
        alt.Chart(pd.DataFrame(map_rows(cluster_map, labels, papers)))
        .mark_circle(size=70, opacity=0.85, stroke="white", strokeWidth=0.6)
        .encode(
            x=alt.X("x:Q", axis=None),
            y=alt.Y("y:Q", axis=None),
            color=alt.Color("topic:N", scale=alt.Scale(domain=domain, range=[colours[c.cluster_id]
                                                                             for c in cluster_map.clusters]),
                            legend=None),
            tooltip=[alt.Tooltip("title:N", title="Paper"), alt.Tooltip("topic:N", title="Topic"),
                     alt.Tooltip("year:N", title="Year")],
        )
        .add_params(pick)
        .properties(height=440)
    )
    st.altair_chart(chart, key="topic_map", on_select=lambda: open_map_point(papers), selection_mode=MAP_SELECTION,
                    width="stretch")
    st.html('<div class="la-legend">' + "".join(
        f'<span><i style="background:{colours[c.cluster_id]}"></i>{text_html(labels[c.cluster_id])} '
        f'<small>{len(c.paper_ids)}</small></span>' for c in cluster_map.clusters) + "</div>")


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


def render_topic(lib: Assistant, cluster: Cluster, label: str, papers: dict[str, Paper], offline: bool) -> None:
    """One topic: keywords, its cited summary (every [n] opens the paper), "ask about it", and its papers."""
    about, members = st.columns([3, 2], gap="large")
    with about:
        st.markdown(f"#### {md_escape(label)}")
        if cluster.keywords:
            st.caption("Keywords: " + md_escape(", ".join(cluster.keywords)))
        if cluster.cluster_id != UNCLUSTERED:
            st.button("Ask about this topic", key=f"ask-{cluster.cluster_id}", type="primary",
                      icon=":material/forum:", on_click=ask_about_cluster, args=(label, cluster.paper_ids))
            summary = cluster_summary(lib, cluster, offline)
            if summary:
                cited_text(summary, f"topic-{cluster.cluster_id}", f"the summary of “{label}”", {})
        else:
            st.caption("Papers that fit none of the topics closely enough to be placed in one.")
    with members:
        st.markdown(f"**{len(cluster.paper_ids)} papers** (★ most central)")
        lines = [f"- {'★ ' if paper_id in cluster.representative_ids else ''}{md_escape(paper.title)} "
                 f"({md_escape(paper.when or 'undated')})"
                 for paper_id in cluster.paper_ids if (paper := papers.get(paper_id))]
        with st.container(height=420, border=False, key=f"members-{cluster.cluster_id}"):
            st.markdown("\n".join(lines))


def render_explore(lib: Assistant, papers: list[Paper]) -> None:
    if not papers:
        st.info("Your library is empty: load the seed corpus above, or add your own exports in the Library tab.")
        return
    most = max(2, min(30, len(papers) // 3))
    controls, note = st.columns([1, 2], vertical_alignment="bottom")
    choice = controls.select_slider("Topics", ["auto", *range(2, most + 1)], value="auto", key="n_clusters",
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
    note.caption(f"{len(cluster_map.topics)} topics over {len(cluster_map.points)} papers"
                 + (f" · {unclustered} fit no topic" if unclustered else "")
                 + " · hover a point for its title, click it to open the paper")
    topic_map(cluster_map, labels, by_id)
    ids = [c.cluster_id for c in cluster_map.clusters]
    chosen = st.pills("Topic", ids, default=ids[0], key="topic", selection_mode="single",
                      format_func=lambda c: f"{md_escape(labels[c])} · {len(cluster_map.get(c).paper_ids)}")
    cluster = cluster_map.get(chosen or ids[0])
    offline = resolve_provider(lib.settings) == "offline"
    with st.container(border=True, key="topic-detail"):
        render_topic(lib, cluster, labels[cluster.cluster_id], by_id, offline)

