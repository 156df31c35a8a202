"""The five scraped seed pages: every abstract found, nothing else, metadata as the page gives it."""

from __future__ import annotations

from collections import Counter

import pytest

from assistant.api import DEMO_CORPUS as SEEDS
from assistant.corpus import detect_format, merge_duplicates, parse_file, parse_text
from assistant.errors import ParseError

EXPECTED = {
    "guo-zhenyu-author-page.txt": ("author-page", 10),
    "daily-papers-oct-28.txt": ("daily-papers", 83),
    "arxiv-abstracts.txt": ("abstract-lines", 10),
    "daily-papers-oct-31.txt": ("daily-papers", 70),
    "paper-page-sparse-training-theory.txt": ("paper-page", 6),
}
CHROME = ["Subscribe", "Daily Papers", "Goto", "Collaborating Authors", "Read More", "comments", "هل ترغب"]


def parsed(name: str):
    return parse_file(SEEDS / name).result


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_seed_page_detected_and_counted(name: str) -> None:
    result = parsed(name)
    assert (result.format, len(result.papers)) == EXPECTED[name]
    assert not result.skipped


def test_all_distinct_abstracts_and_nothing_else() -> None:
    papers = [p for name in sorted(EXPECTED) for p in parsed(name).papers]
    merged, duplicates = merge_duplicates(papers)
    expected = sum(count for _, count in EXPECTED.values())  # 179
    assert len(merged) == expected and duplicates == 0
    assert len({p.paper_id for p in merged}) == expected
    for paper in merged:
        assert len(paper.abstract.split()) >= 30
        assert not any(paper.title.startswith(c) or paper.abstract.startswith(c) for c in CHROME)


def test_author_page_names_page_author_and_category() -> None:
    first = parsed("guo-zhenyu-author-page.txt").papers[0]
    assert first.title == "Causal Mean Field Multi-Agent Reinforcement Learning"
    assert first.authors == ["Zhenyu Guo"]
    assert first.author_count is None  # the page names one author, not all of them
    assert first.venue == "arXiv Artificial Intelligence"
    assert first.abstract.startswith("Scalability remains a challenge")
    assert parsed("guo-zhenyu-author-page.txt").papers[-1].venue == "arXiv Machine Learning"


def test_daily_listing_dates_never_invent_a_year() -> None:
    papers = {p.title: p for p in parsed("daily-papers-oct-28.txt").papers}
    full = papers["Proto-Value Networks: Scaling Representation Learning with Auxiliary Tasks"]
    assert (full.date, full.year, full.author_count) == ("2023-04-25", 2023, 7)
    no_year = papers["Reinforcement Learning for Long-Horizon Interactive LLM Agents"]
    assert (no_year.date, no_year.year) == ("Feb 3", None)
    upvoted = {p.title: p for p in parsed("daily-papers-oct-31.txt").papers}[
        "Multiverse: Your Language Models Secretly Decide How to Parallelize and Merge Generation"
    ]
    assert (upvoted.date, upvoted.year, upvoted.author_count) == ("Jun 11", None, 5)


def test_daily_listing_entry_without_footer_and_last_entry_at_eof() -> None:
    papers = parsed("daily-papers-oct-31.txt").papers
    last = papers[-1]
    assert last.title.startswith("A Comprehensive Survey of Large AI Models for Future Communications")
    assert (last.author_count, last.date) == (None, None)
    footerless = [p for p in papers[:-1] if p.author_count is None]
    assert len(footerless) == 1 and not footerless[0].title_derived


def test_daily_listing_page_date_is_not_a_paper_date() -> None:
    first = parsed("daily-papers-oct-28.txt").papers[0]
    assert first.date != "Oct 28"


def test_bare_abstracts_get_derived_titles() -> None:
    papers = parsed("arxiv-abstracts.txt").papers
    assert all(p.title_derived for p in papers)
    assert papers[0].title.startswith("Existing large language models have to run K times")
    assert not papers[0].abstract.startswith("Abstract:")
    assert all(p.paper_id.startswith("a:") for p in papers)


def test_paper_page_main_and_related_entries() -> None:
    papers = parsed("paper-page-sparse-training-theory.txt").papers
    main = papers[0]
    expected = ("Sparse Training Theory for Scalable and Efficient Agents", 2021, False)
    assert (main.title, main.year, main.title_derived) == expected
    assert main.abstract.startswith("A fundamental task for artificial intelligence is learning.")
    with_header = papers[1]
    assert with_header.authors == ["Zijian Gao", "Kele Xu", "Bo Ding"] and with_header.year == 2021
    headerless = papers[2]
    assert headerless.authors == [] and headerless.year is None and headerless.title_derived
    assert papers[3].authors == ["Martin Biehl"] and papers[3].year == 2017


def test_detection_uses_content_not_extension(tmp_path) -> None:
    renamed = tmp_path / "listing.csv"
    renamed.write_text((SEEDS / "daily-papers-oct-28.txt").read_text(encoding="utf-8"), encoding="utf-8")
    assert parse_file(renamed).result.format == "daily-papers"
    assert detect_format("Abstract: " + "word " * 40, "x.bib")[0] == "abstract-lines"


def test_prose_without_structure_is_rejected() -> None:
    with pytest.raises(ParseError, match="unrecognized format"):
        parse_text("Subscribe\n\nMenu\n\nHome\n", "chrome.txt")


def test_reingesting_the_same_file_gives_identical_ids() -> None:
    first = [p.paper_id for p in parsed("daily-papers-oct-28.txt").papers]
    second = [p.paper_id for p in parsed("daily-papers-oct-28.txt").papers]
    assert first == second and len(set(first)) == len(first)
    assert Counter(p.sources[0].position for p in parsed("daily-papers-oct-28.txt").papers).most_common(1)[0][1] == 1
