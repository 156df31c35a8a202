"""Parsing: any supported file -> Paper records. Formats are detected from content, not only the extension."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ParseError
from .apis import API_SNIFFERS
from .apis import STREAMS as API_STREAMS
from .exports import EXPORT_SNIFFERS, parse_csv
from .exports import STREAMS as EXPORT_STREAMS
from .pdf import PDF_MAGIC, attach_pdf, attach_pdfs, parse_pdf
from .reading import check_binary, describe_text, read_file, unpack
from .records import (
    NO_ABSTRACT,
    Paper,
    ParseResult,
    PdfSource,
    Skipped,
    SourceRef,
    normalize_abstract,
    normalize_title,
    paper_id_for,
)
from .scraped import SCRAPED_SNIFFERS
from .tagged import STREAMS as TAGGED_STREAMS
from .tagged import TAGGED_SNIFFERS
from .xml_feeds import STREAMS as XML_FEED_STREAMS
from .xml_feeds import XML_FEED_SNIFFERS
from .xml_records import STREAMS as XML_RECORD_STREAMS
from .xml_records import XML_RECORD_SNIFFERS
from .zotero_db import DATABASE_NAME as ZOTERO_DATABASE
from .zotero_db import ZOTERO_SNIFFERS, is_zotero_database, read_zotero

log = logging.getLogger("litassist.corpus")

__all__ = [
    "NO_ABSTRACT",
    "STREAMS",
    "Paper",
    "ParseError",
    "ParseResult",
    "ParsedFile",
    "PdfSource",
    "Skipped",
    "SourceRef",
    "discover_files",
    "duplicate_keys",
    "file_sha256",
    "find_conflict",
    "find_duplicate",
    "group_duplicates",
    "merge_duplicates",
    "merge_into",
    "parse_file",
    "parse_text",
    "parse_zotero_file",
    "read_file",
    "stream_format",
    "with_free_id",
]

Parser = Callable[[str, str], ParseResult]
Stream = Callable[[Iterable[str], str], Iterator[Paper | Skipped]]
# The specific formats first: a Kaggle arXiv snapshot or an OpenAlex dump is also valid generic JSON/JSONL.
SNIFFERS: list[tuple[str, Callable[[str], bool], Parser]] = [
    *API_SNIFFERS, *XML_FEED_SNIFFERS, *TAGGED_SNIFFERS, *XML_RECORD_SNIFFERS, *ZOTERO_SNIFFERS, *EXPORT_SNIFFERS,
    *SCRAPED_SNIFFERS,
]
# Binary formats, recognized by their first bytes and read as bytes: (name, magic, reader(data, path)).
BINARY_READERS: list[tuple[str, bytes, Callable[[bytes, str], ParseResult]]] = [("pdf", PDF_MAGIC, parse_pdf)]
# Formats whose entries may attach PDFs (Zotero and Better BibTeX `file` fields, Zotero RDF's files/ folder): those
# PDFs' text is read too.
ATTACHING_FORMATS = frozenset({"bibtex", "csl-json", "zotero-rdf"})
DEFAULT_MAX_BYTES = 512 * 2**20


def _attaching(stream: Stream) -> Stream:
    """A streamed format whose entries attach PDFs: each paper gets its PDF's text as it streams by, and a PDF
    that cannot be read is that entry's warning."""
    def attached(lines: Iterable[str], path: str) -> Iterator[Paper | Skipped]:
        for item in stream(lines, path):
            if isinstance(item, Paper) and item.attachments:
                item, failure = attach_pdf(item, Path(path).parent, DEFAULT_MAX_BYTES)
                if failure:
                    item.warnings.append(failure)
            yield item

    return attached


# Formats read a record at a time (see `stream_format`): name -> stream(lines, path), lines without their "\n".
STREAMS: dict[str, Stream] = {**API_STREAMS, **XML_FEED_STREAMS, **TAGGED_STREAMS, **XML_RECORD_STREAMS,
                              **EXPORT_STREAMS}
STREAMS.update({name: _attaching(STREAMS[name]) for name in ATTACHING_FORMATS & STREAMS.keys()})
_EXTENSION_HINTS = {
    ".bib": "bibtex",
    ".ris": "ris",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".xml": "arxiv-atom",
    ".atom": "arxiv-atom",
    ".nbib": "medline",
    ".ciw": "wos",
    ".rdf": "zotero-rdf",
}


@dataclass(frozen=True)
class ParsedFile:
    """A file read and parsed in full before anything is stored, so a bad file stores nothing."""

    path: str
    sha256: str
    result: ParseResult


def discover_files(paths: Iterable[str | Path], skip: Path | None = None) -> list[Path]:
    """Expand directories recursively (skipping hidden entries, anything but regular files, and the folder
    `skip`: the library's own home when it lies inside a folder being ingested); keep explicit paths as given,
    even a FIFO or a device: `read_file` refuses those with a reason."""
    skipped = skip.resolve() if skip else None
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists() and not path.is_symlink():
            raise FileNotFoundError(f"{path}: no such file or directory")
        if path.is_dir():
            # Zotero data folders: the database stands for the folder; its storage/ (PDFs, full-text
            # caches), styles and backups are not exports.
            zotero = [p.parent for p in path.rglob(ZOTERO_DATABASE)
                      if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)]
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
                    and not (skipped and skipped in p.resolve().parents)
                    and not any(folder in p.parents for folder in zotero)
                )
            )
            found.extend(folder / ZOTERO_DATABASE for folder in zotero)
        else:
            found.append(path)
    return list(dict.fromkeys(p.resolve() for p in found))


def decode(data: bytes, path: str = "") -> str:
    """UTF-8 text or a one-line ParseError saying why not (empty, what a binary file looks like, other encoding)."""
    if not data.strip():
        raise ParseError("empty file")
    check_binary(data, path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ParseError(
            f"not UTF-8: invalid byte 0x{data[err.start]:02x} at offset {err.start}; re-save the file as UTF-8"
        ) from None


_GENERIC_FORMATS = frozenset({"json", "jsonl", "csv"})  # readings of any records: the extension may choose between them


def detect_format(text: str, path: str) -> tuple[str, Parser]:
    """Pick the parser whose sniffer accepts the content; the extension only breaks ties."""
    accepted = [(name, parser) for name, sniff, parser in SNIFFERS if _accepts(sniff, text)]
    suffixes = [suffix.lower() for suffix in Path(path).suffixes]
    if suffixes[-1:] == [".gz"]:  # refs.bib.gz is a .bib
        suffixes.pop()
    hint = _EXTENSION_HINTS.get(suffixes[-1] if suffixes else "")
    if not accepted and hint:  # e.g. a ragged .csv: its own parser gives the precise error
        return next((name, parser) for name, _, parser in SNIFFERS if name == hint)
    if not accepted:
        looks = describe_text(text)
        raise ParseError(
            (f"this looks like {looks}; " if looks else "")
            + "unrecognized format (expected BibTeX, RIS, CSL-JSON, JSON/JSONL, CSV, arXiv Atom, arXiv OAI-PMH, "
            "PubMed/MEDLINE (.nbib), PubMed XML, Web of Science tagged text, EndNote XML, Zotero RDF, Zotero or "
            "OpenAlex or Semantic Scholar API JSON, the Kaggle arXiv snapshot, or a scraped listing of abstracts)"
        )
    if hint in _GENERIC_FORMATS and accepted[0][0] not in _GENERIC_FORMATS:
        return accepted[0]  # an OpenAlex or arXiv-snapshot .jsonl is generic JSONL too: the specific reading wins
    return next(((n, p) for n, p in accepted if n == hint), accepted[0])


def _accepts(sniff: Callable[[str], bool], text: str) -> bool:
    """A sniffer is a guess: one that fails on hostile text (deep nesting, odd quoting) has said "not mine"."""
    try:
        return sniff(text)
    except (ParseError, ValueError, RecursionError, MemoryError) as error:
        log.debug("sniffer %s failed: %s", getattr(sniff, "__name__", sniff), error)
        return False


def stream_format(head: str, path: str) -> tuple[str, Stream] | None:
    """The format and its record-at-a-time reader when `head` (the first lines of a file) is a streamed format."""
    try:
        name, _ = detect_format(head, path)
    except ParseError:  # the whole file is read, and its own parser or the sniffers say why
        return None
    return (name, STREAMS[name]) if name in STREAMS else None


def parse_text(text: str, path: str, csv_mapping: dict[str, str] | None = None) -> ParseResult:
    name, parser = detect_format(text, path)
    if name == "csv":
        return parse_csv(text, path, mapping=csv_mapping)
    return parser(text, path)


def parse_file(
    path: str | Path, csv_mapping: dict[str, str] | None = None, data: bytes | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ParsedFile:
    """Read (unless `data` is given), decompress, decode and parse one file; raises ParseError with a one-line
    reason. `data` is the file as stored (its hash is the file's), gzip or not."""
    if data is None and is_zotero_database(path):  # the Zotero database is read with SQLite, not as text
        return parse_zotero_file(path)
    data = read_file(path, max_bytes) if data is None else data
    content = unpack(data, max_bytes)
    reader = next((read for _, magic, read in BINARY_READERS if content.startswith(magic)), None)
    if reader is not None:  # before `decode` refuses binary content as "not text"
        result = reader(content, str(path))
    else:
        result = parse_text(decode(content, str(path)), str(path), csv_mapping)
        if result.format in ATTACHING_FORMATS:
            attach_pdfs(result, Path(path).parent, max_bytes)
    if not result.papers and not result.skipped_total:
        raise ParseError(f"no papers found in this {result.format} file")
    if conflict := find_conflict(result.papers):
        raise ParseError(conflict)
    return ParsedFile(path=str(path), sha256=file_sha256(data), result=result)


def parse_zotero_file(path: str | Path) -> ParsedFile:
    """The Zotero database: read with SQLite, hashed with its write-ahead log, under no size limit (it is
    queried, never loaded whole). The PDFs attached to its items are read too (their paths are absolute, or
    relative to the data folder), each through the PDF text cache, so a re-import re-reads only changed PDFs."""
    sha256, result = read_zotero(path)
    attach_pdfs(result, Path(path).parent, DEFAULT_MAX_BYTES)
    if not result.papers and not result.skipped_total:
        raise ParseError("no items in this Zotero database (notes, attachments and the trash are not read)")
    if conflict := find_conflict(result.papers):
        raise ParseError(conflict)
    return ParsedFile(path=str(path), sha256=sha256, result=result)


_COMPARED_FIELDS = ("title", "abstract", "authors", "year", "venue", "doi", "arxiv_id")


def find_conflict(papers: Iterable[Paper]) -> str | None:
    """Two entries of one file under one id the file gave, with different content: a conflict to report, not
    two versions to merge silently (merging would keep one abstract and drop the other)."""
    seen: dict[str, Paper] = {}
    for paper in papers:
        if paper.paper_id.startswith(DERIVED_ID_PREFIXES):
            continue  # an id we derived (DOI, title hash): the same paper seen twice is merged as usual
        first = seen.setdefault(paper.paper_id, paper)
        differing = [
            field for field in _COMPARED_FIELDS
            if getattr(first, field) and getattr(paper, field) and getattr(first, field) != getattr(paper, field)
            and not (field == "title" and (first.title_derived or paper.title_derived))  # made from the abstract
        ]
        if first is not paper and differing:
            return (f"entries {first.sources[0].position} and {paper.sources[0].position} have the same id "
                    f"{paper.paper_id!r} but different {', '.join(differing)}: keep one, or give them different ids")
    return None


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def duplicate_keys(paper: Paper) -> Iterator[str]:
    """Every key under which two records are the same paper: id, DOI, arXiv id, title, abstract."""
    yield f"id:{paper.paper_id}"
    if paper.doi:
        yield f"doi:{paper.doi}"
    if paper.arxiv_id:
        yield f"arxiv:{paper.arxiv_id}"
    if not paper.title_derived and (title := normalize_title(paper.title)):
        yield f"title:{title}"
    if abstract := normalize_abstract(paper.abstract):
        yield f"abstract:{abstract}"


def merge_into(kept: Paper, other: Paper) -> Paper:
    """Combine two records of one paper: kept's id wins, missing fields are filled, sources are unioned; the PDF
    read last wins."""
    update: dict[str, object] = {}
    for field in ("authors", "author_count", "year", "date", "venue", "url", "doi", "arxiv_id"):
        if not getattr(kept, field) and getattr(other, field):
            update[field] = getattr(other, field)
    if other.pdf is not None:  # the PDF as read now: where it is and what it holds (a moved or changed file)
        update["pdf"] = other.pdf
    if kept.title_derived and not other.title_derived:
        update.update(title=other.title, title_derived=False)
    if len(other.abstract) > len(kept.abstract):
        update["abstract"] = other.abstract
    sources = list(kept.sources)
    sources += [s for s in other.sources if s not in sources]
    update["sources"] = sources
    return kept.model_copy(update=update)


DERIVED_ID_PREFIXES = ("doi:", "arxiv:", "t:", "a:")
ABSTRACT_OVERLAP = 0.6


def _abstracts_overlap(a: Paper, b: Paper) -> bool:
    words_a, words_b = set(normalize_abstract(a.abstract).split()), set(normalize_abstract(b.abstract).split())
    shorter = min(words_a, words_b, key=len)
    return bool(shorter) and len(words_a & words_b) / len(shorter) >= ABSTRACT_OVERLAP


def _same_title(a: Paper, b: Paper) -> bool:
    return not a.title_derived and not b.title_derived and normalize_title(a.title) == normalize_title(b.title) != ""


def same_paper(a: Paper, b: Paper, key: str) -> bool:
    """Confirm a shared duplicate key: ids a source gave that differ mean different papers, and a shared
    title alone is not enough (generic titles like "Summary" recur): the abstracts must overlap too. An id that
    two different files give (BEIR-style files both number from 1) is the same paper only when the records agree
    (same title, or overlapping abstracts): otherwise it is a collision, never a merge."""
    sourced = [p.paper_id for p in (a, b) if not p.paper_id.startswith(DERIVED_ID_PREFIXES)]
    if len(sourced) == 2 and sourced[0] != sourced[1]:
        return False
    if key.startswith("id:") and len(sourced) == 2 and _from_other_files(a, b):
        return _same_title(a, b) or _abstracts_overlap(a, b)
    if not key.startswith(("title:", "id:t:")):  # a t: id is a title hash: it is a title match too
        return True
    return _abstracts_overlap(a, b)


def _from_other_files(a: Paper, b: Paper) -> bool:
    """Both records come from source files, and no file gave both."""
    files_a, files_b = {s.file for s in a.sources}, {s.file for s in b.sources}
    return bool(files_a) and bool(files_b) and not files_a & files_b


def find_duplicate(paper: Paper, index: dict[str, str], lookup: Callable[[str], Paper]) -> str | None:
    """The id of an already-known record of this paper, via `index` (duplicate key -> id)."""
    for key in duplicate_keys(paper):
        if key in index and same_paper(lookup(index[key]), paper, key):
            return index[key]
    return None


def with_free_id(paper: Paper, taken: Container[str]) -> Paper:
    """A different paper under an id already in use (a generic title, say) falls back to its abstract's id."""
    if paper.paper_id not in taken:
        return paper
    fallback = paper_id_for(source_id=None, doi=None, arxiv_id=None, title=None, abstract=paper.abstract)
    suffix = 2
    candidate = fallback
    while candidate in taken:
        candidate, suffix = f"{fallback}-{suffix}", suffix + 1
    return paper.model_copy(update={"paper_id": candidate})


def merge_duplicates(papers: Iterable[Paper]) -> tuple[list[Paper], int]:
    """Collapse records of the same paper (first seen keeps its id); returns (papers, number merged)."""
    merged, owners = group_duplicates(papers)
    return list(merged.values()), len(owners) - len(merged)


def group_duplicates(papers: Iterable[Paper]) -> tuple[dict[str, Paper], list[str]]:
    """Records of the same paper merged (first seen keeps its id), and the id each record went to, in order."""
    merged: dict[str, Paper] = {}
    index: dict[str, str] = {}
    owners: list[str] = []
    for paper in papers:
        hit = find_duplicate(paper, index, merged.__getitem__)
        if hit is None:
            paper = with_free_id(paper, merged)
            hit = paper.paper_id
            merged[hit] = paper
        else:
            merged[hit] = merge_into(merged[hit], paper)
        owners.append(hit)
        for key in duplicate_keys(merged[hit]):
            index.setdefault(key, hit)
    return merged, owners
