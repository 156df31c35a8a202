"""PubMed/MEDLINE (.nbib) and Web of Science tagged text, on real exports (tests/fixtures/real/SOURCES.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from linear import assert_linear

from assistant.corpus import parse_file, parse_text, tagged
from assistant.corpus.records import Paper, Skipped
from assistant.corpus.tagged import STREAMS, parse_medline, parse_wos, pub_date
from assistant.errors import ParseError

REAL = Path(__file__).parent / "fixtures" / "real"


def real(name: str) -> str:
    return (REAL / name).read_text(encoding="utf-8-sig")


def test_medline_maps_every_field_of_a_real_pubmed_export() -> None:
    first, second = parse_medline(real("pubmed_limo.nbib"), "citations.nbib").papers
    assert first.paper_id == "21403915"  # the PMID
    assert first.title == "LIMO EEG: a toolbox for hierarchical LInear MOdeling of ElectroEncephaloGraphic data."
    assert first.abstract.startswith(
        "Magnetic- and electric-evoked brain responses have traditionally been analyzed by comparing the peaks"
    )  # continuation lines joined with one space
    assert first.abstract.endswith("complementary tool in the analysis of neural evoked responses.")
    assert first.authors == ["Cyril R Pernet", "Nicolas Chauveau", "Carl Gaspar", "Guillaume A Rousselet"]  # FAU
    assert (first.year, first.date) == (2011, "2011-02-21")  # DP gives only the year: DEP of that year is the date
    assert first.venue == "Computational intelligence and neuroscience"  # JT, not the abbreviation TA
    assert first.doi == "10.1155/2011/831409"
    assert first.url == "https://pmc.ncbi.nlm.nih.gov/articles/PMC3049326/"  # the free full text (PMC)
    assert first.arxiv_id is None
    assert first.keywords[:2] == ["Brain/physiology", "Electroencephalography/methods"]  # MeSH, '*' dropped
    assert second.authors == ["C R Pernet", "M Latinus", "T E Nichols", "G A Rousselet"]
    assert (second.year, second.date) == (2015, "2015-07-30")  # the issue's own date wins over DEP (2014)
    assert second.doi == "10.1016/j.jneumeth.2014.08.003"  # the [doi] line, not the [pii] one
    assert second.keywords == ["Cluster-based statistics", "ERP", "Family-wise error rate", "Monte-Carlo simulations",
                               "Multiple comparison correction", "Threshold free cluster enhancement"]  # OT


def test_wos_maps_every_field_of_a_real_savedrecs_export() -> None:
    result = parse_wos(real("wos_savedrecs.txt"), "savedrecs.txt")
    proceedings, article = result.papers
    assert article.paper_id == "WOS:000230607000007"  # UT
    assert article.title == ("Insight video: Toward hierarchical video content organization for efficient browsing, "
                             "summarization and retrieval")
    assert article.abstract.startswith("Hierarchical video browsing and feature-based video retrieval")
    assert article.authors == ["XQ Zhu", "AK Elmagarmid", "XY Xue", "LD Wu", "AC Catlin"]  # one per line, in order
    assert (article.year, article.date) == (2005, "2005-08")  # PY + PD 'AUG'
    assert article.venue == "IEEE TRANSACTIONS ON MULTIMEDIA"
    assert article.doi == "10.1109/tmm.2005.850977"
    assert article.url is None and article.arxiv_id is None  # WoS gives neither
    assert article.keywords == ["video browsing", "video content organization", "video retrieval",
                                "video similarity assessment", "CAMERA MOTION", "DATABASE", "SYSTEM", "IMAGE"]
    assert proceedings.keywords[3] == "content based coding"  # a DE value continued on the next line
    assert proceedings.authors == ["Y He", "C Du", "T Xie"]  # AF; the editors (BE) are not authors


def test_wos_prefers_full_names_and_reads_the_older_thomson_reuters_header() -> None:
    gel, plos = parse_wos(real("wos_thomson_reuters.txt"), "savedrecs.txt").papers
    assert gel.authors == ["Jyh-Ping Hsu", "Chih-Hua Huang", "Shiojenn Tseng"]  # AF, not AU 'Hsu, JP'
    assert (gel.year, gel.date) == (2012, "2012-12-24")  # PD 'DEC 24'
    assert (plos.paper_id, plos.date, plos.doi) == ("WOS:000311885800062", "2012-11-27", "10.1371/journal.pone.0050299")


@pytest.mark.parametrize(("name", "fmt"), [("pubmed_limo.nbib", "medline"), ("pubmed_p1m.nbib", "medline"),
                                           ("wos_savedrecs.txt", "wos"), ("wos_thomson_reuters.txt", "wos")])
def test_recognised_by_content_under_any_name_and_streamed_alike(name: str, fmt: str, tmp_path: Path) -> None:
    copy = tmp_path / "export.txt"
    copy.write_bytes((REAL / name).read_bytes())  # the BOM of the WoS files included
    parsed = parse_file(copy).result
    assert parsed.format == fmt and parsed.papers
    streamed = list(STREAMS[fmt](iter((REAL / name).read_text(encoding="utf-8").split("\n")), str(copy)))
    assert [p.model_dump() for p in streamed] == [p.model_dump() for p in parsed.papers]


@pytest.mark.parametrize(("text", "year", "expected"), [
    ("2019 May 3", None, (2019, "2019-05-03")),
    ("2019 Spring", None, (2019, None)),
    ("2018 Dec-2019 Jan", None, (2018, "2018-12")),
    ("2004 Sep-Dec", None, (2004, "2004-09")),
    ("20110221", None, (2011, "2011-02-21")),
    ("2011/09/01", None, (2011, "2011-09-01")),
    ("2019 Feb 30", None, (2019, None)),  # impossible: the year stays, no date is invented
    ("DEC 24", 2012, (2012, "2012-12-24")),
    ("JAN-FEB", 2001, (2001, "2001-01")),
    ("SPR", 2001, (2001, None)),
    (None, None, (None, None)),
])
def test_publication_dates(text: str | None, year: int | None, expected: tuple[int | None, str | None]) -> None:
    assert pub_date(text, year) == expected


# Written after PubMed's format help (pubmed.ncbi.nlm.nih.gov/help/#pubmed-format): no abstract, a group author,
# a season for a date, records not separated by a blank line, and one with nothing usable.
SPEC_MEDLINE = """PMID- 31000001
TI  - A trial without an abstract.
DP  - 2019 Spring
FAU - Doe, Jane
CN  - The Example Study Group
TA  - Ex J
PMID- 31000002
DP  - 2019
"""


def test_medline_entry_without_abstract_is_a_paper_and_one_without_anything_is_named() -> None:
    result = parse_text(SPEC_MEDLINE, "pubmed.txt")
    assert result.format == "medline"
    (paper,) = result.papers
    assert not paper.has_abstract and paper.title == "A trial without an abstract."
    assert paper.authors == ["Jane Doe", "The Example Study Group"]
    assert (paper.year, paper.date, paper.venue) == (2019, None, "Ex J")  # TA when there is no JT
    assert [(s.label, s.reason) for s in result.skipped] == [("PMID 31000002", "no title, abstract, DOI or arXiv id")]


def test_wos_entry_without_abstract_is_a_paper() -> None:
    text = "FN Clarivate Analytics Web of Science\nVR 1.0\nPT J\nAU Doe, J\nTI Only a title\nPY 2020\nER\n\nEF\n"
    (paper,) = parse_text(text, "export.txt").papers
    assert (paper.title, paper.authors, paper.year, paper.has_abstract) == ("Only a title", ["J Doe"], 2020, False)


@pytest.mark.parametrize(("text", "words"), [
    (real("wos_savedrecs.txt")[:1500], "cut short"),  # the last record has no ER
    (real("wos_savedrecs.txt").replace("\nPT J\n", "\nPT J\nthis line has no tag\n"), "not a Web of Science tag"),
    (real("pubmed_limo.nbib").replace("\nTI  - ", "\nTI--"), "not a PubMed/MEDLINE tag line"),
])
def test_a_damaged_file_is_one_clear_error(text: str, words: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_text(text, "export.txt")
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_record_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tagged, "MAX_RECORD_CHARS", 2000)
    with pytest.raises(ParseError, match="over 2,000 characters"):
        parse_medline("PMID- 1\nAB  - " + "word " * 1000 + "\n", "big.nbib")


MEDLINE_RECORD = "PMID- {i}\nTI  - Title {i}\nAB  - Words of an abstract.\n      More words.\nFAU - Doe, Jane\n\n"
WOS_RECORD = "PT J\nAU Doe, J\n   Roe, R\nTI Title {i}\nAB Words.\nPY 2020\nUT WOS:{i:015d}\nER\n\n"


@pytest.mark.parametrize(("make", "parse"), [
    (lambda n: "".join(MEDLINE_RECORD.format(i=i) for i in range(n)), parse_medline),  # many records
    (lambda n: "PMID- 1\nTI  - T\nAB  - " + "word " * (50 * n) + "\n", parse_medline),  # one long line
    (lambda n: "PMID- 1\nTI  - T\nAB  - a\n" + "      word\n" * (50 * n), parse_medline),  # many continuation lines
    (lambda n: "FN x\nVR 1.0\n" + "".join(WOS_RECORD.format(i=i) for i in range(n)) + "EF\n", parse_wos),
    (lambda n: "PT J\nAU Doe, J\n" + "   Roe, R\n" * (10 * n) + "TI T\nER\n", parse_wos),  # many authors
])
@pytest.mark.slow
def test_parsing_time_grows_linearly(make: Callable[[int], str], parse: Callable[[str, str], object]) -> None:
    assert_linear(make, lambda text: parse(text, "doubling.txt"))


def test_sniffers_look_at_a_bounded_head_only() -> None:
    """A huge file that is not tagged text is rejected in time independent of its size."""
    for name, sniff, _ in tagged.TAGGED_SNIFFERS:
        start = time.perf_counter()
        assert not sniff("x" * 50_000_000), name
        assert time.perf_counter() - start < 0.5


def test_streams_yield_papers_and_skips() -> None:
    items = list(STREAMS["medline"](SPEC_MEDLINE.split("\n"), "s.nbib"))
    assert [type(item) for item in items] == [Paper, Skipped]
