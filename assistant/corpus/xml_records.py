"""XML exports read record by record: PubMed XML (as `efetch` returns it, and PubMed's baseline files) and EndNote
XML. Both are streamed with XMLPullParser from the file's lines, each record dropped once converted, so a
30,000-record baseline file never sits in memory as a tree.

Entity declarations are refused before the parser sees them: an internal DTD subset is how "billion laughs" and
external-entity tricks work, and no PubMed or EndNote export has one (PubMed's DOCTYPE names an external DTD, which
the parser never fetches).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from xml.etree.ElementTree import Element

from .exports import _BOM, _SNIFF_CHARS, _paper, _result
from .records import Paper, ParseResult, Skipped, SourceRef
from .tagged import _pubmed_url, pub_date, pubmed_dates
from .xmlpull import pull_elements, text_of

Convert = Callable[[Element, SourceRef], Paper | Skipped]


def _texts(parent: Element | None, path: str) -> list[str]:
    return [] if parent is None else [text for element in parent.iterfind(path) if (text := text_of(element))]


def _pull(lines: Iterable[str], label: str, root_tag: str, records: dict[str, Convert], path: str,
          fmt: str) -> Iterator[Paper | Skipped]:
    """Each record element converted as it closes (by `records`, keyed by tag)."""
    elements = pull_elements(lines, label, lambda element, depth: depth > 0 and element.tag in records, root_tag)
    for position, element in enumerate(elements, 1):
        yield records[element.tag](element, SourceRef(file=path, format=fmt, position=position))


def _sniff_root(text: str, *markers: str) -> bool:
    head = text[:_SNIFF_CHARS].lstrip(_BOM + " \t\r\n")
    return head.startswith("<") and all(marker in head for marker in markers)


# ---------------------------------------------------------------- PubMed XML


def _abstract(parent: Element | None) -> str | None:
    """A structured abstract's sections joined as 'BACKGROUND: ... METHODS: ...'; a plain one as it is."""
    if parent is None:
        return None
    sections = []
    for section in parent.iterfind("Abstract/AbstractText"):
        text = text_of(section)
        label = section.get("Label")
        if text:
            sections.append(f"{label}: {text}" if label else text)
    return " ".join(sections) or None


def _pubmed_authors(parent: Element | None) -> list[str]:
    """'ForeName LastName' (or initials) in order; a group (CollectiveName) by its name. Editors are not authors."""
    names = []
    for author_list in [] if parent is None else parent.iterfind("AuthorList"):
        if author_list.get("Type", "authors") != "authors":
            continue
        for author in author_list.iterfind("Author"):
            last = text_of(author.find("LastName"))
            first = text_of(author.find("ForeName")) or text_of(author.find("Initials"))
            name = " ".join(part for part in (first, last) if part) or text_of(author.find("CollectiveName"))
            if name:
                names.append(name)
    return names


def _date_text(date: Element | None) -> str | None:
    """<PubDate> as text: its MedlineDate ('2004 Sep-Dec'), or Year, Month ('Jun' or '06') and Day."""
    if date is None:
        return None
    return text_of(date.find("MedlineDate")) or " ".join(
        _texts(date, "Year") + _texts(date, "Month") + _texts(date, "Day")
    )


def _ids(*lists: Element | None) -> dict[str, str]:
    """IdType -> value from ArticleIdList/ArticleId and ELocationID (doi, pmc, pubmed, pii); the first one wins."""
    found: dict[str, str] = {}
    for parent in lists:
        if parent is None:
            continue
        for element in [*parent.iterfind("ArticleIdList/ArticleId"), *parent.iterfind("ELocationID")]:
            kind = (element.get("IdType") or element.get("EIdType") or "").lower()
            if kind and (value := text_of(element)):
                found.setdefault(kind, value)
    return found


def _pubmed_paper(source: SourceRef, *, pmid: str | None, title: str | None, body: Element, citation: Element,
                  venue: str | None, dates: tuple[str | None, str | None], ids: dict[str, str]) -> Paper | Skipped:
    """Shared by journal articles and book chapters; the PMID is the paper's id (see tagged._medline_paper)."""
    pmid = pmid or ids.get("pubmed")
    year, date = pubmed_dates(*dates)
    keywords = _texts(citation, "KeywordList/Keyword") + _texts(citation, "MeshHeadingList/MeshHeading/DescriptorName")
    return _paper(
        source,
        abstract=_abstract(body),
        title=title,
        label=f"PMID {pmid}" if pmid else None,
        source_id=pmid,
        authors=_pubmed_authors(body),
        year=year,
        date=date,
        venue=venue,
        url=_pubmed_url(pmid, ids.get("pmc")),
        doi=ids.get("doi"),
        keywords=keywords,
    )


def _pubmed_article(element: Element, source: SourceRef) -> Paper | Skipped:
    citation = element.find("MedlineCitation")
    article = None if citation is None else citation.find("Article")
    if citation is None or article is None:
        return Skipped(position=source.position, reason="PubmedArticle without MedlineCitation/Article")
    issue = article.find("Journal/JournalIssue")
    return _pubmed_paper(
        source,
        pmid=text_of(citation.find("PMID")),
        title=text_of(article.find("ArticleTitle")) or text_of(article.find("VernacularTitle")),
        body=article,
        citation=citation,
        venue=text_of(article.find("Journal/Title")) or text_of(article.find("Journal/ISOAbbreviation")),
        dates=(_date_text(None if issue is None else issue.find("PubDate")), _date_text(article.find("ArticleDate"))),
        ids=_ids(element.find("PubmedData"), article),
    )


def _pubmed_book(element: Element, source: SourceRef) -> Paper | Skipped:
    """A Bookshelf record (StatPearls, GeneReviews): a chapter is titled by ArticleTitle and sits in its book."""
    document = element.find("BookDocument")
    if document is None:
        return Skipped(position=source.position, reason="PubmedBookArticle without BookDocument")
    chapter = text_of(document.find("ArticleTitle"))
    book = text_of(document.find("Book/BookTitle"))
    return _pubmed_paper(
        source,
        pmid=text_of(document.find("PMID")),
        title=chapter or book,
        body=document,
        citation=document,
        venue=book if chapter else text_of(document.find("Book/Publisher/PublisherName")),
        dates=(_date_text(document.find("Book/PubDate")), None),
        ids=_ids(document, element.find("PubmedBookData")),
    )


def stream_pubmed_xml(lines: Iterable[str], path: str) -> Iterator[Paper | Skipped]:
    """PubMed XML records from a file's lines, one at a time."""
    return _pull(lines, "PubMed", "PubmedArticleSet",
                 {"PubmedArticle": _pubmed_article, "PubmedBookArticle": _pubmed_book}, path, "pubmed-xml")


def parse_pubmed_xml(text: str, path: str) -> ParseResult:
    """PubMed XML: an efetch response (retmode=xml) or a baseline/update file."""
    return _result("pubmed-xml", stream_pubmed_xml(text.split("\n"), path))


def _sniff_pubmed_xml(text: str) -> bool:
    return _sniff_root(text, "<PubmedArticleSet")


# ---------------------------------------------------------------- EndNote XML


def _endnote_record(record: Element, source: SourceRef) -> Paper | Skipped:
    """An EndNote record. Its rec-number is local to one EndNote library, so it is not the paper's id; the
    accession number (a PMID or WOS id, when the record came from a database) is not either: its kind is unknown."""
    year_text = text_of(record.find("dates/year"))
    year, date = pub_date(text_of(record.find("dates/pub-dates/date")), year=pub_date(year_text)[0])
    urls = _texts(record, "urls/related-urls/url")
    title = text_of(record.find("titles/title"))
    return _paper(
        source,
        abstract=text_of(record.find("abstract")),
        title=title,
        label=title or f"rec-number {text_of(record.find('rec-number'))}",
        authors=_texts(record, "contributors/authors/author"),
        year=year,
        date=date,
        venue=text_of(record.find("periodical/full-title")) or text_of(record.find("titles/secondary-title")),
        url=next((url for url in urls if url.startswith(("http://", "https://"))), None),  # not '<Go to ISI>://…'
        doi=text_of(record.find("electronic-resource-num")),
        keywords=_texts(record, "keywords/keyword"),
    )


def stream_endnote_xml(lines: Iterable[str], path: str) -> Iterator[Paper | Skipped]:
    """EndNote XML records from a file's lines, one at a time (EndNote writes the whole file as one line)."""
    return _pull(lines, "EndNote", "xml", {"record": _endnote_record}, path, "endnote-xml")


def parse_endnote_xml(text: str, path: str) -> ParseResult:
    """EndNote's File -> Export -> XML (also written by Zotero, Mendeley and citation tools)."""
    return _result("endnote-xml", stream_endnote_xml(text.split("\n"), path))


def _sniff_endnote_xml(text: str) -> bool:
    return _sniff_root(text, "<xml>", "<records>", "<record>")


XML_RECORD_SNIFFERS = [
    ("pubmed-xml", _sniff_pubmed_xml, parse_pubmed_xml),
    ("endnote-xml", _sniff_endnote_xml, parse_endnote_xml),
]
STREAMS = {"pubmed-xml": stream_pubmed_xml, "endnote-xml": stream_endnote_xml}
