"""Parsers for saved scholarly-API responses and dumps: OpenAlex works, Semantic Scholar Graph API papers, and the
Kaggle arXiv metadata snapshot.

Each is recognised by its content (a .json or .txt name does not matter) and streams: JSON Lines are read one
record at a time; a pretty-printed JSON document (an API response saved from a browser) is read whole, as JSON
cannot be cut into records before it is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any

from ..errors import ParseError
from .exports import _BOM, _SNIFF_CHARS, _latex, _load_json, _paper, _plain, _result, _scalar, _year_and_date
from .records import Paper, ParseResult, Skipped, SourceRef

Record = Paper | Skipped
Expand = Callable[[Any], Iterable[Any]]
Stream = Callable[[Iterable[str], str], Iterator[Record]]

# A real abstract has a few hundred words; positions past this (or past twice the number of words the index
# gives) are not text: {"x": [10**9]} would otherwise ask for a billion-slot list.
MAX_ABSTRACT_WORDS = 20_000


def _dict(value: object) -> dict[str, Any]:
    """API objects are often null or missing; treat anything but an object as empty."""
    return value if isinstance(value, dict) else {}


def _texts(values: object, key: str | None = None) -> list[str]:
    """Strings from a list (of strings, or of objects holding them under `key`), in order, without repeats."""
    items = values if isinstance(values, list) else []
    found = [_scalar(_dict(item).get(key) if key else item) for item in items]
    return list(dict.fromkeys(text.strip() for text in found if text and text.strip()))


# ---------------------------------------------------------------- JSON documents and JSON Lines


def _json_values(lines: Iterable[str]) -> Iterator[Any]:
    """The JSON values of a file given as lines. When the first non-blank line is a complete JSON value, the file
    is JSON Lines and is read a line at a time; otherwise it is one (pretty-printed) document, read whole."""
    lines = iter(lines)
    first_number, first = 0, ""
    for first_number, line in enumerate(lines, 1):
        first = line.lstrip(_BOM).rstrip("\r") if first_number == 1 else line.rstrip("\r")
        if first.strip():
            break
    if not first.strip():
        return
    try:
        value = _load_json(first, first_number) if first.lstrip()[:1] in "{[" else None
    except ParseError:
        value = None
    if value is None:  # a document spread over many lines
        yield _load_json("\n".join([first, *(line.rstrip("\r") for line in lines)]))
        return
    yield value
    for number, line in enumerate(lines, first_number + 1):
        if line.strip():
            yield _load_json(line.rstrip("\r"), number)


def _records(lines: Iterable[str], path: str, fmt: str, expand: Expand,
             convert: Callable[[dict[str, Any], SourceRef], Record]) -> Iterator[Record]:
    """Every record of every value (a response wrapper is expanded to its records), numbered from 1."""
    position = 0
    for value in _json_values(lines):
        for item in expand(value):
            position += 1
            if isinstance(item, dict):
                yield convert(item, SourceRef(file=path, format=fmt, position=position))
            else:
                reason = "not found (null in a batch response)" if item is None else "not a JSON object"
                yield Skipped(position=position, reason=reason)


def _first_line_head(text: str) -> str:
    """The start of the first non-blank line, bounded: enough to tell JSON Lines from a document."""
    head = text.lstrip(_BOM + " \t\r\n")[:_SNIFF_CHARS]
    return head.split("\n", 1)[0]


def _json_head(text: str) -> str:
    """The bounded head of a JSON file (object or array), or "" for anything else."""
    head = text.lstrip(_BOM + " \t\r\n")[:_SNIFF_CHARS]
    return head if head[:1] in ("{", "[") else ""


# ---------------------------------------------------------------- OpenAlex


def abstract_from_inverted_index(index: object) -> str:
    """OpenAlex ships abstracts as {word: [positions]}; put the words back in order, in linear time. Positions
    are bounded by twice the number of (word, position) pairs and MAX_ABSTRACT_WORDS, so a hostile index cannot
    make a huge list; a gap (a position no word claims) is skipped."""
    if not isinstance(index, dict):
        return ""
    pairs = [(position, word) for word, positions in index.items() if isinstance(positions, list)
             for position in positions if type(position) is int and position >= 0]
    slots: list[str | None] = [None] * min(2 * len(pairs), MAX_ABSTRACT_WORDS)
    for position, word in pairs:
        if position < len(slots):
            slots[position] = word
    return " ".join(word for word in slots if word is not None)


def _openalex_id(value: object) -> str | None:
    """'https://openalex.org/W2741809807' -> 'W2741809807'."""
    return (_scalar(value) or "").strip().rsplit("/", 1)[-1] or None


def _openalex_arxiv_url(work: dict[str, Any]) -> str | None:
    """An arXiv landing page or PDF among the work's locations: OpenAlex keeps no arXiv id of its own."""
    locations = work.get("locations")
    others = locations if isinstance(locations, list) else []
    for location in map(_dict, [work.get("primary_location"), work.get("best_oa_location"), *others]):
        for key in ("landing_page_url", "pdf_url"):
            url = _scalar(location.get(key)) or ""
            if "arxiv.org/" in url.lower():
                return url
    return None


def openalex_paper(work: dict[str, Any], source: SourceRef) -> Record:
    """An OpenAlex Work object (from a saved response, a snapshot line or `enrich`'s lookups) as a record."""
    primary = _dict(work.get("primary_location"))
    venue = _dict(primary.get("source")).get("display_name") or _dict(work.get("host_venue")).get("display_name")
    year, date = _year_and_date(_scalar(work.get("publication_year")), _scalar(work.get("publication_date")))
    work_id = _openalex_id(_dict(work.get("ids")).get("openalex") or work.get("id"))
    arxiv_url = _openalex_arxiv_url(work)
    authors = [_scalar(_dict(a.get("author")).get("display_name")) or _scalar(a.get("raw_author_name"))
               for a in map(_dict, work.get("authorships") or [])] if isinstance(work.get("authorships"), list) else []
    return _paper(
        source,
        abstract=abstract_from_inverted_index(work.get("abstract_inverted_index")) or work.get("abstract"),
        title=work.get("display_name") or work.get("title"),
        label=work_id,
        source_id=work_id,
        authors=[name for name in authors if name],
        year=year,
        date=date,
        venue=_plain(venue),
        url=_plain(primary.get("landing_page_url")) or _plain(work.get("doi")) or _plain(work.get("id")),
        doi=_plain(work.get("doi")),
        arxiv_id=arxiv_url,
        keywords=(_texts(work.get("keywords"), "display_name") or _texts(work.get("keywords"), "keyword")
                  or _texts(work.get("concepts"), "display_name")),
    )


def _openalex_expand(value: Any) -> Iterable[Any]:
    """A list response ({"meta": ..., "results": [...]}), a list of works, or one work."""
    if isinstance(value, dict) and isinstance(value.get("results"), list):
        return value["results"]
    return value if isinstance(value, list) else [value]


def stream_openalex(lines: Iterable[str], path: str) -> Iterator[Record]:
    return _records(lines, path, "openalex", _openalex_expand, openalex_paper)


_OPENALEX_MARKERS = ('"https://openalex.org/W', '"abstract_inverted_index"', '"authorships"')


def _sniff_openalex(text: str) -> bool:
    head = _json_head(text)
    return bool(head) and any(marker in head for marker in _OPENALEX_MARKERS)


# ---------------------------------------------------------------- Semantic Scholar Graph API


def _s2_paper(paper: dict[str, Any], source: SourceRef) -> Record:
    ids = _dict(paper.get("externalIds"))
    year, date = _year_and_date(_scalar(paper.get("year")), _scalar(paper.get("publicationDate")))
    paper_id = (_scalar(paper.get("paperId")) or "").strip() or None
    venue = (_plain(paper.get("venue")) or _plain(_dict(paper.get("journal")).get("name"))
             or _plain(_dict(paper.get("publicationVenue")).get("name")))
    fields = _texts(paper.get("fieldsOfStudy")) + _texts(paper.get("s2FieldsOfStudy"), "category")
    return _paper(
        source,
        abstract=paper.get("abstract"),
        title=paper.get("title"),
        label=paper_id,
        source_id=paper_id,
        authors=[name for author in map(_dict, paper.get("authors") or []) if (name := _scalar(author.get("name")))]
        if isinstance(paper.get("authors"), list) else [],
        year=year,
        date=date,
        venue=venue,
        url=_plain(paper.get("url")),
        doi=_plain(ids.get("DOI")),
        arxiv_id=_plain(ids.get("ArXiv")),
        keywords=list(dict.fromkeys(fields)),
    )


def _s2_expand(value: Any) -> Iterable[Any]:
    """A search or bulk response ({"total": .., "data": [...]}), a /paper/batch list, or one paper; the
    /citations and /references responses wrap each paper as {"citingPaper": ...} or {"citedPaper": ...}."""
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        value = value["data"]
    items = value if isinstance(value, list) else [value]
    return [_dict(item).get("citingPaper") or _dict(item).get("citedPaper") or item for item in items]


def stream_semantic_scholar(lines: Iterable[str], path: str) -> Iterator[Record]:
    return _records(lines, path, "semantic-scholar", _s2_expand, _s2_paper)


def _sniff_semantic_scholar(text: str) -> bool:
    head = _json_head(text)
    return '"paperId"' in head and not any(marker in head for marker in _OPENALEX_MARKERS)


# ---------------------------------------------------------------- Kaggle arXiv metadata snapshot


def arxiv_version_date(created: object) -> tuple[int | None, str | None]:
    """arXiv writes version dates as RFC 2822 ('Mon, 2 Apr 2007 19:18:42 GMT'); -> (2007, '2007-04-02')."""
    text = _scalar(created)
    if not text:
        return None, None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return _year_and_date(text)
    return when.year, when.date().isoformat()


def _without_parentheses(text: str) -> str:
    """Drop parenthesised affiliations ('A. B. (Bologna Univ. and INFN)'), nested or not, in one pass."""
    depth, kept = 0, []
    for char in text:
        depth += char == "("
        if not depth:
            kept.append(char)
        depth -= char == ")" and depth > 0
    return "".join(kept)


def split_author_line(line: str) -> list[str]:
    """arXiv's one-string author list: 'A. Losev, S. Shadrin and I. Shneiberg' -> three names."""
    names = re.split(r",|\band\b", _without_parentheses(line))
    return [_latex(name) for name in (" ".join(part.split()) for part in names) if name]


def _parsed_name(parts: object) -> str | None:
    """One [last, first, suffix, (affiliation)] entry of authors_parsed, as 'first last suffix'."""
    if not isinstance(parts, list):
        return None
    texts = [_scalar(part) or "" for part in parts[:3]] + ["", "", ""]
    name = " ".join(" ".join(piece.split()) for piece in (texts[1], texts[0], texts[2]) if piece.strip())
    return _latex(name) if name else None


def _kaggle_record(record: dict[str, Any], source: SourceRef) -> Record:
    arxiv_id = (_scalar(record.get("id")) or "").strip() or None
    versions = record.get("versions")
    first = _dict(versions[0]) if isinstance(versions, list) and versions else {}
    year, date = arxiv_version_date(first.get("created"))
    parsed = record.get("authors_parsed")
    authors = [name for parts in parsed if (name := _parsed_name(parts))] if isinstance(parsed, list) else []
    title, abstract = _scalar(record.get("title")), _scalar(record.get("abstract"))
    categories = _scalar(record.get("categories"))
    return _paper(
        source,
        abstract=_latex(abstract) if abstract else record.get("abstract"),
        title=_latex(title) if title else None,
        label=arxiv_id,
        authors=authors or split_author_line(_scalar(record.get("authors")) or ""),
        year=year,
        date=date,
        venue=_plain(record.get("journal-ref")),
        url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None,
        doi=_plain(record.get("doi")),
        arxiv_id=arxiv_id,
        keywords=categories.split() if categories else [],
    )


def stream_kaggle_arxiv(lines: Iterable[str], path: str) -> Iterator[Record]:
    return _records(lines, path, "arxiv-snapshot", lambda value: [value], _kaggle_record)


def _sniff_kaggle_arxiv(text: str) -> bool:
    """The snapshot's lines start '{"id":' and carry journal-ref and the version history or parsed authors."""
    line = _first_line_head(text)
    return (line.startswith('{"id":') and '"journal-ref"' in line
            and any(key in line for key in ('"versions"', '"authors_parsed"', '"submitter"')))


# ---------------------------------------------------------------- registry

def text_parser(name: str, stream: Stream) -> Callable[[str, str], ParseResult]:
    """The whole-text parser of a streaming format: one implementation, the stream, serves both."""
    return lambda text, path: _result(name, stream(text.split("\n"), path))


STREAMS: dict[str, Stream] = {
    "arxiv-snapshot": stream_kaggle_arxiv,
    "openalex": stream_openalex,
    "semantic-scholar": stream_semantic_scholar,
}
parse_kaggle_arxiv = text_parser("arxiv-snapshot", stream_kaggle_arxiv)
parse_openalex = text_parser("openalex", stream_openalex)
parse_semantic_scholar = text_parser("semantic-scholar", stream_semantic_scholar)

API_SNIFFERS: list[tuple[str, Callable[[str], bool], Callable[[str, str], ParseResult]]] = [
    ("arxiv-snapshot", _sniff_kaggle_arxiv, parse_kaggle_arxiv),
    ("openalex", _sniff_openalex, parse_openalex),
    ("semantic-scholar", _sniff_semantic_scholar, parse_semantic_scholar),
]
