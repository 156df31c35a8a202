"""The Explore tab: the topic map across the page's width, a legend that wraps on any screen, and one topic at
a time below it (its keywords, papers per year, cited summary, subtopics, papers, and "ask about this topic").
Choosing a topic zooms the map into it, coloured by subtopic; choosing a subtopic shows its own summary and
papers; "All topics" goes back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from assistant.ui.chat import ask_about_cluster
from assistant.ui.formatting import selected_paper
from assistant.ui.rendering import md_escape, text_html
from assistant.ui.sources import cited_text
from assistant.ui.state import SourceView, open_dialog

from assistant import (
    MAX_CLUSTERS,
    UNCLUSTERED,
    Assistant,
    Cluster,
    ClusterMap,
    ClusterSummary,
    Filters,
    MapPoint,
    display_title,
    error_text,
    provider_info,
    trends,
    year_counts,
)

MAP_SELECTION = "pick"
MAP_POINTS = 4000  # points sent to the browser at most: above this each topic is sampled, its count in the legend
MEMBERS_PAGE = 25  # members listed per page
ALL_TOPICS = "all"
UNCLUSTERED_COLOUR = "#b8b8b8"
PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D", "#EECA3B",
           "#1F77B4", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#17BECF", "#BCBD22", "#AEC7E8"]


def topic_labels(cluster_map: ClusterMap) -> dict[str, str]:
    """Topic and subtopic labels for the legend; a repeated label gets its id so two never share a colour."""
    every = cluster_map.every_cluster()
    counts = Counter(c.label for c in every)
    return {c.cluster_id: c.label if counts[c.label] == 1 else f"{c.label} ({c.cluster_id})" for c in every}


def topic_colours(clusters: list[Cluster]) -> dict[str, str]:
    return {c.cluster_id: UNCLUSTERED_COLOUR if c.cluster_id == UNCLUSTERED else PALETTE[i % len(PALETTE)]
            for i, c in enumerate(clusters)}


def sample_points(
    points: list[MapPoint], limit: int = MAP_POINTS, sizes: dict[str, int] | None = None
) -> list[MapPoint]:
    """At most `limit` points, each topic keeping its share (at least one point) of the library by `sizes` (its
    full count; the saved map holds at most POINTS_PER_TOPIC points a topic) or else of `points`; the same points
    on every run (evenly spaced through the topic's points, which are in paper-id order). A million points would
    not reach the browser, and a chart of them would not draw."""
    if len(points) <= limit:
        return points
    by_topic: dict[str, list[MapPoint]] = {}
    for point in points:
        by_topic.setdefault(point.cluster_id, []).append(point)
    counts = {topic: (sizes or {}).get(topic, len(members)) for topic, members in by_topic.items()}
    out = []
    for topic, members in by_topic.items():
        keep = min(len(members), max(1, round(limit * counts[topic] / sum(counts.values()))))
        out += [members[i] for i in np.linspace(0, len(members) - 1, keep).round().astype(int)]
    return out


def map_rows(cluster_map: ClusterMap, labels: dict[str, str], years: Callable[[list[str]], dict[str, int | None]],
             topic: str | None = None, limit: int = MAP_POINTS) -> list[dict[str, object]]:
    """One row per drawn point (all papers, or one topic's coloured by subtopic; sampled above `limit`); the
    year is text ("undated" rather than a blank "null"), read for the drawn points only (`years`, the catalog's
    column: no record is parsed for a tooltip)."""
    points = [p for p in cluster_map.points if topic is None or p.cluster_id == topic]
    sizes = {c.cluster_id: len(c.paper_ids) for c in cluster_map.groups()}
    drawn = sample_points(points, limit, sizes)
    year_of = years([point.paper_id for point in drawn])
    rows = []
    for point in drawn:
        group = point.cluster_id if topic is None else point.subtopic_id or topic
        rows.append({"paper_id": point.paper_id, "title": point.title, "topic": labels[group],
                     "x": point.x, "y": point.y, "year": str(year_of.get(point.paper_id) or "undated")})
    return rows


def within(cluster_map: ClusterMap, papers: Mapping[str, int | None]) -> ClusterMap:
    """The map restricted to `papers` (id -> year: those the sidebar filters admit): each topic and subtopic keeps
    its label,
    keywords and summary key but only those members, their years and their points, so every count, the map, the
    papers per year and the member lists follow the filters."""
    def narrow(cluster: Cluster) -> Cluster:
        members = [p for p in cluster.paper_ids if p in papers]
        return cluster.model_copy(update={
            "paper_ids": members, "representative_ids": [p for p in cluster.representative_ids if p in papers],
            "years": year_counts(papers[p] for p in members), "subtopics": [narrow(s) for s in cluster.subtopics]})

    return cluster_map.model_copy(update={
        "topics": [narrow(t) for t in cluster_map.topics],
        "unclustered": narrow(cluster_map.unclustered) if cluster_map.unclustered else None,
        "points": [p for p in cluster_map.points if p.paper_id in papers]})


def open_map_point(lib: Assistant) -> None:
    paper_id = selected_paper(st.session_state.topic_map.selection, MAP_SELECTION)
    paper = lib.paper(paper_id) if paper_id else None
    if paper:
        open_dialog(SourceView(paper=paper, origin="the topic map"))


def topic_map(lib: Assistant, cluster_map: ClusterMap, labels: dict[str, str], topic: Cluster | None) -> None:
    """The 2-D map: one point per paper (a fixed sample per topic in a large library) coloured by topic, or,
    zoomed into one topic, by its subtopics; clicking a point opens the paper. The legend is drawn as HTML
    beneath it (it wraps at any width; a chart legend is cut off on a phone) with each group's full count."""
    unplaced = len(topic.paper_ids) - sum(len(s.paper_ids) for s in topic.subtopics) if topic else 0
    groups = ([*topic.subtopics] + ([topic] if unplaced else [])) if topic else cluster_map.groups()
    colours = topic_colours(groups)
    rows = map_rows(cluster_map, labels, lib.paper_years, topic.cluster_id if topic else None)
    pick = alt.selection_point(name=MAP_SELECTION, fields=["paper_id"], on="click")
    chart = (
        alt.Chart(pd.DataFrame(rows))
        .mark_circle(size=70 if len(rows) < 1500 else 18, opacity=0.85, stroke="white", strokeWidth=0.6)
        .encode(
            x=alt.X("x:Q", axis=None, scale=alt.Scale(zero=False)),
            y=alt.Y("y:Q", axis=None, scale=alt.Scale(zero=False)),
            color=alt.Color("topic:N", scale=alt.Scale(domain=[labels[c.cluster_id] for c in groups],
                                                       range=[colours[c.cluster_id] for c in groups]), legend=None),
            tooltip=[alt.Tooltip("title:N", title="Paper"), alt.Tooltip("topic:N", title="Topic"),
                     alt.Tooltip("year:N", title="Year")],
        )
        .add_params(pick)
        .properties(height=440)
    )
    st.altair_chart(chart, key="topic_map", on_select=lambda: open_map_point(lib), selection_mode=MAP_SELECTION,
                    width="stretch")
    shown = len(rows)
    total = len(topic.paper_ids) if topic else cluster_map.paper_count
    if shown < total:
        st.caption(f"Showing {shown:,} of {total:,} papers, sampled evenly within each topic; counts are complete.")
    st.html('<div class="la-legend">' + "".join(
        f'<span><i style="background:{colours[c.cluster_id]}"></i>'
        f"{text_html(labels[c.cluster_id] if c is not topic else 'in no subtopic')} "
        f"<small>{unplaced if c is topic else len(c.paper_ids)}</small></span>" for c in groups) + "</div>")


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
            st.error(error_text(error, lib.settings))
    return summaries.get(key)


def year_chart(cluster: Cluster, note: str) -> None:
    """Papers per year as bars (undated papers said in words, not drawn at a made-up year)."""
    dated = {year: count for year, count in cluster.years.items() if year != "undated"}
    if dated:
        frame = pd.DataFrame({"year": list(dated), "papers": list(dated.values())})
        st.altair_chart(alt.Chart(frame).mark_bar().encode(x=alt.X("year:O", title=None), y=alt.Y("papers:Q"),
                                                          tooltip=["year", "papers"]).properties(height=140),
                        width="stretch", key=f"years-{cluster.cluster_id}")
    undated = cluster.years.get("undated", 0)
    if not note and undated:  # the trend's note already says how many undated papers it left out
        note = f"{undated} undated papers not drawn"
    if note:
        st.caption(note)


def member_list(lib: Assistant, cluster: Cluster) -> None:
    """The members, MEMBERS_PAGE at a time (★ = nearest the centre); each opens its paper in the source drawer.
    Only the page shown is read from the library: a 25,000-paper topic costs 25 records, not 25,000."""
    members = cluster.paper_ids
    pages = max(1, -(-len(members) // MEMBERS_PAGE))
    st.markdown(f"**{len(cluster.paper_ids)} papers** (★ most central)")
    page = 1
    if pages > 1:
        page = int(st.number_input(f"Page (of {pages})", 1, pages, 1, key=f"page-{cluster.cluster_id}"))
    shown = members[(page - 1) * MEMBERS_PAGE: page * MEMBERS_PAGE]
    papers = lib.papers_by_id(shown)
    for paper_id in (p for p in shown if p in papers):  # a paper removed since the map was made is left out
        paper = papers[paper_id]
        star = "★ " if paper_id in cluster.representative_ids else ""
        st.button(f"{star}{md_escape(display_title(paper))} ({md_escape(paper.when or 'undated')})",
                  key=f"member-{cluster.cluster_id}-{paper_id}",
                  type="tertiary", on_click=open_dialog,
                  args=(SourceView(paper=paper, origin=f"the topic “{cluster.label}”"),))


def render_topic(lib: Assistant, cluster: Cluster, label: str, offline: bool, trend: str = "") -> None:
    """One topic or subtopic: keywords, papers per year, its cited summary (every [n] opens the paper),
    "ask about it", and its papers."""
    about, members = st.columns([3, 2], gap="large")
    with about:
        st.markdown(f"#### {md_escape(label)}")
        if cluster.keywords:
            st.caption("Keywords: " + md_escape(", ".join(cluster.keywords)))
        if cluster.cluster_id != UNCLUSTERED:
            year_chart(cluster, trend)
            st.button("Ask about this topic", key=f"ask-{cluster.cluster_id}", type="primary",
                      icon=":material/forum:", on_click=ask_about_cluster, args=(label, cluster.paper_ids))
            summary = cluster_summary(lib, cluster, offline)
            if summary:
                cited_text(summary, f"topic-{cluster.cluster_id}", f"the summary of “{label}”", {})
        else:
            st.caption("Papers that fit none of the topics closely enough to be placed in one.")
    with members, st.container(height=520, border=False, key=f"members-{cluster.cluster_id}"):
        member_list(lib, cluster)


def topics_control(papers: int) -> str | int:
    most = max(2, min(MAX_CLUSTERS, papers // 3))
    return st.select_slider(
        "Number of topics", ["auto", *range(2, most + 1)], value="auto", key="n_clusters",
        help=f"How many broad topics to split the library into. auto: about √(papers ÷ 2), at most {MAX_CLUSTERS}, "
             "more when the papers clearly form more groups. A number asks for that many; a topic left with fewer "
             "than 3 papers once outliers are set aside is dropped, so a few less can come back. Each topic is "
             "split into subtopics by size.")


def render_explore(lib: Assistant, size: int, filters: Filters | None = None) -> None:
    """The topics of the whole library, shown within the sidebar `filters`: counts, map, years and members are of
    the papers the filters admit (labels, keywords and summaries stay those of the whole topic). Records are read
    only for what is shown (a page of members, a clicked point); `size` is the library's paper count, and the
    papers the filters admit are asked of the catalog (ids and years, no record) only when a filter is set."""
    if not size:
        st.info("Your library is empty: load the seed corpus above, or add your own exports in the Library tab.")
        return
    controls, note = st.columns([1, 2], vertical_alignment="bottom")
    with controls:
        choice = topics_control(size)
    try:
        with st.spinner("Grouping the papers into topics…"):
            cluster_map = lib.clusters("auto" if choice == "auto" else int(choice))
    except Exception as error:  # noqa: BLE001 - one line, never a traceback
        st.error(f"Could not compute the topics: {error}")
        return
    labels = topic_labels(cluster_map)
    bounded = ""
    if filters is not None and filters.active():
        whole = cluster_map.paper_count
        admitted = lib.matching_papers(filters)
        if not admitted:
            st.info(f"No paper passes the sidebar filters ({md_escape(filters.describe())}): widen them to see the "
                    "topics.")
            return
        cluster_map = within(cluster_map, admitted)
        bounded = (f" · sidebar filters ({md_escape(filters.describe())}): {cluster_map.paper_count} of {whole} papers "
                   "counted, mapped and listed; summaries cover whole topics")
    unclustered = cluster_map.paper_count - sum(len(c.paper_ids) for c in cluster_map.topics)
    asked = "" if choice == "auto" or int(choice) == len(cluster_map.topics) else f" (asked for {choice})"
    note.caption(f"{len(cluster_map.topics)} topics{asked} over {cluster_map.paper_count} papers"
                 + (f" · {unclustered} fit no topic" if unclustered else "")
                 + bounded + " · hover a point for its title, click it to open the paper")
    ids = [c.cluster_id for c in cluster_map.groups()]
    clusters = {c.cluster_id: c for c in cluster_map.every_cluster()}
    chosen = st.pills("Topic", ids, default=ids[0], key="topic", selection_mode="single",
                      format_func=lambda c: f"{md_escape(labels[c])} · {len(clusters[c].paper_ids)}")
    cluster = clusters[chosen or ids[0]]
    zoomed = cluster if st.session_state.get("zoom") == cluster.cluster_id else None
    if zoomed:
        st.button("All topics", key="zoom-out", icon=":material/arrow_back:", on_click=_zoom, args=(None,))
    elif cluster.subtopics:
        st.button(f"Zoom into “{labels[cluster.cluster_id]}”", key="zoom-in", icon=":material/zoom_in:",
                  on_click=_zoom, args=(cluster.cluster_id,))
    topic_map(lib, cluster_map, labels, zoomed)
    rising = {t.cluster_id: t for t in trends(cluster_map)}
    trend = rising.get(cluster.cluster_id)
    note_text = (("Rising: " if trend.rising else "") + trend.describe()) if trend else ""
    offline = provider_info(lib.settings).provider == "offline"
    if cluster.subtopics:
        sub_ids = [ALL_TOPICS, *(s.cluster_id for s in cluster.subtopics)]
        picked = st.pills("Subtopic", sub_ids, default=ALL_TOPICS, key=f"subtopic-{cluster.cluster_id}",
                          selection_mode="single",
                          format_func=lambda s: "The whole topic" if s == ALL_TOPICS
                          else f"{md_escape(labels[s])} · {len(clusters[s].paper_ids)}")
        if picked and picked != ALL_TOPICS:
            with st.container(border=True, key="topic-detail"):
                render_topic(lib, clusters[picked], labels[picked], offline)
            return
    with st.container(border=True, key="topic-detail"):
        render_topic(lib, cluster, labels[cluster.cluster_id], offline, note_text)


def _zoom(topic: str | None) -> None:
    st.session_state.zoom = topic
