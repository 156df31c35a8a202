"""The batch topic report: Markdown, HTML, clusters.json, a BibTeX file of every cited paper, a topic-map PNG.

Everything is derived from a ClusterMap and its summaries, with no timestamps, so an unchanged library writes
byte-identical files. Each file is written whole and renamed into place.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from .bibtex import bibtex
from .citations import Citation, mark_spans
from .clusters import (
    INCREMENTAL_SHARE,
    UNCLUSTERED,
    UNDATED,
    Cluster,
    ClusterMap,
    ClusterSummary,
    display_title,
    trends,
)
from .corpus import NO_ABSTRACT, Paper
from .markdown import markdown_html

FORMATS = ("md", "json", "html")
MAP_IMAGE = "topic_map.png"
MEMBERS_LISTED = 200  # members listed per topic in report.md/html at most; clusters.json lists all
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_\[\]()<>!|#&~])")
# A citation marker "[3]" stays as written once the summary is escaped, unless a ":" or "(" follows it (which could
# make a link definition or a link): every other "[", "(" and "!" stays escaped, so no link or image can form.
_CITATION_MARK = re.compile(r"\\\[(\d+)\\\](?!:|\\\()")
_SAFE_URL = re.compile(r"https?://[^\s]+\Z", re.IGNORECASE)


class ReportRun(BaseModel):
    """What `summarize` did: files written, clusters, summaries newly written vs reused from the cache."""

    out_dir: str
    files: list[str]
    clusters: int
    summarized: int
    cached: int


def shown_papers(cluster_map: ClusterMap, summaries: dict[str, ClusterSummary]) -> list[str]:
    """The papers the report names: the first MEMBERS_LISTED members of every group and every cited paper. At a
    million papers these are ~40,000 records to read, not a million."""
    groups = [*cluster_map.every_cluster()]
    return sorted({p for g in groups for p in g.paper_ids[:MEMBERS_LISTED]}
                  | {c.paper_id for s in summaries.values() for c in s.citations})


def write_report(
    out_dir: Path,
    cluster_map: ClusterMap,
    summaries: dict[str, ClusterSummary],
    papers: dict[str, Paper],
    formats: Sequence[str] = FORMATS,
) -> list[str]:
    """Write the report files; returns their paths. Unknown formats are a ValueError naming them."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown report format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    cited = sorted({c.paper_id for s in summaries.values() for c in s.citations})
    listed = sorted((linkable(papers[p]) for p in cited if p in papers), key=lambda p: p.paper_id)
    written = [
        _write(out_dir / MAP_IMAGE, topic_map_png(cluster_map)),
        _write(out_dir / "references.bib", bibtex(listed)),
    ]
    if "md" in formats:
        written.append(_write(out_dir / "report.md", markdown_report(cluster_map, summaries, papers)))
    if "html" in formats:
        written.append(_write(out_dir / "report.html", html_report(cluster_map, summaries, papers)))
    if "json" in formats:
        written.append(_write(out_dir / "clusters.json", clusters_json(cluster_map, summaries)))
    return written


def _write(path: Path, content: str | bytes) -> str:
    staging = path.with_name(path.name + ".tmp")
    if isinstance(content, bytes):
        staging.write_bytes(content)
    else:
        staging.write_text(content, encoding="utf-8")
    os.replace(staging, path)
    return str(path)


def _year(paper: Paper) -> str:
    """What follows a title in the report's lists: the year, and whether the paper has no abstract."""
    return (paper.when or "n.d.") + ("" if paper.has_abstract else f", {NO_ABSTRACT}")


def md_text(text: str) -> str:
    """Paper text as Markdown that renders as that text: every character that could start an image, a link, raw
    HTML, an entity, code or a table cell is backslash-escaped (CommonMark), and line breaks become spaces."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", " ".join(text.split()))


def linkable(paper: Paper) -> Paper:
    """The paper with its url only if it is http(s): a `javascript:` or `file:` link must not reach a .bib."""
    return paper if not paper.url or _SAFE_URL.match(paper.url) else paper.model_copy(update={"url": None})


def _code(paper_id: str) -> str:
    return "`" + paper_id.replace("`", "'") + "`"


def _member_lines(cluster: Cluster, papers: dict[str, Paper]) -> list[str]:
    listed = cluster.paper_ids
    lines = [f"- {md_text(display_title(papers[p]))} ({md_text(_year(papers[p]))}) — {_code(p)}"
             for p in listed[:MEMBERS_LISTED] if p in papers]
    if len(listed) > MEMBERS_LISTED:
        lines.append(f"- … and {len(listed) - MEMBERS_LISTED} more (clusters.json lists every member)")
    return lines


def year_line(cluster: Cluster) -> str:
    """"Papers per year: 2019 4 · 2020 9 · undated 2" (plain text)."""
    return "Papers per year: " + " · ".join(f"{year} {count}" for year, count in cluster.years.items())


def _unclustered(cluster_map: ClusterMap) -> list[str]:
    group = cluster_map.get(UNCLUSTERED)
    return group.paper_ids if group else []


def overview_lines(cluster_map: ClusterMap) -> list[str]:
    """The report's opening paragraph (plain text), shared by the Markdown and HTML reports."""
    quality = cluster_map.quality
    silhouette = f", silhouette {quality['silhouette']:.3f}" if "silhouette" in quality else ""
    subtopics = sum(len(c.subtopics) for c in cluster_map.topics)
    return [
        (f"{cluster_map.paper_count} papers in {len(cluster_map.topics)} topics and {subtopics} subtopics; "
        f"{len(_unclustered(cluster_map))} papers fit none of the topics and are listed as unclustered."),
        (f"Method: {cluster_map.method} over the paper embeddings{silhouette}; subtopics cluster each topic's papers "
        "the same way. Keywords are class-based TF-IDF."),
        *([(f"The topics were computed over {cluster_map.clustered_papers} papers; {cluster_map.changed_since} added "
           "or removed since then joined their nearest topic and subtopic or left them (ids and labels unchanged). "
           f"The map is recomputed once more than {INCREMENTAL_SHARE:.0%} of it has changed or new papers stop fitting "
           "its topics.")]
          if cluster_map.changed_since else []),
    ]


def trend_lines(cluster_map: ClusterMap, titles: dict[str, str]) -> list[str]:
    """The rising topics with their numbers (plain text), or why there are none."""
    found = trends(cluster_map)
    if not found:
        return ["No paper in the library has a year, so no trend can be read."]
    undated = sum(c.years.get(UNDATED, 0) for c in cluster_map.groups())
    a, b, c, d = found[0].window
    lines = [f"Growth {a}–{b} → {c}–{d}, against the library's ×{found[0].library_growth:.1f}"
             + (f" ({undated} undated papers are not counted)." if undated else ".")]
    rising = [t for t in found if t.rising]
    lines += [f"Rising: {t.cluster_id} {titles[t.cluster_id]}: {t.describe()}." for t in rising]
    return lines + ([] if rising else ["No topic grew clearly faster than the library."])


def _titles(cluster_map: ClusterMap, summaries: dict[str, ClusterSummary]) -> dict[str, str]:
    return {c.cluster_id: summaries[c.cluster_id].title if c.cluster_id in summaries else c.label
            for c in cluster_map.every_cluster()}


def _markdown_section(cluster: Cluster, title: str, summary: ClusterSummary | None, papers: dict[str, Paper],
                      heading: str) -> list[str]:
    lines = ["", f"{heading} {cluster.cluster_id}: {md_text(title)}", "",
             f"**Keywords:** {md_text(', '.join(cluster.keywords))}", "", md_text(year_line(cluster)), ""]
    if summary:
        lines += [_CITATION_MARK.sub(r"[\1]", md_text(summary.text)), "", "**References**", ""]
        for c in summary.citations:
            lines.append(
                f"{c.number}. {md_text(display_title(c.paper))} ({md_text(_year(c.paper))}) — {_code(c.paper_id)}"
            )
            lines += [f"   > {md_text(span.text)}" for span in c.spans]  # the sentence the summary rests on
        lines.append("")
    return lines + [f"**Members ({len(cluster.paper_ids)})**", "", *_member_lines(cluster, papers)]


def markdown_report(cluster_map: ClusterMap, summaries: dict[str, ClusterSummary], papers: dict[str, Paper]) -> str:
    """report.md: every piece of paper or model text goes through md_text, so a title holding `![t](http://…)`
    or `<img src=…>` reads as those characters and no viewer fetches anything."""
    titles = _titles(cluster_map, summaries)
    lines = ["# Topic report", "", *overview_lines(cluster_map), "", f"![Topic map]({MAP_IMAGE})", "",
             "## Trends", "", *trend_lines(cluster_map, titles), "",
             "| Topic | Title | Papers | Subtopics | Keywords |", "|---|---|---|---|---|"]
    for cluster in cluster_map.topics:
        lines.append(f"| {cluster.cluster_id} | {md_text(titles[cluster.cluster_id])} | {len(cluster.paper_ids)} | "
                     f"{len(cluster.subtopics)} | {md_text(', '.join(cluster.keywords[:5]))} |")
    for cluster in cluster_map.topics:
        lines += _markdown_section(cluster, titles[cluster.cluster_id], summaries.get(cluster.cluster_id), papers, "##")
        for sub in cluster.subtopics:
            lines += _markdown_section(sub, titles[sub.cluster_id], summaries.get(sub.cluster_id), papers, "###")
    group = cluster_map.get(UNCLUSTERED)
    if group and group.paper_ids:
        lines += ["", f"## Unclustered ({len(group.paper_ids)})", "", *_member_lines(group, papers)]
    return "\n".join(lines) + "\n"


def _html_members(cluster: Cluster, papers: dict[str, Paper]) -> str:
    listed = cluster.paper_ids
    items = "".join(f"<li>{html.escape(display_title(papers[p]))} ({html.escape(_year(papers[p]))})</li>"
                    for p in listed[:MEMBERS_LISTED] if p in papers)
    more = f"<li>… and {len(listed) - MEMBERS_LISTED} more (clusters.json lists every member)</li>" if len(
        listed) > MEMBERS_LISTED else ""
    return f"<details><summary>Members ({len(cluster.paper_ids)})</summary><ul>{items}{more}</ul></details>"


def _html_section(cluster: Cluster, title: str, summary: ClusterSummary | None, papers: dict[str, Paper],
                  heading: str) -> str:
    esc = html.escape
    body = [
        f'<section id="{esc(cluster.cluster_id)}"><{heading}>{esc(cluster.cluster_id)}: {esc(title)}</{heading}>',
        f"<p><strong>Keywords:</strong> {esc(', '.join(cluster.keywords))}</p>",
        f"<p>{esc(year_line(cluster))}</p>",
    ]
    if summary:
        body.append(markdown_html(summary.text))
        body.append("<h4>References</h4><ol>" + "".join(
            f'<li value="{c.number}">{esc(display_title(c.paper))} ({esc(_year(c.paper))}) — <code>{esc(c.paper_id)}'
            f"</code>{highlighted_abstract(c)}</li>" for c in summary.citations) + "</ol>")
    return "\n".join(body) + _html_members(cluster, papers) + "</section>"


def html_report(cluster_map: ClusterMap, summaries: dict[str, ClusterSummary], papers: dict[str, Paper]) -> str:
    esc = html.escape
    titles = _titles(cluster_map, summaries)
    body = ["<h1>Topic report</h1>", *(f"<p>{esc(line)}</p>" for line in overview_lines(cluster_map)),
            f'<img src="{MAP_IMAGE}" alt="Topic map" style="max-width:100%">', "<h2>Trends</h2>",
            *(f"<p>{esc(line)}</p>" for line in trend_lines(cluster_map, titles)), "<h2>Topics</h2><ul>"]
    for cluster in cluster_map.topics:
        subs = "".join(f'<li><a href="#{esc(s.cluster_id)}">{esc(s.cluster_id)}: {esc(titles[s.cluster_id])}</a> '
                       f"({len(s.paper_ids)})</li>" for s in cluster.subtopics)
        body.append(f'<li><a href="#{esc(cluster.cluster_id)}">{esc(cluster.cluster_id)}: '
                    f"{esc(titles[cluster.cluster_id])}</a> ({len(cluster.paper_ids)} papers)"
                    + (f"<ul>{subs}</ul>" if subs else "") + "</li>")
    body.append("</ul>")
    for cluster in cluster_map.topics:
        body.append(_html_section(cluster, titles[cluster.cluster_id], summaries.get(cluster.cluster_id), papers, "h2"))
        body += [_html_section(s, titles[s.cluster_id], summaries.get(s.cluster_id), papers, "h3")
                 for s in cluster.subtopics]
    group = cluster_map.get(UNCLUSTERED)
    if group and group.paper_ids:
        body.append(f"<h2>Unclustered ({len(group.paper_ids)})</h2>" + _html_members(group, papers))
    style = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;line-height:1.5;padding:0 1rem}"
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Topic report</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def highlighted_abstract(citation: Citation) -> str:
    """The cited abstract as HTML with the sentences the text rests on in <mark>: the marked sentences are
    shown, the whole abstract is one click away."""
    if not citation.spans:
        return ""
    quoted = " … ".join(f"<mark>{html.escape(span.text)}</mark>" for span in citation.spans)
    abstract = mark_spans(citation.paper.abstract, citation.spans, html.escape)
    return f"<details><summary>{quoted}</summary><p>{abstract}</p></details>"


def clusters_json(cluster_map: ClusterMap, summaries: dict[str, ClusterSummary]) -> str:
    """For scripts: ids, labels, keywords, members and cited summaries."""
    clusters = []
    for cluster in cluster_map.every_cluster():
        summary = summaries.get(cluster.cluster_id)
        clusters.append({
            "id": cluster.cluster_id,
            "parent": cluster.cluster_id.split(".")[0] if "." in cluster.cluster_id else None,
            "subtopics": [s.cluster_id for s in cluster.subtopics],
            "years": cluster.years,
            "label": cluster.label,
            "title": summary.title if summary else cluster.label,
            "keywords": cluster.keywords,
            "members": cluster.paper_ids,
            "representative": cluster.representative_ids,
            "summary": summary.text if summary else None,
            "quoted": summary.quoted if summary else [],  # offsets of its quotes: their brackets are paper text
            "citations": [{"number": c.number, "paper_id": c.paper_id, "title": c.title,
                           "spans": [span.model_dump() for span in c.spans]} for c in summary.citations]
            if summary else [],
            "provider": summary.provider if summary else None,
        })
    payload = {"library_version": cluster_map.library_version, "method": cluster_map.method,
               "quality": cluster_map.quality, "clusters": clusters,
               "trends": [t.model_dump() | {"rising": t.rising} for t in trends(cluster_map)]}
    return json.dumps(payload, ensure_ascii=False, indent=2) + "\n"


def topic_map_png(cluster_map: ClusterMap) -> bytes:
    """The 2-D map as PNG: one colour per cluster, grey for unclustered, each cluster labelled at its centre."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 7), dpi=110)
    colours = plt.get_cmap("tab20")
    by_cluster: dict[str, list] = {}
    for point in cluster_map.points:
        by_cluster.setdefault(point.cluster_id, []).append(point)
    for index, cluster in enumerate(cluster_map.groups()):
        points = by_cluster.get(cluster.cluster_id, [])
        if not points:
            continue
        xs, ys = [p.x for p in points], [p.y for p in points]
        unclustered = cluster.cluster_id == UNCLUSTERED
        axes.scatter(
            xs,
            ys,
            s=18 if unclustered else 28,
            alpha=0.5 if unclustered else 0.85,
            color="#9e9e9e" if unclustered else colours(index % 20),
            label=f"{cluster.cluster_id}: {cluster.label}",
        )
        if not unclustered:
            axes.annotate(cluster.cluster_id, (sum(xs) / len(xs), sum(ys) / len(ys)), fontsize=10, weight="bold",
                          ha="center", bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.7, "lw": 0})
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(f"Topic map: {cluster_map.paper_count} papers, {len(cluster_map.topics)} topics")
    axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()
