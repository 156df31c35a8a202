"""PubMed XML and EndNote XML, on real exports (tests/fixtures/real/SOURCES.md), streamed record by record."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from linear import assert_linear
from test_fuzz_parsers import FUZZ, mutated, only_parse_errors
from test_parse_tagged import real

from assistant.corpus import parse_file, parse_text, tagged, xmlpull
from assistant.corpus.tagged import parse_medline
from assistant.corpus.xml_records import STREAMS, parse_endnote_xml, parse_pubmed_xml
from assistant.errors import ParseError

REAL = Path(__file__).parent / "fixtures" / "real"


def test_pubmed_xml_maps_every_field_of_a_real_efetch_response() -> None:
    structured, pmc, bare = parse_pubmed_xml(real("pubmed_efetch.xml"), "pubmed_result.xml").papers
    assert structured.paper_id == "30514039"
    assert structured.title.startswith("[Feasibility study of preoperative percutaneous catheter drainage")
    assert structured.abstract.startswith("OBJECTIVE: To investigate the effect of preoperative percutaneous drainage")
    assert (
        " METHODS: Thirty-six patients" in structured.abstract and " CONCLUSIONS: Preoperative" in structured.abstract
    )
    assert "group B(P<0.05)" in structured.abstract  # <i>P</i>&lt;0.05 read as text
    assert structured.authors == ["Zhen Lai", "Shi-Yuan Shi", "Jun Fei", "Gui-He Han", "Sheng-Ping Hu"]
    assert (structured.year, structured.date) == (2018, "2018-11-25")
    assert structured.venue == "Zhongguo gu shang = China journal of orthopaedics and traumatology"
    assert structured.doi == "10.3969/j.issn.1003-0034.2018.11.004"
    assert structured.url == "https://pubmed.ncbi.nlm.nih.gov/30514039/" and structured.arxiv_id is None
    assert structured.keywords == ["Drainage", "Lumbar vertebrae", "Psoas abscess", "Tuberculosis, spine"]
    assert (pmc.year, pmc.date) == (2004, "2004-09")  # MedlineDate '2004 Sep-Dec'
    assert pmc.url == "https://pmc.ncbi.nlm.nih.gov/articles/PMC1784604/"
    assert pmc.doi == "10.1080/10647440400020695" and "Psoas Abscess" in pmc.keywords  # MeSH headings
    assert not bare.has_abstract and bare.title == "[Therapeutic tactics in acute spinal epidural abscesses]."
    assert bare.authors[0] == "I M Irger"  # Initials when there is no ForeName


def test_the_same_pubmed_record_reads_the_same_from_nbib_and_xml() -> None:
    (from_nbib,) = parse_medline(real("pubmed_p1m.nbib"), "citations.nbib").papers
    from_xml = parse_pubmed_xml(real("pubmed_efetch.xml"), "pubmed_result.xml").papers[0]
    fields = ("paper_id", "title", "authors", "year", "date", "venue", "url", "doi", "keywords")
    assert {f: getattr(from_nbib, f) for f in fields} == {f: getattr(from_xml, f) for f in fields}
    assert from_xml.abstract.replace("\u00b1", "+/-") == from_nbib.abstract  # the .nbib spells '±' in ASCII


# Written after PubMed's DTD (pubmed_250101.dtd): inline markup in a title, a group author, Month as a number,
# ArticleDate when PubDate has only a year, and a Bookshelf chapter.
SPEC_PUBMED = """<?xml version="1.0"?>
<PubmedArticleSet>
<PubmedArticle><MedlineCitation><PMID Version="1">40000001</PMID><Article>
  <Journal><JournalIssue><PubDate><Year>2024</Year></PubDate></JournalIssue><Title>Cell reports</Title></Journal>
  <ArticleTitle>CD4<sup>+</sup> T cells in <i>Mus musculus</i></ArticleTitle>
  <AuthorList><Author><LastName>Doe</LastName><ForeName>Jane</ForeName></Author>
    <Author><CollectiveName>The Mouse Consortium</CollectiveName></Author></AuthorList>
  <ArticleDate DateType="Electronic"><Year>2024</Year><Month>03</Month><Day>05</Day></ArticleDate>
</Article></MedlineCitation></PubmedArticle>
<PubmedBookArticle><BookDocument><PMID Version="1">40000002</PMID>
  <ArticleIdList><ArticleId IdType="bookaccession">NBK1</ArticleId></ArticleIdList>
  <Book><Publisher><PublisherName>StatPearls Publishing</PublisherName></Publisher>
    <BookTitle>StatPearls</BookTitle><PubDate><Year>2023</Year><Month>Jan</Month></PubDate></Book>
  <ArticleTitle>Psoas Abscess</ArticleTitle>
  <AuthorList Type="authors"><Author><LastName>Roe</LastName><ForeName>Rick</ForeName></Author></AuthorList>
  <AuthorList Type="editors"><Author><LastName>Editor</LastName><ForeName>Ed</ForeName></Author></AuthorList>
  <Abstract><AbstractText>A chapter.</AbstractText></Abstract>
</BookDocument></PubmedBookArticle>
</PubmedArticleSet>
"""


def test_pubmed_xml_markup_groups_dates_and_book_chapters() -> None:
    article, chapter = parse_text(SPEC_PUBMED, "efetch.txt").papers
    assert article.title == "CD4+ T cells in Mus musculus"
    assert article.authors == ["Jane Doe", "The Mouse Consortium"]
    assert (article.year, article.date, article.has_abstract) == (2024, "2024-03-05", False)
    assert (chapter.paper_id, chapter.title, chapter.venue) == ("40000002", "Psoas Abscess", "StatPearls")
    assert (chapter.authors, chapter.date, chapter.abstract) == (["Rick Roe"], "2023-01", "A chapter.")


def test_endnote_xml_maps_every_field_of_a_real_library() -> None:
    cavitation, standard, loading, pdf_only = parse_endnote_xml(real("endnote_thesis.xml"), "lib.xml").papers
    assert cavitation.title == "Role of particle cavitation in rubber-toughened epoxies: II. Inter-particle distance"
    assert cavitation.abstract.startswith("Two types of conventional rubber modifiers")
    assert cavitation.authors == ["R. Bagheri", "R. A. Pearson"]
    assert (cavitation.year, cavitation.date) == (2000, "2000-01")  # year + pub-dates 'Jan'
    assert cavitation.venue == "Polymer"
    assert cavitation.doi == "10.1016/s0032-3861(99)00126-3"
    assert cavitation.url.startswith("http://ac.els-cdn.com/")  # not the '<Go to ISI>://WOS:…' link before it
    assert cavitation.paper_id == "doi:10.1016/s0032-3861(99)00126-3"  # rec-number is local to one library
    assert standard.title == "Plastics. Determination of fracture toughness (GIC and KIC) at moderately high loading " \
                             "rates (1 m/s)"  # <style face="subscript"> runs joined
    assert (standard.authors, standard.year) == (["ISO 17281:2002"], 2002)
    assert loading.keywords == ["epoxy resin", "rubber toughening", "hybrid compound", "loading rate",
                                "fracture toughness"]
    assert (loading.has_abstract, loading.url) == (False, "http://dx.doi.org/10.1002/app.35379")
    assert pdf_only.title == "<Creep Crack Initiation and Growth.pdf>" and not pdf_only.has_abstract


@pytest.mark.parametrize(("name", "fmt"), [("pubmed_efetch.xml", "pubmed-xml"), ("endnote_thesis.xml", "endnote-xml")])
def test_recognised_by_content_under_any_name_and_streamed_alike(name: str, fmt: str, tmp_path: Path) -> None:
    copy = tmp_path / "export.txt"
    copy.write_bytes((REAL / name).read_bytes())
    parsed = parse_file(copy).result
    assert parsed.format == fmt and parsed.papers
    streamed = list(STREAMS[fmt](iter(real(name).split("\n")), str(copy)))
    assert [p.model_dump() for p in streamed] == [p.model_dump() for p in parsed.papers]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>
<ArticleTitle>&lol9;</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>
"""


@pytest.mark.parametrize("text", [
    BILLION_LAUGHS,
    BILLION_LAUGHS.replace("\n", ""),  # all on one line, as EndNote writes its files
    ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><records><record>'
     "<titles><title>&x;</title></titles></record></records></xml>"),
], ids=["billion-laughs", "billion-laughs-one-line", "external-entity"])
def test_entity_declarations_are_refused(text: str) -> None:
    with pytest.raises(ParseError, match="declares an XML entity") as caught:
        parse_text(text, "hostile.xml")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("text", "words"), [
    (real("pubmed_efetch.xml")[:real("pubmed_efetch.xml").index("\n", 5000)], "cut short"),  # at a line's end
    (real("pubmed_efetch.xml")[:5000], "malformed PubMed XML at line 38"),  # mid-tag
    (real("endnote_thesis.xml")[:3000], "cut short"),
    (real("pubmed_efetch.xml").replace("</ArticleTitle>", "</Title>", 1), "malformed PubMed XML at line 28"),
    (("<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID></MedlineCitation></PubmedArticle>"
      "</PubmedArticleSet>"), None),
], ids=["pubmed-cut-at-line-end", "pubmed-cut-mid-tag", "endnote-cut", "pubmed-bad-close", "pubmed-no-article"])
def test_a_damaged_file_is_one_clear_error(text: str, words: str | None) -> None:
    if words is None:  # well-formed but not an article: skipped, named by its position
        assert parse_text(text, "x.txt").skipped[0].reason == "PubmedArticle without MedlineCitation/Article"
        return
    with pytest.raises(ParseError) as caught:
        parse_text(text, "export.txt")
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_record_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xmlpull, "MAX_RECORD_CHARS", 5000)
    with pytest.raises(ParseError, match="over 5,000 characters"):
        parse_endnote_xml("<xml><records><record><abstract>" + "word " * 2000 + "</abstract></record></records></xml>",
                          "big.xml")


PUBMED_RECORD = ("<PubmedArticle><MedlineCitation><PMID>{i}</PMID><Article><ArticleTitle>Title {i}</ArticleTitle>"
                 "<Abstract><AbstractText Label=\"A\">Words.</AbstractText></Abstract></Article></MedlineCitation>"
                 "</PubmedArticle>\n")
ENDNOTE_RECORD = "<record><titles><title><style face=\"normal\">Title {i}</style></title></titles></record>"


@pytest.mark.parametrize(("make", "parse"), [
    (lambda n: "<PubmedArticleSet>\n" + "".join(PUBMED_RECORD.format(i=i) for i in range(n)) + "</PubmedArticleSet>",
     parse_pubmed_xml),  # many records, one a line
    (lambda n: "<xml><records>" + "".join(ENDNOTE_RECORD.format(i=i) for i in range(n)) + "</records></xml>",
     parse_endnote_xml),  # many records on one line
    (lambda n: "<xml><records><record><abstract>" + "word " * (50 * n) + "</abstract></record></records></xml>",
     parse_endnote_xml),  # one long text
])
@pytest.mark.slow
def test_parsing_time_grows_linearly(make: Callable[[int], str], parse: Callable[[str, str], object]) -> None:
    assert_linear(make, lambda text: parse(text, "doubling.txt"))


@pytest.mark.slow
def test_finished_records_are_dropped_while_streaming() -> None:
    """Peak memory while streaming 4,000 records is about that of 1,000: the tree never holds them all."""
    def lines(n: int) -> Iterator[str]:
        yield "<PubmedArticleSet>"
        for i in range(n):
            yield PUBMED_RECORD.format(i=i).rstrip("\n")
        yield "</PubmedArticleSet>"

    def peak(n: int) -> int:
        tracemalloc.start()
        for _ in STREAMS["pubmed-xml"](lines(n), "big.xml"):
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    assert peak(4000) < 1.5 * peak(1000)


@pytest.mark.parametrize(("name", "parse"), [
    ("pubmed_limo.nbib", tagged.parse_medline), ("wos_savedrecs.txt", tagged.parse_wos),
    ("pubmed_efetch.xml", parse_pubmed_xml), ("endnote_thesis.xml", parse_endnote_xml),
])
def test_mutated_real_exports_raise_nothing_but_parse_errors(name: str, parse: Callable[[str, str], object]) -> None:
    sample = real(name)[:6000]

    @FUZZ
    @given(text=mutated(sample))
    def check(text: str) -> None:
        only_parse_errors(lambda: parse(text, name))

    check()
