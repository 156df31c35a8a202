"""`list_clusters` and `cluster_summary`: the library's topics, offered when it has topic clusters. The offline
answer to an overview question uses `cluster_overview` too."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..citations import Evidence, Ledger, Quoted, render_markers
from ..claims import rendered_markers
from ..prompting import prompt, quote_data
from .registry import ToolContext, Topics, agent_tool

if TYPE_CHECKING:
    from ..clusters import ClusterSummary
    from ..index import Store

THEMES = "for questions about the themes or landscape of the library"


@agent_tool(hint=f"the topic clusters of the whole library ({THEMES})", order=40, needs_topics=True)
def list_clusters(ctx: ToolContext) -> str:
    """The topic clusters of the whole library: id, label, size, keywords and representative papers to cite."""
    text, clusters = cluster_overview(ctx.library_topics, ctx.store, ctx.ledger)
    ctx.record("list_clusters", {}, f"{clusters} clusters")
    return ctx.turn.scope_note() + text


@agent_tool(hint=f"a cited summary of one cluster ({THEMES})", order=50, needs_topics=True)
def cluster_summary(ctx: ToolContext, cluster_id: str) -> str:
    """A cited summary of one topic cluster (ids from list_clusters, like "c3"), with its papers as evidence."""
    try:
        summary = ctx.library_topics.cluster_summary(cluster_id)
    except KeyError as error:
        ctx.record("cluster_summary", {"cluster_id": cluster_id}, "not found")
        return quote_data(str(error.args[0]))
    text, cited, _ = summary_in_ledger(summary, ctx.ledger)
    ctx.record("cluster_summary", {"cluster_id": cluster_id}, summary.title)
    return (f"{ctx.turn.scope_note()}Cluster {quote_data(cluster_id)}: {quote_data(summary.title)}\n"
            f"{quote_data(text)}\n\n{ctx.ledger.render(cited, ctx.budget)}")


def summary_in_ledger(summary: ClusterSummary, ledger: Ledger) -> tuple[str, list[Evidence], Quoted]:
    """A topic's summary with its [n] renumbered to the ledger's numbers (its papers added to the ledger; a
    citation of a paper outside the ledger's scope is dropped), the evidence it cites, and where its quotes are in
    that text (brackets quoted from a paper stay as written: they are not the summary's citations)."""
    added = {c.number: ledger.add(c.paper, c.paper.abstract) for c in summary.citations}
    final = {number: e.number for number, e in added.items() if e is not None}
    text, _, quoted = render_markers(summary.body, rendered_markers(summary), final, summary.quoted)
    return text, [e for e in added.values() if e is not None], quoted


def cluster_overview(topics: Topics, store: Store, ledger: Ledger, per_cluster: int = 2) -> tuple[str, int]:
    """One line per cluster (label, size, keywords) citing its representative papers, added to the ledger
    (those outside the ledger's scope are not cited)."""
    cluster_map = topics.clusters()
    representatives = store.get_papers([p for c in cluster_map.topics for p in c.representative_ids[:per_cluster]])
    lines = []
    for cluster in cluster_map.topics:
        shown = [representatives[p] for p in cluster.representative_ids[:per_cluster] if p in representatives]
        cited = [(paper, ledger.add(paper, paper.abstract)) for paper in shown]
        cites = "".join(f"[{e.number}]" for _, e in cited if e is not None)
        examples = "; ".join(paper.title for paper, e in cited if e is not None)
        lines.append(f"- **{cluster.label}** ({cluster.cluster_id}, {len(cluster.paper_ids)} papers; keywords: "
                     f"{', '.join(cluster.keywords[:5])})"
                     + (f" — e.g. {quote_data(examples)} {cites}" if cites else ""))
    unclustered = cluster_map.paper_count - sum(len(c.paper_ids) for c in cluster_map.topics)
    text = prompt("library_overview").format(
        papers=cluster_map.paper_count, clusters=len(cluster_map.topics), unclustered=unclustered,
        lines="\n".join(lines),
    )
    return text, len(cluster_map.topics)
