"""Parsers for XML exports: arXiv OAI-PMH responses (arXiv, arXivRaw and oai_dc metadata) and Zotero RDF.

Both are read with a pull parser fed a line at a time, so a 30,000-record harvest is never one tree in memory.
Entity declarations are refused before the parser sees them: a "billion laughs" file would otherwise expand a
few hundred bytes into gigabytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from xml.etree.ElementTree import Element

from ..errors import ParseError
from .apis import Stream, arxiv_version_date, split_author_line, text_parser
from .exports import _BOM, _SNIFF_CHARS, _latex, _paper, _year_and_date
from .records import Paper, ParseResult, Skipped, SourceRef
from .xmlpull import pull_elements, text_of

Record = Paper | Skipped

_OAI = "{http://www.openarchives.org/OAI/2.0/}"
_ARXIV = "{http://arxiv.org/OAI/arXiv/}"
_ARXIV_RAW = "{http://arxiv.org/OAI/arXivRaw/}"
_OAI_DC = "{http://www.openarchives.org/OAI/2.0/oai_dc/}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_DCTERMS = "{http://purl.org/dc/terms/}"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_Z = "{http://www.zotero.org/namespaces/export#}"
_BIB = "{http://purl.org/net/biblio#}"
_FOAF = "{http://xmlns.com/foaf/0.1/}"
_LINK = "{http://purl.org/rss/1.0/modules/link/}"


def _text(element: Element | None, path: str) -> str | None:
    return text_of(None if element is None else element.find(path))


def _latex_text(element: Element | None, path: str) -> str | None:
    text = _text(element, path)
    return _latex(text) if text else None


# ---------------------------------------------------------------- OAI-PMH


def _arxiv_fields(meta: Element) -> dict[str, Any]:
    """metadataPrefix=arXiv: structured authors (keyname, forenames, suffix) and the submission date."""
    authors = [" ".join(part for part in (_text(author, f"{_ARXIV}forenames"), _text(author, f"{_ARXIV}keyname"),
                                          _text(author, f"{_ARXIV}suffix")) if part)
               for author in meta.iterfind(f"{_ARXIV}authors/{_ARXIV}author")]
    year, date = _year_and_date(_text(meta, f"{_ARXIV}created"))
    return {"ns": _ARXIV, "authors": [_latex(name) for name in authors if name], "year": year, "date": date}


def _arxiv_raw_fields(meta: Element) -> dict[str, Any]:
    """metadataPrefix=arXivRaw: authors as one string, and each version with its RFC 2822 date."""
    versions = meta.findall(f"{_ARXIV_RAW}version")
    first = next((v for v in versions if v.get("version") == "v1"), versions[0] if versions else None)
    year, date = arxiv_version_date(_text(first, f"{_ARXIV_RAW}date"))
    return {"ns": _ARXIV_RAW, "authors": split_author_line(_text(meta, f"{_ARXIV_RAW}authors") or ""),
            "year": year, "date": date}


def _arxiv_record(meta: Element, fields: dict[str, Any], source: SourceRef) -> Record:
    ns = fields["ns"]
    arxiv_id = _text(meta, f"{ns}id")
    categories = _text(meta, f"{ns}categories")
    return _paper(
        source,
        abstract=_latex_text(meta, f"{ns}abstract"),
        title=_latex_text(meta, f"{ns}title"),
        label=arxiv_id,
        authors=fields["authors"],
        year=fields["year"],
        date=fields["date"],
        venue=_text(meta, f"{ns}journal-ref"),
        url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None,
        doi=_text(meta, f"{ns}doi"),
        arxiv_id=arxiv_id,
        keywords=categories.split() if categories else [],
    )


def _dublin_core_record(meta: Element, source: SourceRef, label: str | None) -> Record:
    """metadataPrefix=oai_dc, which every OAI-PMH repository serves: arXiv adds 'Comment: …' descriptions
    and 'doi:' identifiers; creators are 'Last, First'."""
    descriptions = [text for element in meta.iterfind(f"{_DC}description")
                    if (text := "".join(element.itertext()).strip()) and not text.startswith("Comment:")]
    identifiers = ["".join(element.itertext()).strip() for element in meta.iterfind(f"{_DC}identifier")]
    year, date = _year_and_date(_text(meta, f"{_DC}date"))
    return _paper(
        source,
        abstract=descriptions[0] if descriptions else None,
        title=_text(meta, f"{_DC}title"),
        label=label,
        authors=["".join(creator.itertext()) for creator in meta.iterfind(f"{_DC}creator")],
        year=year,
        date=date,
        url=next((text for text in identifiers if text.startswith("http")), None),
        doi=next((text for text in identifiers if text.lower().startswith(("doi:", "10."))), None),
        keywords=["".join(subject.itertext()) for subject in meta.iterfind(f"{_DC}subject")],
    )


def _oai_record(record: Element, source: SourceRef) -> Record:
    identifier = _text(record, f"{_OAI}header/{_OAI}identifier")
    header = record.find(f"{_OAI}header")
    if header is not None and header.get("status") == "deleted":
        return Skipped(position=source.position, reason="deleted record", label=identifier)
    metadata = record.find(f"{_OAI}metadata")
    meta = None if metadata is None else next(iter(metadata), None)
    if meta is None:
        return Skipped(position=source.position, reason="no metadata", label=identifier)
    if meta.tag == f"{_ARXIV}arXiv":
        return _arxiv_record(meta, _arxiv_fields(meta), source)
    if meta.tag == f"{_ARXIV_RAW}arXivRaw":
        return _arxiv_record(meta, _arxiv_raw_fields(meta), source)
    if meta.tag == f"{_OAI_DC}dc":
        return _dublin_core_record(meta, source, identifier)
    return Skipped(position=source.position, reason=f"unsupported metadata format {meta.tag!r}", label=identifier)


def stream_oai_pmh(lines: Iterable[str], path: str) -> Iterator[Record]:
    """Records of a ListRecords or GetRecord response; an OAI-PMH <error> (noRecordsMatch, badArgument) with no
    records is reported as the error it is."""
    position, error = 0, None
    for element in pull_elements(lines, "OAI-PMH", lambda e, depth: (e.tag, depth) in {(f"{_OAI}record", 2),
                                                                              (f"{_OAI}error", 1)}):
        if element.tag == f"{_OAI}error":
            error = f"{element.get('code', 'error')}: {' '.join(''.join(element.itertext()).split())}"
            continue
        position += 1
        yield _oai_record(element, SourceRef(file=path, format="oai-pmh", position=position))
    if not position and error:
        raise ParseError(f"the OAI-PMH response is an error, not records ({error})")


def _sniff_oai_pmh(text: str) -> bool:
    head = text.lstrip(_BOM + " \t\r\n")[:_SNIFF_CHARS]
    return head.startswith("<") and bool(re.search(r"<(?:\w+:)?OAI-PMH\b", head))


# ---------------------------------------------------------------- Zotero RDF

_NOT_ITEMS = {"attachment", "note"}


def _resource(element: Element | None) -> str | None:
    return None if element is None else element.get(f"{_RDF}resource")


def _zotero_person(person: Element) -> str:
    given = _text(person, f"{_FOAF}givenName") or _text(person, f"{_FOAF}givenname")  # older exports: lowercase
    return " ".join(part for part in (given, _text(person, f"{_FOAF}surname")) if part)


def _zotero_identifiers(element: Element) -> list[str]:
    """dc:identifier as text ('DOI 10.1/x', 'ISSN …') or as a dcterms:URI holding an rdf:value."""
    return ["".join(identifier.itertext()).strip() for identifier in element.iterfind(f"{_DC}identifier")]


def _zotero_container(element: Element) -> dict[str, Any]:
    """A journal, book or proceedings node: its title and the DOI Zotero files under it for journal articles."""
    return {"title": _text(element, f"{_DC}title"), "identifiers": _zotero_identifiers(element)}


def _zotero_item(element: Element) -> dict[str, Any]:
    """The fields of one library item, with references (containers, attachments) left to resolve at the end."""
    part_of = [(_resource(link), None if (node := link.find("*")) is None else _zotero_container(node))
               for link in element.iterfind(f"{_DCTERMS}isPartOf")]
    subjects = [_text(subject, f".//{_RDF}value") or "".join(subject.itertext()).strip()
                for subject in element.iterfind(f"{_DC}subject")]
    about = element.get(f"{_RDF}about")
    return {
        "about": about,
        "title": _text(element, f"{_DC}title"),
        "abstract": _text(element, f"{_DCTERMS}abstract"),
        "authors": [_zotero_person(person) for person in
                    element.iterfind(f"{_BIB}authors/{_RDF}Seq/{_RDF}li/{_FOAF}Person")],
        "date": _text(element, f"{_DC}date"),
        "identifiers": _zotero_identifiers(element),
        "part_of": part_of,
        "keywords": [subject for subject in subjects if subject],
        "links": [_resource(link) for link in element.iterfind(f"{_LINK}link")],
        "label": _text(element, f"{_Z}citationKey") or about,
    }


def _doi(identifiers: list[str]) -> str | None:
    return next((text[4:] for text in identifiers if text.upper().startswith("DOI ")), None)


def _zotero_paper(item: dict[str, Any], containers: dict[str, dict[str, Any]], uses: dict[str, int],
                  attachments: dict[str, str], collections: dict[str, list[str]], source: SourceRef) -> Record:
    """A Zotero article keeps its DOI in its journal node; a journal node shared by several items (one
    rdf:about for the whole journal) is only trusted for the venue name, never for a DOI."""
    parents = [inline or containers.get(ref or "") or {} for ref, inline in item["part_of"]]
    own_parents = [p for (ref, inline), p in zip(item["part_of"], parents) if inline or uses.get(ref or "") == 1]
    url = next((text for text in item["identifiers"] if text.startswith(("http://", "https://"))), None)
    arxiv = next((text for text in item["identifiers"] if text.lower().startswith("arxiv")), None)
    year, date = _year_and_date(item["date"])
    return _paper(
        source,
        abstract=item["abstract"],
        title=item["title"],
        label=item["label"],
        authors=[name for name in item["authors"] if name],
        year=year,
        date=date,
        venue=next((p["title"] for p in parents if p.get("title")), None),
        url=url,
        doi=_doi(item["identifiers"]) or next((d for p in own_parents if (d := _doi(p["identifiers"]))), None),
        arxiv_id=arxiv,
        keywords=item["keywords"],
        collections=collections.get(item["about"] or "", []),
        attachments=[attachments[link] for link in item["links"] if link in attachments],
    )


def stream_zotero_rdf(lines: Iterable[str], path: str) -> Iterator[Record]:
    """Zotero RDF refers forward (an article to a journal node, to attachments and collections defined after
    it), so items are kept as small field records while the file streams and become papers at its end."""
    items: list[dict[str, Any]] = []
    containers: dict[str, dict[str, Any]] = {}
    attachments: dict[str, str] = {}
    collections: dict[str, list[str]] = {}
    for element in pull_elements(lines, "Zotero RDF", lambda e, depth: depth == 1):
        about = element.get(f"{_RDF}about") or ""
        item_type = _text(element, f"{_Z}itemType")
        if element.tag == f"{_Z}Collection":
            name = _text(element, f"{_DC}title") or about
            for part in element.iterfind(f"{_DCTERMS}hasPart"):
                collections.setdefault(_resource(part) or "", []).append(name)
        elif element.tag == f"{_Z}Attachment" or item_type == "attachment":
            if file := _resource(element.find(f"{_RDF}resource")) or _resource(element.find(f"{_Z}path")):
                attachments[about] = file
        elif item_type and item_type not in _NOT_ITEMS:
            items.append(_zotero_item(element))
        elif element.tag != f"{_BIB}Memo":
            containers[about] = _zotero_container(element)
    uses: dict[str, int] = {}
    for item in items:
        for ref, _ in item["part_of"]:
            uses[ref or ""] = uses.get(ref or "", 0) + 1
    for position, item in enumerate(items, 1):
        yield _zotero_paper(item, containers, uses, attachments, collections,
                            SourceRef(file=path, format="zotero-rdf", position=position))


def _sniff_zotero_rdf(text: str) -> bool:
    head = text.lstrip(_BOM + " \t\r\n")[:_SNIFF_CHARS]
    return (head.startswith("<") and "http://www.zotero.org/namespaces/export#" in head
            and "http://purl.org/net/biblio#" in head and bool(re.search(r"<(?:\w+:)?RDF\b", head)))


# ---------------------------------------------------------------- registry

STREAMS: dict[str, Stream] = {"oai-pmh": stream_oai_pmh, "zotero-rdf": stream_zotero_rdf}
parse_oai_pmh = text_parser("oai-pmh", stream_oai_pmh)
parse_zotero_rdf = text_parser("zotero-rdf", stream_zotero_rdf)

XML_FEED_SNIFFERS: list[tuple[str, Callable[[str], bool], Callable[[str, str], ParseResult]]] = [
    ("oai-pmh", _sniff_oai_pmh, parse_oai_pmh),
    ("zotero-rdf", _sniff_zotero_rdf, parse_zotero_rdf),
]
