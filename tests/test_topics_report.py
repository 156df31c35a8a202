"""The topic report carries paper text as text (report.md rendered by a Markdown renderer in real chromium fetches
nothing a paper planted; references.bib keeps only http(s) links), its two levels and trends, and a topic cache
whose files or folders are in the wrong shape is rebuilt with one warning line."""

from __future__ import annotations

import functools
import http.server
import json
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
from assistant.ui.rendering import cited_html
from browser import launch, record_requests
from markdown_it import MarkdownIt
from playwright.sync_api import sync_playwright
from scripted_openai import pixel_server

from assistant.citations import Ledger
from assistant.claims import derive_claims, rendered_markers
from assistant.clusters import ClusterSummarizer, build_map, display_title, trends
from assistant.corpus import Paper
from assistant.index import StoredPaper
from assistant.report import clusters_json, markdown_report, write_report
from assistant.tools.clusters import summary_in_ledger
from assistant.topics import ClusterCache

TOPICS = ("protein folding structure", "speech recognition noise", "graph coloring heuristics")


def library(pixel: int, per_topic: int = 30) -> tuple[list[StoredPaper], np.ndarray]:
    """Three topics of real-looking papers on the unit sphere; the first paper of each carries a planted payload."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(TOPICS), 64))
    planted = [f"![t](http://127.0.0.1:{pixel}/title.png)", f'<img src="http://127.0.0.1:{pixel}/raw.png">',
               f"[click](javascript:fetch('http://127.0.0.1:{pixel}/js'))"]
    stored, vectors = [], []
    for topic, words in enumerate(TOPICS):
        for i in range(per_topic):
            title = f"{planted[topic]} On {words}" if i == 0 else f"Study {i} of {words}"
            paper = Paper(paper_id=f"t{topic}-{i:02d}", title=title, year=2015 + i % 10,
                          abstract=f"We study {words}. Our {words} results improve {words} baselines considerably.",
                          url=f"javascript:alert({i})" if i % 2 == 0 else f"https://example.org/{topic}/{i}")
            stored.append(StoredPaper(paper, f"k{topic}{i}", 1))
            vectors.append(centres[topic] + rng.normal(scale=0.3, size=64))
    return stored, np.asarray(vectors, dtype=np.float32)


def rendered_requests(folder: Path, markdown: str) -> tuple[list[str], str]:
    """Render `markdown` with markdown-it (CommonMark: raw HTML passes through, as in most viewers), serve it over
    HTTP from `folder`, load it in chromium; (every URL requested, the page's text)."""
    (folder / "view.html").write_text(MarkdownIt("commonmark").render(markdown), encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page()
            seen = record_requests(page)
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/view.html")
            page.wait_for_load_state("networkidle")
            text = page.inner_text("body")
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return seen, text


def test_report_md_rendered_in_chromium_fetches_nothing_a_paper_planted(tmp_path: Path) -> None:
    with pixel_server() as (pixel, hits):
        stored, vectors = library(pixel)
        cluster_map = build_map(stored, vectors, "v1")
        papers = {sp.paper.paper_id: sp.paper for sp in stored}
        write_report(tmp_path, cluster_map, {}, papers, ("md",))
        rendered_requests(tmp_path, f"![t](http://127.0.0.1:{pixel}/control.png)")
        assert hits == ["/control.png"], "the renderer + chromium setup must fetch an unescaped image"
        hits.clear()
        seen, text = rendered_requests(tmp_path, (tmp_path / "report.md").read_text(encoding="utf-8"))
    assert hits == [], f"report.md made the viewer fetch {hits}"
    assert all(f":{pixel}/" not in url for url in seen)
    assert f"![t](http://127.0.0.1:{pixel}/title.png) On protein folding structure" in text  # shown as text
    assert f'<img src="http://127.0.0.1:{pixel}/raw.png">' in text
    bib = (tmp_path / "references.bib").read_text(encoding="utf-8") if (tmp_path / "references.bib").exists() else ""
    assert "javascript:" not in bib


def test_references_bib_keeps_only_http_links(tmp_path: Path) -> None:
    stored, vectors = library(1)
    cluster_map = build_map(stored, vectors, "v1")
    papers = {sp.paper.paper_id: sp.paper for sp in stored}
    summarizer = ClusterSummarizer(None, "offline", None, 4000, 500)
    summaries = {c.cluster_id: summarizer.summarize(c, papers) for c in cluster_map.topics}
    cited = {c.paper_id for s in summaries.values() for c in s.citations}
    assert any(papers[p].url.startswith("javascript:") for p in cited)  # a hostile paper is cited
    write_report(tmp_path, cluster_map, summaries, papers, ("md",))
    bib = (tmp_path / "references.bib").read_text(encoding="utf-8")
    assert "javascript:" not in bib
    assert "https://example.org/" in bib


def test_two_levels_trends_and_untitled_papers_in_the_report() -> None:
    stored, vectors = library(1, per_topic=40)
    first = "We study protein folding structure in living cells"
    untitled = stored[1].paper.model_copy(update={"title": first, "title_derived": True,
                                                  "abstract": f"{first}. Nothing else is said here at all."})
    stored[1] = StoredPaper(untitled, "u", 1)
    cluster_map = build_map(stored, vectors, "v1")
    assert len(cluster_map.topics) == 3
    assert all(len(t.subtopics) >= 2 for t in cluster_map.topics)  # 40 papers: sqrt(20) -> 4 asked for
    for topic in cluster_map.topics:
        inside = {p for s in topic.subtopics for p in s.paper_ids}
        assert inside <= set(topic.paper_ids)
        assert all(s.cluster_id.startswith(topic.cluster_id + ".") for s in topic.subtopics)
        assert sum(topic.years.values()) == len(topic.paper_ids)
    assert cluster_map.get(cluster_map.topics[0].subtopics[0].cluster_id) is cluster_map.topics[0].subtopics[0]
    assert display_title(untitled) == "untitled (We study protein folding structure in living cells.…)"
    found = trends(cluster_map)
    assert {t.cluster_id for t in found} == {t.cluster_id for t in cluster_map.topics}
    assert found[0].window == (2019, 2021, 2022, 2024)
    papers = {sp.paper.paper_id: sp.paper for sp in stored}
    text = markdown_report(cluster_map, {}, papers)
    assert "## Trends" in text and "### c1.1:" in text
    lines = [line for line in text.splitlines() if "untitled" in line]
    assert lines and all(line.count("We study protein folding") == 1 for line in lines)
    assert all(r"untitled \(We study protein folding structure" in line for line in lines)
    topic = next(t for t in cluster_map.topics if untitled.paper_id in t.paper_ids)
    topic = topic.model_copy(update={"representative_ids": [untitled.paper_id], "keywords": ["protein"]})
    summary = ClusterSummarizer(None, "offline", None, 4000, 500).summarize(topic, papers)
    assert summary.text.count(first) == 1  # not "title: the same sentence"


def test_a_summarys_quoted_brackets_are_not_buttons_claims_or_renumbered() -> None:
    stored, vectors = library(1, per_topic=20)
    cluster_map = build_map(stored, vectors, "v1")
    topic = cluster_map.topics[0]
    one, two = topic.paper_ids[:2]
    papers = {sp.paper.paper_id: sp.paper for sp in stored}
    quoted = "Protein folding in living cells, as others found [2][1], shapes the structure of every protein"
    papers[one] = papers[one].model_copy(update={"abstract": f"{quoted}. Short one."})
    topic = topic.model_copy(update={"representative_ids": [one, two], "keywords": ["protein"]})
    summary = ClusterSummarizer(None, "offline", None, 4000, 500).summarize(topic, papers)
    assert f"{quoted}. [1]" in summary.body and [c.paper_id for c in summary.citations] == [one, two]
    assert summary.removed_citations == 0
    assert summary.body[slice(*summary.quoted[0])].endswith(f": {quoted}.") and len(summary.quoted) == 2  # title: quote
    assert [m.numbers for m in rendered_markers(summary)] == [[1], [2]]  # one citation per quote, none inside
    assert [[s.number for s in c.citations] for c in derive_claims(summary)] == [[1], [2]]
    assert cited_html(summary).count('class="la-cite"') == 2
    listed = json.loads(clusters_json(cluster_map, {topic.cluster_id: summary}))["clusters"][0]  # for scripts
    assert [listed["summary"][a:b] for a, b in listed["quoted"]] == [summary.body[a:b] for a, b in summary.quoted]
    # in a conversation whose ledger numbers these papers 7 and 8, the quote keeps its own "[2][1]"
    ledger = Ledger(reserved={two: 7, one: 8})
    text, _, moved = summary_in_ledger(summary, ledger)
    assert f"{quoted}. [8]" in text and text[slice(*moved[0])] == summary.body[slice(*summary.quoted[0])]


def test_a_summarys_quotes_are_cached_and_an_entry_written_before_them_loads(tmp_path: Path) -> None:
    stored, vectors = library(1, per_topic=20)
    topic = build_map(stored, vectors, "v1").topics[0]
    papers = {sp.paper.paper_id: sp.paper for sp in stored}
    summary = ClusterSummarizer(None, "offline", None, 4000, 500).summarize(topic, papers)
    first = summary.body.index("- ") + 2  # its first quote, given here: this test is about the cache alone
    summary = summary.model_copy(update={"quoted": [(first, summary.body.index(" [1]"))]})
    cache = ClusterCache(tmp_path / "clusters")
    cache.save_summary("k", summary)
    assert cache.load_summary("k") == summary
    entry = tmp_path / "clusters" / "summaries" / "k.json"
    record = json.loads(entry.read_text())
    del record["quoted"]  # as written before summaries carried their quotes
    entry.write_text(json.dumps(record))
    assert cache.load_summary("k") == summary.model_copy(update={"quoted": []})


def test_a_cache_folder_or_entry_in_the_wrong_shape_is_rebuilt_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stored, vectors = library(1)
    cluster_map = build_map(stored, vectors, "v1")
    folder = tmp_path / "clusters"
    folder.write_text("not a folder")
    cache = ClusterCache(folder)
    with caplog.at_level(logging.WARNING, logger="litassist.topics"):
        assert cache.load_map() is None
        cache.save_map(cluster_map)
    assert cache.load_map() == cluster_map
    assert len(caplog.records) == 2 and all("\n" not in r.getMessage() for r in caplog.records)
    caplog.clear()
    (folder / "map.json").unlink()
    (folder / "map.json").mkdir()
    (folder / "map.json" / "inside").write_text("x")
    with caplog.at_level(logging.WARNING, logger="litassist.topics"):
        assert cache.load_map() is None
        cache.save_map(cluster_map)
    assert cache.load_map() == cluster_map
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING"]
