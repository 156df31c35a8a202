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
from .clusters import UNCLUSTERED, ClusterMap, ClusterSummary
from .corpus import NO_ABSTRACT, Paper

FORMATS = ("md", "json", "html")
MAP_IMAGE = "topic_map.png"


class ReportRun(BaseModel):
    """What `summarize` did: files written, clusters, summaries newly written vs reused from the cache."""

    out_dir: str
    files: list[str]
    clusters: int
    summarized: int
    cached: int


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
    written = [_write(out_dir / MAP_IMAGE, topic_map_png(cluster_map)),
               _write(out_dir / "references.bib", bibtex(sorted((papers[p] for p in cited if p in papers), key=lambda p: p.paper_id)))]
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


def _unclustered(cluster_map: ClusterMap) -> list[str]:
    group = cluster_map.get(UNCLUSTERED)
    return group.paper_ids if group else []


def overview_lines(cluster_map: ClusterMap) -> list[str]:
    """The report's opening paragraph (Markdown), shared by the Markdown and HTML reports."""
    quality = cluster_map.quality
    silhouette = f", silhouette {quality['silhouette']:.3f}" if "silhouette" in quality else ""
    return [
        f"{len(cluster_map.points)} papers in {len(cluster_map.topics)} topic clusters; "
        f"{len(_unclustered(cluster_map))} papers fit none of them and are listed as unclustered.",
        f"Method: {cluster_map.method} over the paper embeddings{silhouette}. Keywords are class-based TF-IDF.",
    ]


def markdown_report(cluster_map: ClusterMap, summaries: dict[str, ClusterSummary], papers: dict[str, Paper]) -> str:
    lines = ["# Topic report", "", *overview_lines(cluster_map), "", f"![Topic map]({MAP_IMAGE})", "",
             "| Cluster | Title | Papers | Keywords |", "|---|---|---|---|"]
    for cluster in cluster_map.topics:
        title = summaries[cluster.cluster_id].title if cluster.cluster_id in summaries else cluster.label
        lines.append(f"| {cluster.cluster_id} | {title} | {len(cluster.paper_ids)} | {', '.join(cluster.keywords[:5])} |")
    for cluster in cluster_map.topics:
        summary = summaries.get(cluster.cluster_id)
        lines += ["", f"## {cluster.cluster_id}: {summary.title if summary else cluster.label}", "",
                  f"**Keywords:** {', '.join(cluster.keywords)}", ""]
        if summary:
            lines += [summary.text, "", "**References**", ""]
            for c in summary.citations:
                lines.append(f"{c.number}. {c.title} ({_year(c.paper)}) — `{c.paper_id}`")
                lines += [f"   > {' '.join(span.text.split())}" for span in c.spans]  # the sentence the summary rests on
            lines.append("")
        lines += [f"**Members ({len(cluster.paper_ids)})**", ""]
        lines += [f"- {papers[p].title} ({_year(papers[p])}) — `{p}`" for p in cluster.paper_ids if p in papers]
    unclustered = _unclustered(cluster_map)
    if unclustered:
        lines += ["", f"## Unclustered ({len(unclustered)})", ""]
        lines += [f"- {papers[p].title} ({_year(papers[p])}) — `{p}`" for p in unclustered if p in papers]
    return "\n".join(lines) + "\n"


def _inline(text: str) -> str:
    """Markdown-ish summary text to HTML: escaped, **bold**, list items, paragraphs."""
    out, items = [], []
    for line in html.escape(text).splitlines():
        line = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", line.strip())
        if line.startswith("- "):
            items.append(f"<li>{line[2:]}</li>")
            continue
        if items:
            out.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if line:
            out.append(f"<p>{line}</p>")
    if items:
        out.append("<ul>" + "".join(items) + "</ul>")
    return "\n".join(out)


def html_report(cluster_map: ClusterMap, summaries: dict[str, ClusterSummary], papers: dict[str, Paper]) -> str:
    esc = html.escape
    body = ["<h1>Topic report</h1>", *(f"<p>{esc(line)}</p>" for line in overview_lines(cluster_map)),
            f'<img src="{MAP_IMAGE}" alt="Topic map" style="max-width:100%">', "<h2>Clusters</h2><ul>"]
    for cluster in cluster_map.topics:
        title = summaries[cluster.cluster_id].title if cluster.cluster_id in summaries else cluster.label
        body.append(f'<li><a href="#{cluster.cluster_id}">{esc(cluster.cluster_id)}: {esc(title)}</a> '
                    f"({len(cluster.paper_ids)} papers)</li>")
    body.append("</ul>")
    for cluster in cluster_map.topics:
        summary = summaries.get(cluster.cluster_id)
        body.append(f'<section id="{cluster.cluster_id}"><h2>{esc(cluster.cluster_id)}: '
                    f"{esc(summary.title if summary else cluster.label)}</h2>")
        body.append(f"<p><strong>Keywords:</strong> {esc(', '.join(cluster.keywords))}</p>")
        if summary:
            body.append(_inline(summary.text))
            body.append("<h3>References</h3><ol>" + "".join(
                f'<li value="{c.number}">{esc(c.title)} ({esc(_year(c.paper))}) — <code>{esc(c.paper_id)}</code>'
                f"{highlighted_abstract(c)}</li>" for c in summary.citations) + "</ol>")
        body.append(f"<details><summary>Members ({len(cluster.paper_ids)})</summary><ul>" + "".join(
            f"<li>{esc(papers[p].title)} ({esc(_year(papers[p]))})</li>" for p in cluster.paper_ids if p in papers
        ) + "</ul></details></section>")
    unclustered = _unclustered(cluster_map)
    if unclustered:
        body.append(f"<h2>Unclustered ({len(unclustered)})</h2><ul>" + "".join(
            f"<li>{esc(papers[p].title)} ({esc(_year(papers[p]))})</li>" for p in unclustered if p in papers) + "</ul>")
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
    for cluster in cluster_map.clusters:
        summary = summaries.get(cluster.cluster_id)
        clusters.append({
            "id": cluster.cluster_id,
            "label": cluster.label,
            "title": summary.title if summary else cluster.label,
            "keywords": cluster.keywords,
            "members": cluster.paper_ids,
            "representative": cluster.representative_ids,
            "summary": summary.text if summary else None,
            "citations": [{"number": c.number, "paper_id": c.paper_id, "title": c.title,
                           "spans": [span.model_dump() for span in c.spans]} for c in summary.citations]
            if summary else [],
            "provider": summary.provider if summary else None,
        })
    payload = {"library_version": cluster_map.library_version, "method": cluster_map.method,
               "quality": cluster_map.quality, "clusters": clusters}
    return json.dumps(payload, ensure_ascii=False, indent=2) + "\n"


def topic_map_png(cluster_map: ClusterMap) -> bytes:
    """The 2-D map as PNG: one colour per cluster, grey for unclustered, each cluster labelled at its centre."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 7), dpi=110)
    colours = plt.get_cmap("tab20")
    for index, cluster in enumerate(cluster_map.clusters):
        members = set(cluster.paper_ids)
        points = [p for p in cluster_map.points if p.paper_id in members]
        if not points:
            continue
        xs, ys = [p.x for p in points], [p.y for p in points]
        unclustered = cluster.cluster_id == UNCLUSTERED
        axes.scatter(xs, ys, s=18 if unclustered else 28, alpha=0.5 if unclustered else 0.85,
                     color="#9e9e9e" if unclustered else colours(index % 20), label=f"{cluster.cluster_id}: {cluster.label}")
        if not unclustered:
            axes.annotate(cluster.cluster_id, (sum(xs) / len(xs), sum(ys) / len(ys)), fontsize=10, weight="bold",
                          ha="center", bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.7, "lw": 0})
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(f"Topic map: {len(cluster_map.points)} papers, {len(cluster_map.topics)} clusters (t-SNE)")
    axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()
