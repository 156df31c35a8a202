"""arXiv OAI-PMH and Zotero RDF, on excerpts of real files (tests/fixtures/real) and spec-shaped variants."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from linear import assert_linear
from test_fuzz_parsers import FUZZ, mutated, only_parse_errors

from assistant.corpus import STREAMS, parse_text
from assistant.corpus.records import Paper, Skipped
from assistant.corpus.xml_feeds import parse_oai_pmh, parse_zotero_rdf
from assistant.errors import ParseError

REAL = Path(__file__).parent / "fixtures" / "real"
OAI_ARXIV = (REAL / "oai_pmh_arxiv_listrecords.xml").read_text(encoding="utf-8")
OAI_RAW = (REAL / "oai_pmh_arxivraw_listrecords.xml").read_text(encoding="utf-8")
ZOTERO = (REAL / "zotero_export.rdf").read_text(encoding="utf-8")

OAI_DC = """<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">
<GetRecord><record><header><identifier>oai:arXiv.org:0704.0002</identifier></header><metadata>
<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/">
 <dc:title>Sparsity-certifying Graph Decompositions</dc:title>
 <dc:creator>Streinu, Ileana</dc:creator>
 <dc:creator>Theran, Louis</dc:creator>
 <dc:subject>Mathematics - Combinatorics</dc:subject>
 <dc:description>  We describe a new algorithm, the $(k,\\ell)$-pebble game with colors.</dc:description>
 <dc:description>Comment: To appear in Graphs and Combinatorics</dc:description>
 <dc:date>2007-03-30</dc:date>
 <dc:date>2008-12-13</dc:date>
 <dc:type>text</dc:type>
 <dc:identifier>http://arxiv.org/abs/0704.0002</dc:identifier>
</oai_dc:dc></metadata></record></GetRecord></OAI-PMH>
"""

# Zotero's RDF export with "Export Files" ticked, as its translator writes it: a file attachment (rdf:resource under
# z:Attachment), a journal node that two articles share by reference, and a book without an abstract.
ZOTERO_WITH_FILES = """<rdf:RDF
 xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:z="http://www.zotero.org/namespaces/export#"
 xmlns:dcterms="http://purl.org/dc/terms/"
 xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:bib="http://purl.org/net/biblio#"
 xmlns:foaf="http://xmlns.com/foaf/0.1/"
 xmlns:link="http://purl.org/rss/1.0/modules/link/"
 xmlns:prism="http://prismstandard.org/namespaces/1.2/basic/">
    <bib:Article rdf:about="#item_7">
        <z:itemType>preprint</z:itemType>
        <dcterms:isPartOf rdf:resource="#journal_1"/>
        <bib:authors><rdf:Seq>
            <rdf:li><foaf:Person><foaf:surname>Vaswani</foaf:surname><foaf:givenName>Ashish</foaf:givenName></foaf:Person></rdf:li>
            <rdf:li><foaf:Person><foaf:surname>Shazeer</foaf:surname><foaf:givenName>Noam</foaf:givenName></foaf:Person></rdf:li>
        </rdf:Seq></bib:authors>
        <link:link rdf:resource="#item_9"/>
        <dc:subject>Computer Science - Computation and Language</dc:subject>
        <dc:identifier>arXiv:1706.03762</dc:identifier>
        <dc:date>2017-06-12</dc:date>
        <dcterms:abstract>The dominant sequence transduction models are based on recurrent networks.</dcterms:abstract>
        <dc:title>Attention Is All You Need</dc:title>
        <z:citationKey>vaswani2017</z:citationKey>
    </bib:Article>
    <bib:Article rdf:about="#item_8">
        <z:itemType>journalArticle</z:itemType>
        <dcterms:isPartOf rdf:resource="#journal_1"/>
        <dc:title>A Second Article in the Same Journal</dc:title>
        <dc:date>2018</dc:date>
    </bib:Article>
    <bib:Journal rdf:about="#journal_1">
        <dc:title>arXiv</dc:title>
        <dc:identifier>DOI 10.48550/arXiv.1706.03762</dc:identifier>
    </bib:Journal>
    <z:Attachment rdf:about="#item_9">
        <z:itemType>attachment</z:itemType>
        <rdf:resource rdf:resource="files/9/Vaswani et al. - 2017 - Attention Is All You Need.pdf"/>
        <dc:title>arXiv Fulltext PDF</dc:title>
        <z:linkMode>1</z:linkMode>
        <link:type>application/pdf</link:type>
    </z:Attachment>
    <bib:Book rdf:about="urn:isbn:978-0-262-03561-3">
        <z:itemType>book</z:itemType>
        <dc:title>Deep Learning</dc:title>
        <dc:date>2016</dc:date>
    </bib:Book>
    <bib:Memo rdf:about="#item_10"><rdf:value>&lt;p&gt;a note&lt;/p&gt;</rdf:value></bib:Memo>
    <z:Collection rdf:about="#collection_1">
        <dc:title>Transformers</dc:title>
        <dcterms:hasPart rdf:resource="#item_7"/>
        <dcterms:hasPart rdf:resource="urn:isbn:978-0-262-03561-3"/>
    </z:Collection>
</rdf:RDF>
"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><ListRecords><record><metadata>
<arXiv xmlns="http://arxiv.org/OAI/arXiv/"><id>0704.0001</id><title>&lol9;</title></arXiv>
</metadata></record></ListRecords></OAI-PMH>
"""


# ---------------------------------------------------------------- OAI-PMH


def test_oai_arxiv_record_maps_every_field() -> None:
    (paper,) = parse_oai_pmh(OAI_ARXIV, "listrecords.xml").papers
    assert paper.title == "Dynamical study of 2D and 3D barred galaxy models"
    assert paper.authors == ["T. Manos", "E. Athanassoula"]
    assert (paper.year, paper.date) == (2008, "2008-01-25")
    assert paper.venue == "Chaos in Astronomy Astrophysics and Space Science Proceedings 2009, pp 115-122"
    assert (paper.doi, paper.arxiv_id, paper.url) == ("10.1007/978-3-540-75826-6_11", "0801.3931",
                                                      "https://arxiv.org/abs/0801.3931")
    assert paper.keywords == ["astro-ph"]
    assert paper.abstract.startswith("We study the dynamics of 2D and 3D barred galaxy analytical models")
    assert "on a Poincaré (y,p_y) surface of section" in paper.abstract  # LaTeX decoded


def test_oai_arxiv_raw_record_and_deleted_record() -> None:
    result = parse_oai_pmh(OAI_RAW, "raw.xml")
    (paper,) = result.papers
    assert paper.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert paper.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]
    assert (paper.year, paper.date) == (2007, "2007-04-02")  # version v1's date
    assert (paper.venue, paper.doi, paper.arxiv_id) == ("Phys.Rev.D76:013009,2007", "10.1103/physrevd.76.013009",
                                                        "0704.0001")
    assert paper.keywords == ["hep-ph"] and paper.abstract.startswith("A fully differential calculation")
    assert result.skipped == [Skipped(position=2, reason="deleted record", label="oai:arXiv.org:0704.0099")]


def test_oai_dublin_core_record() -> None:
    (paper,) = parse_oai_pmh(OAI_DC, "dc.xml").papers
    assert paper.title == "Sparsity-certifying Graph Decompositions"
    assert paper.authors == ["Ileana Streinu", "Louis Theran"]
    assert (paper.year, paper.date) == (2007, "2007-03-30")
    assert (paper.url, paper.arxiv_id) == ("http://arxiv.org/abs/0704.0002", "0704.0002")
    assert paper.abstract == "We describe a new algorithm, the $(k,\\ell)$-pebble game with colors."
    assert paper.keywords == ["Mathematics - Combinatorics"]


def test_oai_record_without_abstract_is_a_paper() -> None:
    text = OAI_ARXIV.replace(OAI_ARXIV[OAI_ARXIV.index("<abstract>"):OAI_ARXIV.index("</abstract>") + 11], "")
    (paper,) = parse_oai_pmh(text, "no-abstract.xml").papers
    assert not paper.has_abstract and paper.arxiv_id == "0801.3931"


def test_oai_error_response_is_reported() -> None:
    error = ('<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>2024-01-01T00:00:00Z</responseDate>'
             '<error code="noRecordsMatch">The combination of the given values results in an empty list.</error>'
             "</OAI-PMH>")
    with pytest.raises(ParseError, match="^the OAI-PMH response is an error, not records \\(noRecordsMatch: The"):
        parse_oai_pmh(error, "empty.xml")


# ---------------------------------------------------------------- Zotero RDF


def test_zotero_rdf_maps_every_field() -> None:
    rejected, segmentation, infrastructures, signatures = parse_zotero_rdf(ZOTERO, "My Library.rdf").papers
    assert rejected.title == "Semantic web based rule checking of real-world scale BIM models: a pragmatic method"
    assert rejected.authors == ["Hehua Zhang", "Wenqi Zhao", "Jianqiao Gu", "Han Liu", "Ming Gu"]
    assert rejected.venue == "Semantic Web Journal (rejected)"  # an inline bib:Journal
    assert rejected.year == 2017  # from '07/26/2017'
    assert rejected.keywords == ["SPARQL", "China", "country", "BimCheck", "SNL", "Structured Natural Language"]
    assert rejected.url.startswith("http://www.semantic-web-journal.net/content/semantic-web-based-rule-checking")
    assert rejected.collections == ["Compliance Checking, Rules, SHACL, Regulations, Validation"]
    assert rejected.abstract.startswith("Rule checking is important to assure the integrity")
    assert segmentation.authors == ["T. Czerniawski", "Fernanda Leite"] and segmentation.venue == "EG-ICE"
    assert segmentation.attachments == []  # its attachment is a web link (linkMode 3), not a file
    # the journal node is defined after the article, by reference, and holds the article's DOI
    assert (infrastructures.venue, infrastructures.doi) == ("Infrastructures", "10.3390/infrastructures6040051")
    assert (infrastructures.year, infrastructures.date) == (2021, "2021-03-26")
    assert signatures.keywords == ["RDF", "IFC", "BIM", "Diff"]  # z:AutomaticTag subjects
    assert signatures.doi == "10.1016/j.autcon.2015.05.008" and signatures.collections == ["ifcOWL ontology"]


def test_zotero_rdf_attachments_shared_journal_and_items_without_abstract() -> None:
    result = parse_zotero_rdf(ZOTERO_WITH_FILES, "export.rdf")
    attention, second, book = result.papers  # the note, attachment, journal and collection are not papers
    assert attention.attachments == ["files/9/Vaswani et al. - 2017 - Attention Is All You Need.pdf"]
    assert attention.arxiv_id == "1706.03762" and attention.authors == ["Ashish Vaswani", "Noam Shazeer"]
    assert attention.collections == ["Transformers"] and attention.venue == "arXiv"
    # a journal node two items point to is trusted for its name, never for a DOI it would give both
    assert attention.doi is None and second.doi is None and second.venue == "arXiv"
    assert not book.has_abstract and book.title == "Deep Learning" and book.collections == ["Transformers"]
    assert result.skipped_total == 0


# ---------------------------------------------------------------- detection, hostile input, streaming


@pytest.mark.parametrize(("text", "expected"), [
    (OAI_ARXIV, "oai-pmh"), (OAI_RAW, "oai-pmh"), (OAI_DC, "oai-pmh"), (ZOTERO, "zotero-rdf"),
], ids=["arXiv", "arXivRaw", "oai_dc", "zotero"])
@pytest.mark.parametrize("name", ["download.txt", "download.xml", "export.rdf"])
def test_recognised_by_content_whatever_the_name(text: str, expected: str, name: str) -> None:
    assert parse_text(text, name).format == expected


def test_billion_laughs_is_refused_at_once() -> None:
    started = time.perf_counter()
    with pytest.raises(ParseError, match=r"^line 3 declares an XML entity") as error:
        parse_text(BILLION_LAUGHS, "lol.xml")
    assert time.perf_counter() - started < 1 and "\n" not in str(error.value)


@pytest.mark.parametrize(("text", "message"), [
    (OAI_RAW[: len(OAI_RAW) // 2], "^malformed OAI-PMH XML at line .*the file looks cut short"),
    (ZOTERO.replace("</bib:authors>", "</bib:author>", 1), "^malformed Zotero RDF XML at line .*: mismatched tag"),
    (OAI_DC.replace("Theran", "\ud800"), "^line 7 holds a character that is not Unicode text"),
], ids=["cut short", "mismatched tag", "lone surrogate"])
def test_a_broken_file_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as error:
        parse_text(text, "broken.xml")
    assert "\n" not in str(error.value)


def test_oai_stream_yields_each_record_before_reading_the_rest() -> None:
    lines = oai_records(50).split("\n")
    consumed: list[int] = []

    def feed() -> Iterator[str]:
        for number, line in enumerate(lines, 1):
            consumed.append(number)
            yield line

    records = STREAMS["oai-pmh"](feed(), "harvest.xml")
    first = next(records)
    assert isinstance(first, Paper) and first.arxiv_id == "2101.00000" and consumed == [1, 2]
    assert len(list(records)) == 49


def oai_records(count: int, abstract_words: int = 30) -> str:
    record = ("<record><header><identifier>oai:arXiv.org:{n}</identifier></header><metadata>"
              '<arXiv xmlns="http://arxiv.org/OAI/arXiv/"><id>2101.{n:05d}</id><created>2021-01-04</created>'
              "<authors><author><keyname>Doe</keyname><forenames>Jane</forenames></author></authors>"
              "<title>Paper {n}</title><categories>cs.LG</categories><abstract>{words}</abstract></arXiv>"
              "</metadata></record>")
    body = "\n".join(record.format(n=n, words="plain words " * abstract_words) for n in range(count))
    return f'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><ListRecords>\n{body}\n</ListRecords></OAI-PMH>'


def zotero_items(count: int) -> str:
    head, rest = ZOTERO_WITH_FILES.split("    <bib:Article", 1)
    article = "    <bib:Article" + rest.split("</bib:Article>", 1)[0] + "</bib:Article>\n"
    items = "".join(article.replace("#item_7", f"#item_{n}") for n in range(count))
    return head + items + "</rdf:RDF>\n"


@pytest.mark.parametrize("make", [
    oai_records,
    lambda n: oai_records(1, abstract_words=n).replace("\n", " "),
    zotero_items,
], ids=["oai records", "oai one long line", "zotero items"])
@pytest.mark.slow
def test_parsing_time_grows_linearly(make: Callable[[int], str]) -> None:
    assert_linear(make, lambda text: parse_text(text, "timed.xml"))


@pytest.mark.parametrize("sample", [OAI_ARXIV, OAI_RAW, ZOTERO_WITH_FILES], ids=["arXiv", "arXivRaw", "zotero"])
def test_mutated_files_raise_nothing_but_parse_errors(sample: str) -> None:
    @FUZZ
    @given(text=mutated(sample))
    def check(text: str) -> None:
        only_parse_errors(lambda: parse_text(text, "fuzz.xml"))

    check()
